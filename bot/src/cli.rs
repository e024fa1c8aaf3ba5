//! Command-line interface: `dealwatch <command>`.
//!
//! Results go to stdout (`--format json` for machines); progress, warnings and logs to stderr.
//! The date is read here, once: `--as-of` defaults to today and is passed down, so the engine
//! never looks at a clock.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "dealwatch",
    version,
    about = "Deal-risk scores that explain themselves, and pipeline insight, for B2B sales teams",
    after_help = "Start with `dealwatch demo`. Every command has --help."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Output format of results on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Replay history as of this date (YYYY-MM-DD): later outcomes are hidden, deals created
    /// later do not exist. Defaults to today. `jobs run-due` also takes a moment
    /// (2026-06-08T08:05:00Z; a date alone is 00:00 UTC).
    #[arg(long, global = true, value_name = "DATE", value_parser = parse_as_of)]
    pub as_of: Option<AsOf>,

    /// Directory with factors.toml, recommendations.toml and questions/, alerts/ and slack/
    /// templates, instead of the bundled ones (each file it lacks stays bundled).
    #[arg(long, global = true, value_name = "DIR")]
    pub prompts: Option<PathBuf>,

    /// Worker threads for model fitting (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,

    /// Configuration file (default: dealwatch.toml in the working directory, if present).
    /// Environment variables DEALWATCH_<SECTION>__<KEY> override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Database URL: sqlite://FILE or postgres://… (default: data/dealwatch.db).
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
}

/// `--as-of`: a date, or a moment (whose UTC date is the date).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    pub date: NaiveDate,
    pub at: chrono::DateTime<chrono::Utc>,
}

fn parse_as_of(s: &str) -> Result<AsOf, String> {
    let parsed = if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        AsOf { date, at: date.and_time(chrono::NaiveTime::MIN).and_utc() }
    } else {
        match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => {
                let at = t.with_timezone(&chrono::Utc);
                AsOf { date: at.date_naive(), at }
            }
            Err(_) => {
                return Err(format!("{s:?} is neither a date (2024-03-31) nor a moment (2024-03-31T08:00:00Z)"));
            }
        }
    };
    let range = engine::domain::supported_dates();
    if !range.contains(&parsed.date) {
        return Err(format!("{s:?} is outside the dates Dealwatch works with ({} to {})", range.start(), range.end()));
    }
    Ok(parsed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate, train, score and print a pipeline report on synthetic data, in seconds.
    Demo(DemoArgs),
    /// Write a realistic synthetic CRM export with planted, documented effects.
    Generate(GenerateArgs),
    /// Check an export against its mapping and print the data-quality report.
    Validate(InputArgs),
    /// Train on the earlier (or a random) part of the closed deals and report on the rest.
    Eval(EvalArgs),
    /// Train a model on every closed deal and write it as JSON.
    Train(TrainArgs),
    /// Score every open deal with its risk factors, actions and similar won deals.
    Score(ScoreArgs),
    /// Report what changed for real: segment win rates, high performers, reps, pipeline health,
    /// anomalies and data quality.
    Insights(InsightsArgs),
    /// Import an export into a tenant's store: upsert by CRM id, in one transaction.
    Import(ImportArgs),
    /// Sync a tenant with its Salesforce org ([salesforce.tenants.<id>]) once: read the
    /// Opportunities changed since the last sync (all with --full), import, rescore, write back.
    Sync(SyncArgs),
    /// Answer a plain-English question about a tenant's pipeline, as the chat bot would:
    /// `dealwatch ask --tenant demo "what's our win rate in EdTech this quarter?"`.
    Ask(AskArgs),
    /// Apply the database migrations and exit.
    Migrate,
    /// Run the HTTP service (REST API, health, metrics).
    Serve(ServeArgs),
    /// Mint an API token (HS256, with the first configured secret) for a user of a tenant, or
    /// revoke the user's tokens.
    Token(TokenArgs),
    /// A tenant's people: who may use Dealwatch, with which role, owning which CRM deals.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The alert outbox: deliver what is due, or list alerts.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Scheduled jobs: run what is due, list the schedule or a tenant's runs.
    #[command(subcommand)]
    Jobs(JobsCommand),
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a person to a tenant, or change them (fields not given keep their value). Their
    /// role is what their tokens and chat identities may do from then on.
    Set(UserSetArgs),
    /// A tenant's people.
    List(UsersListArgs),
}

#[derive(Debug, Args)]
pub struct UserSetArgs {
    #[arg(long)]
    pub tenant: String,
    /// Their id: what tokens name as `sub` (their CRM owner name or e-mail, say).
    #[arg(long)]
    pub user: String,
    /// rep (their own deals), manager (their team's) or admin (the tenant's).
    #[arg(long, value_parser = parse_role)]
    pub role: Option<store::Role>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    /// The deal owner they are in the CRM (a rep's own deals are those).
    #[arg(long)]
    pub crm_owner: Option<String>,
    /// The user id of their manager.
    #[arg(long)]
    pub manager: Option<String>,
    /// An IANA time zone (Europe/Berlin) for their digests and quiet hours.
    #[arg(long)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Args)]
pub struct UsersListArgs {
    #[arg(long)]
    pub tenant: String,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Run every job due at --as-of (default: now) for every tenant, once: a run already done
    /// (by the server or another replica) is not repeated. For cron users and tests.
    RunDue,
    /// The job registry and its schedules.
    Schedule,
    /// A tenant's latest runs.
    List(JobsListArgs),
}

#[derive(Debug, Args)]
pub struct JobsListArgs {
    #[arg(long)]
    pub tenant: String,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Deliver every alert due now (what `dealwatch serve` does every few seconds), then exit.
    Deliver,
    /// List a tenant's alerts, newest first.
    List(AlertsListArgs),
}

#[derive(Debug, Args)]
pub struct AlertsListArgs {
    #[arg(long)]
    pub tenant: String,
    /// Only alerts in this state: pending, sending, sent, failed, escalated, suppressed.
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct InsightsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Field mapping for --input.
    #[arg(long, short)]
    pub mapping: Option<String>,
    /// With --input, the model trained to score the open deals (a tenant uses its champion).
    #[command(flatten)]
    pub model: ModelArgs,
    /// False-discovery rate: the expected share of reported changes that are not real.
    #[arg(long, default_value_t = 0.05, value_parser = parse_fdr)]
    pub fdr: f64,
}

fn parse_fdr(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("{s:?} is not a rate between 0 and 1 (e.g. 0.05)")),
    }
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The tenant the token is for.
    #[arg(long)]
    pub tenant: String,
    /// The user (`sub` claim): their CRM owner name or e-mail, as stored in the users table.
    #[arg(long)]
    pub sub: String,
    /// rep (their own deals), manager (their team's) or admin (the tenant's); default: the
    /// user's role. A token never grants more than the user's role when it is used.
    #[arg(long, value_parser = parse_role)]
    pub role: Option<store::Role>,
    /// Hours until the token expires (at most a week).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=168))]
    pub hours: u32,
    /// Instead of minting one: refuse from now on every token the user was issued until now.
    #[arg(long, conflicts_with_all = ["role", "hours"])]
    pub revoke: bool,
}

fn parse_role(s: &str) -> Result<store::Role, String> {
    store::Role::parse(s).ok_or_else(|| format!("unknown role {s:?}; use rep, manager or admin"))
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default from [server] listen, 127.0.0.1:8080; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

/// Where deals come from: an export file, or a tenant's store.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SourceArgs {
    /// The CRM export (CSV).
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// A tenant in the store (see `dealwatch import`).
    #[arg(long)]
    pub tenant: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The tenant whose org to sync.
    #[arg(long)]
    pub tenant: String,
    /// Read every Opportunity, not only those changed since the last sync.
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// The tenant whose pipeline to ask about.
    #[arg(long)]
    pub tenant: String,
    /// Ask as this user (their role decides which deals they may see); default: an admin.
    #[arg(long, value_name = "USER_ID")]
    pub user: Option<String>,
    /// The question (several words need no quotes).
    #[arg(required = true, num_args = 1.., trailing_var_arg = true)]
    pub question: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tenant to import into (created if new).
    #[arg(long)]
    pub tenant: String,
    #[command(flatten)]
    pub input: InputArgs,
    /// Store the valid rows and record every invalid one with its reason, instead of importing
    /// nothing when any row is invalid.
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Debug, Args)]
pub struct InputArgs {
    /// The CRM export (CSV).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Field mapping: a TOML file, or a bundled name (generated, skygeni, maven).
    /// Default: generated, the format `dealwatch generate` writes.
    #[arg(long, short)]
    pub mapping: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// additive (explainable, default), logistic, or segment-rates (the baseline).
    #[arg(long, default_value = "additive", value_parser = parse_model)]
    pub model: engine::model::ModelKind,
    /// Seed for folds and snapshots; the same seed and data give the same model.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

fn parse_model(s: &str) -> Result<engine::model::ModelKind, String> {
    engine::model::ModelKind::parse(s)
        .ok_or_else(|| format!("unknown model {s:?}; use additive, logistic or segment-rates"))
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// After the report, start the service on the demo data and print a token and examples.
    #[arg(long)]
    pub serve: bool,
    /// With --serve: address to listen on.
    #[arg(long, value_name = "ADDR", requires = "serve")]
    pub listen: Option<std::net::SocketAddr>,
    /// Deals to generate.
    #[arg(long, default_value_t = 5_000)]
    pub deals: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// How many of the riskiest deals to show.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(long, default_value_t = 5_000)]
    pub deals: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output CSV file.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Write a messy export: BOM, CRLF, currency amounts, padded cells, and planted bad rows.
    #[arg(long)]
    pub messy: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Field mapping for --input (see `validate --help`).
    #[arg(long, short)]
    pub mapping: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// time: train on deals that closed earlier, test on later ones; random: a seeded split.
    #[arg(long, value_enum, default_value_t = SplitArg::Time)]
    pub split: SplitArg,
    /// Share of closed deals held out for testing.
    #[arg(long, default_value_t = 0.25)]
    pub test_fraction: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    Time,
    Random,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Field mapping for --input.
    #[arg(long, short)]
    pub mapping: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where to write the model JSON (required with --input; with --tenant the model is stored).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Field mapping for --input.
    #[arg(long, short)]
    pub mapping: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// A model written by `dealwatch train`. Without it: with --tenant the tenant's champion
    /// model; with --input one trained on the export.
    #[arg(long)]
    pub model_file: Option<PathBuf>,
    /// Score only this deal and show its full risk card.
    #[arg(long)]
    pub deal: Option<String>,
    /// With --format table, how many deals to list (riskiest first). JSON and CSV list all.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}
