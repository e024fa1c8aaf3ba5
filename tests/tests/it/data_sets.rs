//! The third-party data sets in `../shared/data`, through the real binary with the bundled
//! mappings. Skipped with a notice when `../shared` is absent, except in CI.

use serde_json::Value;
use tests::{run_ok, shared_data};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

#[test]
fn skygeni_imports_5000_deals_at_a_45_3_percent_win_rate() {
    let Some(path) = shared_data("skygeni/skygeni_sales_data.csv") else { return };
    let path = path.to_string_lossy();
    let report = json(&run_ok(&[
        "validate",
        "--input",
        &path,
        "--mapping",
        "skygeni",
        "--as-of",
        "2024-07-31",
        "--format",
        "json",
    ]));
    assert_eq!(report["rows_accepted"], 5000);
    assert_eq!(report["rows_quarantined"], 0);
    let (won, lost) = (report["won"].as_u64().unwrap_or(0), report["lost"].as_u64().unwrap_or(0));
    assert_eq!(won + lost, 5000);
    assert_eq!((1000.0 * won as f64 / 5000.0).round() / 10.0, 45.3);
}

#[test]
fn skygeni_eval_is_calibrated_and_says_the_signal_is_weak() {
    let Some(path) = shared_data("skygeni/skygeni_sales_data.csv") else { return };
    let path = path.to_string_lossy();
    for model in ["additive", "logistic"] {
        let report = json(&run_ok(&[
            "eval",
            "--input",
            &path,
            "--mapping",
            "skygeni",
            "--as-of",
            "2024-07-31",
            "--model",
            model,
            "--format",
            "json",
        ]));
        println!("skygeni {model}: {}", report["verdict"]);
        assert_eq!(report["n_train"].as_u64().unwrap_or(0) + report["n_test"].as_u64().unwrap_or(0), 5000);
        assert!(report["calibration_error"].as_f64().is_some_and(|e| e <= 0.05), "{report}");
        let signal = report["signal"].as_str().unwrap_or_default();
        assert!(signal == "none" || signal == "weak", "this synthetic file carries almost no signal: {signal}");
        let verdict = report["verdict"].as_str().unwrap_or_default();
        assert!(verdict.contains("signal") && verdict.contains("chance"), "the report says so plainly: {verdict}");
    }
}

#[test]
fn skygeni_after_close_columns_are_never_features() {
    let Some(path) = shared_data("skygeni/skygeni_sales_data.csv") else { return };
    let dir = tests::scratch();
    let model = dir.path().join("m.json").to_string_lossy().into_owned();
    run_ok(&[
        "train",
        "--input",
        &path.to_string_lossy(),
        "--mapping",
        "skygeni",
        "--as-of",
        "2024-07-31",
        "--out",
        &model,
    ]);
    let file = json(&std::fs::read_to_string(&model).expect("model"));
    let features: Vec<&str> = file["features"].as_array().expect("features").iter().filter_map(Value::as_str).collect();
    assert!(!features.iter().any(|f| f.contains("cycle") || f.contains("closed")), "{features:?}");
}

#[test]
fn maven_eval_runs_on_a_time_split_and_every_open_deal_is_scored() {
    let Some(path) = shared_data("maven_crm_sales_opportunities/sales_pipeline.csv") else { return };
    let path = path.to_string_lossy();
    let report =
        json(&run_ok(&["eval", "--input", &path, "--mapping", "maven", "--as-of", "2017-12-31", "--format", "json"]));
    println!("maven: {}", report["verdict"]);
    assert_eq!(report["split"], "time");
    assert_eq!(report["n_train"].as_u64().unwrap_or(0) + report["n_test"].as_u64().unwrap_or(0), 4238 + 2473);
    assert!(report["calibration_error"].as_f64().is_some_and(|e| e <= 0.06), "{report}");

    let scored =
        json(&run_ok(&["score", "--input", &path, "--mapping", "maven", "--as-of", "2017-12-31", "--format", "json"]));
    let scores = scored["scores"].as_array().expect("scores");
    assert_eq!(scores.len(), 2089);
    // The 500 Prospecting deals have no engage date: scored, with their age unknown.
    let no_age = scores.iter().filter(|s| s["age_days"].is_null()).count();
    assert_eq!(no_age, 500);
    // The joins worked: every deal has an amount (the product's list price), and a region.
    assert!(scores.iter().all(|s| s["amount"].as_f64().is_some_and(|a| a > 0.0)));
    let report = json(&run_ok(&[
        "validate",
        "--input",
        &path,
        "--mapping",
        "maven",
        "--as-of",
        "2017-12-31",
        "--format",
        "json",
    ]));
    assert_eq!(report["rows_accepted"], 8800);
    // "GTXPro" in the pipeline meets "GTX Pro" in the product table: no failed product join.
    let product_misses = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["kind"] == "join_miss" && p["column"] == "product")
        .count();
    assert_eq!(product_misses, 0);
}
