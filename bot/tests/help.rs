//! The binary starts and documents every command. (Being an integration test of `bot`, this also
//! makes `cargo test` build `target/*/dealwatch`, which the end-to-end tests in `tests/` run.)

use std::process::Command;

const COMMANDS: [&str; 18] = [
    "demo",
    "generate",
    "validate",
    "eval",
    "train",
    "score",
    "insights",
    "import",
    "migrate",
    "serve",
    "token",
    "alerts",
    "alerts deliver",
    "alerts list",
    "jobs",
    "jobs run-due",
    "jobs schedule",
    "jobs list",
];

#[test]
fn every_command_has_help() {
    let bin = env!("CARGO_BIN_EXE_dealwatch");
    let top = Command::new(bin).arg("--help").output().expect("run dealwatch --help");
    assert!(top.status.success());
    let text = String::from_utf8_lossy(&top.stdout);
    for command in COMMANDS {
        let words: Vec<&str> = command.split(' ').collect();
        assert!(text.contains(words[0]), "top-level help lists {command}");
        let out = Command::new(bin).args(&words).arg("--help").output().expect("run --help");
        assert!(out.status.success(), "{command} --help exits 0");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Usage: dealwatch"), "{command} --help prints usage:\n{help}");
        assert!(help.contains("--as-of"), "{command} takes --as-of:\n{help}");
    }
}

#[test]
fn an_unknown_command_fails_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_dealwatch")).arg("frobnicate").output().expect("run dealwatch");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}
