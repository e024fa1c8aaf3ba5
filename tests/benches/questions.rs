//! The question bars of issue 7, measured in a release build with the real server on SQLite:
//!
//! 1. Model load at start-up: all-MiniLM-L6-v2's weights and tokenizer read (candle), then the
//!    example questions embedded (a first start) or their vectors read from the data
//!    directory's cache (every later start), each timed.
//! 2. Text to answer: `POST /v1/ask` over HTTP, and `chat::ask::ask` in-process, with `DEALS`
//!    deals in the store (default 100,000), for the questions of `tests/fixtures/questions/
//!    fresh.jsonl` (their as-of date set to today, so every answer comes from the one engine the
//!    server keeps), after one warm-up question: p50/p95/p99, by intent too.
//!
//!   scripts/fetch-model.sh && cargo bench -p tests --bench questions
//!   DEALS=10000 cargo bench -p tests --bench questions
//!   ONLY=load cargo bench -p tests --bench questions     # the start-up figures alone
//!
//! Figures are printed, not asserted: these machines are shared and noisy.

use std::collections::BTreeMap;
use std::time::Instant;

use bot::store::{Role, TenantId};
use serde_json::{Value, json};

use tests::bench::{env_usize, percentiles};

#[tokio::main]
async fn main() {
    let deals = env_usize("DEALS", 100_000);
    let model_dir = bot::chat::embed::default_model_dir();

    // 1. Start-up: the weights, then the examples.
    let started = Instant::now();
    let model = bot::chat::embed::shared(&model_dir).expect("the model (scripts/fetch-model.sh installs it)");
    let weights_ms = started.elapsed().as_secs_f64() * 1e3;
    drop(model);
    let mut settings = bot::config::Settings::default();
    settings.questions.backend = bot::chat::embed::Backend::Candle;
    settings.questions.model_dir = model_dir.clone();
    let data = tests::scratch();
    settings.data_dir = data.path().to_owned();
    let started = Instant::now();
    let questions = bot::chat::ask::Questions::configured(&settings).expect("questions");
    let examples_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    bot::chat::ask::Questions::configured(&settings).expect("questions, again");
    let cached_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "model load: weights and tokenizer {weights_ms:.0} ms; examples embedded {examples_ms:.0} ms on a first \
         start ({:.0} ms in all), read back from the cache {cached_ms:.0} ms on later ones ({:.0} ms in all) ({})",
        weights_ms + examples_ms,
        weights_ms + cached_ms,
        questions.backend()
    );

    if std::env::var("ONLY").is_ok_and(|o| o == "load") {
        return;
    }

    // 2. Text to answer.
    let store = tests::sqlite_store().await;
    let today = chrono::Utc::now().date_naive();
    let started = Instant::now();
    tests::seed_tenant(store.store.as_ref(), "acme", deals, 7, today).await;
    println!("seeded {deals} deals with a model in {:.1} s", started.elapsed().as_secs_f64());
    let dir = model_dir.clone();
    let server = tests::TestServer::start(store, move |s| {
        s.questions.backend = bot::chat::embed::Backend::Candle;
        s.questions.model_dir = dir;
    })
    .await;
    let token = tests::token("acme", "admin", Role::Admin, 3600);
    let started = Instant::now();
    let (status, _) = server.post("/v1/ask", &token, &json!({ "question": "how is the pipeline looking?" })).await;
    assert_eq!(status, 200);
    println!("first question (the tenant's engine built): {:.0} ms", started.elapsed().as_secs_f64() * 1e3);

    let text =
        std::fs::read_to_string(tests::repo_root().join("tests/fixtures/questions/fresh.jsonl")).expect("questions");
    let asked: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["q"].as_str().map(str::to_owned))
        .collect();
    let mut http = Vec::new();
    let mut by_intent: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for q in &asked {
        let started = Instant::now();
        let (status, answer) = server.post("/v1/ask", &token, &json!({ "question": q })).await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        assert_eq!(status, 200, "{q}: {answer}");
        http.push(ms);
        by_intent.entry(answer["intent"].as_str().unwrap_or("?").to_owned()).or_default().push(ms);
    }
    println!("POST /v1/ask, {deals} deals, candle: {}", percentiles(http, 1));
    for (intent, ms) in by_intent {
        println!("  {intent:<17} {}", percentiles(ms, 1));
    }

    let state = server.state.clone();
    let tenant = TenantId::parse("acme").expect("tenant");
    let admin = state.store.user(&tenant, "admin").await.expect("user").expect("the seeded admin");
    let mut direct = Vec::new();
    for q in &asked {
        let started = Instant::now();
        let scope = bot::server::tenants::Scope::All;
        bot::chat::ask::ask(&state, &tenant, &admin, scope, q, today, None, "bench").await.expect("ask");
        direct.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!("chat::ask in-process, {deals} deals, candle: {}", percentiles(direct, 1));
}
