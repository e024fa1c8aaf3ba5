//! The `dealwatch` command line, run as a user runs it.

use serde_json::Value;
use tests::{run_err, run_ok, scratch, text, write};

const AS_OF: &str = "2026-06-30";

/// Generates `deals` deals into `dir/deals.csv`; returns its path.
fn generate(dir: &std::path::Path, deals: usize, messy: bool) -> String {
    let out = dir.join("deals.csv").to_string_lossy().into_owned();
    let n = deals.to_string();
    let mut args = vec!["generate", "--deals", &n, "--seed", "3", "--as-of", AS_OF, "--out", &out];
    if messy {
        args.push("--messy");
    }
    run_ok(&args);
    out
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

#[test]
fn demo_runs_with_no_arguments_and_reports_the_pipeline() {
    // As on a fresh machine: an empty working directory, where the demo makes data/dealwatch.db.
    let dir = scratch();
    let run = tests::dealwatch().current_dir(dir.path()).arg("demo").output().expect("run dealwatch demo");
    assert!(run.status.success(), "{}", text(&run.stderr));
    let out = text(&run.stdout);
    assert!(dir.path().join("data/dealwatch.db").is_file(), "the demo stores its data under the working directory");
    for section in [
        "Data quality",
        "quarantined",
        "ROC-AUC",
        "calibration error",
        "Pipeline:",
        "Riskiest open deals",
        "Recommended actions",
        "Similar won deals",
    ] {
        assert!(out.contains(section), "demo output lacks {section:?}:\n{out}");
    }
}

#[test]
fn validate_reports_every_planted_error_by_row_column_and_reason() {
    let dir = scratch();
    let input = dir.path().join("messy.csv").to_string_lossy().into_owned();
    let summary = json(&run_ok(&[
        "generate", "--deals", "4000", "--seed", "9", "--as-of", AS_OF, "--messy", "--out", &input, "--format", "json",
    ]));
    let report = json(&run_ok(&["validate", "--input", &input, "--as-of", AS_OF, "--format", "json"]));
    assert_eq!(report["rows_read"], 4000);
    let planted = summary["planted_errors"].as_object().expect("planted errors");
    assert_eq!(planted.len(), 6);
    for (kind, count) in planted {
        assert_eq!(report["errors_by_kind"][kind], *count, "{kind}");
    }
    let quarantined: u64 = planted.values().filter_map(Value::as_u64).sum();
    assert_eq!(report["rows_quarantined"], quarantined);
    for problem in report["problems"].as_array().expect("problems").iter().filter(|p| p["severity"] == "error") {
        assert!(problem["row"].as_u64().is_some_and(|r| r >= 1));
        assert!(!problem["reason"].as_str().unwrap_or_default().is_empty());
        assert!(problem["kind"] == "missing_required" || !problem["column"].as_str().unwrap_or_default().is_empty());
    }
    // The CSV form lists the same problems.
    let csv = run_ok(&["validate", "--input", &input, "--format", "csv"]);
    assert!(csv.starts_with("row,deal_id,column,value,kind,severity,reason"));
    assert_eq!(csv.lines().count() - 1, report["problems"].as_array().map_or(0, Vec::len));
}

#[test]
fn eval_prints_the_contract_fields_as_json() {
    let dir = scratch();
    let input = generate(dir.path(), 4000, false);
    let report = json(&run_ok(&["eval", "--input", &input, "--as-of", AS_OF, "--format", "json"]));
    for key in ["roc_auc", "brier", "log_loss", "calibration_error", "n_train", "n_test", "model", "baseline_roc_auc"] {
        assert!(!report[key].is_null(), "eval JSON lacks {key}: {report}");
    }
    assert_eq!(report["model"], "additive");
    assert_eq!(report["split"], "time");
    let (n_train, n_test) = (report["n_train"].as_u64().unwrap_or(0), report["n_test"].as_u64().unwrap_or(0));
    assert!(n_test * 3 > n_train / 2 && n_test < n_train, "about a quarter held out: {n_train}/{n_test}");
    let random = json(&run_ok(&[
        "eval",
        "--input",
        &input,
        "--as-of",
        AS_OF,
        "--split",
        "random",
        "--seed",
        "5",
        "--test-fraction",
        "0.3",
        "--model",
        "logistic",
        "--format",
        "json",
    ]));
    assert_eq!(random["model"], "logistic");
    assert_eq!(random["split"], "random");
    let csv = run_ok(&["eval", "--input", &input, "--as-of", AS_OF, "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("model,split,cutoff,n_train,n_test,roc_auc"));
    assert!(lines[1].starts_with("additive,time,"));
    let bad = run_err(&["eval", "--input", &input, "--test-fraction", "1.5"]);
    assert!(text(&bad.stderr).contains("test fraction"), "{}", text(&bad.stderr));
}

#[test]
fn a_trained_model_file_scores_exactly_like_training_in_place() {
    let dir = scratch();
    let input = generate(dir.path(), 3000, false);
    let model = dir.path().join("model.json").to_string_lossy().into_owned();
    let trained = json(&run_ok(&["train", "--input", &input, "--as-of", AS_OF, "--out", &model, "--format", "json"]));
    let file = json(&std::fs::read_to_string(&model).expect("model file"));
    assert_eq!(file["version"], trained["version"]);
    assert_eq!(file["format"], "dealwatch-model/1");
    assert!(file["window"]["from"].is_string() && file["metrics"]["roc_auc"].is_number());
    let with_file = run_ok(&["score", "--input", &input, "--as-of", AS_OF, "--model-file", &model, "--format", "json"]);
    let in_place = run_ok(&["score", "--input", &input, "--as-of", AS_OF, "--format", "json"]);
    assert_eq!(with_file, in_place, "the model file round-trips exactly");
    // The same command twice prints the same bytes.
    assert_eq!(in_place, run_ok(&["score", "--input", &input, "--as-of", AS_OF, "--format", "json"]));
    let scored = json(&in_place);
    let scores = scored["scores"].as_array().expect("scores");
    assert_eq!(scored["pipeline"]["open_deals"].as_u64(), Some(scores.len() as u64));
    assert!(scores.windows(2).all(|w| w[0]["risk_score"].as_u64() >= w[1]["risk_score"].as_u64()), "riskiest first");
    // A model file from another format is refused with a clear message.
    let old = write(dir.path(), "old.json", r#"{"format": "dealwatch-model/0"}"#);
    let err = run_err(&["score", "--input", &input, "--model-file", &old]);
    assert!(text(&err.stderr).contains("not supported"), "{}", text(&err.stderr));
}

#[test]
fn one_deal_by_id_or_company_shows_its_card() {
    let dir = scratch();
    let input = generate(dir.path(), 3000, false);
    let card = run_ok(&["score", "--input", &input, "--as-of", AS_OF, "--deal", "Acme"]);
    assert!(card.contains("Acme Corp") && card.contains("Risk ") && card.contains("win probability"), "{card}");
    let json_card =
        json(&run_ok(&["score", "--input", &input, "--as-of", AS_OF, "--deal", "Acme", "--format", "json"]));
    let id = json_card["deal_id"].as_str().expect("deal id").to_owned();
    let by_id = json(&run_ok(&["score", "--input", &input, "--as-of", AS_OF, "--deal", &id, "--format", "json"]));
    assert_eq!(by_id, json_card);
    let total = json_card["base_risk"].as_f64().unwrap_or(0.0)
        + json_card["contributions"]
            .as_array()
            .expect("contributions")
            .iter()
            .filter_map(|c| c["impact"].as_f64())
            .sum::<f64>();
    assert!((total - 100.0 * (1.0 - json_card["win_probability"].as_f64().unwrap_or(0.0))).abs() < 0.1);
}

#[test]
fn unknown_and_closed_deals_get_clear_errors() {
    let dir = scratch();
    let input = generate(dir.path(), 2000, false);
    let err = run_err(&["score", "--input", &input, "--as-of", AS_OF, "--deal", "D999999"]);
    assert!(
        text(&err.stderr).contains("no deal with id or open-deal company name \"D999999\""),
        "{}",
        text(&err.stderr)
    );
    // D000001 is the oldest deal: long closed.
    let err = run_err(&["score", "--input", &input, "--as-of", AS_OF, "--deal", "D000001"]);
    let msg = text(&err.stderr);
    assert!(msg.contains("D000001 is already") && msg.contains("scores are for open deals"), "{msg}");
}

#[test]
fn csv_output_has_one_row_per_open_deal() {
    let dir = scratch();
    let input = generate(dir.path(), 2000, false);
    let csv = run_ok(&["score", "--input", &input, "--as-of", AS_OF, "--format", "csv"]);
    let mut lines = csv.lines();
    assert!(lines.next().is_some_and(|h| h.starts_with("deal_id,company,owner,amount,risk_score,risk_category")));
    let rows = lines.count();
    let scored = json(&run_ok(&["score", "--input", &input, "--as-of", AS_OF, "--format", "json"]));
    assert_eq!(Some(rows as u64), scored["pipeline"]["open_deals"].as_u64());
}

#[test]
fn bad_inputs_name_the_file_column_or_mapping_at_fault() {
    let dir = scratch();
    let missing = run_err(&["score", "--input", "/nonexistent/deals.csv"]);
    assert!(text(&missing.stderr).contains("opening /nonexistent/deals.csv"));

    let csv = write(dir.path(), "other.csv", "id,state\n1,Won\n");
    let err = run_err(&["validate", "--input", &csv]);
    let msg = text(&err.stderr);
    assert!(
        msg.contains("field `id` names column \"deal_id\"")
            && msg.contains("field `outcome` names column \"outcome\"")
            && msg.contains("columns: id, state"),
        "{msg}"
    );

    let mapping = write(
        dir.path(),
        "m.toml",
        "[fields]\nid = \"id\"\noutcome = \"state\"\n[outcome]\nwon = [\"Won\"]\nlost = [\"Lost\"]\n[validation]\nrequired = [\"colour\"]\n",
    );
    let err = run_err(&["validate", "--input", &csv, "--mapping", &mapping]);
    assert!(text(&err.stderr).contains("unknown field \"colour\""), "{}", text(&err.stderr));

    let err = run_err(&["validate", "--input", &csv, "--mapping", "salesforce-magic"]);
    assert!(text(&err.stderr).contains("neither a file nor a bundled mapping"), "{}", text(&err.stderr));
}

#[test]
fn a_custom_mapping_reads_an_arbitrary_messy_export() {
    // CR line endings, a BOM, semicolons, decimal commas, quoted cells, padded values, and
    // several labels for one outcome.
    let dir = scratch();
    let rows = [
        "Opportunity ID;Stage;Value;Sector;Opened;Closed",
        "A-1;Closed Won;\"€1.200,50\";Retail; 2024-01-02 ;2024-02-01",
        "A-2;lost;900;Retail;2024-01-05;2024-03-01",
        "A-3;Verloren;\" 2.000 \";\"Energy; Utilities\";2024-02-01;2024-02-20",
        "A-4;;3.500;Energy; Utilities;2024-03-01;",
    ];
    let body = format!("\u{feff}{}\r", rows.join("\r"));
    let csv = write(dir.path(), "export.csv", body);
    let mapping = write(
        dir.path(),
        "export.toml",
        r#"
        [fields]
        id = "Opportunity ID"
        outcome = "Stage"
        amount = "Value"
        created = "Opened"
        closed = "Closed"
        [outcome]
        won = ["Closed Won", "Gewonnen"]
        lost = ["Lost", "Verloren"]
        [segments]
        industry = "Sector"
        [source]
        delimiter = ";"
        decimal = ","
        "#,
    );
    let report = json(&run_ok(&["validate", "--input", &csv, "--mapping", &mapping, "--format", "json"]));
    assert_eq!(report["rows_read"], 4);
    // Row 4 has an unquoted "Energy; Utilities": one field too many, quarantined as malformed.
    assert_eq!(report["errors_by_kind"]["malformed_row"], 1, "{report}");
    assert_eq!(report["rows_accepted"], 3);
    assert_eq!((report["won"].as_u64(), report["lost"].as_u64()), (Some(1), Some(2)));
}

#[test]
fn insights_on_a_generated_export_report_the_planted_drop_with_its_evidence() {
    let dir = scratch();
    let csv = generate(dir.path(), 20_000, false);
    let report = json(&run_ok(&["--as-of", AS_OF, "insights", "--input", &csv, "--format", "json"]));
    let changes = report["segment_changes"].as_array().expect("segment_changes");
    let drop = changes
        .iter()
        .find(|c| c["label"] == "HealthTech" && c["comparison"] == "rolling")
        .unwrap_or_else(|| panic!("HealthTech's drop is reported: {changes:?}"));
    assert!(drop["change"].as_f64().is_some_and(|c| c < -0.1), "{drop}");
    assert!(drop["q_value"].as_f64().is_some_and(|q| q <= 0.05), "{drop}");
    assert!(report["tested"]["segment_changes"].as_u64().is_some_and(|n| n > 100), "{}", report["tested"]);
    assert!(report["health"]["index"].as_f64().is_some_and(|i| (0.0..=100.0).contains(&i)));

    let text = run_ok(&["--as-of", AS_OF, "insights", "--input", &csv]);
    for part in ["Win-rate changes", "▼ HealthTech", "Pipeline health:", "Reps", "Anomalies"] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    let err = run_err(&["--as-of", AS_OF, "insights", "--input", &csv, "--fdr", "1.5"]);
    assert!(tests::text(&err.stderr).contains("not a rate between 0 and 1"), "{}", tests::text(&err.stderr));
}

#[tokio::test]
async fn token_needs_a_configured_secret_and_then_prints_a_jwt_the_service_accepts() {
    let dir = scratch();
    // Tokens are for users of the store (here the default one, under the working directory).
    let users =
        |args: &[&str]| tests::dealwatch().current_dir(dir.path()).arg("users").args(args).output().expect("run");
    let out = users(&["set", "--tenant", "acme", "--user", "ana"]);
    assert!(!out.status.success() && text(&out.stderr).contains("give their --role"), "{}", text(&out.stderr));
    let out = users(&["set", "--tenant", "acme", "--user", "ana", "--role", "manager", "--time-zone", "Europe/Lisbon"]);
    assert!(out.status.success() && text(&out.stdout).contains("ana is a manager in acme"), "{}", text(&out.stderr));
    let listed = text(&users(&["list", "--tenant", "acme"]).stdout);
    assert!(listed.contains("ana\tmanager") && listed.contains("Europe/Lisbon"), "{listed}");
    let url = format!("sqlite://{}", dir.path().join("data/dealwatch.db").display());
    let store = bot::store::open(&url, None).await.expect("store");
    let acme = bot::store::TenantId::parse("acme").expect("tenant");
    let out = tests::dealwatch()
        .current_dir(dir.path())
        .env_remove("DEALWATCH_AUTH__HS256_SECRETS")
        .args(["token", "--tenant", "acme", "--sub", "ana", "--role", "manager"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("DEALWATCH_AUTH__HS256_SECRETS"), "{}", text(&out.stderr));

    let out = tests::dealwatch()
        .current_dir(dir.path())
        .env("DEALWATCH_AUTH__HS256_SECRETS", format!("[\"{}\"]", tests::TEST_SECRET))
        .args(["token", "--tenant", "acme", "--sub", "ana", "--role", "manager", "--hours", "2"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let auth = bot::auth::AuthConfig {
        hs256_secrets: vec![secrecy::SecretString::from(tests::TEST_SECRET.to_owned())],
        ..bot::auth::AuthConfig::default()
    };
    let verifier = bot::auth::Authenticator::new(auth, tests::http()).expect("authenticator");
    let now = chrono::Utc::now().timestamp();
    let claims = verifier.verify(&token, now).await.expect("the token verifies");
    assert_eq!((claims.sub.as_str(), claims.tenant_id.as_str()), ("ana", "acme"));
    assert_eq!(claims.role, bot::store::Role::Manager);
    assert!((claims.exp - now - 7200).abs() < 60, "expires in two hours: {}", claims.exp - now);
    let bad_role = run_err(&["token", "--tenant", "acme", "--sub", "ana", "--role", "boss"]);
    assert!(text(&bad_role.stderr).contains("unknown role"), "{}", text(&bad_role.stderr));

    // Refused: a user not in the tenant, more than the user's role, longer than a week.
    let token = |args: &[&str]| {
        let mut cmd = tests::dealwatch();
        cmd.current_dir(dir.path()).env("DEALWATCH_AUTH__HS256_SECRETS", format!("[\"{}\"]", tests::TEST_SECRET));
        cmd.args(["token", "--tenant", "acme"]).args(args).output().expect("run")
    };
    for (args, says) in [
        (&["--sub", "nobody"][..], "no user \"nobody\""),
        (&["--sub", "ana", "--role", "admin"][..], "cannot grant admin"),
        (&["--sub", "ana", "--hours", "169"][..], "169"),
    ] {
        let out = token(args);
        assert!(!out.status.success() && text(&out.stderr).contains(says), "{args:?}: {}", text(&out.stderr));
    }
    // Revoking refuses every token issued until then; the user's role stands.
    let out = token(&["--sub", "ana", "--revoke"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let revoked = store.tokens_not_before(&acme, "ana").await.expect("read").expect("revoked");
    assert!(revoked.timestamp() >= claims.iat.expect("iat"), "the token above is older than the revocation");
}
