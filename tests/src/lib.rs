//! Helpers for Dealwatch's end-to-end tests: the real `dealwatch` binary, generated data, and
//! the third-party data sets in `../shared/data`.

pub mod fake_discord;
pub mod fake_salesforce;
pub mod fake_slack;
pub mod fake_smtp;
pub mod fake_socket;
pub mod fake_teams;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::NaiveDate;
use engine::asof::View;
use engine::dataset::Dataset;
use engine::generate::{GenerateConfig, GenerateSummary, generate};
use engine::ingest::{Context, Ingested, ingest};
use engine::mapping::Mapping;
use engine::model::{ModelKind, TrainConfig, TrainedModel};
use engine::score::{RiskScore, Scorer};
use engine::texts::Texts;

/// Helpers of the benchmarks (`tests/benches`), which print figures rather than assert them.
pub mod bench {
    /// A number from the environment (`DEALS=10000`), or `default`.
    pub fn env_usize(name: &str, default: usize) -> usize {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    /// "n=500 p50 1.7 ms, p95 …, p99 …, max …" of latencies in milliseconds, with `decimals`.
    pub fn percentiles(mut ms: Vec<f64>, decimals: usize) -> String {
        ms.sort_by(f64::total_cmp);
        let at = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
        let d = decimals;
        format!(
            "n={} p50 {:.d$} ms, p95 {:.d$} ms, p99 {:.d$} ms, max {:.d$} ms",
            ms.len(),
            at(0.5),
            at(0.95),
            at(0.99),
            ms[ms.len() - 1]
        )
    }
}

/// The mapping `dealwatch generate` output is read with.
pub const GENERATED_MAPPING: &str = include_str!("../../bot/mappings/generated.toml");

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `dealwatch` binary built by this `cargo test` run (the `bot` package's integration test
/// makes Cargo build it).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/it-<hash> → target/<profile>/dealwatch
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = dir.join(format!("dealwatch{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} is missing: run the whole workspace's tests (`cargo test --workspace`)", bin.display());
    let built = modified(&bin);
    let root = repo_root();
    // The sources of every crate the binary is built from (not what tests write beside them).
    let mut dirs = vec![root.join("bot/src"), root.join("bot/mappings"), root.join("engine/src"), root.join("prompts")];
    for entry in std::fs::read_dir(root.join("bot")).into_iter().flatten().flatten() {
        if entry.path().join("Cargo.toml").is_file() {
            dirs.push(entry.path().join("src"));
        }
    }
    for dir in dirs {
        if let Some(newer) = newest_file(&dir).filter(|(t, _)| *t > built) {
            panic!(
                "{} is older than {}: `cargo test -p tests` does not rebuild it; run `cargo test --workspace`",
                bin.display(),
                newer.1.display()
            );
        }
    }
    bin
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH)
}

fn newest_file(dir: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let candidate = if path.is_dir() { newest_file(&path) } else { Some((modified(&path), path)) };
        if let Some(c) = candidate.filter(|c| newest.as_ref().is_none_or(|n| c.0 > n.0)) {
            newest = Some(c);
        }
    }
    newest
}

/// A `dealwatch` command with a fixed environment (no logging noise).
pub fn dealwatch() -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_remove("DEALWATCH_LOG");
    cmd
}

/// Runs `dealwatch args…`, asserting success; returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = dealwatch().args(args).output().expect("run dealwatch");
    assert!(
        out.status.success(),
        "dealwatch {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `dealwatch args…`, asserting failure; returns the output.
pub fn run_err(args: &[&str]) -> Output {
    let out = dealwatch().args(args).output().expect("run dealwatch");
    assert!(!out.status.success(), "dealwatch {args:?} should fail but printed:\n{}", text(&out.stdout));
    out
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a YYYY-MM-DD date")
}

/// A generated export in memory.
pub fn generated_csv(
    deals: usize,
    seed: u64,
    as_of: NaiveDate,
    messy: bool,
    keep_truth: bool,
) -> (Vec<u8>, GenerateSummary) {
    let mut config = GenerateConfig::new(deals, seed, as_of);
    config.messy = messy;
    config.keep_truth = keep_truth;
    let mut csv = Vec::with_capacity(deals * 200);
    let summary = generate(&config, &mut csv).expect("generate into memory");
    (csv, summary)
}

/// Ingests CSV bytes with the generated mapping.
pub fn ingest_generated(csv: &[u8], today: NaiveDate) -> Ingested {
    let mapping = Mapping::from_toml(GENERATED_MAPPING).expect("generated mapping");
    ingest(csv, &mapping, Vec::new(), Context { today }).expect("ingest generated data")
}

/// A clean generated dataset.
pub fn generated_dataset(deals: usize, seed: u64, as_of: NaiveDate) -> Dataset {
    ingest_generated(&generated_csv(deals, seed, as_of, false, false).0, as_of).dataset
}

/// A file in `../shared/data`, or `None` (with a printed notice) when `../shared` is absent.
/// CI sets `DEALWATCH_REQUIRE_SHARED=1`, and then a missing file fails the test instead.
pub fn shared_data(relative: &str) -> Option<PathBuf> {
    let base = std::env::var_os("DEALWATCH_SHARED_DIR").map_or_else(|| repo_root().join("../shared"), PathBuf::from);
    let path = base.join("data").join(relative);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("DEALWATCH_REQUIRE_SHARED").is_ok_and(|v| v == "1") {
        panic!("{} is required (DEALWATCH_REQUIRE_SHARED=1) but missing", path.display());
    }
    eprintln!("notice: skipping, {} is not present", path.display());
    None
}

/// A scratch directory removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// Writes `contents` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path.to_string_lossy().into_owned()
}

/// The bundled prompt texts.
pub fn texts() -> Texts {
    Texts::from_toml(include_str!("../../prompts/factors.toml"), include_str!("../../prompts/recommendations.toml"))
        .expect("bundled prompts")
}

/// Trains a `kind` model as of `as_of` and returns it with every open deal's full risk card.
pub fn score_open(dataset: &Dataset, as_of: NaiveDate, kind: ModelKind) -> (TrainedModel, Vec<RiskScore>) {
    let view = View::new(dataset, Some(as_of));
    let model = TrainedModel::train(dataset, &view.closed, view.as_of, &TrainConfig { kind, ..TrainConfig::default() })
        .expect("train");
    let texts = texts();
    let scorer = Scorer::new(&model, dataset, &view, &texts);
    let mut work = scorer.work();
    let scores = view.open.iter().map(|&i| scorer.score(i, &mut work)).collect();
    (model, scores)
}

/// A second within the last four minutes at which `body` has not been signed with `secret` before
/// in this process. Senders sign each delivery at its own time; the same signature twice is a
/// replay the server refuses, so tests that sign identical bodies in quick succession (a retry,
/// a duplicate notice) must not land on the same second.
pub fn fresh_second(secret: &str, body: &str) -> i64 {
    use std::collections::HashSet;
    use std::hash::{Hash, Hasher};
    static SIGNED: std::sync::Mutex<Option<HashSet<(i64, u64)>>> = std::sync::Mutex::new(None);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (secret, body).hash(&mut h);
    let digest = h.finish();
    let now = chrono::Utc::now().timestamp();
    let mut signed = SIGNED.lock().unwrap_or_else(|e| e.into_inner());
    let signed = signed.get_or_insert_with(HashSet::new);
    (0..240)
        .map(|back| now - back)
        .find(|ts| signed.insert((*ts, digest)))
        .expect("fewer than 240 identical requests in four minutes")
}

/// A store for a test: SQLite in a temporary directory, or PostgreSQL in a database of its own.
pub struct TestStore {
    pub store: std::sync::Arc<dyn bot::store::Store>,
    /// The database URL the store uses (for the server and CLI under test).
    pub url: String,
    /// PostgreSQL: the owner URL for migrations (`DEALWATCH_TEST_PG_URL` with the test database).
    pub migration_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgCleanup>,
}

/// Drops a test's PostgreSQL database when dropped.
struct PgCleanup {
    admin_url: String,
    name: String,
}

impl Drop for PgCleanup {
    fn drop(&mut self) {
        // On a thread of its own: Drop cannot await.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

impl TestStore {
    /// The same database for a second user (a server under test); the original keeps it.
    pub fn sharing(&self) -> TestStore {
        TestStore {
            store: self.store.clone(),
            url: self.url.clone(),
            migration_url: self.migration_url.clone(),
            _dir: None,
            _pg: None,
        }
    }
}

/// A database of its own with nothing in it yet, not even the schema (for tests of migrations).
pub struct EmptyDatabase {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The URL the service connects with.
    pub url: String,
    /// The URL migrations run with (PostgreSQL: the tables' owner; SQLite: the same file).
    pub migration_url: String,
    dir: Option<tempfile::TempDir>,
    pg: Option<PgCleanup>,
}

impl EmptyDatabase {
    /// The store on it, migrated to the latest schema.
    pub async fn open(self) -> TestStore {
        let migrations = (self.backend == "postgres").then_some(self.migration_url.as_str());
        let store = bot::store::open(&self.url, migrations).await.expect("open the test store");
        let migration_url = migrations.map(str::to_owned);
        TestStore { store, url: self.url, migration_url, _dir: self.dir, _pg: self.pg }
    }
}

fn sqlite_database() -> EmptyDatabase {
    let dir = scratch();
    let url = format!("sqlite://{}", dir.path().join("dealwatch.db").display());
    EmptyDatabase { backend: "sqlite", migration_url: url.clone(), url, dir: Some(dir), pg: None }
}

pub async fn sqlite_store() -> TestStore {
    sqlite_database().open().await
}

/// The login role tests connect as: a member of `dealwatch_app`, owning nothing.
pub const PG_APP_ROLE: &str = "dealwatch_test_app";

/// A fresh PostgreSQL database, or `None` (with a notice) when `DEALWATCH_TEST_PG_URL` is unset.
async fn pg_database() -> Option<EmptyDatabase> {
    use sqlx::Connection;
    let Ok(admin_url) = std::env::var("DEALWATCH_TEST_PG_URL") else {
        eprintln!("notice: skipping PostgreSQL, DEALWATCH_TEST_PG_URL is not set");
        return None;
    };
    let name = format!("dealwatch_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to DEALWATCH_TEST_PG_URL");
    // Roles are cluster-wide and tests run in parallel processes: create them under a lock.
    sqlx::query("SELECT pg_advisory_lock(724207)").execute(&mut admin).await.expect("lock");
    let roles = format!(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dealwatch_app') THEN CREATE ROLE dealwatch_app NOLOGIN; END IF; \
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_APP_ROLE}') THEN \
             CREATE ROLE {PG_APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE dealwatch_app; END IF; \
         END $$"
    );
    sqlx::query(sqlx::AssertSqlSafe(roles)).execute(&mut admin).await.expect("create roles");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .expect("create database");
    sqlx::query("SELECT pg_advisory_unlock(724207)").execute(&mut admin).await.expect("unlock");
    let with_db = |url: &str, user: Option<&str>| -> String {
        let mut u = url::Url::parse(url).expect("a postgres:// URL");
        u.set_path(&name);
        if let Some(user) = user {
            u.set_username(user).expect("URL with a user");
            u.set_password(None).expect("URL without a password");
        }
        u.to_string()
    };
    Some(EmptyDatabase {
        backend: "postgres",
        url: with_db(&admin_url, Some(PG_APP_ROLE)),
        migration_url: with_db(&admin_url, None),
        dir: None,
        pg: Some(PgCleanup { admin_url, name }),
    })
}

/// A PostgreSQL store in a fresh database, or `None` (with a notice) when
/// `DEALWATCH_TEST_PG_URL` is unset. `.ci/run` sets it, so in CI these tests always run.
pub async fn pg_store() -> Option<TestStore> {
    Some(pg_database().await?.open().await)
}

/// An empty database of each kind: SQLite, and PostgreSQL when `DEALWATCH_TEST_PG_URL` is set.
pub async fn each_empty_database() -> Vec<EmptyDatabase> {
    let mut databases = vec![sqlite_database()];
    databases.extend(pg_database().await);
    databases
}

/// Both stores, each fresh: SQLite always, PostgreSQL when configured.
pub async fn each_store() -> Vec<TestStore> {
    let mut stores = vec![sqlite_store().await];
    stores.extend(pg_store().await);
    stores
}

/// The HS256 secret test servers accept.
pub const TEST_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// A signed token for `sub` in `tenant` with `role`, expiring `ttl_seconds` from now (negative:
/// already expired).
pub fn token(tenant: &str, sub: &str, role: bot::store::Role, ttl_seconds: i64) -> String {
    token_with(TEST_SECRET, tenant, sub, role, ttl_seconds)
}

pub fn token_with(secret: &str, tenant: &str, sub: &str, role: bot::store::Role, ttl_seconds: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = bot::auth::Claims {
        sub: sub.to_owned(),
        tenant_id: tenant.to_owned(),
        role,
        exp: now + ttl_seconds,
        iat: Some(now),
        iss: None,
        aud: None,
    };
    bot::auth::mint_hs256(&secrecy::SecretString::from(secret.to_owned()), &claims).expect("mint a token")
}

/// Loads `deals` generated deals into `tenant` as the CLI would: import, demo-style users (an
/// admin, managers, a user per rep), a champion model, and stored scores. Returns the dataset.
pub async fn seed_tenant(
    store: &dyn bot::store::Store,
    tenant: &str,
    deals: usize,
    seed: u64,
    as_of: NaiveDate,
) -> Dataset {
    let dataset = generated_dataset(deals, seed, as_of);
    seed_dataset(store, tenant, &dataset, as_of).await;
    dataset
}

/// Every deal of `dataset` as one import named `import_id`, from the generator.
pub fn import_batch(import_id: &str, dataset: &Dataset) -> bot::store::ImportBatch {
    bot::store::ImportBatch {
        import_id: import_id.to_owned(),
        source: "generated".into(),
        at: chrono::Utc::now(),
        spec: engine::record::SchemaSpec::of(&dataset.schema),
        records: dataset.records().collect(),
        rejected: Vec::new(),
        rows_read: dataset.deals.len(),
    }
}

/// [`seed_tenant`] with deals of the caller's (generated ones changed, say).
pub async fn seed_dataset(store: &dyn bot::store::Store, tenant: &str, dataset: &Dataset, as_of: NaiveDate) {
    use bot::store::{Role, TenantId, User};
    let tenant = TenantId::parse(tenant).expect("tenant id");
    store.import(&tenant, &import_batch(&format!("seed-{tenant}"), dataset)).await.expect("import");
    let user = |id: &str, role, owner: Option<&str>, manager: Option<&str>| User {
        user_id: id.to_owned(),
        email: Some(format!("{id}@{tenant}.test")),
        name: id.to_owned(),
        crm_owner: owner.map(str::to_owned),
        role,
        manager_id: manager.map(str::to_owned),
        time_zone: "UTC".into(),
        chat_ids: Default::default(),
    };
    store.upsert_user(&tenant, &user("admin", Role::Admin, None, None)).await.expect("user");
    let owner = dataset.schema.owner_column().expect("owners");
    for rep in dataset.schema.categorical[owner].vocab.values() {
        let k: usize = rep.trim_start_matches("rep_").parse().unwrap_or(1);
        let manager = format!("manager_{}", k.div_ceil(6));
        store.upsert_user(&tenant, &user(&manager, Role::Manager, None, None)).await.expect("user");
        store.upsert_user(&tenant, &user(rep, Role::Rep, Some(rep), Some(&manager))).await.expect("user");
    }
    let view = View::new(dataset, Some(as_of));
    let model = TrainedModel::train(dataset, &view.closed, view.as_of, &TrainConfig::default()).expect("train");
    bot::workflow::store_model(store, &tenant, &model, chrono::Utc::now()).await.expect("store model");
    let texts = texts();
    let scorer = Scorer::new(&model, dataset, &view, &texts);
    let mut work = scorer.work();
    let updates: Vec<_> = view
        .open
        .iter()
        .map(|&i| bot::workflow::score_update(&scorer.score(i, &mut work)).expect("score update"))
        .collect();
    store.save_scores(&tenant, chrono::Utc::now(), view.as_of, &updates).await.expect("save scores");
}

/// An open deal (as of today) of `owner` in `dataset`.
pub fn open_deal<'a>(dataset: &'a Dataset, owner: &str) -> &'a engine::dataset::Deal {
    let today = chrono::Utc::now().date_naive();
    let c = dataset.schema.owner_column().expect("owner column");
    dataset
        .deals
        .iter()
        .find(|d| {
            engine::asof::status(d, Some(today)) == engine::asof::Status::Open
                && dataset.cat_name(c, d.cats[c]) == Some(owner)
        })
        .expect("an open deal of that owner")
}

/// A server on 127.0.0.1, port 0, over a test store; stops when dropped.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub store: TestStore,
    /// The server's state (to flush its audit writer, say).
    pub state: bot::server::AppState,
    /// The Salesforce orgs the server answers for.
    pub orgs: std::sync::Arc<bot::salesforce::Orgs>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start(store: TestStore, configure: impl FnOnce(&mut bot::config::Settings)) -> TestServer {
        let mut settings = bot::config::Settings::default();
        settings.auth.hs256_secrets = vec![secrecy::SecretString::from(TEST_SECRET.to_owned())];
        settings.limits.per_user_per_minute = 100_000;
        settings.limits.per_tenant_per_minute = 1_000_000;
        settings.limits.per_source_per_minute = 1_000_000;
        settings.limits.refused_per_source_per_minute = 100_000;
        configure(&mut settings);
        let (state, orgs) = bot::wiring::wired(settings, store.store.clone(), texts(), None).expect("app state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("address");
        let app = bot::server::app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer { base: format!("http://{addr}"), http: http(), store, state, orgs, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with a bearer token; returns status and JSON body.
    pub async fn get(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let response = self.http.get(self.url(path)).bearer_auth(token).send().await.expect("GET");
        json_of(response).await
    }

    /// POST JSON with a bearer token.
    pub async fn post(&self, path: &str, token: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let response = self.http.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("POST");
        json_of(response).await
    }

    /// PUT JSON with a bearer token.
    pub async fn put(&self, path: &str, token: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let response = self.http.put(self.url(path)).bearer_auth(token).json(body).send().await.expect("PUT");
        json_of(response).await
    }
}

pub async fn json_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

/// An HTTP client for tests (rustls needs its crypto provider installed first).
pub fn http() -> reqwest::Client {
    bot::auth::install_crypto_provider();
    reqwest::Client::new()
}

/// Fails unless `blocks` is Block Kit Slack would take (at most 50 blocks, button texts of at
/// most 75 characters, action ids unique per block).
pub fn assert_block_kit(blocks: &serde_json::Value) {
    if let Err(e) = bot::slack::check_blocks(blocks) {
        panic!("{e}: {blocks}");
    }
}

/// Trains a model on the tenant's stored deals (as of today) and stores it, promoted when it is
/// the first or at least as good.
pub async fn train_champion(store: &dyn bot::store::Store, tenant: &bot::store::TenantId) {
    let dataset = bot::workflow::tenant_dataset(store, tenant).await.expect("dataset");
    let view = View::new(&dataset, Some(chrono::Utc::now().date_naive()));
    let model = TrainedModel::train(&dataset, &view.closed, view.as_of, &TrainConfig::default()).expect("train");
    bot::workflow::store_model(store, tenant, &model, chrono::Utc::now()).await.expect("store model");
}
