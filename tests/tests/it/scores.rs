//! What a score says: exact, ordered, honest about thin data.

use engine::asof::View;
use engine::domain::{RiskCategory, risk_score};
use engine::ingest::{Context, ingest};
use engine::mapping::Mapping;
use engine::model::{ModelKind, TrainConfig, TrainedModel};
use engine::score::RiskScore;
use tests::{GENERATED_MAPPING, date, generated_csv, generated_dataset, ingest_generated, score_open};

#[test]
fn every_score_is_its_base_risk_plus_its_factors_exactly() {
    let as_of = date("2026-06-30");
    let dataset = generated_dataset(4_000, 21, as_of);
    for kind in [ModelKind::Additive, ModelKind::Logistic, ModelKind::SegmentRates] {
        let (_, scores) = score_open(&dataset, as_of, kind);
        assert!(scores.len() > 100);
        for s in &scores {
            let total = s.base_risk + s.contributions.iter().map(|c| c.impact).sum::<f64>();
            let p_loss = 1.0 - s.win_probability;
            assert!((total / 100.0 - p_loss).abs() < 1e-3, "{kind:?} {}: {total} vs {p_loss}", s.deal_id);
            assert_eq!(s.risk_score, risk_score(total / 100.0), "{kind:?} {}", s.deal_id);
            assert_eq!(s.risk_category, RiskCategory::from_score(s.risk_score));
            assert!(s.risk_factors.len() <= 3 && s.positive_factors.len() <= 2);
            assert!(s.risk_factors.iter().all(|f| f.impact > 0.0), "risk factors raise the risk");
            assert!(s.positive_factors.iter().all(|f| f.impact < 0.0), "positive factors lower it");
            assert!(s.risk_factors.windows(2).all(|w| w[0].impact >= w[1].impact), "largest first");
            assert!(
                s.risk_factors
                    .iter()
                    .chain(&s.positive_factors)
                    .all(|f| !f.description.is_empty() && !f.description.contains('{'))
            );
            assert!((0.0..=1.0).contains(&s.confidence));
            assert!(
                s.recommendations.len() <= 4 && s.recommendations.windows(2).all(|w| w[0].priority <= w[1].priority)
            );
            assert!(
                s.similar_deals.len() <= 3
                    && s.similar_deals.iter().all(|d| d.outcome == "won" && d.deal_id != s.deal_id)
            );
        }
    }
}

#[test]
fn segment_factors_read_the_same_way_as_their_impact() {
    // A segment factor that raises the risk must describe a segment that wins less than average.
    let as_of = date("2026-06-30");
    let (_, scores) = score_open(&generated_dataset(8_000, 4, as_of), as_of, ModelKind::Additive);
    let mut checked = 0;
    for f in scores.iter().flat_map(|s| s.risk_factors.iter().chain(&s.positive_factors)) {
        if f.variant != "segment" && f.variant != "owner" {
            continue;
        }
        // "X deals win 39% vs 45% overall"
        let numbers: Vec<f64> = f.description.split(['%', ' ']).filter_map(|w| w.parse().ok()).collect();
        let (rate, overall) = (numbers[numbers.len() - 2], numbers[numbers.len() - 1]);
        if f.impact > 0.0 {
            assert!(rate <= overall, "{}: +{} pts", f.description, f.impact);
        } else {
            assert!(rate >= overall, "{}: {} pts", f.description, f.impact);
        }
        checked += 1;
    }
    assert!(checked > 50, "checked {checked} segment factors");
}

#[test]
fn the_riskiest_deals_carry_the_planted_warning_signs() {
    // In generated data a long stall in one stage is the strongest warning sign.
    let as_of = date("2026-06-30");
    let (_, mut scores) = score_open(&generated_dataset(8_000, 9, as_of), as_of, ModelKind::Additive);
    scores.sort_by_key(|s| std::cmp::Reverse(s.risk_score));
    let top: Vec<&RiskScore> = scores.iter().take(20).collect();
    let stalled =
        top.iter().filter(|s| s.risk_factors.first().is_some_and(|f| f.variant == "progress_stalled")).count();
    assert!(stalled >= 10, "{stalled} of the 20 riskiest lead with a stall");
    for s in &top {
        assert!(s.risk_category >= RiskCategory::High);
        assert!(
            s.recommendations.iter().any(|r| r.rule == "escalate_critical") || s.risk_category == RiskCategory::High
        );
    }
}

#[test]
fn with_few_closed_deals_scores_come_from_segment_rates_and_say_so() {
    let as_of = date("2026-06-30");
    // 50 deals over two years: about 30 closed by the replay date.
    let dataset = generated_dataset(50, 2, as_of);
    let replay = date("2025-12-31");
    let view = View::new(&dataset, Some(replay));
    assert!(view.closed.len() < engine::model::COLD_START_DEALS, "{} closed", view.closed.len());
    let (model, scores) = score_open(&dataset, replay, ModelKind::Additive);
    assert!(model.cold_start);
    assert_eq!(model.kind, ModelKind::SegmentRates);
    assert!(model.warnings.iter().any(|w| w.contains("cold start")), "{:?}", model.warnings);
    assert!(!scores.is_empty());
    for s in &scores {
        assert!(s.warnings.iter().any(|w| w.contains("cold start")));
        assert!(s.confidence < 0.8, "thin data, low confidence: {}", s.confidence);
    }
    // No closed deals at all still scores (at the uninformed rate) instead of failing.
    let first_close =
        dataset.deals.iter().filter(|d| d.outcome.is_closed()).filter_map(|d| d.closed).min().expect("closed deals");
    let (model, scores) = score_open(&dataset, first_close - chrono::Duration::days(1), ModelKind::Additive);
    assert!(model.cold_start && model.n_train == 0);
    assert!(scores.iter().all(|s| s.confidence == 0.0));
}

#[test]
fn an_export_without_dates_still_trains_scores_and_evaluates() {
    let as_of = date("2026-06-30");
    let (csv, _) = generated_csv(3_000, 8, as_of, false, false);
    let mapping = GENERATED_MAPPING
        .replace("created = \"created_date\"", "")
        .replace("closed = \"closed_date\"    # close date of won and lost deals; blank while open", "");
    let mapping = Mapping::from_toml(&mapping).expect("mapping without dates");
    assert!(!mapping.has_dates());
    let dataset = ingest(&csv[..], &mapping, Vec::new(), Context { today: as_of }).expect("ingest").dataset;
    let (model, scores) = score_open(&dataset, as_of, ModelKind::Additive);
    assert!(!model.features.iter().any(|f| f.starts_with("age") || f == "created_q4"), "{:?}", model.features);
    assert!(model.warnings.iter().any(|w| w.contains("no dates")));
    assert!(!scores.is_empty());
    let config = engine::eval::EvalConfig {
        split: engine::asof::SplitKind::Time,
        test_fraction: 0.25,
        train: TrainConfig::default(),
    };
    let report = engine::eval::evaluate(&dataset, Some(as_of), &config).expect("eval falls back to a random split");
    assert_eq!(report.split, engine::asof::SplitKind::Random);
    assert!(report.warnings.iter().any(|w| w.contains("random")));
}

#[test]
fn columns_known_only_after_close_never_become_features() {
    let as_of = date("2026-06-30");
    let ingested = ingest_generated(&generated_csv(3_000, 6, as_of, false, false).0, as_of);
    let (model, _) = score_open(&ingested.dataset, as_of, ModelKind::Additive);
    for after in ["loss_reason", "sales_cycle_days", "closed_date"] {
        assert!(!model.features.iter().any(|f| f.contains(after)), "{after} in {:?}", model.features);
    }
    // Declaring an after-close column as a feature is refused when the mapping loads.
    let leaky = GENERATED_MAPPING
        .replace("numeric = [\"contacts\", \"discount_pct\"]", "numeric = [\"contacts\", \"sales_cycle_days\"]");
    let err = Mapping::from_toml(&leaky).expect_err("refused").to_string();
    assert!(err.contains("sales_cycle_days") && err.contains("after_close"), "{err}");
}

#[test]
fn a_tiny_segment_does_not_swing_the_score() {
    // Three deals, all won, in a brand-new industry: its rate is shrunk close to the overall.
    let as_of = date("2026-06-30");
    let mut dataset = generated_dataset(3_000, 12, as_of);
    let industry = dataset.schema.column("industry").expect("industry");
    let tiny = dataset.schema.categorical[industry].vocab.intern("Space Mining");
    let mut moved = 0;
    for deal in dataset.deals.iter_mut().filter(|d| d.outcome == engine::domain::Outcome::Won).take(3) {
        deal.cats[industry] = tiny;
        moved += 1;
    }
    assert_eq!(moved, 3);
    let view = View::new(&dataset, Some(as_of));
    let model = TrainedModel::train(&dataset, &view.closed, Some(as_of), &TrainConfig::default()).expect("train");
    let stats = model.encoder.column("industry").expect("industry stats");
    let count = stats.values["Space Mining"];
    let rate = stats.rate(count, model.encoder.base_rate());
    assert_eq!(count.rate(), Some(1.0), "raw: three of three won");
    assert!(rate < model.encoder.base_rate() + 0.1, "shrunk rate {rate} vs overall {}", model.encoder.base_rate());
}

/// Similar won deals are similar: mostly of the deal's own primary segment, near it in size,
/// won before the as-of date, listed most similar first, and far nearer in size than won deals
/// taken at random.
#[test]
fn similar_deals_share_the_segment_and_the_size() {
    let as_of = date("2026-06-30");
    let dataset = generated_dataset(6_000, 31, as_of);
    let (_, scores) = score_open(&dataset, as_of, ModelKind::Additive);
    let primary = dataset.schema.primary_segment().expect("a primary segment");
    let segment =
        |id: &str| dataset.find(id).and_then(|d| dataset.cat_name(primary, d.cats[primary])).map(str::to_owned);
    let (mut pairs, mut same_segment, mut log_ratios) = (0usize, 0usize, Vec::new());
    for s in scores.iter().take(300) {
        let sims: Vec<f64> = s.similar_deals.iter().map(|d| d.similarity).collect();
        assert!(sims.windows(2).all(|w| w[0] >= w[1]), "{}: most similar first: {sims:?}", s.deal_id);
        for d in &s.similar_deals {
            let won = dataset.find(&d.deal_id).expect("a deal of the data");
            assert!(won.closed.is_some_and(|c| c <= as_of), "{} won before the as-of date", d.deal_id);
            pairs += 1;
            same_segment += usize::from(segment(&d.deal_id) == segment(&s.deal_id));
            if let (Some(a), Some(b)) = (s.amount, d.amount) {
                log_ratios.push((b / a).ln().abs());
            }
        }
    }
    assert!(pairs > 500, "{pairs} similar deals");
    let share = same_segment as f64 / pairs as f64;
    assert!(share >= 0.9, "{:.0}% share the primary segment", 100.0 * share);
    log_ratios.sort_by(f64::total_cmp);
    let median = log_ratios[log_ratios.len() / 2];
    // Within the ±30% size band (ln 1.3 ≈ 0.26) for the median pair.
    assert!(median <= 1.3f64.ln(), "median size ratio e^{median:.2}");
    // Won deals at random are far apart in size (amounts span orders of magnitude).
    let view = View::new(&dataset, Some(as_of));
    let won: Vec<f64> = view
        .closed
        .iter()
        .filter(|&&i| dataset.deals[i].outcome == engine::domain::Outcome::Won)
        .filter_map(|&i| dataset.deals[i].amount)
        .map(|a| a.get())
        .collect();
    let mut random: Vec<f64> = won.windows(2).map(|w| (w[1] / w[0]).ln().abs()).collect();
    random.sort_by(f64::total_cmp);
    assert!(median * 3.0 < random[random.len() / 2], "similar {median:.2} vs random {:.2}", random[random.len() / 2]);
}
