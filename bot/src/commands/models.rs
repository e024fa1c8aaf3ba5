//! Model commands: eval, train, score, on an export or a tenant's store.

use std::io::Write;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use engine::asof::{SplitKind, Status, View, status};
use engine::dataset::Dataset;
use engine::eval::{EvalConfig, evaluate};
use engine::model::TrainedModel;
use engine::score::{RiskScore, Scorer};

use super::{Ctx, Loaded, load, stdout};
use crate::cli::{EvalArgs, Format, ScoreArgs, SplitArg, TrainArgs};
use crate::report;
use crate::workflow::{champion_model, rank_open, score_update, store_model};
use store::ScoreUpdate;

pub async fn eval(ctx: &Ctx, args: &EvalArgs) -> anyhow::Result<()> {
    let loaded = load(ctx, &args.source, args.mapping.as_deref()).await?;
    let split = match args.split {
        SplitArg::Time => SplitKind::Time,
        SplitArg::Random => SplitKind::Random,
    };
    let config = EvalConfig { split, test_fraction: args.test_fraction, train: ctx.train_config(&args.model) };
    let report = evaluate(&loaded.dataset, Some(ctx.as_of), &config)?;
    let mut out = stdout();
    match ctx.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let m = &report.metrics;
            let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
            let interval = m.roc_auc_interval.unwrap_or((f64::NAN, f64::NAN));
            let mut w = csv::Writer::from_writer(&mut out);
            w.write_record([
                "model",
                "split",
                "cutoff",
                "n_train",
                "n_test",
                "roc_auc",
                "roc_auc_low",
                "roc_auc_high",
                "brier",
                "log_loss",
                "calibration_error",
                "precision_high_risk",
                "recall_high_risk",
                "top_decile_lift",
                "baseline_roc_auc",
            ])?;
            w.write_record([
                report.model.clone(),
                if report.split == SplitKind::Time { "time" } else { "random" }.to_owned(),
                report.cutoff.map_or(String::new(), |c| c.to_string()),
                report.n_train.to_string(),
                report.n_test.to_string(),
                num(m.roc_auc),
                num(Some(interval.0)),
                num(Some(interval.1)),
                num(Some(m.brier)),
                num(Some(m.log_loss)),
                num(Some(m.calibration_error)),
                num(m.precision_high_risk),
                num(m.recall_high_risk),
                num(m.top_decile_lift),
                num(Some(report.baseline_roc_auc)),
            ])?;
            w.flush()?;
        }
        Format::Table => write!(out, "{}", report::eval(&report))?,
    }
    Ok(out.flush()?)
}

pub async fn train(ctx: &Ctx, args: &TrainArgs) -> anyhow::Result<()> {
    if args.source.input.is_some() && args.out.is_none() {
        bail!("--out FILE is required with --input (with --tenant the model is stored)");
    }
    let loaded = load(ctx, &args.source, args.mapping.as_deref()).await?;
    let dataset = &loaded.dataset;
    let view = View::new(dataset, Some(ctx.as_of));
    let model = TrainedModel::train(dataset, &view.closed, view.as_of, &ctx.train_config(&args.model))?;
    if let Some(path) = &args.out {
        std::fs::write(path, model.to_json()?).with_context(|| format!("writing {}", path.display()))?;
    }
    let decision = match &loaded.tenant {
        Some((store, tenant)) => Some(store_model(store.as_ref(), tenant, &model, chrono::Utc::now()).await?),
        None => None,
    };
    let mut out = stdout();
    match ctx.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({
                    "file": args.out, "version": model.version, "kind": model.kind, "n_train": model.n_train,
                    "cold_start": model.cold_start, "metrics": model.metrics, "warnings": model.warnings,
                    "status": decision.as_ref().map(|d| d.0), "reason": decision.as_ref().map(|d| d.1.clone()),
                }),
            )?;
            writeln!(out)?;
        }
        _ => {
            write!(out, "{}", report::model(&model))?;
            if let Some(path) = &args.out {
                writeln!(out, "Wrote {}", path.display())?;
            }
            if let Some((status, reason)) = &decision {
                writeln!(out, "Stored as {}: {reason}", status.as_str())?;
            }
        }
    }
    Ok(out.flush()?)
}

async fn model_for(ctx: &Ctx, args: &ScoreArgs, loaded: &Loaded, view: &View) -> anyhow::Result<TrainedModel> {
    match (&args.model_file, &loaded.tenant) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading model {}", path.display()))?;
            TrainedModel::from_json(&text).with_context(|| format!("model {}", path.display()))
        }
        (None, Some((store, tenant))) => champion_model(store.as_ref(), tenant).await,
        (None, None) => {
            Ok(TrainedModel::train(&loaded.dataset, &view.closed, view.as_of, &ctx.train_config(&args.model))?)
        }
    }
}

pub async fn score(ctx: &Ctx, args: &ScoreArgs) -> anyhow::Result<()> {
    let loaded = load(ctx, &args.source, args.mapping.as_deref()).await?;
    let dataset = &loaded.dataset;
    let view = View::new(dataset, Some(ctx.as_of));
    let model = model_for(ctx, args, &loaded, &view).await?;
    for w in &model.warnings {
        eprintln!("warning: {w}");
    }
    let scorer = Scorer::new(&model, dataset, &view, &ctx.texts);
    let mut work = scorer.work();
    let mut out = stdout();

    if let Some(wanted) = &args.deal {
        let index = find_deal(dataset, wanted, view.as_of)?;
        let card = scorer.score(index, &mut work);
        match ctx.format {
            Format::Json => serde_json::to_writer_pretty(&mut out, &card)?,
            Format::Csv => write_csv(&mut out, std::iter::once(card))?,
            Format::Table => write!(out, "{}", report::card(&card, None))?,
        }
        writeln!(out)?;
        return Ok(out.flush()?);
    }

    // Rank every open deal by risk, then describe them in that order.
    let (ranked, pipeline) = rank_open(&scorer, dataset, &view, &mut work);
    if let Some((store, tenant)) = &loaded.tenant {
        let updates: Vec<ScoreUpdate> =
            ranked.iter().map(|&(_, i)| score_update(&scorer.score(i, &mut work))).collect::<Result<_, _>>()?;
        let channels = ctx.settings.alert_channels();
        let saved = crate::workflow::save_scores_alerting(
            store.as_ref(),
            tenant,
            chrono::Utc::now(),
            view.as_of,
            &updates,
            &channels,
        )
        .await
        .context("saving scores")?;
        eprintln!(
            "saved {} scores for tenant {tenant} (model {}); {} critical-deal alerts raised",
            saved.scores, model.version, saved.alerts
        );
    }
    match ctx.format {
        Format::Json => {
            write!(
                out,
                "{{\"as_of\":{},\"model_version\":{},\"pipeline\":",
                serde_json::to_string(&view.as_of)?,
                serde_json::to_string(&model.version)?
            )?;
            serde_json::to_writer(&mut out, &pipeline)?;
            write!(out, ",\"scores\":[")?;
            for (k, &(_, i)) in ranked.iter().enumerate() {
                if k > 0 {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut out, &scorer.score(i, &mut work))?;
            }
            writeln!(out, "]}}")?;
        }
        Format::Csv => write_csv(&mut out, ranked.iter().map(|&(_, i)| scorer.score(i, &mut work)))?,
        Format::Table => {
            write!(out, "{}", pipeline.text())?;
            let mut table = comfy_table::Table::new();
            table.load_style(comfy_table::presets::UTF8_BORDERS_ONLY);
            table.set_header(["deal", "company", "owner", "amount", "risk", "category", "win", "top risk factor"]);
            for &(_, i) in ranked.iter().take(args.limit) {
                let s = scorer.score(i, &mut work);
                table.add_row([
                    s.deal_id.clone(),
                    s.company.clone(),
                    s.owner.clone().unwrap_or_default(),
                    s.amount.map_or(String::new(), engine::texts::thousands),
                    s.risk_score.to_string(),
                    s.risk_category.to_string(),
                    report::percent(s.win_probability),
                    s.risk_factors.first().map_or(String::new(), |f| f.description.clone()),
                ]);
            }
            writeln!(out, "{table}")?;
            if ranked.len() > args.limit {
                writeln!(out, "({} more; --limit, --deal ID or --format json for all)", ranked.len() - args.limit)?;
            }
        }
    }
    Ok(out.flush()?)
}

fn write_csv(out: &mut impl Write, scores: impl Iterator<Item = RiskScore>) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "deal_id",
        "company",
        "owner",
        "amount",
        "risk_score",
        "risk_category",
        "win_probability",
        "confidence",
        "risk_factor_1",
        "risk_factor_2",
        "risk_factor_3",
        "top_action",
        "model_version",
    ])?;
    // Every text from the CRM is neutralised: the export opens in spreadsheets.
    let text = super::csv_text;
    for s in scores {
        let factor = |k: usize| {
            s.risk_factors.get(k).map_or(String::new(), |f| text(&format!("{} ({:+.1} pts)", f.description, f.impact)))
        };
        w.write_record([
            text(&s.deal_id),
            text(&s.company),
            text(s.owner.as_deref().unwrap_or_default()),
            s.amount.map_or(String::new(), |a| a.to_string()),
            s.risk_score.to_string(),
            s.risk_category.to_string(),
            format!("{:.4}", s.win_probability),
            format!("{:.4}", s.confidence),
            factor(0),
            factor(1),
            factor(2),
            s.recommendations.first().map_or(String::new(), |r| text(&r.action)),
            s.model_version.clone(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Finds an open deal by id, else by unique company name; errors name close matches.
fn find_deal(dataset: &Dataset, wanted: &str, as_of: Option<NaiveDate>) -> anyhow::Result<usize> {
    let wanted = wanted.trim();
    let by_id = dataset.deals.iter().position(|d| d.id.as_str().eq_ignore_ascii_case(wanted));
    let index = match by_id {
        Some(i) => i,
        None => {
            let key = wanted.to_lowercase();
            let open_matches: Vec<usize> = (0..dataset.deals.len())
                .filter(|&i| {
                    dataset.deals[i].name.to_lowercase().contains(&key)
                        && status(&dataset.deals[i], as_of) == Status::Open
                })
                .collect();
            match open_matches.as_slice() {
                [one] => *one,
                [] => {
                    let close: Vec<&str> = dataset
                        .deals
                        .iter()
                        .filter(|d| d.id.as_str().to_lowercase().starts_with(&key.chars().take(3).collect::<String>()))
                        .take(5)
                        .map(|d| d.id.as_str())
                        .collect();
                    let hint =
                        if close.is_empty() { String::new() } else { format!("; similar ids: {}", close.join(", ")) };
                    bail!("no deal with id or open-deal company name {wanted:?}{hint}");
                }
                many => {
                    let list: Vec<String> = many
                        .iter()
                        .take(10)
                        .map(|&i| format!("{} ({})", dataset.deals[i].id, dataset.deals[i].name))
                        .collect();
                    bail!("{wanted:?} matches {} open deals; pass one id: {}", many.len(), list.join(", "));
                }
            }
        }
    };
    let deal = &dataset.deals[index];
    match status(deal, as_of) {
        Status::Open => Ok(index),
        Status::Future => {
            bail!("deal {} was created after the as-of date {}", deal.id, as_of.map_or("-".into(), |d| d.to_string()))
        }
        closed => bail!(
            "deal {} is already {} (closed {}); scores are for open deals",
            deal.id,
            if closed == Status::Won { "won" } else { "lost" },
            deal.closed.map_or("-".into(), |d| d.to_string())
        ),
    }
}
