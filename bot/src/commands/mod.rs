//! The CLI commands. Each reads its inputs (a file or a tenant's store), calls the engine, and
//! writes results to stdout; the data-quality summary, warnings and progress go to stderr.

mod alerts;
mod data;
mod demo;
mod insights;
mod models;

use std::io::BufWriter;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use engine::dataset::Dataset;
use engine::model::TrainConfig;
use engine::texts::Texts;

use crate::cli::{Cli, Command, Format, ModelArgs, SourceArgs};
use crate::config::Settings;
use crate::report;
use crate::resources::{load_mapping, load_texts, read_export};
use store::{self, Store, TenantId};

/// What every command gets: read once, at start-up.
pub struct Ctx {
    pub today: NaiveDate,
    pub as_of: NaiveDate,
    /// The moment of `--as-of` (a date alone: its midnight UTC), else now.
    pub now: chrono::DateTime<chrono::Utc>,
    pub format: Format,
    pub texts: Texts,
    pub threads: usize,
    pub settings: Settings,
}

impl Ctx {
    /// Opens (and migrates) the configured store.
    pub async fn store(&self) -> anyhow::Result<Arc<dyn Store>> {
        let url = self.settings.database_url();
        let db = &self.settings.database;
        store::open_with(&url, db.migration_url.as_deref(), db.allow_rls_bypass)
            .await
            .with_context(|| format!("opening the store at {}", redact_url(&url)))
    }

    fn train_config(&self, model: &ModelArgs) -> TrainConfig {
        TrainConfig { kind: model.model, seed: model.seed, threads: self.threads, ..TrainConfig::default() }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(url) = cli.database {
        settings.database.url = Some(url);
    }
    // The service logs its requests; one-shot commands only their problems.
    let serving = matches!(cli.command, Command::Serve(_)) || matches!(&cli.command, Command::Demo(d) if d.serve);
    let listen = match &cli.command {
        Command::Serve(s) => s.listen,
        Command::Demo(d) => d.listen,
        _ => None,
    };
    if let Some(listen) = listen {
        settings.server.listen = listen;
    }
    crate::telemetry::init(&settings.log, if serving { &settings.log.level } else { "warn" });
    let today = chrono::Local::now().date_naive();
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    if let Some(dir) = cli.prompts {
        settings.prompts_dir = Some(dir);
    }
    let prompts = settings.prompts_dir.as_deref();
    let ctx = Ctx {
        today,
        as_of: cli.as_of.map_or(today, |a| a.date),
        now: cli.as_of.map_or_else(chrono::Utc::now, |a| a.at),
        format: cli.format,
        texts: load_texts(prompts)?,
        threads,
        settings,
    };
    match cli.command {
        Command::Demo(args) => demo::demo(ctx, &args).await,
        Command::Generate(args) => data::generate(&ctx, &args),
        Command::Validate(args) => data::validate(&ctx, &args),
        Command::Insights(args) => insights::insights(&ctx, &args).await,
        Command::Import(args) => data::import(&ctx, &args).await,
        Command::Sync(args) => data::sync(&ctx, &args).await,
        Command::Ask(args) => insights::ask(&ctx, &args).await,
        Command::Migrate => data::migrate(&ctx).await,
        Command::Eval(args) => models::eval(&ctx, &args).await,
        Command::Train(args) => models::train(&ctx, &args).await,
        Command::Score(args) => models::score(&ctx, &args).await,
        Command::Serve(_) => {
            let store = ctx.store().await?;
            crate::wiring::serve(ctx.settings, store, ctx.texts, None).await
        }
        Command::Token(args) => token(&ctx, &args).await,
        Command::Users(command) => users(&ctx, &command).await,
        Command::Alerts(command) => alerts::alerts(&ctx, &command).await,
        Command::Jobs(command) => alerts::jobs(&ctx, &command).await,
    }
}

/// Prints a bearer token for `args.sub` in `args.tenant`, signed with the first configured secret.
async fn token(ctx: &Ctx, args: &crate::cli::TokenArgs) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant)?;
    let sub = args.sub.trim();
    if sub.is_empty() {
        bail!("--sub must not be empty");
    }
    let store = ctx.store().await?;
    let Some(user) = store.user(&tenant, sub).await? else {
        bail!("there is no user {sub:?} in tenant {tenant}: a token is for a user of the users table");
    };
    let now = chrono::Utc::now();
    if args.revoke {
        store.revoke_tokens(&tenant, sub, now).await?;
        let entry = store::AuditEntry {
            at: now,
            actor: "dealwatch token".into(),
            action: "tokens.revoke".into(),
            target: Some(sub.to_owned()),
            details: None,
            request_id: None,
        };
        store.audit(&tenant, &[entry]).await?;
        println!("every token of {sub} in {tenant} issued until {} is refused from now on", now.to_rfc3339());
        return Ok(());
    }
    let Some(secret) = ctx.settings.auth.hs256_secrets.first() else {
        bail!(
            "no HS256 secret is configured: set [auth] hs256_secrets in the configuration or DEALWATCH_AUTH__HS256_SECRETS"
        );
    };
    let role = args.role.unwrap_or(user.role);
    if role > user.role {
        bail!("{sub} is a {} in {tenant}: a token cannot grant {role}", user.role);
    }
    let claims = crate::auth::Claims {
        sub: sub.to_owned(),
        tenant_id: tenant.to_string(),
        role,
        exp: now.timestamp() + i64::from(args.hours) * 3600,
        iat: Some(now.timestamp()),
        iss: None,
        aud: None,
    };
    let token = crate::auth::mint_hs256(secret, &claims).map_err(|e| anyhow::anyhow!("minting the token: {e}"))?;
    println!("{token}");
    Ok(())
}

/// `dealwatch users set|list`.
async fn users(ctx: &Ctx, command: &crate::cli::UsersCommand) -> anyhow::Result<()> {
    use crate::cli::UsersCommand;
    let store = ctx.store().await?;
    match command {
        UsersCommand::Set(args) => {
            let tenant = TenantId::parse(&args.tenant)?;
            let id = args.user.trim();
            if id.is_empty() {
                bail!("--user must not be empty");
            }
            if let Some(tz) = &args.time_zone {
                tz.parse::<chrono_tz::Tz>()
                    .map_err(|_| anyhow::anyhow!("--time-zone {tz:?} is not an IANA time zone"))?;
            }
            let existing = store.user(&tenant, id).await?;
            let Some(role) = args.role.or(existing.as_ref().map(|u| u.role)) else {
                bail!("{id} is not in tenant {tenant} yet: give their --role");
            };
            let mut user = existing.unwrap_or_else(|| store::User::named(id, id, role));
            user.role = role;
            let set = |field: &mut Option<String>, value: &Option<String>| {
                if let Some(v) = value {
                    *field = Some(v.trim().to_owned()).filter(|v| !v.is_empty());
                }
            };
            set(&mut user.email, &args.email);
            set(&mut user.crm_owner, &args.crm_owner);
            set(&mut user.manager_id, &args.manager);
            if let Some(name) = &args.name {
                user.name = name.trim().to_owned();
            }
            if let Some(tz) = &args.time_zone {
                user.time_zone = tz.clone();
            }
            store.ensure_tenant(&tenant, tenant.as_str()).await?;
            store.upsert_user(&tenant, &user).await?;
            let entry = store::AuditEntry {
                at: chrono::Utc::now(),
                actor: "dealwatch users".into(),
                action: "user.set".into(),
                target: Some(user.user_id.clone()),
                details: Some(serde_json::json!({ "role": user.role, "crm_owner": user.crm_owner })),
                request_id: None,
            };
            store.audit(&tenant, &[entry]).await?;
            println!("{} is a {} in {tenant}", user.user_id, user.role);
        }
        UsersCommand::List(args) => {
            let tenant = TenantId::parse(&args.tenant)?;
            let users = store.users(&tenant).await?;
            match ctx.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&users)?),
                _ => {
                    for u in users {
                        let owner = u.crm_owner.as_deref().unwrap_or("-");
                        let manager = u.manager_id.as_deref().unwrap_or("-");
                        println!("{}\t{}\towner {owner}\tmanager {manager}\t{}", u.user_id, u.role, u.time_zone);
                    }
                }
            }
        }
    }
    Ok(())
}

fn stdout() -> BufWriter<std::io::StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// Deals to work on, and the tenant they came from (if from the store).
pub struct Loaded {
    pub dataset: Dataset,
    pub tenant: Option<(Arc<dyn Store>, TenantId)>,
}

/// Reads deals from `--input` (validated, with the data-quality summary on stderr) or from
/// `--tenant`'s store, and warns when the as-of date lies far after the data.
async fn load(ctx: &Ctx, source: &SourceArgs, mapping: Option<&str>) -> anyhow::Result<Loaded> {
    let loaded = match (&source.input, &source.tenant) {
        (Some(input), _) => {
            let mapping = load_mapping(mapping)?;
            let ingested = read_export(input, &mapping, ctx.today, true)?;
            eprint!("{}", report::quality(&ingested.report, 3));
            if ingested.dataset.deals.is_empty() {
                bail!("no valid deals in {}", input.display());
            }
            Loaded { dataset: ingested.dataset, tenant: None }
        }
        (None, Some(tenant)) => {
            let tenant = TenantId::parse(tenant)?;
            let store = ctx.store().await?;
            let dataset = crate::workflow::tenant_dataset(store.as_ref(), &tenant).await?;
            Loaded { dataset, tenant: Some((store, tenant)) }
        }
        (None, None) => bail!("give --input FILE or --tenant ID"),
    };
    if let Some(latest) = loaded.dataset.latest_date()
        && (ctx.as_of - latest).num_days() > 90
    {
        eprintln!(
            "warning: the newest date in these deals is {latest}; as of {} every open deal looks very old. Pass --as-of {latest} to replay their own time.",
            ctx.as_of
        );
    }
    Ok(loaded)
}

/// A URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A text cell of a CSV export, safe to open in a spreadsheet: a value that begins like a
/// formula (`=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, so
/// `=HYPERLINK(…)` from the CRM is shown as text instead of run (OWASP's CSV injection advice).
pub fn csv_text(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::csv_text;

    #[test]
    fn export_cells_that_look_like_formulas_are_neutralised() {
        for (raw, cell) in [
            ("=HYPERLINK(\"https://evil.example\",\"click\")", "'=HYPERLINK(\"https://evil.example\",\"click\")"),
            ("+1+2", "'+1+2"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("Acme = Corp", "Acme = Corp"),
            ("", ""),
        ] {
            assert_eq!(csv_text(raw), cell, "{raw:?}");
        }
    }
}
