//! As-of replay: what happens after the as-of date cannot change a score on that date.

use engine::asof::View;
use engine::dataset::Dataset;
use engine::domain::Outcome;
use engine::model::{ModelKind, TrainConfig, TrainedModel};
use tests::{date, generated_dataset, score_open};

/// Every open deal's full risk card as JSON, and the model's version.
fn cards(dataset: &Dataset, as_of: chrono::NaiveDate, kind: ModelKind) -> (String, Vec<String>) {
    let (model, scores) = score_open(dataset, as_of, kind);
    (model.version, scores.iter().map(|s| serde_json::to_string(s).expect("json")).collect())
}

#[test]
fn changing_what_happened_after_the_as_of_date_changes_no_score_on_it() {
    let data_as_of = date("2026-06-30");
    let replay = date("2026-02-28");
    let original = generated_dataset(6_000, 11, data_as_of);

    // Rewrite history after the replay date: flip every later outcome, move its close date,
    // and relabel its final stage.
    let mut rewritten = original.clone();
    let closed_won = rewritten.schema.stages.lookup("Closed Won").expect("stage");
    let closed_lost = rewritten.schema.stages.lookup("Closed Lost").expect("stage");
    let mut changed = 0;
    for deal in &mut rewritten.deals {
        if deal.outcome.is_closed() && deal.closed.is_some_and(|c| c > replay) {
            deal.outcome = if deal.outcome == Outcome::Won { Outcome::Lost } else { Outcome::Won };
            deal.closed = deal.closed.map(|c| c + chrono::Duration::days(17));
            deal.stage = if deal.stage == closed_won { closed_lost } else { closed_won };
            changed += 1;
        }
    }
    assert!(changed > 500, "the rewrite must touch many deals, touched {changed}");

    for kind in [ModelKind::Additive, ModelKind::Logistic, ModelKind::SegmentRates] {
        let (version_a, cards_a) = cards(&original, replay, kind);
        let (version_b, cards_b) = cards(&rewritten, replay, kind);
        assert!(!cards_a.is_empty(), "deals are open on the replay date");
        assert_eq!(version_a, version_b, "{kind:?}: the model trained as of the replay date is the same");
        assert_eq!(cards_a, cards_b, "{kind:?}: every open deal's card is identical");
    }
    // And the rewrite does matter when the as-of date is after it.
    let (later_a, _) = cards(&original, data_as_of, ModelKind::Additive);
    let (later_b, _) = cards(&rewritten, data_as_of, ModelKind::Additive);
    assert_ne!(later_a, later_b, "the test would see a change if one leaked");
}

#[test]
fn the_same_input_gives_the_same_model_and_scores() {
    let as_of = date("2026-06-30");
    let dataset = generated_dataset(3_000, 5, as_of);
    let a = cards(&dataset, as_of, ModelKind::Additive);
    let b = cards(&generated_dataset(3_000, 5, as_of), as_of, ModelKind::Additive);
    assert_eq!(a, b);
    // Threads change the schedule, never the result.
    let view = View::new(&dataset, Some(as_of));
    let train = |threads| {
        let config = TrainConfig { threads, ..TrainConfig::default() };
        TrainedModel::train(&dataset, &view.closed, Some(as_of), &config).expect("train").to_json().expect("json")
    };
    assert_eq!(train(1), train(3));
}

#[test]
fn deals_created_after_the_as_of_date_do_not_exist_yet() {
    let dataset = generated_dataset(2_000, 3, date("2026-06-30"));
    let replay = date("2025-12-31");
    let view = View::new(&dataset, Some(replay));
    let known = view.open.len() + view.closed.len();
    let created_later = dataset.deals.iter().filter(|d| d.created.is_some_and(|c| c > replay)).count();
    assert!(created_later > 0);
    assert_eq!(known + created_later, dataset.deals.len());
    for &i in &view.closed {
        assert!(dataset.deals[i].closed.is_some_and(|c| c <= replay), "closed on the replay date means closed by it");
    }
}
