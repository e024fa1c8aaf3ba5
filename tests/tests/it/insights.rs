//! Insights on data: the planted changes are found, and shuffled outcomes (no real change)
//! almost never produce one.

use engine::asof::View;
use engine::dataset::Dataset;
use engine::domain::Outcome;
use engine::generate::{DROPPING_INDUSTRY, SLIPPING_REP};
use engine::insights::reps::Trend;
use engine::insights::segments::Comparison;
use engine::insights::{InsightConfig, Insights, compute};
use engine::model::{TrainConfig, TrainedModel};
use engine::score::Scorer;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use tests::{date, generated_dataset, texts};

fn describe(insights: &Insights) -> String {
    let mut lines: Vec<String> = insights
        .segment_changes
        .iter()
        .map(|c| {
            format!(
                "change {:?} {}: {:.1}% -> {:.1}% (n {} / {}), q {:.2e}",
                c.comparison,
                c.label,
                100.0 * c.prior.rate,
                100.0 * c.current.rate,
                c.prior.closed,
                c.current.closed,
                c.q_value
            )
        })
        .collect();
    lines.extend(insights.high_performers.iter().map(|h| {
        format!(
            "performer {}: {:.1}% vs company {:.1}%, q {:.2e}",
            h.label,
            100.0 * h.rate.rate,
            100.0 * h.company_rate,
            h.q_value
        )
    }));
    lines.extend(insights.reps.iter().map(|r| {
        format!(
            "rep {}: {:?} risk {:?} vs {:?}, recent {:.1}% of {} vs {:.1}% of {}, momentum {:?}",
            r.rep,
            r.trend,
            r.avg_risk.map(|v| v.round()),
            r.team_avg_risk.map(|v| v.round()),
            100.0 * r.recent.rate,
            r.recent.closed,
            100.0 * r.history.rate,
            r.history.closed,
            r.momentum.map(|m| (m * 100.0).round() / 100.0)
        )
    }));
    lines.join("\n")
}

/// Loss probabilities by deal index from an additive model trained as of `as_of` (NaN for deals
/// that are not open then).
fn p_loss(dataset: &Dataset, as_of: chrono::NaiveDate) -> Vec<f64> {
    let view = View::new(dataset, Some(as_of));
    let model = TrainedModel::train(dataset, &view.closed, view.as_of, &TrainConfig::default()).expect("train");
    let texts = texts();
    let scorer = Scorer::new(&model, dataset, &view, &texts);
    let mut work = scorer.work();
    let mut p = vec![f64::NAN; dataset.deals.len()];
    for &i in &view.open {
        p[i] = scorer.quick(&dataset.deals[i], &mut work).p_loss;
    }
    p
}

#[test]
fn the_planted_segment_drop_is_found_and_no_rep_is_said_to_decline_by_mistake() {
    let as_of = date("2026-06-30");
    let dataset = generated_dataset(40_000, 3, as_of);
    let p = p_loss(&dataset, as_of);
    let insights = compute(&dataset, as_of, Some(&p), None, &InsightConfig::default());
    println!("{}", describe(&insights));
    println!("tested: {:?}", insights.tested);

    let drop = insights
        .segment_changes
        .iter()
        .find(|c| c.segment.values == [DROPPING_INDUSTRY] && c.comparison == Comparison::Rolling)
        .expect("the HealthTech drop over the last 90 days is reported");
    assert!(drop.change < -0.1, "{drop:?}");
    assert!(drop.interval[1] < 0.0, "the interval excludes no change: {:?}", drop.interval);
    assert!(drop.open_deals > 0 && drop.open_value > 0.0 && !drop.owners.is_empty());
    assert!(drop.losses as f64 > drop.expected_losses);
    // Anything else reported is far weaker evidence than the planted drop. (On this seed,
    // Enterprise also reports a 7-point fall at q ≈ 0.02, which the generator does not plant:
    // a false discovery the 5% rate allows for, or an artefact of the generator's redraws.)
    let others: Vec<_> =
        insights.segment_changes.iter().filter(|c| !c.segment.values.iter().any(|v| v == DROPPING_INDUSTRY)).collect();
    for c in &others {
        assert!(c.q_value > 1e6 * drop.q_value, "{} at q {} vs the planted {}", c.label, c.q_value, drop.q_value);
    }
    // The slipping rep is asserted at 100K deals (below): here rep_7 has about 55 deals closed
    // in the last 90 days, too few to tell its planted fall from chance in every seed.
    if let Some(rep) = insights.reps.iter().find(|r| r.rep == SLIPPING_REP) {
        println!("rep_7: {rep:?}");
    }
    let other_declines: Vec<&str> = insights
        .reps
        .iter()
        .filter(|r| r.trend == Some(Trend::Declining) && r.rep != SLIPPING_REP)
        .map(|r| r.rep.as_str())
        .collect();
    assert!(other_declines.is_empty(), "only rep_7 slips: {other_declines:?}");

    // The planted drop becomes an alert; nothing else as strong does.
    let alerts = engine::alerts::insight_alerts(&insights, &engine::alerts::InsightRules::default());
    let declines: Vec<&str> = alerts
        .iter()
        .filter(|a| a.kind == engine::alerts::AlertKind::SegmentDecline)
        .map(|a| a.subject.as_str())
        .collect();
    assert!(declines.iter().any(|s| s.starts_with(&format!("{DROPPING_INDUSTRY}|"))), "{declines:?}");
    assert!(alerts.iter().all(|a| a.kind != engine::alerts::AlertKind::RepPerformance || a.rep.is_some()));

    let health = insights.health.as_ref().expect("a health index");
    assert!((0.0..=100.0).contains(&health.index) && health.components.len() == 5, "{health:?}");
    assert!(health.risk_adjusted_value.is_some_and(|r| r < health.pipeline_value));
}

/// The slipping rep (rep_7: −1.3 log-odds on deals closed in the last 120 days) is found at the
/// reference size, 100K deals, where a rep closes about 110–300 deals in 90 days. Measured over
/// seeds 1–6 while writing this: found in all six at 100K, in three of six at 40K (where rep_7
/// closes about 50 deals in 90 days). False declines of other reps are what the 5% false
/// discovery rate allows: at most one in these runs.
#[test]
fn the_slipping_rep_is_found_on_100k_deals() {
    let as_of = date("2026-06-30");
    let mut false_declines = Vec::new();
    for seed in 1..=3 {
        let dataset = generated_dataset(100_000, seed, as_of);
        let insights = compute(&dataset, as_of, None, None, &InsightConfig::default());
        let rep = insights.reps.iter().find(|r| r.rep == SLIPPING_REP);
        println!("seed {seed}: {rep:?}");
        let rep = rep.unwrap_or_else(|| panic!("seed {seed}: rep_7 is not reported:\n{}", describe(&insights)));
        assert_eq!(rep.trend, Some(Trend::Declining), "seed {seed}: {rep:?}");
        // README: found in each of seeds 1–3 at q ≤ 0.005.
        assert!(rep.q_value.is_some_and(|q| q <= 0.005), "{rep:?}");
        assert!(rep.momentum.is_some_and(|m| m < 0.8), "winning at under 80% of the usual rate: {rep:?}");
        assert!(rep.recent.rate < rep.history.rate - 0.1, "{rep:?}");
        false_declines.extend(
            insights
                .reps
                .iter()
                .filter(|r| r.trend == Some(Trend::Declining) && r.rep != SLIPPING_REP)
                .map(|r| format!("seed {seed}: {}", r.rep)),
        );
        // The rep's decline becomes an alert for their manager.
        let alerts = engine::alerts::insight_alerts(&insights, &engine::alerts::InsightRules::default());
        assert!(
            alerts
                .iter()
                .any(|a| a.kind == engine::alerts::AlertKind::RepPerformance && a.rep.as_deref() == Some(SLIPPING_REP)),
            "seed {seed}: no rep alert for rep_7"
        );
    }
    assert!(false_declines.len() <= 1, "other reps said to decline: {false_declines:?}");
}

/// The same deals with their outcomes shuffled among the closed ones: no segment's win rate
/// really changes, so a report of one is a false alarm.
#[test]
fn shuffled_outcomes_report_a_segment_change_in_fewer_than_one_run_in_ten() {
    let as_of = date("2026-06-30");
    let runs = 40;
    let (mut with_change, mut with_performer, mut with_rep) = (0, 0, 0);
    for seed in 0..runs {
        let mut dataset = generated_dataset(10_000, 100 + seed, as_of);
        let view = View::new(&dataset, Some(as_of));
        let mut outcomes: Vec<Outcome> = view.closed.iter().map(|&i| dataset.deals[i].outcome).collect();
        outcomes.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        for (&i, o) in view.closed.iter().zip(outcomes) {
            dataset.deals[i].outcome = o;
        }
        let insights = compute(&dataset, as_of, None, None, &InsightConfig::default());
        if !insights.segment_changes.is_empty() {
            println!("run {seed}: {}", describe(&insights));
            with_change += 1;
        }
        with_performer += usize::from(!insights.high_performers.is_empty());
        with_rep += usize::from(insights.reps.iter().any(|r| r.trend.is_some()));
        assert!(insights.tested.segment_changes > 100, "{:?}", insights.tested);
    }
    println!(
        "of {runs} shuffled runs: {with_change} report a segment change, {with_performer} a high performer, {with_rep} a rep trend"
    );
    assert!(with_change * 10 < runs as usize, "{with_change} of {runs}");
    assert!(with_performer * 10 < runs as usize, "{with_performer} of {runs}");
    assert!(with_rep * 10 < runs as usize, "{with_rep} of {runs}");
}
