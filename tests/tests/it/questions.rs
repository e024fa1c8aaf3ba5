//! Plain-English questions: our labelled sets in `tests/fixtures/questions/` (251 questions in
//! `labelled.jsonl`, 186 in `holdout.jsonl`, 166 in `fresh.jsonl`, each written apart from the
//! parser, over the demo tenant's names) read with the intent and every slot right, per backend; the shared
//! development examples as a check we do not tune to.

use std::collections::BTreeMap;
use std::path::Path;

use engine::question::intent::{Classifier, Embedder, Examples, Lexical};
use engine::question::{Vocabulary, understand};
use serde_json::{Value, json};

/// What `dealwatch demo` stores: 5,000 messy generated deals, seed 42.
fn demo_vocabulary() -> Vocabulary {
    let as_of = tests::date("2026-12-03");
    let (csv, _) = tests::generated_csv(5000, 42, as_of, true, false);
    Vocabulary::of(&tests::ingest_generated(&csv, as_of).dataset)
}

fn examples() -> Examples {
    let text = std::fs::read_to_string(tests::repo_root().join("prompts/questions/examples.toml")).expect("examples");
    Examples::from_toml(&text).expect("the bundled examples parse")
}

/// The slots a labelled line expects, every key present (absent ones empty).
fn expected(line: &Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("intent".into(), line["intent"].clone());
    out.insert("filters".into(), line.get("filters").cloned().unwrap_or(json!({})));
    for key in
        ["period", "amount_min", "amount_max", "risk_category", "limit", "deal", "dimension", "metric", "outcome"]
    {
        let v = line.get(key).cloned().unwrap_or(Value::Null);
        // Amounts compare as numbers, whatever their JSON spelling.
        let v = if key.starts_with("amount") { v.as_f64().map_or(Value::Null, |f| json!(f)) } else { v };
        out.insert(key.into(), v);
    }
    Value::Object(out)
}

#[derive(Default)]
struct Tally {
    n: usize,
    intents: usize,
    all_slots: usize,
    per_intent: BTreeMap<String, (usize, usize)>,
    misses: Vec<String>,
    /// Readings the bot would ask back about instead of answering, and how many of them were
    /// right anyway.
    unsure: usize,
    unsure_right: usize,
}

fn evaluate(path: &Path, vocab: &Vocabulary, classifier: &Classifier) -> Tally {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut tally = Tally::default();
    for (k, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let line: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), k + 1));
        let question = line["q"].as_str().expect("q");
        let as_of = tests::date(line["as_of"].as_str().expect("as_of"));
        let reading = understand(question, vocab, as_of, classifier).expect("read");
        // The reading, in the same shape.
        let got = expected(&serde_json::to_value(&reading.query).expect("json"));
        let want = expected(&line);
        tally.n += 1;
        let entry = tally.per_intent.entry(want["intent"].as_str().unwrap_or_default().to_owned()).or_default();
        entry.0 += 1;
        if got["intent"] == want["intent"] {
            tally.intents += 1;
            entry.1 += 1;
        }
        if reading.unsure() {
            tally.unsure += 1;
            tally.unsure_right += usize::from(got["intent"] == want["intent"]);
        }
        if got == want {
            tally.all_slots += 1;
        } else {
            let differs: Vec<String> = want
                .as_object()
                .expect("object")
                .iter()
                .filter(|(key, v)| &got[key.as_str()] != *v)
                .map(|(key, v)| format!("{key}: want {v}, got {}", got[key.as_str()]))
                .collect();
            tally.misses.push(format!("{question:?} ({}) — {}", reading.masked, differs.join("; ")));
        }
    }
    tally
}

fn report(name: &str, backend: &str, t: &Tally) -> (f64, f64) {
    let intents = t.intents as f64 / t.n as f64;
    let slots = t.all_slots as f64 / t.n as f64;
    println!(
        "{name} [{backend}]: {} questions, intent {:.1}%, every slot {:.1}%; {} asked back ({} of them read right)",
        t.n,
        100.0 * intents,
        100.0 * slots,
        t.unsure,
        t.unsure_right
    );
    for (intent, (n, right)) in &t.per_intent {
        println!("  {intent:<17} {right}/{n}");
    }
    for miss in &t.misses {
        println!("  miss: {miss}");
    }
    (intents, slots)
}

/// The backends this machine can run: the lexical one always, candle when the model is
/// installed (`scripts/fetch-model.sh`; CI sets `DEALWATCH_REQUIRE_MODEL=1`, and then a missing
/// model fails instead of being skipped).
fn backends(examples: &Examples) -> Vec<Box<dyn Embedder>> {
    let mut out: Vec<Box<dyn Embedder>> = vec![Box::new(Lexical::for_examples(examples))];
    match candle() {
        Some(model) => out.push(model),
        None => eprintln!("notice: the candle backend is skipped: no model (scripts/fetch-model.sh installs it)"),
    }
    #[cfg(feature = "rust-bert")]
    out.push(rust_bert());
    out
}

/// Where `dealwatch` itself looks for the model (and `scripts/fetch-model.sh` installs it).
fn model_dir() -> std::path::PathBuf {
    bot::chat::embed::default_model_dir()
}

/// The rust-bert backend, in a build with the feature: it must load.
#[cfg(feature = "rust-bert")]
fn rust_bert() -> Box<dyn Embedder> {
    static MODEL: std::sync::OnceLock<std::sync::Arc<bot::chat::embed::bert::RustBert>> = std::sync::OnceLock::new();
    struct Shared(std::sync::Arc<bot::chat::embed::bert::RustBert>);
    impl Embedder for Shared {
        fn name(&self) -> &str {
            self.0.name()
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
            self.0.embed(texts)
        }
    }
    let model = MODEL.get_or_init(|| {
        let loaded = bot::chat::embed::bert::RustBert::load(&model_dir());
        std::sync::Arc::new(loaded.unwrap_or_else(|e| panic!("the rust-bert backend does not load: {e:#}")))
    });
    Box::new(Shared(model.clone()))
}

/// Both embedding backends read every question of every set the same way.
#[cfg(feature = "rust-bert")]
#[test]
fn the_candle_and_rust_bert_backends_read_every_question_alike() {
    let vocab = demo_vocabulary();
    let examples = examples();
    let candle = Classifier::new(candle().expect("the candle model"), &examples).expect("candle");
    let bert = Classifier::new(rust_bert(), &examples).expect("rust-bert");
    let mut compared = 0;
    let mut differ = Vec::new();
    for file in ["labelled.jsonl", "holdout.jsonl", "fresh.jsonl"] {
        let text =
            std::fs::read_to_string(tests::repo_root().join("tests/fixtures/questions").join(file)).expect("set");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let line: Value = serde_json::from_str(line).expect("json");
            let q = line["q"].as_str().expect("q");
            let as_of = tests::date(line["as_of"].as_str().expect("as_of"));
            let a = understand(q, &vocab, as_of, &candle).expect("candle reads");
            let b = understand(q, &vocab, as_of, &bert).expect("rust-bert reads");
            compared += 1;
            if a.query != b.query {
                differ.push(format!("{q}: candle {:?}, rust-bert {:?}", a.query.intent, b.query.intent));
            }
            let gap = (a.confidence - b.confidence).abs();
            assert!(gap < 1e-3, "{q}: confidence {} against {}", a.confidence, b.confidence);
        }
    }
    println!("{compared} questions read by both backends; {} differ", differ.len());
    assert!(differ.is_empty(), "{differ:#?}");
}

/// The installed model, shared by every test of this binary.
fn candle() -> Option<Box<dyn Embedder>> {
    let dir = model_dir();
    let required = std::env::var("DEALWATCH_REQUIRE_MODEL").is_ok_and(|v| v == "1");
    match bot::chat::embed::shared(&dir) {
        Ok(model) => Some(model),
        Err(e) if required => panic!("DEALWATCH_REQUIRE_MODEL=1 but the model does not load: {e:#}"),
        Err(_) => None,
    }
}

#[test]
fn our_labelled_questions_are_read_with_their_intent_and_every_slot() {
    let vocab = demo_vocabulary();
    let examples = examples();
    let path = tests::repo_root().join("tests/fixtures/questions/labelled.jsonl");
    for embedder in backends(&examples) {
        let backend = embedder.name().to_owned();
        let classifier = Classifier::new(embedder, &examples).expect("classifier");
        let tally = evaluate(&path, &vocab, &classifier);
        assert!(tally.n >= 200, "the labelled set has {} questions", tally.n);
        let (intents, slots) = report("labelled", &backend, &tally);
        // README reports 98.8–99.2% for both: a drop of five points fails.
        assert!(intents >= 0.96, "{backend}: intents {:.1}% < 96%", 100.0 * intents);
        assert!(slots >= 0.95, "{backend}: every slot right {:.1}% < 95%", 100.0 * slots);
    }
}

/// The labelled set at `file` read by every backend, with at least `bars` (intents, every
/// slot) right: pinned a few points under what README reports, so a five-point drop fails.
fn meets_the_bars(file: &str, bars: (f64, f64)) {
    let vocab = demo_vocabulary();
    let examples = examples();
    let path = tests::repo_root().join("tests/fixtures/questions").join(file);
    for embedder in backends(&examples) {
        let backend = embedder.name().to_owned();
        let classifier = Classifier::new(embedder, &examples).expect("classifier");
        let tally = evaluate(&path, &vocab, &classifier);
        let (intents, slots) = report(file, &backend, &tally);
        assert!(intents >= bars.0, "{file} {backend}: intents {:.1}% < {:.0}%", 100.0 * intents, 100.0 * bars.0);
        assert!(slots >= bars.1, "{file} {backend}: every slot right {:.1}% < {:.0}%", 100.0 * slots, 100.0 * bars.1);
    }
}

/// A second set, written apart from the first (its misses were looked at once, after which
/// the parser's typo and comparison handling was generalised).
#[test]
fn held_out_questions_are_read_as_well() {
    // README: 97.3–97.8% for both.
    meets_the_bars("holdout.jsonl", (0.94, 0.94));
}

/// A third set, written last by someone who saw neither the parser nor the other sets, and
/// measured once the parser was frozen: the honest figure for unseen questions.
#[test]
fn fresh_questions_are_read_as_well() {
    // README: 96.4% intents, 95.2% every slot.
    meets_the_bars("fresh.jsonl", (0.93, 0.92));
}

#[test]
fn the_shared_development_questions_are_read_too() {
    let base = std::env::var_os("DEALWATCH_SHARED_DIR")
        .map_or_else(|| tests::repo_root().join("../shared"), std::path::PathBuf::from);
    let path = base.join("eval/questions.dev.jsonl");
    if !path.is_file() {
        let required = std::env::var("DEALWATCH_REQUIRE_SHARED").is_ok_and(|v| v == "1");
        assert!(!required, "{} is required (DEALWATCH_REQUIRE_SHARED=1) but missing", path.display());
        eprintln!("notice: skipping, {} is not present", path.display());
        return;
    }
    let vocab = demo_vocabulary();
    let examples = examples();
    for embedder in backends(&examples) {
        let backend = embedder.name().to_owned();
        let classifier = Classifier::new(embedder, &examples).expect("classifier");
        let tally = evaluate(&path, &vocab, &classifier);
        let (intents, slots) = report("shared dev", &backend, &tally);
        // README: all 20 right on every backend; one miss is five points.
        assert!(intents >= 0.96 && slots >= 0.96, "{backend}: intents {intents:.2}, slots {slots:.2}");
    }
}

/// `dealwatch ask` on the demo tenant, through the binary: every intent answered from the
/// stored deals, the figures right, the reading shown, roles respected.
#[test]
fn dealwatch_ask_answers_every_intent_from_the_demo_tenant() {
    let dir = tests::scratch();
    let db = format!("sqlite://{}", dir.path().join("ask.db").display());
    let as_of = "2026-06-30";
    tests::run_ok(&["--database", &db, "--as-of", as_of, "demo"]);
    let ask = |user: Option<&str>, q: &str| -> Value {
        let mut args = vec!["--database", db.as_str(), "--as-of", as_of, "--format", "json", "ask", "--tenant", "demo"];
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        args.push(q);
        let out = tests::run_ok(&args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{q}: not JSON ({e}):\n{out}"))
    };

    // The win rate, recomputed here from the same generated export.
    let got = ask(None, "what's our win rate in EdTech this quarter?");
    for key in
        ["intent", "filters", "period", "amount_min", "amount_max", "risk_category", "limit", "deal", "dimension"]
    {
        assert!(got.get(key).is_some(), "{key} missing: {got}");
    }
    for key in ["metric", "outcome", "confidence", "answer"] {
        assert!(got.get(key).is_some(), "{key} missing: {got}");
    }
    assert_eq!(got["intent"], "win_rate");
    assert_eq!(got["filters"], json!({ "industry": "EdTech" }));
    assert_eq!(got["period"], json!({ "from": "2026-04-01", "to": "2026-06-30" }));
    assert!(got["confidence"].as_f64().is_some_and(|c| c > 0.3), "{got}");
    let day = tests::date(as_of);
    let (csv, _) = tests::generated_csv(5000, 42, day, true, false);
    let data = tests::ingest_generated(&csv, day).dataset;
    let industry = data.schema.categorical.iter().position(|c| c.name == "industry").expect("industry");
    let (mut won, mut closed) = (0, 0);
    for d in &data.deals {
        let in_q2 = d.closed.is_some_and(|c| c >= tests::date("2026-04-01") && c <= day);
        let status = engine::asof::status(d, Some(day));
        if in_q2 && data.cat_name(industry, d.cats[industry]) == Some("EdTech") && status.is_closed() {
            closed += 1;
            won += usize::from(status == engine::asof::Status::Won);
        }
    }
    assert!(closed > 0);
    assert_eq!(got["data"]["figure"]["won"], json!(won), "{got}");
    assert_eq!(
        got["data"]["figure"]["won"].as_u64().unwrap() + got["data"]["figure"]["lost"].as_u64().unwrap(),
        closed as u64
    );
    let answer = got["answer"].as_str().unwrap();
    assert!(answer.contains(&format!("{won} won of {closed} closed")), "{answer}");
    assert!(
        got["understood"]
            .as_str()
            .unwrap()
            .starts_with("Understood: win rate · industry = EdTech · 2026-04-01 … 2026-06-30")
    );

    // Every intent gets an answer in words from its template, not an error.
    for (q, intent, needle) in [
        ("which deals over $50k are at risk for rep_15?", "at_risk_deals", "at critical or high risk"),
        ("how is the APAC pipeline looking?", "pipeline_summary", "risk-adjusted"),
        ("which lead source converts best?", "compare_segments", "Win rate by lead source"),
        ("how has the FinTech win rate changed over the last year?", "trend", "by quarter"),
        ("how is rep_5 doing?", "rep_performance", "rep_5:"),
        ("what's the average sales cycle for Enterprise deals?", "cycle_time", "Median sales cycle"),
        ("how many deals did we win in Q1 2026?", "deal_count", "deals won 2026-01-01"),
        ("what revenue should we expect to close this quarter?", "forecast", "Expected bookings"),
        ("help", "help", "plain English"),
    ] {
        let got = ask(None, q);
        assert_eq!(got["intent"], intent, "{q}: {got}");
        let answer = got["answer"].as_str().unwrap_or_default();
        assert!(answer.contains(needle), "{q}: {answer}");
    }
    // A deal by its id: its risk card.
    let open = data
        .deals
        .iter()
        .find(|d| engine::asof::status(d, Some(day)) == engine::asof::Status::Open)
        .expect("an open deal");
    let got = ask(None, &format!("why is {} risky?", open.id));
    assert_eq!((got["intent"].as_str(), got["deal"].as_str()), (Some("deal_risk"), Some(open.id.as_str())));
    assert!(got["answer"].as_str().unwrap().contains("/100"), "{got}");
    assert_eq!(got["data"]["deal_id"], json!(open.id.as_str()));

    // An unknown deal and an unknown rep are said so, with nothing made up.
    let got = ask(None, "why is D999999 risky?");
    assert_eq!(got["deal"], "D999999");
    assert!(got["answer"].as_str().unwrap().contains("No open deal called D999999"), "{got}");
    let got = ask(None, "win rate for rep_99");
    assert!(got["answer"].as_str().unwrap().contains("no deal has rep \"rep_99\""), "{got}");

    // A rep sees their own figures and is refused another's.
    let mine = ask(Some("rep_3"), "which deals are at risk?");
    let listed = mine["data"]["deals"].as_array().expect("deals");
    assert!(listed.iter().all(|d| d["owner"] == "rep_3"), "{mine}");
    let refused = ask(Some("rep_3"), "how is rep_4 doing?");
    assert!(refused["answer"].as_str().unwrap().contains("don't have access"), "{refused}");

    // Gibberish is asked back with the likely readings, not answered.
    let unsure = ask(None, "flibber wobble gronk");
    assert!(unsure["options"].as_array().is_some_and(|o| o.len() >= 2), "{unsure}");
    assert!(unsure["answer"].as_str().unwrap().contains("not sure"), "{unsure}");
}

/// `scripts/fetch-model.sh` installs the model where `dealwatch` looks for it, wherever it is
/// started from: `dealwatch ask` run outside the repository reads with the model, not the
/// lexical fallback.
#[test]
fn the_installed_model_is_found_from_any_working_directory() {
    let required = std::env::var("DEALWATCH_REQUIRE_MODEL").is_ok_and(|v| v == "1");
    if !bot::chat::embed::default_model_dir().join("model.safetensors").is_file() {
        assert!(!required, "DEALWATCH_REQUIRE_MODEL=1 but no model in {}", model_dir().display());
        eprintln!("notice: skipping, scripts/fetch-model.sh has not installed the model");
        return;
    }
    let dir = tests::scratch();
    let db = format!("sqlite://{}", dir.path().join("anywhere.db").display());
    tests::run_ok(&["--database", &db, "--as-of", "2026-06-30", "demo"]);
    let out = tests::dealwatch()
        .current_dir(dir.path())
        .args(["--database", &db, "--as-of", "2026-06-30", "--format", "json", "ask", "--tenant", "demo"])
        .arg("what's our win rate this quarter?")
        .output()
        .expect("run dealwatch ask");
    assert!(out.status.success(), "{}", tests::text(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let backend = got["backend"].as_str().unwrap_or_default();
    assert!(backend.contains("all-MiniLM-L6-v2"), "read with {backend:?} from {}: {got}", dir.path().display());
}
