//! Per-tenant state kept in memory: the deals as a dataset, the champion model and the
//! similar-deal index, rebuilt when the tenant's data or model changes (the store's stamp tells,
//! also after a change made by another process) or the day turns. A request then scores a deal
//! in microseconds instead of reloading the tenant. After a change during the day, requests are
//! answered from the previous engine until the rebuild (seconds for 100K deals) is done.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use engine::asof::{Status, View, status};
use engine::dataset::Dataset;
use engine::model::TrainedModel;
use engine::similar::SimilarIndex;
use tokio::sync::{Mutex, RwLock};

use crate::auth::Claims;
use crate::error::ServiceError;
use engine::domain::RiskCategory;
use store::{HighRiskQuery, RiskyDeal, Role, SortBy, Stamp, Store, TenantId};

pub use store::{DealFilter, Scope};

#[derive(Debug)]
pub struct TenantEngine {
    /// The tenant's data version it was built from.
    stamp: i64,
    pub as_of: NaiveDate,
    pub dataset: Dataset,
    pub model: Option<TrainedModel>,
    pub similar: SimilarIndex,
    /// Deal id → index in `dataset`.
    pub index: HashMap<String, usize>,
    /// The champion's P(loss) of the deals open on a date (NaN for the others), computed once
    /// per date: pipeline metrics read it on every request.
    open_risk: std::sync::Mutex<HashMap<NaiveDate, Arc<Vec<f64>>>>,
    /// The open deals' distinct names as chat looks them up (normalised), each with its deals'
    /// indexes: a name lookup scans these (a few thousand) instead of every deal.
    pub open_names: Vec<(crate::names::Name, Vec<usize>)>,
    /// The team's pipeline health index on `as_of`, computed on first use.
    health: std::sync::OnceLock<Option<engine::insights::health::HealthIndex>>,
    /// The names plain-English questions may use, built on the first question.
    vocabulary: std::sync::OnceLock<engine::question::Vocabulary>,
}

impl TenantEngine {
    /// `records` (as just stored; those open on the engine's date) scored with the engine's
    /// model and similar-deal index, without reloading the tenant: how the Salesforce webhook
    /// rescores the few deals a user changed. `None` without a model.
    pub fn score_records(
        &self,
        records: &[engine::record::DealRecord],
        texts: &engine::texts::Texts,
    ) -> anyhow::Result<Option<Vec<store::ScoreUpdate>>> {
        let Some(model) = self.model.as_ref() else { return Ok(None) };
        let mut changed = Dataset { schema: self.dataset.schema.clone(), deals: Vec::with_capacity(records.len()) };
        for record in records {
            changed.push_record(record)?;
        }
        let scorer =
            engine::score::Scorer::with_similar(model, &changed, Some(self.as_of), texts, &self.similar, &self.dataset);
        let mut work = scorer.work();
        let open = (0..changed.deals.len()).filter(|&i| status(&changed.deals[i], Some(self.as_of)) == Status::Open);
        let updates = open.map(|i| crate::workflow::score_update(&scorer.score(i, &mut work)));
        Ok(Some(updates.collect::<Result<_, _>>()?))
    }

    /// P(loss) of every deal open on `date`, by position (NaN for the others); `None` without a
    /// model. The first call for a date scores the pipeline; later ones share the result.
    /// The tenant's names (segment values, reps, deal ids and names) for reading questions.
    pub fn vocabulary(&self) -> &engine::question::Vocabulary {
        self.vocabulary.get_or_init(|| engine::question::Vocabulary::of(&self.dataset))
    }

    pub fn open_risk(&self, date: NaiveDate, texts: &engine::texts::Texts) -> Option<Arc<Vec<f64>>> {
        let model = self.model.as_ref()?;
        let mut known = self.open_risk.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let risk = known
            .entry(date)
            .or_insert_with(|| Arc::new(crate::workflow::open_p_loss(model, &self.dataset, date, texts)));
        Some(risk.clone())
    }

    /// The whole team's pipeline health index on `as_of` (with the champion's scores now and a
    /// month ago), computed once per engine.
    pub fn health(&self, texts: &engine::texts::Texts) -> Option<&engine::insights::health::HealthIndex> {
        self.health
            .get_or_init(|| {
                let now = self.open_risk(self.as_of, texts);
                let before = self.open_risk(self.as_of - chrono::Duration::days(30), texts);
                engine::insights::health::index(
                    &self.dataset,
                    self.as_of,
                    now.as_deref().map(|v| &v[..]),
                    before.as_deref().map(|v| &v[..]),
                )
            })
            .as_ref()
    }
}

#[derive(Debug, Default)]
pub struct TenantCache {
    /// Each tenant's engine as of today: what every ordinary request reads.
    engines: Arc<RwLock<HashMap<TenantId, Arc<TenantEngine>>>>,
    /// Engines as of other dates (a question asked "as of" a past date), kept a few minutes and
    /// apart from today's, so such a question never evicts or delays the engine everyone uses.
    past: Arc<Mutex<Vec<PastEngine>>>,
    /// Every scored open deal, for the high-risk listing, reloaded when scores or deals change.
    boards: RwLock<HashMap<TenantId, Arc<RiskBoard>>>,
    /// One rebuild at a time per tenant (and one past-date build at a time per tenant):
    /// requests for that tenant wait for it, other tenants' do not.
    building: std::sync::Mutex<HashMap<(TenantId, bool), BuildLock>>,
}

/// The lock a tenant's builds take turns on.
type BuildLock = Arc<Mutex<()>>;

/// An engine as of a date other than today, and when it was built.
#[derive(Debug)]
struct PastEngine {
    tenant: TenantId,
    built: std::time::Instant,
    engine: Arc<TenantEngine>,
}

/// How long an engine as of another date is kept (questions about the same date in a row).
const PAST_TTL: std::time::Duration = std::time::Duration::from_secs(300);
/// Engines as of other dates kept at most, per tenant and in all.
const PAST_PER_TENANT: usize = 2;
const PAST_IN_ALL: usize = 16;

impl TenantCache {
    /// The tenant's engine as of `today`, rebuilt if stale. `None`: the tenant has no data.
    ///
    /// A rebuild runs as a task of its own: a request that times out or is dropped while
    /// waiting for it does not cancel it, and the next request finds the result.
    pub async fn get(
        &self,
        store: &Arc<dyn Store>,
        tenant: &TenantId,
        today: NaiveDate,
    ) -> Result<Option<Arc<TenantEngine>>, ServiceError> {
        let stamp = store.stamp(tenant).await?.data;
        let fresh = |e: &TenantEngine| e.stamp == stamp && e.as_of == today;
        let current = self.engines.read().await.get(tenant).cloned();
        if let Some(engine) = current.as_ref().filter(|e| fresh(e)) {
            return Ok(Some(engine.clone()));
        }
        let lock = self.build_lock(tenant, false);
        // Stale from a change of data or model today: keep answering from it while one rebuild
        // runs in the background (rebuilding a 100K-deal tenant takes seconds, and every
        // request would otherwise wait for it). A new day, or no engine yet, waits.
        if let Some(stale) = current.filter(|e| e.as_of == today) {
            if let Ok(guard) = lock.try_lock_owned() {
                let rebuild = self.rebuild(guard, store, tenant, stamp, today);
                tokio::spawn(async move {
                    if let Err(e) = rebuild.await {
                        tracing::error!(error = ?e, "rebuilding a tenant's engine");
                    }
                });
            }
            return Ok(Some(stale));
        }
        let guard = lock.lock_owned().await;
        if let Some(engine) = self.engines.read().await.get(tenant).filter(|e| fresh(e)) {
            return Ok(Some(engine.clone()));
        }
        tokio::spawn(self.rebuild(guard, store, tenant, stamp, today)).await.map_err(ServiceError::internal)?
    }

    /// The tenant's engine as of `as_of`: today's ([`TenantCache::get`]) when `as_of` is
    /// `today`, else one built for that date and kept a few minutes beside it, never in its
    /// place. One such build runs at a time per tenant.
    pub async fn get_as_of(
        &self,
        store: &Arc<dyn Store>,
        tenant: &TenantId,
        as_of: NaiveDate,
        today: NaiveDate,
    ) -> Result<Option<Arc<TenantEngine>>, ServiceError> {
        if as_of == today {
            return self.get(store, tenant, today).await;
        }
        let stamp = store.stamp(tenant).await?.data;
        let kept = |past: &[PastEngine]| {
            past.iter()
                .find(|p| {
                    &p.tenant == tenant
                        && p.engine.as_of == as_of
                        && p.engine.stamp == stamp
                        && p.built.elapsed() < PAST_TTL
                })
                .map(|p| p.engine.clone())
        };
        if let Some(engine) = kept(&self.past.lock().await) {
            return Ok(Some(engine));
        }
        let guard = self.build_lock(tenant, true).lock_owned().await;
        if let Some(engine) = kept(&self.past.lock().await) {
            return Ok(Some(engine));
        }
        let (store, owned) = (store.clone(), tenant.clone());
        let built = tokio::spawn(async move {
            let _guard = guard;
            build(store.as_ref(), &owned, stamp, as_of).await
        })
        .await
        .map_err(ServiceError::internal)??;
        if let Some(engine) = &built {
            let mut past = self.past.lock().await;
            past.retain(|p| p.built.elapsed() < PAST_TTL && !(&p.tenant == tenant && p.engine.as_of == as_of));
            past.push(PastEngine { tenant: tenant.clone(), built: std::time::Instant::now(), engine: engine.clone() });
            // The oldest go first: beyond a few per tenant, and beyond a few in all.
            while past.iter().filter(|p| &p.tenant == tenant).count() > PAST_PER_TENANT {
                let oldest = past.iter().position(|p| &p.tenant == tenant).unwrap_or(0);
                past.remove(oldest);
            }
            while past.len() > PAST_IN_ALL {
                past.remove(0);
            }
        }
        Ok(built)
    }

    /// The engine today's requests of `tenant` are answered from, if one is built (for tests
    /// and diagnostics: it neither builds nor checks freshness).
    pub async fn current(&self, tenant: &TenantId) -> Option<Arc<TenantEngine>> {
        self.engines.read().await.get(tenant).cloned()
    }

    /// The lock a tenant's builds (today's, or `past` dates') take turns on.
    fn build_lock(&self, tenant: &TenantId, past: bool) -> BuildLock {
        let mut locks = self.building.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry((tenant.clone(), past)).or_default().clone()
    }

    /// Builds the tenant's engine and keeps it, holding the build lock until done.
    fn rebuild(
        &self,
        guard: tokio::sync::OwnedMutexGuard<()>,
        store: &Arc<dyn Store>,
        tenant: &TenantId,
        stamp: i64,
        today: NaiveDate,
    ) -> impl Future<Output = Result<Option<Arc<TenantEngine>>, ServiceError>> + Send + 'static {
        let (engines, store, tenant) = (self.engines.clone(), store.clone(), tenant.clone());
        async move {
            let _guard = guard;
            let built = build(store.as_ref(), &tenant, stamp, today).await?;
            if let Some(built) = &built {
                engines.write().await.insert(tenant, built.clone());
            }
            Ok(built)
        }
    }
}

/// The tenant's scored open deals as stored, with the stamp they were read at.
#[derive(Debug)]
pub struct RiskBoard {
    stamp: Stamp,
    pub rows: Vec<RiskyDeal>,
}

impl TenantCache {
    /// The scored open deals, reloaded from the store when the tenant's stamp moved: a listing
    /// then filters, sorts and sums a few thousand rows in memory instead of in the database.
    pub async fn board(&self, store: &Arc<dyn Store>, tenant: &TenantId) -> Result<Arc<RiskBoard>, ServiceError> {
        let stamp = store.stamp(tenant).await?;
        if let Some(board) = self.boards.read().await.get(tenant).filter(|b| b.stamp == stamp) {
            return Ok(board.clone());
        }
        let everything = HighRiskQuery {
            categories: RiskCategory::ALL.to_vec(),
            owners: None,
            sort_by: SortBy::RiskScore,
            descending: true,
            limit: u32::MAX,
            offset: 0,
        };
        let board = Arc::new(RiskBoard { stamp, rows: store.high_risk(tenant, &everything).await?.deals });
        self.boards.write().await.insert(tenant.clone(), board.clone());
        Ok(board)
    }
}

async fn build(
    store: &dyn Store,
    tenant: &TenantId,
    stamp: i64,
    today: NaiveDate,
) -> Result<Option<Arc<TenantEngine>>, ServiceError> {
    let Some(info) = store.tenant(tenant).await? else { return Ok(None) };
    let records = store.deals(tenant).await?;
    let model = match store.champion(tenant).await? {
        Some((_, json)) => Some(serde_json::from_value::<TrainedModel>(json)?),
        None => None,
    };
    let built = tokio::task::spawn_blocking(move || -> Result<TenantEngine, ServiceError> {
        let dataset = Dataset::from_records(&info.schema, &records).map_err(ServiceError::internal)?;
        let view = View::new(&dataset, Some(today));
        let won: Vec<usize> =
            view.closed.iter().copied().filter(|&i| status(&dataset.deals[i], view.as_of) == Status::Won).collect();
        let similar = SimilarIndex::new(&dataset, &won);
        let index = dataset.deals.iter().enumerate().map(|(i, d)| (d.id.to_string(), i)).collect();
        let mut names: HashMap<String, Vec<usize>> = HashMap::new();
        for &i in &view.open {
            names.entry(crate::names::normalise(&dataset.deals[i].name)).or_default().push(i);
        }
        let mut open_names: Vec<(crate::names::Name, Vec<usize>)> =
            names.into_iter().map(|(n, deals)| (crate::names::Name::new(n), deals)).collect();
        open_names.sort_unstable_by(|a, b| a.0.text.cmp(&b.0.text));
        Ok(TenantEngine {
            stamp,
            as_of: today,
            dataset,
            model,
            similar,
            index,
            open_risk: Default::default(),
            open_names,
            health: Default::default(),
            vocabulary: Default::default(),
        })
    })
    .await
    .map_err(ServiceError::internal)??;
    Ok(Some(Arc::new(built)))
}

/// The scope of a caller's token: their own current place among the tenant's users.
pub async fn scope_of(store: &dyn Store, tenant: &TenantId, claims: &Claims) -> Result<Scope, ServiceError> {
    if claims.role == Role::Admin {
        return Ok(Scope::All);
    }
    let users = store.users(tenant).await?;
    Ok(Scope::for_user(&users, &claims.sub, claims.role))
}
