//! `dealwatch demo`: the whole product on synthetic data, on a fresh machine, in seconds.
//!
//! Generates a messy export, imports it into the store (SQLite under the data directory unless
//! configured otherwise) as tenant `demo` with the invalid rows recorded, evaluates, trains and
//! stores a model, scores the pipeline into the store, and prints the report. With `--serve` it
//! then runs the service on that store and prints a token and curl commands to try.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use engine::asof::{SplitKind, View};
use engine::eval::{EvalConfig, evaluate};
use engine::generate::{GenerateConfig, generate};
use engine::model::{ModelKind, TrainConfig, TrainedModel};
use engine::score::Scorer;

use super::{Ctx, stdout};
use crate::cli::DemoArgs;
use crate::report;
use crate::resources::load_mapping;
use crate::workflow::{rank_open, score_update, store_model, tenant_dataset};
use store::{Role, Store, TenantId, User};

pub const DEMO_TENANT: &str = "demo";

pub async fn demo(ctx: Ctx, args: &DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut config = GenerateConfig::new(args.deals, args.seed, ctx.as_of);
    config.messy = true;
    let mut csv = Vec::with_capacity(args.deals * 200);
    let summary = generate(&config, &mut csv)?;
    let mapping = load_mapping(Some("generated"))?;
    let today = ctx.today.max(ctx.as_of);
    let ingested = engine::ingest::ingest(&csv[..], &mapping.mapping, Vec::new(), engine::ingest::Context { today })?;
    let store = ctx.store().await?;
    let tenant = TenantId::parse(DEMO_TENANT)?;
    let mut out = stdout();
    writeln!(
        out,
        "Dealwatch demo: a synthetic CRM export of {} deals as of {} (seed {}), written messy on purpose.\n",
        summary.deals, ctx.as_of, args.seed
    )?;
    write!(out, "{}", report::quality(&ingested.report, 2))?;

    // Import like `dealwatch import --skip-invalid`: valid rows stored, invalid ones recorded.
    let batch = crate::workflow::import_batch(&ingested, "dealwatch demo".into(), chrono::Utc::now());
    let imported = store.import(&tenant, &batch).await.context("importing the demo data")?;
    store.ensure_tenant(&tenant, "Demo Inc").await?;
    writeln!(
        out,
        "  stored in the {} store as tenant {tenant}: {} new, {} updated, {} unchanged; {} invalid rows recorded\n",
        store.backend(),
        imported.inserted,
        imported.updated,
        imported.unchanged,
        batch.rejected.len()
    )?;
    let dataset = tenant_dataset(store.as_ref(), &tenant).await?;
    add_demo_users(store.as_ref(), &tenant, &dataset).await?;

    let train =
        TrainConfig { kind: ModelKind::Additive, seed: args.seed, threads: ctx.threads, ..TrainConfig::default() };
    let eval_report = evaluate(
        &dataset,
        Some(ctx.as_of),
        &EvalConfig { split: SplitKind::Time, test_fraction: 0.25, train: train.clone() },
    )?;
    write!(out, "{}", report::eval(&eval_report))?;
    writeln!(out)?;

    let view = View::new(&dataset, Some(ctx.as_of));
    let model = TrainedModel::train(&dataset, &view.closed, view.as_of, &train)?;
    write!(out, "{}", report::model(&model))?;
    let (status, reason) = store_model(store.as_ref(), &tenant, &model, chrono::Utc::now()).await?;
    writeln!(out, "  stored as {}: {reason}", status.as_str())?;
    let scorer = Scorer::new(&model, &dataset, &view, &ctx.texts);
    let mut work = scorer.work();
    let (ranked, pipeline) = rank_open(&scorer, &dataset, &view, &mut work);
    let updates =
        ranked.iter().map(|&(_, i)| score_update(&scorer.score(i, &mut work))).collect::<Result<Vec<_>, _>>()?;
    store.save_scores(&tenant, chrono::Utc::now(), view.as_of, &updates).await?;
    writeln!(out)?;
    write!(out, "{}", pipeline.text())?;
    writeln!(out, "\nRiskiest open deals:")?;
    for (rank, &(_, i)) in ranked.iter().take(args.top).enumerate() {
        write!(out, "{}", report::card(&scorer.score(i, &mut work), Some(rank + 1)))?;
    }
    writeln!(out, "\nDone in {:.1} s.", started.elapsed().as_secs_f64())?;
    if !args.serve {
        writeln!(
            out,
            "Next: `dealwatch demo --serve` runs the REST API on this data; `dealwatch score --tenant demo --deal Acme` shows one card."
        )?;
        return Ok(out.flush()?);
    }
    out.flush()?;
    drop(out);
    crate::wiring::serve(ctx.settings, store, ctx.texts, Some(tenant)).await
}

/// An admin, a manager per six reps and a user per rep, so roles can be tried on the API.
async fn add_demo_users(
    store: &dyn Store,
    tenant: &TenantId,
    dataset: &engine::dataset::Dataset,
) -> anyhow::Result<()> {
    let user = |id: &str, role, crm_owner: Option<&str>, manager: Option<String>| User {
        user_id: id.to_owned(),
        email: Some(format!("{id}@demo.dealwatch.test")),
        name: id.replace('_', " "),
        crm_owner: crm_owner.map(str::to_owned),
        role,
        manager_id: manager,
        time_zone: "UTC".into(),
        chat_ids: Default::default(),
    };
    store.upsert_user(tenant, &user("admin", Role::Admin, None, None)).await?;
    let Some(owner) = dataset.schema.owner_column() else { return Ok(()) };
    for rep in dataset.schema.categorical[owner].vocab.values() {
        // The generator's reps report to manager_⌈k/6⌉.
        let k: usize = rep.trim_start_matches("rep_").parse().unwrap_or(1);
        let manager = format!("manager_{}", k.div_ceil(6));
        store.upsert_user(tenant, &user(&manager, Role::Manager, None, None)).await?;
        store.upsert_user(tenant, &user(rep, Role::Rep, Some(rep), Some(manager))).await?;
    }
    Ok(())
}
