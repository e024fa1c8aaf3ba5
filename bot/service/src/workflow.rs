//! Steps shared by the command line, the server and (later) scheduled jobs: reading a tenant's
//! deals and model from the store, storing a newly trained model, ranking the pipeline, and
//! turning risk cards into stored scores.

use anyhow::{Context, bail};
use engine::asof::View;
use engine::dataset::Dataset;
use engine::model::TrainedModel;
use engine::score::{RiskScore, Scorer, Work};

use crate::report::Pipeline;
use store::{ImportBatch, ModelInfo, ModelStatus, ScoreUpdate, Store, TenantId};

/// A tenant's deals from the store, as a dataset.
pub async fn tenant_dataset(store: &dyn Store, tenant: &TenantId) -> anyhow::Result<Dataset> {
    let Some(info) = store.tenant(tenant).await? else {
        bail!("tenant {tenant} has no data yet: import some with `dealwatch import --tenant {tenant} --input FILE`");
    };
    let records = store.deals(tenant).await?;
    Dataset::from_records(&info.schema, &records).with_context(|| format!("reading tenant {tenant}'s deals"))
}

/// The tenant's champion model.
pub async fn champion_model(store: &dyn Store, tenant: &TenantId) -> anyhow::Result<TrainedModel> {
    let Some(model) = champion_if_any(store, tenant).await? else {
        bail!("tenant {tenant} has no trained model: run `dealwatch train --tenant {tenant}`");
    };
    Ok(model)
}

/// The tenant's champion model, or `None` before the first training.
pub async fn champion_if_any(store: &dyn Store, tenant: &TenantId) -> anyhow::Result<Option<TrainedModel>> {
    let Some((info, json)) = store.champion(tenant).await? else { return Ok(None) };
    let model = serde_json::from_value(json).with_context(|| format!("reading stored model {}", info.version))?;
    Ok(Some(model))
}

/// Stores a tenant's new model and promotes it when it is at least as good as the champion
/// (out-of-fold ROC-AUC within 0.005), or when there is none.
pub async fn store_model(
    store: &dyn Store,
    tenant: &TenantId,
    model: &TrainedModel,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(ModelStatus, String)> {
    let auc = |m: Option<&serde_json::Value>| m.and_then(|m| m.get("roc_auc")).and_then(serde_json::Value::as_f64);
    let metrics = model.metrics.as_ref().map(serde_json::to_value).transpose()?;
    let new_auc = auc(metrics.as_ref());
    let champion = store.models(tenant).await?.into_iter().find(|m| m.status == ModelStatus::Champion);
    let (promote, reason) = match (&champion, new_auc) {
        (None, _) => (true, "the tenant's first model".to_owned()),
        (Some(c), _) if c.version == model.version => (true, "the same model as the champion".to_owned()),
        (Some(c), Some(new)) => match auc(c.metrics.as_ref()) {
            Some(old) if new + 0.005 < old => {
                (false, format!("ROC-AUC {new:.3} is below the champion {}'s {old:.3}", c.version))
            }
            Some(old) => (true, format!("ROC-AUC {new:.3} vs the previous champion's {old:.3}")),
            None => (true, "the champion has no metrics to compare".to_owned()),
        },
        (Some(c), None) => (false, format!("a cold-start model does not replace the champion {}", c.version)),
    };
    let info = ModelInfo {
        version: model.version.clone(),
        kind: model.kind.as_str().to_owned(),
        status: ModelStatus::Challenger,
        trained_at: now,
        as_of: model.as_of,
        n_train: model.n_train as u64,
        metrics,
    };
    store.save_model(tenant, &info, &serde_json::to_value(model)?).await?;
    if promote {
        store.promote_model(tenant, &model.version).await?;
    }
    Ok((if promote { ModelStatus::Champion } else { ModelStatus::Challenger }, reason))
}

/// An export's valid deals as one import, its invalid rows recorded with their reasons.
pub fn import_batch(
    ingested: &engine::ingest::Ingested,
    source: String,
    at: chrono::DateTime<chrono::Utc>,
) -> ImportBatch {
    ImportBatch {
        import_id: uuid::Uuid::now_v7().to_string(),
        source,
        at,
        spec: engine::record::SchemaSpec::of(&ingested.dataset.schema),
        records: ingested.dataset.records().collect(),
        rejected: ingested
            .report
            .problems
            .iter()
            .filter(|p| p.severity == engine::ingest::Severity::Error)
            .cloned()
            .collect(),
        rows_read: ingested.report.rows_read,
    }
}

/// A risk card as the store keeps it.
pub fn score_update(card: &RiskScore) -> serde_json::Result<ScoreUpdate> {
    Ok(ScoreUpdate {
        deal_id: card.deal_id.clone(),
        risk_score: card.risk_score,
        risk_category: card.risk_category,
        win_probability: card.win_probability,
        confidence: card.confidence,
        model_version: card.model_version.clone(),
        card: serde_json::to_value(card)?,
    })
}

/// The deals open on `as_of` (those of `only`, if given), scored with their full cards, as
/// stored scores.
pub fn score_open_deals(
    model: &TrainedModel,
    dataset: &Dataset,
    as_of: chrono::NaiveDate,
    texts: &engine::texts::Texts,
    only: Option<&std::collections::HashSet<String>>,
) -> anyhow::Result<Vec<ScoreUpdate>> {
    let view = View::new(dataset, Some(as_of));
    let scorer = Scorer::new(model, dataset, &view, texts);
    let mut work = scorer.work();
    Ok(view
        .open
        .iter()
        .filter(|&&i| only.is_none_or(|ids| ids.contains(dataset.deals[i].id.as_str())))
        .map(|&i| score_update(&scorer.score(i, &mut work)))
        .collect::<Result<_, _>>()?)
}

/// The tenant's open deals (those of `only`, if given) scored with its champion, off the async
/// threads: the champion's version and the scores, or `None` without a champion.
pub async fn rescore(
    store: &dyn Store,
    tenant: &TenantId,
    texts: &engine::texts::Texts,
    as_of: chrono::NaiveDate,
    only: Option<std::collections::HashSet<String>>,
) -> anyhow::Result<Option<(String, Vec<ScoreUpdate>)>> {
    let Some((_, model)) = store.champion(tenant).await? else { return Ok(None) };
    let model: TrainedModel = serde_json::from_value(model)?;
    let dataset = tenant_dataset(store, tenant).await?;
    let texts = texts.clone();
    let version = model.version.clone();
    let updates =
        tokio::task::spawn_blocking(move || score_open_deals(&model, &dataset, as_of, &texts, only.as_ref())).await??;
    Ok(Some((version, updates)))
}

/// Saves new scores with the critical-deal alerts they raise, in one transaction: recipients
/// and their settings are read first, then the store compares each score with the one before.
pub async fn save_scores_alerting(
    store: &dyn Store,
    tenant: &TenantId,
    at: chrono::DateTime<chrono::Utc>,
    as_of: Option<chrono::NaiveDate>,
    updates: &[ScoreUpdate],
    channels: &[String],
) -> anyhow::Result<store::ScoresSaved> {
    let routing = alerts::routing::Routing::load(store, tenant, channels).await?;
    let planner = alerts::routing::CriticalDeals { routing: &routing, now: at };
    Ok(store.save_scores_raising(tenant, at, as_of, updates, &planner).await?)
}

/// The deals whose risk rose with `updates` as `saved` them (a category up, or a new deal scored
/// for the first time: see [`engine::alerts::risk_rose`]): the news a follow-up task is made for.
/// A pipeline scored for the first time is a baseline.
pub fn risk_rose(updates: &[ScoreUpdate], saved: &store::ScoresSaved) -> Vec<String> {
    updates
        .iter()
        .zip(&saved.previous)
        .filter(|(u, previous)| engine::alerts::risk_rose(**previous, u.risk_category, alerts::routing::age_days(u)))
        .map(|(u, _)| u.deal_id.clone())
        .collect()
}

/// Every open deal's P(loss), riskiest first (ties by position), and the pipeline summary.
pub fn rank_open(
    scorer: &Scorer<'_>,
    dataset: &Dataset,
    view: &View,
    work: &mut Work,
) -> (Vec<(f64, usize)>, Pipeline) {
    let mut ranked: Vec<(f64, usize)> =
        view.open.iter().map(|&i| (scorer.quick(&dataset.deals[i], work).p_loss, i)).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut pipeline = Pipeline::default();
    for &(p, i) in &ranked {
        pipeline.add(dataset.deals[i].amount.map(|a| a.get()), p);
    }
    pipeline.finish();
    (ranked, pipeline)
}

/// Every insight rule on `dataset` as of `as_of`. With a model, the open deals are scored for
/// the risk-based rules (rep risk, coverage, risk mix), now and a month earlier (the same model
/// scores last month's pipeline); without one those parts are left out.
pub fn insights(
    dataset: &Dataset,
    as_of: chrono::NaiveDate,
    model: Option<&TrainedModel>,
    texts: &engine::texts::Texts,
    config: &engine::insights::InsightConfig,
) -> engine::insights::Insights {
    let now = model.map(|m| open_p_loss(m, dataset, as_of, texts));
    let month_ago = model.map(|m| open_p_loss(m, dataset, as_of - chrono::Duration::days(30), texts));
    engine::insights::compute(dataset, as_of, now.as_deref(), month_ago.as_deref(), config)
}

/// P(loss) of every deal open on `date` (by position in `dataset`; NaN for the others), as the
/// model scores them on that date.
pub fn open_p_loss(
    model: &TrainedModel,
    dataset: &Dataset,
    date: chrono::NaiveDate,
    texts: &engine::texts::Texts,
) -> Vec<f64> {
    let view = View::new(dataset, Some(date));
    let scorer = Scorer::new(model, dataset, &view, texts);
    let mut work = scorer.work();
    let mut p = vec![f64::NAN; dataset.deals.len()];
    for &i in &view.open {
        p[i] = scorer.quick(&dataset.deals[i], &mut work).p_loss;
    }
    p
}

/// The week's figures for the executive summary: pipeline health, the real segment changes (and
/// the win rate by quarter of the three that moved most, with the company's), high-performing
/// segments, flagged reps.
pub fn weekly_facts(
    dataset: &Dataset,
    as_of: chrono::NaiveDate,
    model: Option<&TrainedModel>,
    texts: &engine::texts::Texts,
) -> anyhow::Result<serde_json::Value> {
    let found = insights(dataset, as_of, model, texts, &engine::insights::InsightConfig::default());
    let mut moved = found.segment_changes.clone();
    moved.sort_by(|a, b| b.change.abs().total_cmp(&a.change.abs()));
    moved.dedup_by(|a, b| a.label == b.label);
    let segments: Vec<_> = moved.iter().take(3).map(|c| c.segment.clone()).collect();
    let series = engine::insights::trend::quarterly(dataset, as_of, &segments, 6);
    let reps: Vec<_> = found.reps.iter().filter(|r| r.risk_flag || r.trend.is_some()).take(5).collect();
    Ok(serde_json::json!({
        "as_of": as_of,
        "health": found.health,
        "segment_changes": moved.iter().take(5).collect::<Vec<_>>(),
        "high_performers": found.high_performers.iter().take(3).collect::<Vec<_>>(),
        "reps": reps,
        "series": series,
        "tested": found.tested.segment_changes,
    }))
}

/// The day a follow-up task falls due: the next weekday after `today`.
pub fn next_working_day(today: chrono::NaiveDate) -> chrono::NaiveDate {
    use chrono::Datelike as _;
    let mut day = today + chrono::Duration::days(1);
    while matches!(day.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) {
        day += chrono::Duration::days(1);
    }
    day
}
