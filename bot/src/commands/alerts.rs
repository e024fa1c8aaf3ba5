//! `dealwatch alerts` (deliver the outbox once, list a tenant's alerts) and `dealwatch jobs`
//! (run what is due, show the schedule and a tenant's runs).

use std::io::Write;

use anyhow::Context;

use super::Ctx;
use crate::alerts::{AlertQuery, AlertState};
use crate::cli::{AlertsCommand, Format, JobsCommand};
use store::TenantId;

pub async fn alerts(ctx: &Ctx, command: &AlertsCommand) -> anyhow::Result<()> {
    let store = ctx.store().await?;
    match command {
        AlertsCommand::Deliver => {
            let sender = crate::wiring::sender(&ctx.settings, store)?;
            let report = sender.deliver_due(chrono::Utc::now()).await.context("delivering alerts")?;
            match ctx.format {
                Format::Json => println!("{}", serde_json::to_string(&report)?),
                _ => println!(
                    "sent {}, found already delivered {}, failed (will retry) {}, escalated {}",
                    report.sent, report.recovered, report.failed, report.escalated
                ),
            }
        }
        AlertsCommand::List(args) => {
            let tenant = TenantId::parse(&args.tenant)?;
            let states = match &args.state {
                None => Vec::new(),
                Some(s) => vec![AlertState::parse(s).with_context(|| {
                    format!("unknown state {s:?}: use pending, sending, sent, failed, escalated or suppressed")
                })?],
            };
            let query = AlertQuery { states, limit: Some(args.limit), ..AlertQuery::default() };
            let alerts = store.alerts(&tenant, &query).await?;
            let mut out = super::stdout();
            match ctx.format {
                Format::Json => writeln!(out, "{}", serde_json::to_string(&alerts)?)?,
                _ => {
                    for a in &alerts {
                        writeln!(
                            out,
                            "{} {} {:<15} {:<10} {:<8} {:<10} to {} attempts {}{}",
                            a.created_at.format("%Y-%m-%d %H:%M"),
                            a.priority.as_str(),
                            a.kind.as_str(),
                            a.subject,
                            a.channel,
                            a.state.as_str(),
                            a.recipient,
                            a.attempts,
                            a.last_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
                        )?;
                    }
                }
            }
            out.flush()?;
        }
    }
    Ok(())
}

pub async fn jobs(ctx: &Ctx, command: &JobsCommand) -> anyhow::Result<()> {
    let mut out = super::stdout();
    match command {
        JobsCommand::Schedule => {
            for spec in crate::jobs::REGISTRY {
                writeln!(out, "{:<16} {:<18} {}", spec.job.as_str(), spec.schedule, spec.what)?;
            }
        }
        JobsCommand::RunDue => {
            let store = ctx.store().await?;
            let scheduler = scheduler(ctx, store.clone())?;
            let ran = scheduler.run_due(ctx.now).await?;
            match ctx.format {
                Format::Json => writeln!(out, "{}", serde_json::to_string(&ran)?)?,
                _ if ran.is_empty() => writeln!(out, "nothing due at {}", ctx.now)?,
                _ => {
                    for r in &ran {
                        let verdict = if r.ok { "done" } else { "FAILED" };
                        writeln!(out, "{} {:<16} due {} {verdict}: {}", r.tenant, r.job, r.due, r.result)?;
                    }
                }
            }
        }
        JobsCommand::List(args) => {
            let store = ctx.store().await?;
            let runs = store.job_runs(&TenantId::parse(&args.tenant)?, args.limit).await?;
            match ctx.format {
                Format::Json => writeln!(out, "{}", serde_json::to_string(&runs)?)?,
                _ => {
                    for r in &runs {
                        let due = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(r.due_ms).unwrap_or_default();
                        let detail = r.last_error.clone().or_else(|| r.result.as_ref().map(ToString::to_string));
                        writeln!(
                            out,
                            "{due} {:<16} {:<8} attempts {} {}",
                            r.job,
                            r.state,
                            r.attempts,
                            detail.unwrap_or_default()
                        )?;
                    }
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The scheduler with the service's jobs, as configured.
pub fn scheduler(ctx: &Ctx, store: std::sync::Arc<dyn store::Store>) -> anyhow::Result<crate::jobs::Scheduler> {
    let crm = crate::wiring::orgs(&ctx.settings)?;
    Ok(crate::wiring::scheduler(&ctx.settings, store, ctx.texts.clone(), crm, ctx.threads))
}
