//! The store and the service through the real `dealwatch` binary: import, train and score on a
//! tenant, `serve` with graceful shutdown, and an import killed half-way. On both stores.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bot::store::TenantId;
use serde_json::Value;
use tests::{TestStore, dealwatch, each_store, scratch, text};

/// `dealwatch` with the test store's database (and, for PostgreSQL, its migration URL).
pub fn cli(store: &TestStore) -> Command {
    let mut cmd = dealwatch();
    cmd.arg("--database").arg(&store.url);
    // Servers under test run no scheduled jobs unless a test turns them on.
    cmd.env("DEALWATCH_JOBS__RUN", "false");
    if let Some(owner) = &store.migration_url {
        cmd.env("DEALWATCH_DATABASE__MIGRATION_URL", owner);
    } else {
        cmd.env_remove("DEALWATCH_DATABASE__MIGRATION_URL");
    }
    cmd
}

fn run(mut cmd: Command) -> (bool, String, String) {
    let out = cmd.output().expect("run dealwatch");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn generate(dir: &std::path::Path, name: &str, deals: usize, seed: u64, messy: bool) -> String {
    let path = dir.join(name).to_string_lossy().into_owned();
    let n = deals.to_string();
    let s = seed.to_string();
    let mut args = vec!["generate", "--deals", &n, "--seed", &s, "--out", &path];
    if messy {
        args.push("--messy");
    }
    tests::run_ok(&args);
    path
}

#[tokio::test]
async fn import_is_all_or_nothing_idempotent_and_records_rejects() {
    for store in each_store().await {
        let b = store.store.backend();
        let dir = scratch();
        let messy = generate(dir.path(), "messy.csv", 1500, 7, true);
        let tenant = TenantId::parse("acme").expect("tenant");

        // Invalid rows and no --skip-invalid: nothing is written.
        let mut cmd = cli(&store);
        cmd.args(["import", "--tenant", "acme", "--input", &messy]);
        let (ok, _, err) = run(cmd);
        assert!(!ok, "{b}");
        assert!(err.contains("nothing was imported") && err.contains("--skip-invalid"), "{b}: {err}");
        assert!(store.store.tenant(&tenant).await.expect("read").is_none(), "{b}: no tenant, no deals");

        // --skip-invalid: the valid rows are stored and every invalid one recorded.
        let mut cmd = cli(&store);
        cmd.args(["import", "--tenant", "acme", "--input", &messy, "--skip-invalid", "--format", "json"]);
        let (ok, out, err) = run(cmd);
        assert!(ok, "{b}: {err}");
        let report: Value = serde_json::from_str(&out).expect("json");
        let rejected = report["rows_rejected"].as_u64().expect("rejected");
        assert!(rejected >= 6, "{b}: {report}");
        assert_eq!(report["inserted"].as_u64().unwrap_or(0) + rejected, 1500, "{b}");
        let errors =
            store.store.import_errors(&tenant, report["import_id"].as_str().expect("id")).await.expect("errors");
        assert_eq!(errors.len() as u64, rejected, "{b}");
        assert!(errors.iter().all(|e| !e.reason.is_empty() && e.row > 0));

        // The same file again changes nothing.
        let mut cmd = cli(&store);
        cmd.args(["import", "--tenant", "acme", "--input", &messy, "--skip-invalid", "--format", "json"]);
        let (ok, out, _) = run(cmd);
        assert!(ok);
        let again: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(
            (again["inserted"].as_u64(), again["updated"].as_u64(), again["history"].as_u64()),
            (Some(0), Some(0), Some(0)),
            "{b}"
        );
        assert_eq!(again["unchanged"], report["inserted"]);
    }
}

#[tokio::test]
async fn train_and_score_work_on_a_tenants_store() {
    for store in each_store().await {
        let b = store.store.backend();
        let dir = scratch();
        let file = generate(dir.path(), "deals.csv", 3000, 5, false);
        let mut cmd = cli(&store);
        cmd.args(["import", "--tenant", "acme", "--input", &file]);
        assert!(run(cmd).0, "{b}");
        let mut cmd = cli(&store);
        cmd.args(["train", "--tenant", "acme", "--format", "json"]);
        let (ok, out, err) = run(cmd);
        assert!(ok, "{b}: {err}");
        let trained: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(trained["status"], "champion", "{b}");
        let mut cmd = cli(&store);
        cmd.args(["score", "--tenant", "acme", "--format", "json"]);
        let (ok, out, err) = run(cmd);
        assert!(ok, "{b}: {err}");
        let scored: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(scored["model_version"], trained["version"]);
        let n = scored["scores"].as_array().expect("scores").len();
        assert!(err.contains(&format!("saved {n} scores")), "{b}: {err}");
        let tenant = TenantId::parse("acme").expect("tenant");
        let first = &scored["scores"][0];
        let stored =
            store.store.deal(&tenant, first["deal_id"].as_str().expect("id")).await.expect("read").expect("deal");
        assert_eq!(
            stored.score.map(|s| u64::from(s.risk_score)),
            first["risk_score"].as_u64(),
            "{b}: the score is stored"
        );
        // No model yet for another tenant: a clear message.
        let mut cmd = cli(&store);
        cmd.args(["score", "--tenant", "nobody"]);
        let (ok, _, err) = run(cmd);
        assert!(!ok && err.contains("tenant nobody has no data yet"), "{b}: {err}");
    }
}

/// Starts `dealwatch serve` on port 0 (its data directory in `dir`) and returns it with its
/// base URL.
fn start_server(store: &TestStore, dir: &std::path::Path) -> (Child, String) {
    spawn_server(cli(store).env("DEALWATCH_DATA_DIR", dir))
}

/// Starts `cmd` as `dealwatch serve` on port 0 and returns it with its base URL.
pub fn spawn_server(cmd: &mut Command) -> (Child, String) {
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("DEALWATCH_AUTH__HS256_SECRETS", format!("[\"{}\"]", tests::TEST_SECRET))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn dealwatch serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, base)
}

#[tokio::test]
async fn an_import_killed_half_way_leaves_the_store_as_it_was_and_the_service_restarts() {
    for store in each_store().await {
        let b = store.store.backend();
        let dir = scratch();
        let tenant = TenantId::parse("acme").expect("tenant");
        let small = generate(dir.path(), "small.csv", 2000, 1, false);
        let mut cmd = cli(&store);
        cmd.args(["import", "--tenant", "acme", "--input", &small]);
        assert!(run(cmd).0, "{b}");
        let before = store.store.deals(&tenant).await.expect("deals");

        // A much larger export (it also changes the first deals) is killed mid-transaction.
        let big = generate(dir.path(), "big.csv", 120_000, 2, false);
        let mut cmd = cli(&store);
        cmd.args(["import", "--tenant", "acme", "--input", &big]).stderr(Stdio::piped()).stdout(Stdio::null());
        let mut child = cmd.spawn().expect("spawn import");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut writing = false;
        for line in stderr.lines() {
            if line.expect("stderr line").starts_with("writing ") {
                writing = true;
                break;
            }
        }
        assert!(writing, "{b}: the import reached its write");
        std::thread::sleep(Duration::from_millis(150));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(!status.success(), "{b}: killed before it could finish");

        let after = store.store.deals(&tenant).await.expect("deals");
        assert_eq!(after.len(), before.len(), "{b}");
        assert!(after == before, "{b}: every deal exactly as before the import");

        // The service starts on the same store and answers its admin.
        let admin = bot::store::User::named("admin", "Admin", bot::store::Role::Admin);
        store.store.upsert_user(&tenant, &admin).await.expect("admin");
        let (mut server, base) = start_server(&store, dir.path());
        let http = tests::http();
        let ready: Value = http.get(format!("{base}/readyz")).send().await.expect("readyz").json().await.expect("json");
        assert_eq!(ready["database"], "ok", "{b}");
        let token = tests::token("acme", "admin", bot::store::Role::Admin, 600);
        let response =
            http.get(format!("{base}/v1/deals/{}", before[0].id)).bearer_auth(&token).send().await.expect("GET");
        assert_eq!(response.status(), 200, "{b}");
        server.kill().expect("stop");
        let _ = server.wait();
    }
}

#[tokio::test]
async fn the_service_shuts_down_gracefully_on_sigterm() {
    let store = tests::sqlite_store().await;
    let dir = scratch();
    let (mut server, base) = start_server(&store, dir.path());
    let http = tests::http();
    assert_eq!(http.get(format!("{base}/healthz")).send().await.expect("healthz").status(), 200);
    let status = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill -TERM");
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(exit) = server.try_wait().expect("wait") {
            assert!(exit.success(), "a clean exit after SIGTERM: {exit:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the server must stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(http.get(format!("{base}/healthz")).send().await.is_err(), "nothing listens any more");
}
