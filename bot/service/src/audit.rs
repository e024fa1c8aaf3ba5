//! The audit log's writer for reads.
//!
//! Reads by id (`deal.read`, `deal.score`) happen on the hot path, up to a thousand a second; a
//! write transaction per read would put the database's write lock (and, on SQLite, its WAL
//! checkpoints) inside every request's latency. So reads are queued here and written by one task,
//! in one transaction per batch: whatever queued while the previous batch was being written.
//! Under light load that is one entry, written within a millisecond; under heavy load batches
//! grow, and the database sees a few writes a second instead of a thousand.
//!
//! Nothing is dropped while the process lives: a full queue makes requests wait for room, and a
//! failed write is retried until the database answers. What a SIGKILL can lose is the batch in
//! flight (milliseconds of reads); graceful shutdown flushes the queue. Admin actions and setting
//! changes are not queued: they are written before their request answers ([`AuditWriter::now`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use store::{AuditEntry, Store, StoreError, TenantId};

/// Entries waiting to be written, at most; beyond that requests wait for room.
const QUEUE: usize = 16_384;
/// Entries per write transaction, at most.
const BATCH: usize = 2_000;

enum Message {
    Entry(TenantId, AuditEntry),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

#[derive(Debug, Clone)]
pub struct AuditWriter {
    store: Arc<dyn Store>,
    queue: mpsc::Sender<Message>,
}

impl AuditWriter {
    /// Starts the writing task (on the current tokio runtime).
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store.clone(), receiver));
        Self { store, queue }
    }

    /// Queues a read for the log.
    pub async fn read(&self, tenant: &TenantId, entry: AuditEntry) -> Result<(), StoreError> {
        match self.queue.send(Message::Entry(tenant.clone(), entry)).await {
            Ok(()) => Ok(()),
            // The writer is gone (the runtime is shutting down): write it ourselves.
            Err(mpsc::error::SendError(Message::Entry(tenant, entry))) => {
                self.store.audit(&tenant, std::slice::from_ref(&entry)).await
            }
            Err(_) => Ok(()),
        }
    }

    /// Writes an admin action or setting change before returning.
    pub async fn now(&self, tenant: &TenantId, entry: AuditEntry) -> Result<(), StoreError> {
        self.store.audit(tenant, std::slice::from_ref(&entry)).await
    }

    /// Waits until every read queued so far is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_batches(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<Message>) {
    let mut batch: Vec<(TenantId, AuditEntry)> = Vec::new();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Entry(tenant, entry) => batch.push((tenant, entry)),
                Message::Flush(done) => waiting.push(done),
            }
            if batch.len() < BATCH {
                next = receiver.try_recv().ok();
            }
        }
        write(store.as_ref(), &mut batch).await;
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes the batch, one transaction per tenant, retrying until the database takes it.
async fn write(store: &dyn Store, batch: &mut Vec<(TenantId, AuditEntry)>) {
    batch.sort_by(|a, b| a.0.cmp(&b.0));
    for group in batch.chunk_by(|a, b| a.0 == b.0) {
        let tenant = &group[0].0;
        let entries: Vec<AuditEntry> = group.iter().map(|(_, e)| e.clone()).collect();
        let mut delay = Duration::from_millis(50);
        while let Err(e) = store.audit(tenant, &entries).await {
            tracing::error!(error = %e, tenant = %tenant, entries = entries.len(), "writing the audit log; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
    batch.clear();
}

tokio::task_local! {
    /// The id of the request being served, when there is one (set by the HTTP layer's request-id
    /// middleware): audit entries and internal-error bodies quote it.
    pub static REQUEST_ID: String;
}

/// An audit entry by `actor` at `at`, with the current request's id.
pub fn entry(
    at: chrono::DateTime<chrono::Utc>,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: Option<serde_json::Value>,
) -> AuditEntry {
    AuditEntry {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        details,
        request_id: REQUEST_ID.try_with(Clone::clone).ok(),
    }
}

/// Writes a change to the audit log before the operation answers.
pub async fn change_log(
    state: &crate::Services,
    tenant: &TenantId,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: Option<serde_json::Value>,
) -> crate::ServiceResult<()> {
    Ok(state.audit.now(tenant, entry(state.now(), actor, action, target, details)).await?)
}
