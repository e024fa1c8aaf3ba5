//! Data commands: generate, validate, import, migrate.

use std::io::{BufWriter, Write};

use anyhow::{Context, bail};
use engine::generate::GenerateConfig;

use super::{Ctx, redact_url, stdout};
use crate::cli::{Format, GenerateArgs, ImportArgs, InputArgs};
use crate::report;
use crate::resources::{load_mapping, read_export};
use store::TenantId;

pub fn generate(ctx: &Ctx, args: &GenerateArgs) -> anyhow::Result<()> {
    let file = std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut config = GenerateConfig::new(args.deals, args.seed, ctx.as_of);
    config.messy = args.messy;
    let summary = engine::generate::generate(&config, BufWriter::with_capacity(1 << 20, file))
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

pub fn validate(ctx: &Ctx, args: &InputArgs) -> anyhow::Result<()> {
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
                // Every text from the export is neutralised: it opens in spreadsheets.
                let text = super::csv_text;
                w.write_record([
                    p.row.to_string(),
                    text(p.deal_id.as_deref().unwrap_or_default()),
                    text(&p.column),
                    text(&p.value),
                    kind.as_str().unwrap_or_default().to_owned(),
                    severity.as_str().unwrap_or_default().to_owned(),
                    text(&p.reason),
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

/// Imports an export into a tenant: all valid, or nothing (unless `--skip-invalid`).
pub async fn import(ctx: &Ctx, args: &ImportArgs) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant)?;
    let mapping = load_mapping(args.input.mapping.as_deref())?;
    let ingested = read_export(&args.input.input, &mapping, ctx.today, true)?;
    let report = &ingested.report;
    eprint!("{}", report::quality(report, 5));
    if report.rows_quarantined > 0 && !args.skip_invalid {
        bail!(
            "{} of {} rows are invalid (listed above; `dealwatch validate --input {}` lists all); nothing was imported. \
             Fix them, or pass --skip-invalid to import the valid rows and record the invalid ones",
            report.rows_quarantined,
            report.rows_read,
            args.input.input.display()
        );
    }
    let store = ctx.store().await?;
    let batch = crate::workflow::import_batch(&ingested, args.input.input.display().to_string(), chrono::Utc::now());
    eprintln!("writing {} deals to the {} store in one transaction…", batch.records.len(), store.backend());
    let outcome = store.import(&tenant, &batch).await.context("writing the import")?;
    let mut out = stdout();
    match ctx.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({
                    "tenant": tenant, "import_id": batch.import_id, "rows_read": report.rows_read,
                    "rows_rejected": batch.rejected.len(), "inserted": outcome.inserted, "updated": outcome.updated,
                    "unchanged": outcome.unchanged, "history": outcome.history,
                }),
            )?;
            writeln!(out)?;
        }
        _ => writeln!(
            out,
            "Imported into {tenant} ({}): {} new, {} updated, {} unchanged deals; {} changes recorded in history; {} invalid rows recorded (import {})",
            store.backend(),
            outcome.inserted,
            outcome.updated,
            outcome.unchanged,
            outcome.history,
            batch.rejected.len(),
            batch.import_id
        )?,
    }
    Ok(out.flush()?)
}

/// One Salesforce sync pass for a tenant, then its queued follow-up tasks.
pub async fn sync(ctx: &Ctx, args: &crate::cli::SyncArgs) -> anyhow::Result<()> {
    use salesforce::sync::Mode;
    let tenant = TenantId::parse(&args.tenant)?;
    let orgs = salesforce::Orgs::new(&ctx.settings)?;
    let Some(connection) = orgs.get(&tenant) else {
        bail!(
            "tenant {tenant} has no Salesforce org: configure [salesforce.tenants.{tenant}] (see README.md, Salesforce)"
        );
    };
    let store = ctx.store().await?;
    store.ensure_tenant(&tenant, tenant.as_str()).await?;
    let mode = if args.full { Mode::Full } else { Mode::Incremental };
    let channels = ctx.settings.alert_channels();
    let pass = salesforce::pass(store.as_ref(), &connection, mode, &ctx.texts, &channels, ctx.now).await?;
    let (report, tasks) = (&pass.sync, &pass.tasks);
    let mut out = stdout();
    match ctx.format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({ "tenant": tenant, "sync": report, "tasks": tasks }),
            )?;
            writeln!(out)?;
        }
        _ => writeln!(
            out,
            "Synced {tenant} with Salesforce: {} read ({} new, {} updated, {} unchanged, {} invalid); {} scored, {} alerts; \
             {} risk-field records written, {} unchanged, {} refused; {} tasks written",
            report.read,
            report.inserted,
            report.updated,
            report.unchanged,
            report.rejected,
            report.scored,
            report.alerts,
            report.write_back.written,
            report.write_back.unchanged,
            report.write_back.failed,
            tasks.written
        )?,
    }
    for (id, why) in &report.write_back.failures {
        eprintln!("refused: {id}: {why}");
    }
    Ok(out.flush()?)
}

/// Applies the migrations (opening the store does) and says where.
pub async fn migrate(ctx: &Ctx) -> anyhow::Result<()> {
    // Migrating is the owner's work: the owner's URL is fine here, where it serves nothing.
    let url = ctx.settings.database_url();
    let store = store::open_with(&url, ctx.settings.database.migration_url.as_deref(), true)
        .await
        .with_context(|| format!("opening the store at {}", redact_url(&url)))?;
    store.ping().await?;
    println!("{} store at {} is migrated", store.backend(), redact_url(&ctx.settings.database_url()));
    Ok(())
}
