//! `dealwatch alerts`: deliver the outbox once, or list a tenant's alerts.

use std::io::Write;

use anyhow::Context;

use super::Ctx;
use crate::alerts::deliver::Sender;
use crate::alerts::{AlertQuery, AlertState};
use crate::cli::{AlertsCommand, Format};
use crate::store::TenantId;

pub async fn alerts(ctx: &Ctx, command: &AlertsCommand) -> anyhow::Result<()> {
    let store = ctx.store().await?;
    match command {
        AlertsCommand::Deliver => {
            let sender = Sender::from_settings(&ctx.settings, store)?;
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
