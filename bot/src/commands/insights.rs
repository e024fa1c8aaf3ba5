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
