//! Human-readable renderings for the terminal: data quality, model quality, pipeline summary and
//! the risk card. JSON output is the engine's types serialised as they are.

use std::fmt::Write as _;

use engine::domain::RiskCategory;
use engine::eval::EvalReport;
use engine::ingest::{QualityReport, Severity};
use engine::metrics::QualityMetrics;
use engine::model::TrainedModel;
use engine::score::RiskScore;
use engine::texts::thousands;

/// Data-quality report; `max_problems` examples are listed.
pub fn quality(report: &QualityReport, max_problems: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Data quality: {} rows read, {} accepted, {} quarantined · completeness {:.1}% · validity {:.1}% · uniqueness {:.1}%",
        thousands(report.rows_read as f64),
        thousands(report.rows_accepted as f64),
        thousands(report.rows_quarantined as f64),
        report.completeness_pct,
        report.validity_pct,
        report.uniqueness_pct
    );
    let _ = writeln!(s, "  outcomes: {} won, {} lost, {} open", report.won, report.lost, report.open);
    let kinds = |m: &std::collections::BTreeMap<engine::ingest::ProblemKind, usize>| {
        m.iter()
            .map(|(k, n)| {
                format!(
                    "{} {n}",
                    serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !report.errors_by_kind.is_empty() {
        let _ = writeln!(s, "  quarantined rows by reason: {}", kinds(&report.errors_by_kind));
    }
    if !report.warnings_by_kind.is_empty() {
        let _ = writeln!(s, "  flagged (kept): {}", kinds(&report.warnings_by_kind));
    }
    for notice in &report.notices {
        let _ = writeln!(s, "  note: {notice}");
    }
    let errors: Vec<_> = report.problems.iter().filter(|p| p.severity == Severity::Error).take(max_problems).collect();
    for p in &errors {
        let _ = writeln!(s, "  ✗ {p}");
    }
    if report.rows_quarantined > errors.len() && !errors.is_empty() {
        let _ = writeln!(s, "  … and more; `dealwatch validate --format json` lists every problem");
    }
    s
}

pub fn metrics_line(m: &QualityMetrics) -> String {
    let auc = m.roc_auc.map_or("n/a".into(), |a| format!("{a:.3}"));
    let ci = m.roc_auc_interval.map_or(String::new(), |(l, h)| format!(" ({l:.3}–{h:.3})"));
    format!(
        "ROC-AUC {auc}{ci} · calibration error {:.3} · Brier {:.3} · log loss {:.3}",
        m.calibration_error, m.brier, m.log_loss
    )
}

pub fn eval(r: &EvalReport) -> String {
    let mut s = String::new();
    let split = match (r.split, r.cutoff) {
        (engine::asof::SplitKind::Time, Some(c)) => {
            format!("time split: trained on deals closed by {c}, tested on later ones")
        }
        _ => "random split".to_owned(),
    };
    let _ = writeln!(s, "Model {} ({}) — {split}", r.model, r.model_version);
    let _ = writeln!(
        s,
        "  train {} deals (loss rate {:.1}%), test {} deals (loss rate {:.1}%)",
        r.n_train,
        r.train_loss_rate * 100.0,
        r.n_test,
        r.test_loss_rate * 100.0
    );
    let _ = writeln!(s, "  {} · baseline (segment rates) {:.3}", metrics_line(&r.metrics), r.baseline_roc_auc);
    let m = &r.metrics;
    let opt = |v: Option<f64>, pct: bool| {
        v.map_or("n/a".into(), |v| if pct { format!("{:.1}%", v * 100.0) } else { format!("{v:.2}") })
    };
    let _ = writeln!(
        s,
        "  high+critical: precision {} · recall {} · top-decile lift {}",
        opt(m.precision_high_risk, true),
        opt(m.recall_high_risk, true),
        opt(m.top_decile_lift, false)
    );
    let _ = writeln!(s, "  {}", r.verdict);
    for w in &r.warnings {
        let _ = writeln!(s, "  warning: {w}");
    }
    s
}

pub fn model(m: &TrainedModel) -> String {
    let mut s = String::new();
    let window = m.window.map_or(String::new(), |w| format!(", closed {} … {}", w.from, w.to));
    let _ = writeln!(
        s,
        "Model {} ({}) trained on {} closed deals ({} won, {} lost{window})",
        m.kind.as_str(),
        m.version,
        m.n_train,
        m.n_won,
        m.n_lost
    );
    if let Some(metrics) = &m.metrics {
        let _ = writeln!(s, "  out-of-fold: {}", metrics_line(metrics));
    }
    for w in &m.warnings {
        let _ = writeln!(s, "  warning: {w}");
    }
    s
}

fn money(v: f64) -> String {
    if v >= 1e6 {
        format!("${:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("${:.0}K", v / 1e3)
    } else {
        format!("${}", thousands(v))
    }
}

/// The pipeline overview of seed 002: value, risk-adjusted value, optimism gap, risk mix.
#[derive(Debug, Default, serde::Serialize)]
pub struct Pipeline {
    pub open_deals: usize,
    pub pipeline_value: f64,
    pub risk_adjusted_value: f64,
    pub optimism_gap: f64,
    pub optimism_gap_pct: f64,
    pub risk_distribution: std::collections::BTreeMap<&'static str, usize>,
}

impl Pipeline {
    pub fn add(&mut self, amount: Option<f64>, p_loss: f64) {
        self.open_deals += 1;
        let a = amount.unwrap_or(0.0);
        self.pipeline_value += a;
        self.risk_adjusted_value += a * (1.0 - p_loss);
        let cat = RiskCategory::from_score(engine::domain::risk_score(p_loss));
        *self.risk_distribution.entry(cat.as_str()).or_default() += 1;
    }

    pub fn finish(&mut self) {
        self.optimism_gap = self.pipeline_value - self.risk_adjusted_value;
        self.optimism_gap_pct =
            if self.pipeline_value > 0.0 { 100.0 * self.optimism_gap / self.pipeline_value } else { 0.0 };
    }

    pub fn text(&self) -> String {
        let dist: Vec<String> = RiskCategory::ALL
            .iter()
            .map(|c| format!("{} {}", c.as_str(), self.risk_distribution.get(c.as_str()).copied().unwrap_or(0)))
            .collect();
        format!(
            "Pipeline: {} open deals worth {}; risk-adjusted {} (optimism gap {:.0}%)\n  {}\n",
            thousands(self.open_deals as f64),
            money(self.pipeline_value),
            money(self.risk_adjusted_value),
            self.optimism_gap_pct,
            dist.join(" · ")
        )
    }
}

/// A probability as a whole percentage, never rounding a real chance to 0% or 100%.
pub fn percent(p: f64) -> String {
    match p * 100.0 {
        x if x > 0.0 && x < 0.5 => "<1%".into(),
        x if (99.5..100.0).contains(&x) => ">99%".into(),
        x => format!("{x:.0}%"),
    }
}

/// The risk card a rep reads (the same content as the Slack card).
pub fn card(score: &RiskScore, rank: Option<usize>) -> String {
    let mut s = String::new();
    let prefix = rank.map_or(String::new(), |r| format!("{r}. "));
    let mut who = Vec::new();
    if !score.company.is_empty() {
        who.push(score.company.clone());
    }
    if let Some(a) = score.amount {
        who.push(money(a));
    }
    if let Some(o) = &score.owner {
        who.push(o.clone());
    }
    if let Some(st) = &score.stage {
        who.push(st.clone());
    }
    if let Some(age) = score.age_days {
        who.push(format!("{age} days open"));
    }
    let _ = writeln!(s, "{prefix}{} — {}", score.deal_id, who.join(" · "));
    let _ = writeln!(
        s,
        "   Risk {}/100 ({}) · win probability {} · confidence {:.2}",
        score.risk_score,
        score.risk_category.as_str().to_uppercase(),
        percent(score.win_probability),
        score.confidence
    );
    if !score.risk_factors.is_empty() {
        let _ = writeln!(s, "   Risk factors (average deal: {:.0}):", score.base_risk);
        for f in &score.risk_factors {
            let _ = writeln!(s, "     +{:>4.1} pts  {}", f.impact, f.description);
        }
    }
    if !score.positive_factors.is_empty() {
        let _ = writeln!(s, "   In its favour:");
        for f in &score.positive_factors {
            let _ = writeln!(s, "     {:>5.1} pts  {}", f.impact, f.description);
        }
    }
    if !score.recommendations.is_empty() {
        let _ = writeln!(s, "   Recommended actions:");
        for r in &score.recommendations {
            let _ = writeln!(s, "     [{}] {} — {}", r.priority.as_str(), r.action, r.rationale);
        }
    }
    if !score.similar_deals.is_empty() {
        let list: Vec<String> = score
            .similar_deals
            .iter()
            .map(|d| {
                format!(
                    "{} {} ({}, similarity {:.2})",
                    d.deal_id,
                    d.company,
                    d.amount.map_or("?".into(), money),
                    d.similarity
                )
            })
            .collect();
        let _ = writeln!(s, "   Similar won deals: {}", list.join("; "));
    }
    s
}

/// The insights report: what changed for real, with the numbers behind it.
pub fn insights(ins: &engine::insights::Insights) -> String {
    use engine::insights::anomaly::Series;
    use engine::insights::health::Component;
    use engine::insights::reps::Trend;
    use engine::insights::segments::Comparison;

    let pct = |r: f64| format!("{:.1}%", 100.0 * r);
    let points = |d: f64| format!("{:+.1} points", 100.0 * d);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Insights as of {}: tested {} segment comparisons, {} segments against the company and {} reps; reported only what holds at a {}% false-discovery rate",
        ins.as_of,
        ins.tested.segment_changes,
        ins.tested.high_performers,
        ins.tested.reps,
        100.0 * ins.fdr
    );

    let _ = writeln!(s, "\nWin-rate changes");
    if ins.segment_changes.is_empty() {
        let _ = writeln!(s, "  none that are real");
    }
    for c in &ins.segment_changes {
        let period = match c.comparison {
            Comparison::QuarterToDate => "quarter to date vs last quarter",
            Comparison::Rolling => "last 90 days vs the 90 before",
        };
        let _ = writeln!(
            s,
            "  {} {} ({period}): {} of {} vs {} of {}, {} (95% interval {} to {}), q = {:.1e}",
            if c.change < 0.0 { "▼" } else { "▲" },
            c.label,
            pct(c.current.rate),
            c.current.closed,
            pct(c.prior.rate),
            c.prior.closed,
            points(c.change),
            points(c.interval[0]),
            points(c.interval[1]),
            c.q_value
        );
        let owners =
            if c.owners.is_empty() { String::new() } else { format!(" · most of it with {}", c.owners.join(", ")) };
        let _ = writeln!(
            s,
            "      {} losses ({:.0} expected at the earlier rate) · at stake: {} open deals worth {}{owners}",
            c.losses,
            c.expected_losses,
            c.open_deals,
            money(c.open_value)
        );
    }

    let _ = writeln!(s, "\nHigh-performing segments (last 365 days)");
    if ins.high_performers.is_empty() {
        let _ = writeln!(s, "  none clearly above the company");
    }
    for h in &ins.high_performers {
        let velocity = h.velocity.map_or(String::new(), |v| format!(" · wins {v:.1}× as fast"));
        let _ = writeln!(
            s,
            "  {}: {} of {} vs company {}{velocity} · {} open deals worth {}",
            h.label,
            pct(h.rate.rate),
            h.rate.closed,
            pct(h.company_rate),
            h.open_deals,
            money(h.open_value)
        );
    }

    let _ = writeln!(s, "\nReps");
    if ins.reps.is_empty() {
        let _ = writeln!(s, "  no rep stands out");
    }
    for r in &ins.reps {
        let mut parts = Vec::new();
        if let Some(trend) = r.trend {
            parts.push(format!(
                "win rate {} of {} in the last 90 days vs {} of {} before ({}, momentum {:.2})",
                pct(r.recent.rate),
                r.recent.closed,
                pct(r.history.rate),
                r.history.closed,
                if trend == Trend::Declining { "declining" } else { "improving" },
                r.momentum.unwrap_or(f64::NAN)
            ));
        }
        if r.risk_flag {
            parts.push(format!(
                "average risk {:.0} vs team {:.0} over {} open deals worth {}",
                r.avg_risk.unwrap_or(f64::NAN),
                r.team_avg_risk.unwrap_or(f64::NAN),
                r.open_deals,
                money(r.open_value)
            ));
        }
        if let (Some(mine), Some(team)) = (r.low_segment_share, r.team_low_segment_share) {
            parts.push(format!("{} of open deals in low-win segments (team {})", pct(mine), pct(team)));
        }
        if let Some(v) = r.velocity {
            parts.push(format!("velocity {v:+.2}"));
        }
        let _ = writeln!(s, "  {}: {}", r.rep, parts.join(" · "));
    }

    let _ = writeln!(s);
    match &ins.health {
        None => {
            let _ = writeln!(s, "Pipeline health: not enough history");
        }
        Some(h) => {
            let before = h.previous.map_or(String::new(), |p| format!(" ({p:.0} a month ago)"));
            let _ = writeln!(s, "Pipeline health: {:.0}/100{before}", h.index);
            for c in &h.components {
                let show = |v: f64| match c.component {
                    Component::WinRate => pct(v),
                    Component::DealSize => money(v),
                    Component::CycleLength => format!("{v:.0} days"),
                    Component::Coverage | Component::RiskMix => format!("{v:.2}"),
                };
                let name = match c.component {
                    Component::WinRate => "win rate (90 days)",
                    Component::DealSize => "average deal size",
                    Component::CycleLength => "median won cycle",
                    Component::Coverage => "coverage (expected ÷ won last 90 days)",
                    Component::RiskMix => "expected win share of open value",
                };
                let before = c.previous.map_or(String::new(), |p| format!(", a month ago {}", show(p)));
                let base = match c.component {
                    Component::Coverage => money(c.baseline),
                    _ => show(c.baseline),
                };
                let _ = writeln!(s, "  {name}: {} (usual {base}{before}) → {:.0}", show(c.value), c.score);
            }
            if let (Some(adjusted), Some(gap)) = (h.risk_adjusted_value, h.optimism_gap) {
                let _ = writeln!(
                    s,
                    "  pipeline {} · risk-adjusted {} · optimism gap {}",
                    money(h.pipeline_value),
                    money(adjusted),
                    money(gap)
                );
            }
        }
    }

    let _ = writeln!(s, "\nAnomalies (the latest week against the weeks before)");
    if ins.anomalies.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for a in &ins.anomalies {
        let what = match a.series {
            Series::DealVolume => "deals created",
            Series::AverageAmount => "average amount of new deals",
            Series::CycleLength => "median cycle of closed deals",
        };
        let _ = writeln!(
            s,
            "  {what}: {:.0} against a usual {:.0} over {} weeks (robust z {:+.1})",
            a.value, a.median, a.history_weeks, a.z
        );
    }
    if !ins.data_quality.is_empty() {
        let _ = writeln!(s, "\nData quality");
        for q in &ins.data_quality {
            let _ = writeln!(
                s,
                "  {} filled in {} of the {} deals created in the last 30 days, down from {}",
                q.field,
                pct(q.recent),
                q.recent_deals,
                pct(q.before)
            );
        }
    }
    s
}
