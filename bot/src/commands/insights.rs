//! `dealwatch insights`: what changed in the pipeline, only what changed for real.

use std::io::Write as _;

use engine::asof::View;
use engine::insights::InsightConfig;
use engine::model::TrainedModel;

use super::{Ctx, load, stdout};
use crate::cli::{Format, InsightsArgs};
use crate::report;
use crate::workflow::champion_model;

pub async fn insights(ctx: &Ctx, args: &InsightsArgs) -> anyhow::Result<()> {
    let loaded = load(ctx, &args.source, args.mapping.as_deref()).await?;
    let dataset = &loaded.dataset;
    let model = match &loaded.tenant {
        Some((store, tenant)) => match champion_model(store.as_ref(), tenant).await {
            Ok(model) => Some(model),
            Err(e) => {
                eprintln!("warning: {e:#}; the risk-based insights are left out");
                None
            }
        },
        None => {
            let view = View::new(dataset, Some(ctx.as_of));
            match TrainedModel::train(dataset, &view.closed, view.as_of, &ctx.train_config(&args.model)) {
                Ok(model) => Some(model),
                Err(e) => {
                    eprintln!("warning: no model ({e}); the risk-based insights are left out");
                    None
                }
            }
        }
    };
    let config = InsightConfig { fdr: args.fdr, ..InsightConfig::default() };
    let insights = crate::workflow::insights(dataset, ctx.as_of, model.as_ref(), &ctx.texts, &config);
    let mut out = stdout();
    match ctx.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &insights)?;
            writeln!(out)?;
        }
        Format::Table | Format::Csv => write!(out, "{}", report::insights(&insights))?,
    }
    Ok(out.flush()?)
}

/// `dealwatch ask`: a plain-English question answered through the chat path, as an admin or as
/// `--user`; `--format json` prints the typed reading with the answer.
pub async fn ask(ctx: &Ctx, args: &crate::cli::AskArgs) -> anyhow::Result<()> {
    use crate::server::tenants::Scope;
    use store::{Role, TenantId, User};
    let tenant = TenantId::parse(&args.tenant)?;
    let store = ctx.store().await?;
    if store.tenant(&tenant).await?.is_none() {
        anyhow::bail!("there is no tenant {tenant}: `dealwatch demo` creates `demo`, `dealwatch import` any other");
    }
    let users = store.users(&tenant).await?;
    let (user, scope) = match &args.user {
        Some(id) => {
            let user = users
                .iter()
                .find(|u| &u.user_id == id)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("tenant {tenant} has no user {id:?}"))?;
            let scope = Scope::for_user(&users, &user.user_id, user.role);
            (user, scope)
        }
        None => (User::named("cli", "dealwatch ask", Role::Admin), Scope::All),
    };
    // The question path runs in-process, on the services alone (no server, no CRM).
    let crm = std::sync::Arc::new(service::crm::NoCrm);
    let state = service::Services::new(ctx.settings.clone(), store, ctx.texts.clone(), crm)?;
    let question = args.question.join(" ");
    let asked = crate::chat::ask::ask(&state, &tenant, &user, scope, &question, ctx.as_of, None, "cli").await?;
    state.audit.flush().await;
    let mut out = stdout();
    match ctx.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &asked)?;
            writeln!(out)?;
        }
        Format::Table | Format::Csv => {
            writeln!(out, "{}", asked.answer)?;
            if !asked.options.is_empty() {
                for o in &asked.options {
                    writeln!(out, "  • {}", o.label)?;
                }
            }
            if !asked.understood.is_empty() {
                writeln!(out, "\n{}", asked.understood)?;
            }
        }
    }
    Ok(out.flush()?)
}
