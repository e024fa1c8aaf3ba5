//! The CLI commands. Each reads its inputs, calls the engine, and writes results to stdout.

use std::io::{BufWriter, Write};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use engine::asof::{SplitKind, Status, View, status};
use engine::dataset::Dataset;
use engine::eval::{EvalConfig, evaluate};
use engine::generate::{GenerateConfig, generate};
use engine::ingest::Ingested;
use engine::model::{ModelKind, TrainConfig, TrainedModel};
use engine::score::{RiskScore, Scorer, Work};
use engine::texts::Texts;

use crate::cli::{
    Cli, Command, DemoArgs, EvalArgs, Format, GenerateArgs, InputArgs, ModelArgs, ScoreArgs, SplitArg, TrainArgs,
};
use crate::report::{self, Pipeline};
use crate::resources::{load_mapping, load_texts, read_export};

/// What every command gets: read once, at start-up.
pub struct Ctx {
    pub today: NaiveDate,
    pub as_of: NaiveDate,
    pub format: Format,
    pub texts: Texts,
    pub threads: usize,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let today = chrono::Local::now().date_naive();
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let ctx = Ctx {
        today,
        as_of: cli.as_of.unwrap_or(today),
        format: cli.format,
        texts: load_texts(cli.prompts.as_deref())?,
        threads,
    };
    match cli.command {
        Command::Demo(args) => demo(&ctx, &args),
        Command::Generate(args) => generate_cmd(&ctx, &args),
        Command::Validate(args) => validate(&ctx, &args),
        Command::Eval(args) => eval(&ctx, &args),
        Command::Train(args) => train(&ctx, &args),
        Command::Score(args) => score(&ctx, &args),
    }
}

fn train_config(ctx: &Ctx, model: &ModelArgs) -> TrainConfig {
    TrainConfig { kind: model.model, seed: model.seed, threads: ctx.threads, ..TrainConfig::default() }
}

fn stdout() -> BufWriter<std::io::StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// Reads an export, reports its data quality on stderr, and warns about an as-of date far
/// after the data.
fn load(ctx: &Ctx, input: &InputArgs) -> anyhow::Result<Ingested> {
    let mapping = load_mapping(input.mapping.as_deref())?;
    let ingested = read_export(&input.input, &mapping, ctx.today, true)?;
    eprint!("{}", report::quality(&ingested.report, 3));
    if let Some(latest) = ingested.dataset.latest_date() {
        if (ctx.as_of - latest).num_days() > 90 {
            eprintln!(
                "warning: the newest date in this export is {latest}; as of {} every open deal looks very old. Pass --as-of {latest} to replay the export's own time.",
                ctx.as_of
            );
        }
    }
    if ingested.dataset.deals.is_empty() {
        bail!("no valid deals in {}", input.input.display());
    }
    Ok(ingested)
}

fn generate_cmd(ctx: &Ctx, args: &GenerateArgs) -> anyhow::Result<()> {
    let file = std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut config = GenerateConfig::new(args.deals, args.seed, ctx.as_of);
    config.messy = args.messy;
    let summary = generate(&config, BufWriter::with_capacity(1 << 20, file))
        .with_context(|| format!("writing {}", args.out.display()))?;
    let mut out = stdout();
    match ctx.format {
        Format::Json => {
            let planted: std::collections::BTreeMap<String, usize> = summary
                .planted
                .iter()
                .map(|(k, v)| {
                    (serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(), *v)
                })
                .collect();
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({
                    "file": args.out, "deals": summary.deals, "won": summary.won, "lost": summary.lost, "open": summary.open,
                    "as_of": ctx.as_of, "seed": args.seed, "planted_errors": planted,
                }),
            )?;
            writeln!(out)?;
        }
        _ => writeln!(
            out,
            "Wrote {} deals to {} ({} won, {} lost, {} open as of {}, seed {}){}",
            summary.deals,
            args.out.display(),
            summary.won,
            summary.lost,
            summary.open,
            ctx.as_of,
            args.seed,
            if args.messy {
                format!("; {} bad rows planted", summary.planted.values().sum::<usize>())
            } else {
                String::new()
            }
        )?,
    }
    Ok(out.flush()?)
}

fn validate(ctx: &Ctx, args: &InputArgs) -> anyhow::Result<()> {
    let mapping = load_mapping(args.mapping.as_deref())?;
    let ingested = read_export(&args.input, &mapping, ctx.today, true)?;
    let mut out = stdout();
    match ctx.format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &ingested.report)?,
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            w.write_record(["row", "deal_id", "column", "value", "kind", "severity", "reason"])?;
            for p in &ingested.report.problems {
                let kind = serde_json::to_value(p.kind)?;
                let severity = serde_json::to_value(p.severity)?;
                w.write_record([
                    p.row.to_string(),
                    p.deal_id.clone().unwrap_or_default(),
                    p.column.clone(),
                    p.value.clone(),
                    kind.as_str().unwrap_or_default().to_owned(),
                    severity.as_str().unwrap_or_default().to_owned(),
                    p.reason.clone(),
                ])?;
            }
            w.flush()?;
        }
        Format::Table => write!(out, "{}", report::quality(&ingested.report, 20))?,
    }
    if ctx.format == Format::Json {
        writeln!(out)?;
    }
    Ok(out.flush()?)
}

fn eval(ctx: &Ctx, args: &EvalArgs) -> anyhow::Result<()> {
    let ingested = load(ctx, &args.input)?;
    let split = match args.split {
        SplitArg::Time => SplitKind::Time,
        SplitArg::Random => SplitKind::Random,
    };
    let config = EvalConfig { split, test_fraction: args.test_fraction, train: train_config(ctx, &args.model) };
    let report = evaluate(&ingested.dataset, Some(ctx.as_of), &config)?;
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

fn train(ctx: &Ctx, args: &TrainArgs) -> anyhow::Result<()> {
    let ingested = load(ctx, &args.input)?;
    let view = View::new(&ingested.dataset, Some(ctx.as_of));
    let model = TrainedModel::train(&ingested.dataset, &view.closed, view.as_of, &train_config(ctx, &args.model))?;
    std::fs::write(&args.out, model.to_json()?).with_context(|| format!("writing {}", args.out.display()))?;
    let mut out = stdout();
    match ctx.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({
                    "file": args.out, "version": model.version, "kind": model.kind, "n_train": model.n_train,
                    "cold_start": model.cold_start, "metrics": model.metrics, "warnings": model.warnings,
                }),
            )?;
            writeln!(out)?;
        }
        _ => writeln!(out, "{}Wrote {}", report::model(&model), args.out.display())?,
    }
    Ok(out.flush()?)
}

fn load_or_train(ctx: &Ctx, args: &ScoreArgs, dataset: &Dataset, view: &View) -> anyhow::Result<TrainedModel> {
    match &args.model_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading model {}", path.display()))?;
            TrainedModel::from_json(&text).with_context(|| format!("model {}", path.display()))
        }
        None => Ok(TrainedModel::train(dataset, &view.closed, view.as_of, &train_config(ctx, &args.model))?),
    }
}

fn score(ctx: &Ctx, args: &ScoreArgs) -> anyhow::Result<()> {
    let ingested = load(ctx, &args.input)?;
    let dataset = &ingested.dataset;
    let view = View::new(dataset, Some(ctx.as_of));
    let model = load_or_train(ctx, args, dataset, &view)?;
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

/// Every open deal's P(loss), riskiest first (ties by position), and the pipeline summary.
fn rank_open(scorer: &Scorer<'_>, dataset: &Dataset, view: &View, work: &mut Work) -> (Vec<(f64, usize)>, Pipeline) {
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
    for s in scores {
        let factor = |k: usize| {
            s.risk_factors.get(k).map_or(String::new(), |f| format!("{} ({:+.1} pts)", f.description, f.impact))
        };
        w.write_record([
            s.deal_id.clone(),
            s.company.clone(),
            s.owner.clone().unwrap_or_default(),
            s.amount.map_or(String::new(), |a| a.to_string()),
            s.risk_score.to_string(),
            s.risk_category.to_string(),
            format!("{:.4}", s.win_probability),
            format!("{:.4}", s.confidence),
            factor(0),
            factor(1),
            factor(2),
            s.recommendations.first().map_or(String::new(), |r| r.action.clone()),
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

fn demo(ctx: &Ctx, args: &DemoArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut config = GenerateConfig::new(args.deals, args.seed, ctx.as_of);
    config.messy = true;
    let mut csv = Vec::with_capacity(args.deals * 200);
    let summary = generate(&config, &mut csv)?;
    let mapping = load_mapping(Some("generated"))?;
    let ingested = engine::ingest::ingest(
        &csv[..],
        &mapping.mapping,
        Vec::new(),
        engine::ingest::Context { today: ctx.today.max(ctx.as_of) },
    )?;
    let dataset = &ingested.dataset;
    let mut out = stdout();
    writeln!(
        out,
        "Dealwatch demo: a synthetic CRM export of {} deals as of {} (seed {}), written messy on purpose.\n",
        summary.deals, ctx.as_of, args.seed
    )?;
    write!(out, "{}", report::quality(&ingested.report, 2))?;
    writeln!(out)?;

    let train =
        TrainConfig { kind: ModelKind::Additive, seed: args.seed, threads: ctx.threads, ..TrainConfig::default() };
    let eval_report = evaluate(
        dataset,
        Some(ctx.as_of),
        &EvalConfig { split: SplitKind::Time, test_fraction: 0.25, train: train.clone() },
    )?;
    write!(out, "{}", report::eval(&eval_report))?;
    writeln!(out)?;

    let view = View::new(dataset, Some(ctx.as_of));
    let model = TrainedModel::train(dataset, &view.closed, view.as_of, &train)?;
    write!(out, "{}", report::model(&model))?;
    let scorer = Scorer::new(&model, dataset, &view, &ctx.texts);
    let mut work = scorer.work();
    let (ranked, pipeline) = rank_open(&scorer, dataset, &view, &mut work);
    writeln!(out)?;
    write!(out, "{}", pipeline.text())?;
    writeln!(out, "\nRiskiest open deals:")?;
    for (rank, &(_, i)) in ranked.iter().take(args.top).enumerate() {
        write!(out, "{}", report::card(&scorer.score(i, &mut work), Some(rank + 1)))?;
    }
    writeln!(
        out,
        "\nDone in {:.1} s. Try: dealwatch generate --out deals.csv && dealwatch score --input deals.csv --deal Acme",
        started.elapsed().as_secs_f64()
    )?;
    Ok(out.flush()?)
}
