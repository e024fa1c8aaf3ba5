//! A sync pass for one tenant: the Opportunities changed since the watermark (or all of them)
//! are read with the SOQL the mapping needs, flattened into the mapping's columns and imported
//! through the same validation as a CSV export; when deals changed, the open pipeline is
//! rescored (critical crossings raise alerts in the same transaction) and the risk fields whose
//! values changed are written back with sObject Collections, 200 records a call, each record's
//! result read. A record that failed keeps its old digest and is written again next pass.
//!
//! Columns Salesforce has no field for are made here: `Outcome` (Won, Lost, Open from IsClosed
//! and IsWon), `ClosedOn` (CloseDate once closed; on an open opportunity it is only expected)
//! and `Entered.<stage>` (the first OpportunityHistory row in that stage).

use std::collections::{BTreeMap, HashMap};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::Connection;
use super::client::{COLLECTION_LIMIT, SfError};
use engine::mapping::Mapping;
use store::{ScoreUpdate, Store};

/// The watermark's name in the store.
pub const SOURCE: &str = "salesforce:opportunity";

/// The columns this module makes rather than reads.
const OUTCOME: &str = "Outcome";
const CLOSED_ON: &str = "ClosedOn";
const ENTERED: &str = "Entered.";
/// Read whatever the mapping says: the outcome, the watermark and who changed the record.
const ALWAYS: [&str; 5] = ["Id", "IsClosed", "IsWon", "CloseDate", "SystemModstamp"];
const HISTORY: &str = "(SELECT StageName, CreatedDate FROM OpportunityHistories ORDER BY CreatedDate)";

/// Every Opportunity, or those changed since the watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Full,
    Incremental,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub read: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Records the mapping's validation refused (recorded with the import's errors).
    pub rejected: usize,
    pub scored: usize,
    pub alerts: usize,
    pub write_back: WriteReport,
    /// Recommended actions of risky deals newly queued as Tasks.
    pub tasks_queued: usize,
    pub watermark: Option<String>,
    /// A full pass that read over a fifth fewer Opportunities than the one before: the share
    /// lost (seed 002's volume-drop alert, raised to the tenant's admins).
    pub volume_drop: Option<f64>,
    /// Seconds each step took: `read`, `import`, `score`, `save`, `write`.
    pub seconds: BTreeMap<&'static str, f64>,
}

impl Report {
    fn took(&mut self, step: &'static str, since: &mut std::time::Instant) {
        self.seconds.insert(step, since.elapsed().as_secs_f64());
        *since = std::time::Instant::now();
    }
}

/// What a write-back did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriteReport {
    /// Records whose risk fields were already what they would be written as.
    pub unchanged: usize,
    pub written: usize,
    /// Records Salesforce refused, with the reason (the first few).
    pub failed: usize,
    pub failures: Vec<(String, String)>,
    pub calls: usize,
}

impl WriteReport {
    /// Counts a record Salesforce refused, keeping the first reasons.
    fn refused(&mut self, id: &str, why: String) {
        self.failed += 1;
        if self.failures.len() < 20 {
            self.failures.push((id.to_owned(), why));
        }
    }
}

/// The SOQL for the mapping's columns: every field it names (relationship fields as
/// `Account.Industry`), what the outcome needs, the stage history when it maps
/// `Entered.<stage>`, changed since `since` (a SOQL date-time), in SystemModstamp order.
pub fn soql(mapping: &Mapping, since: Option<&str>, ids: Option<&[String]>) -> String {
    let columns = mapped_columns(mapping);
    let mut fields: Vec<&str> = ALWAYS.to_vec();
    for column in &columns {
        let made_here = column == OUTCOME || column == CLOSED_ON || column.starts_with(ENTERED);
        if !made_here && !fields.contains(&column.as_str()) {
            fields.push(column);
        }
    }
    let mut select = fields.join(", ");
    if columns.iter().any(|c| c.starts_with(ENTERED)) {
        select.push_str(", ");
        select.push_str(HISTORY);
    }
    let mut conditions = Vec::new();
    if let Some(since) = since {
        // At or after: records changed within the watermark's second are read again (the import
        // finds them unchanged) rather than missed.
        conditions.push(format!("SystemModstamp >= {since}"));
    }
    if let Some(ids) = ids {
        let quoted: Vec<String> = ids.iter().map(|id| format!("'{}'", soql_escape(id))).collect();
        conditions.push(format!("Id IN ({})", quoted.join(", ")));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    format!("SELECT {select} FROM Opportunity{filter} ORDER BY SystemModstamp, Id")
}

fn soql_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// `2026-12-02T10:00:00.000+0000` (how Salesforce writes date-times) as RFC 3339.
fn datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A record's values by column: fields as named in SOQL (`Account.Industry`), plus the columns
/// made here. Date-times become RFC 3339; nulls and empty relationships become blanks.
pub fn flatten(record: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        let Some(object) = value.as_object() else { return };
        for (key, v) in object {
            if key == "attributes" {
                continue;
            }
            let column = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match v {
                Value::Object(o) if o.contains_key("records") => {} // a subquery
                Value::Object(_) => walk(&column, v, out),
                Value::Null => {
                    out.insert(column, String::new());
                }
                Value::String(s) => {
                    let text =
                        datetime(s).map_or_else(|| s.clone(), |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                    out.insert(column, text);
                }
                Value::Bool(b) => {
                    out.insert(column, b.to_string());
                }
                other => {
                    out.insert(column, other.to_string());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", record, &mut out);
    let closed = record["IsClosed"].as_bool().unwrap_or(false);
    let outcome = match (closed, record["IsWon"].as_bool().unwrap_or(false)) {
        (false, _) => "Open",
        (true, true) => "Won",
        (true, false) => "Lost",
    };
    out.insert(OUTCOME.into(), outcome.into());
    let close = if closed { record["CloseDate"].as_str().unwrap_or_default() } else { "" };
    out.insert(CLOSED_ON.into(), close.into());
    if let Some(rows) = record["OpportunityHistories"]["records"].as_array() {
        for row in rows {
            let (Some(stage), Some(at)) = (row["StageName"].as_str(), row["CreatedDate"].as_str().and_then(datetime))
            else {
                continue;
            };
            out.entry(format!("{ENTERED}{stage}")).or_insert_with(|| at.date_naive().to_string());
        }
    }
    out
}

/// The records as a CSV export with `columns` (blank where a record has none).
fn export(records: &[BTreeMap<String, String>], columns: &[String]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(records.len() * 256));
    w.write_record(columns)?;
    for r in records {
        w.write_record(columns.iter().map(|c| r.get(c).map_or("", String::as_str)))?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("writing the export: {e}"))
}

/// The columns the mapping reads, in a fixed order.
fn mapped_columns(mapping: &Mapping) -> Vec<String> {
    let f = &mapping.fields;
    let mut columns: Vec<String> = Vec::new();
    let all = [Some(&f.id), Some(&f.outcome), f.name.as_ref(), f.owner.as_ref(), f.created.as_ref()]
        .into_iter()
        .chain([f.closed.as_ref(), f.stage.as_ref(), f.amount.as_ref()])
        .flatten()
        .chain(mapping.segments.iter().map(|(_, c)| c))
        .chain(mapping.categorical.iter())
        .chain(mapping.numeric.iter())
        .chain(mapping.stages.entered.values());
    for c in all {
        if !columns.contains(c) {
            columns.push(c.clone());
        }
    }
    columns
}

/// Whether a scheduled pass should wait, given the daily API allowance the org last reported:
/// why, or `None` to run. Below 20 % left, incremental passes run every 15 minutes instead of 5;
/// below 5 % they stop; below 2 % the nightly full pass waits too. The allowance is the org's,
/// shared with its other integrations: a sync that used the last of it would break them.
pub fn pace(usage: Option<super::client::ApiUsage>, mode: Mode, due: DateTime<Utc>) -> Option<String> {
    use chrono::Timelike as _;
    let usage = usage?;
    let left = usage.left();
    let said = format!("{} of the org's {} daily API calls used", usage.used, usage.limit);
    match mode {
        Mode::Full if left < 0.02 => Some(format!("{said}; the full sync waits for the allowance to recover")),
        Mode::Full => None,
        Mode::Incremental if left < 0.05 => {
            Some(format!("{said}; incremental syncs pause until the allowance recovers"))
        }
        Mode::Incremental if left < 0.20 && !due.minute().is_multiple_of(15) => {
            Some(format!("{said}; incremental syncs slow to every 15 minutes"))
        }
        Mode::Incremental => None,
    }
}

/// One pass for `connection`'s tenant.
pub async fn run(
    store: &dyn Store,
    connection: &Connection,
    mode: Mode,
    texts: &engine::texts::Texts,
    channels: &[String],
    now: DateTime<Utc>,
) -> anyhow::Result<Report> {
    let tenant = &connection.tenant;
    let mapping = &connection.mapping.mapping;
    let since = match mode {
        Mode::Full => None,
        Mode::Incremental => store.watermark(tenant, SOURCE).await?,
    };
    let query = soql(mapping, since.as_deref(), None);
    let mut step = std::time::Instant::now();
    let records = connection.org.query_all(&query).await.map_err(|e| explain(e, "reading Opportunities"))?;
    let mut report = Report { read: records.len(), watermark: since.clone(), ..Report::default() };
    report.took("read", &mut step);
    let newest = records.iter().filter_map(|r| r["SystemModstamp"].as_str().and_then(datetime)).max();
    let mut changed = None;
    if !records.is_empty() {
        let source = format!("salesforce:{}", mode_name(mode));
        let outcome = import(store, connection, &records, &source, now).await?;
        (report.inserted, report.updated, report.unchanged) = (outcome.inserted, outcome.updated, outcome.unchanged);
        report.rejected = outcome.rejected;
        changed = Some(outcome.records.into_iter().map(|r| r.id).collect::<std::collections::HashSet<_>>());
        report.took("import", &mut step);
    }
    // A full pass rescores the whole pipeline (deals age overnight); an incremental one, when
    // something changed, the deals it read.
    if mode == Mode::Full || report.inserted + report.updated > 0 {
        let only = if mode == Mode::Full { None } else { changed };
        let scored = service::workflow::rescore(store, tenant, texts, now.date_naive(), only).await?;
        report.took("score", &mut step);
        if scored.is_none() {
            tracing::info!(tenant = %tenant, "no trained model yet: synced deals are not scored");
        }
        if let Some((_, updates)) = scored {
            let saved =
                service::workflow::save_scores_alerting(store, tenant, now, Some(now.date_naive()), &updates, channels)
                    .await?;
            (report.scored, report.alerts) = (saved.scores, saved.alerts);
            report.took("save", &mut step);
            if connection.settings.write_back {
                report.write_back = write_back(store, connection, &updates, now).await?;
                report.tasks_queued = super::tasks::queue_recommended(store, connection, &updates, &saved, now).await?;
                report.took("write", &mut step);
            }
        }
    }
    if let Some(newest) = newest {
        // Seconds only: SOQL date-time literals carry no fraction.
        let mark = newest.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        store.set_watermark(tenant, SOURCE, &mark, now).await?;
        report.watermark = Some(mark);
    }
    if mode == Mode::Full {
        report.volume_drop = volume_check(store, tenant, records.len(), channels, now).await?;
    }
    tracing::info!(tenant = %tenant, ?mode, ?report, "Salesforce sync");
    Ok(report)
}

/// Where the store keeps how many Opportunities the last full pass read.
const FULL_READ: &str = "salesforce:full_read";

/// Compares what a full pass read with the one before: more than a fifth fewer Opportunities
/// visible is most often lost access (the integration user's sharing), a filter, or a mass
/// deletion, and the tenant's admins are told at once. Returns the share lost, if so.
async fn volume_check(
    store: &dyn Store,
    tenant: &store::TenantId,
    read: usize,
    channels: &[String],
    now: DateTime<Utc>,
) -> anyhow::Result<Option<f64>> {
    let previous: Option<u64> = store.watermark(tenant, FULL_READ).await?.and_then(|v| v.parse().ok());
    store.set_watermark(tenant, FULL_READ, &read.to_string(), now).await?;
    let Some(drop) = previous.and_then(|p| engine::insights::anomaly::sync_volume_drop(p, read as u64)) else {
        return Ok(None);
    };
    tracing::warn!(tenant = %tenant, previous, read, drop, "a full Salesforce sync read far fewer Opportunities");
    let finding = engine::alerts::InsightAlert {
        kind: engine::alerts::AlertKind::DataQuality,
        subject: "salesforce_volume".to_owned(),
        rep: None,
        facts: serde_json::json!({ "source": "Salesforce", "visible": read, "previous": previous, "drop": drop }),
    };
    let routing = alerts::routing::Routing::load(store, tenant, channels).await?;
    let alerts = alerts::digest::plan_urgent(&[finding], &routing, now);
    store.raise_alerts(tenant, &alerts).await?;
    Ok(Some(drop))
}

/// What an import of Opportunities did.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub rejected: usize,
    /// The records as stored (those the validation accepted).
    pub records: Vec<engine::record::DealRecord>,
}

/// Imports Opportunity records through the connection's mapping, in one transaction; records
/// the mapping's validation refuses are recorded with the import's errors.
pub async fn import(
    store: &dyn Store,
    connection: &Connection,
    records: &[Value],
    source: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Imported> {
    let mapping = &connection.mapping.mapping;
    let flat: Vec<_> = records.iter().map(flatten).collect();
    let bytes = export(&flat, &mapped_columns(mapping))?;
    let ingested =
        engine::ingest::ingest(&bytes[..], mapping, Vec::new(), engine::ingest::Context { today: now.date_naive() })
            .with_context(|| format!("reading Salesforce Opportunities with mapping {}", connection.mapping.source))?;
    let batch = service::workflow::import_batch(&ingested, source.to_owned(), now);
    let outcome = store.import(&connection.tenant, &batch).await.context("storing the synced Opportunities")?;
    Ok(Imported {
        inserted: outcome.inserted,
        updated: outcome.updated,
        unchanged: outcome.unchanged,
        rejected: batch.rejected.len(),
        records: batch.records,
    })
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Full => "full",
        Mode::Incremental => "incremental",
    }
}

/// What an admin reads when a pass fails.
fn explain(e: SfError, doing: &str) -> anyhow::Error {
    let hint = if e.is_schema() {
        " — check the integration user's permission set (Dealwatch_Integration) and that the fields the mapping names exist"
    } else if e.is_transient() {
        " — the next pass tries again"
    } else {
        ""
    };
    anyhow::Error::new(e).context(format!("{doing} from Salesforce{hint}"))
}

/// The risk fields for a score, as written onto the Opportunity (without `Risk_Updated__c`,
/// which changes every time and is added when writing).
pub fn risk_fields(update: &ScoreUpdate) -> Value {
    json!({
        "Risk_Score__c": update.risk_score,
        "Risk_Category__c": category_label(update.risk_category),
        "Risk_Factors__c": factors_text(&update.card),
        "Win_Probability__c": (update.win_probability * 1000.0).round() / 10.0,
    })
}

/// The `Risk_Category__c` picklist value of a category.
pub fn category_label(c: engine::domain::RiskCategory) -> &'static str {
    use engine::domain::RiskCategory::*;
    match c {
        Low => "Low",
        Medium => "Medium",
        High => "High",
        Critical => "Critical",
    }
}

/// `Risk_Factors__c`: the top three factors with their impact in points, the recommended
/// actions, the model and data date, in the plain-text form the Lightning component reads.
pub fn factors_text(card: &Value) -> String {
    let mut text = String::from("Risk factors:\n");
    for f in card["risk_factors"].as_array().into_iter().flatten().take(3) {
        let what = f["description"].as_str().filter(|d| !d.is_empty()).or(f["factor"].as_str()).unwrap_or("?");
        let impact = f["impact"].as_f64().unwrap_or(0.0).round() as i64;
        text.push_str(&format!("- {} ({impact:+})\n", one_line(what)));
    }
    text.push_str("Recommended actions:\n");
    for r in card["recommendations"].as_array().into_iter().flatten().take(3) {
        if let Some(action) = r["action"].as_str() {
            text.push_str(&format!("- {}\n", one_line(action)));
        }
    }
    let model = card["model_version"].as_str().unwrap_or("?");
    match card["as_of"].as_str() {
        Some(date) => text.push_str(&format!("Model {model} · data of {date}")),
        None => text.push_str(&format!("Model {model}")),
    }
    text
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn digest(fields: &Value) -> String {
    hex::encode(&sha2::Sha256::digest(fields.to_string().as_bytes())[..16])
}

/// Writes the risk fields of `updates` whose values changed since they were last written, in
/// Collections calls of 200; records what each record's result was.
pub async fn write_back(
    store: &dyn Store,
    connection: &Connection,
    updates: &[ScoreUpdate],
    now: DateTime<Utc>,
) -> anyhow::Result<WriteReport> {
    let tenant = &connection.tenant;
    let ids: Vec<String> = updates.iter().map(|u| u.deal_id.clone()).collect();
    let written: HashMap<String, String> = store.crm_writes(tenant, &ids).await?;
    let mut report = WriteReport::default();
    let mut pending: Vec<(String, String, Value)> = Vec::new();
    for update in updates {
        let fields = risk_fields(update);
        let d = digest(&fields);
        if written.get(&update.deal_id) == Some(&d) {
            report.unchanged += 1;
        } else {
            pending.push((update.deal_id.clone(), d, fields));
        }
    }
    let stamp = now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    if pending.len() > connection.settings.bulk_threshold {
        bulk_write(store, connection, &pending, &stamp, now, &mut report).await?;
        metrics::counter!("salesforce_records_written_total").increment(report.written as u64);
        return Ok(report);
    }
    for chunk in pending.chunks(COLLECTION_LIMIT) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|(id, _, fields)| {
                let mut record = json!({ "attributes": { "type": "Opportunity" }, "id": id, "Risk_Updated__c": stamp });
                if let (Some(r), Some(f)) = (record.as_object_mut(), fields.as_object()) {
                    r.extend(f.clone());
                }
                record
            })
            .collect();
        let results =
            connection.org.update_collection(&records).await.map_err(|e| explain(e, "writing risk fields"))?;
        report.calls += 1;
        // Every record refused for a missing field or permission: the org's schema, not the
        // records, is wrong; the pass stops (and the tenant's sync halts) instead of retrying
        // each record forever.
        if let Some(first) = results.first().filter(|_| results.iter().all(|r| r.is_schema())) {
            return Err(explain(first.refusal(), "writing risk fields"));
        }
        let mut done = Vec::new();
        for ((id, d, _), result) in chunk.iter().zip(&results) {
            if result.success {
                done.push((id.clone(), d.clone()));
            } else {
                report.refused(id, result.reason());
                tracing::warn!(tenant = %tenant, deal = %id, reason = %result.reason(), transient = result.is_transient(), "Salesforce refused a risk-field update");
            }
        }
        report.written += done.len();
        store.record_crm_writes(tenant, &done, now).await?;
    }
    metrics::counter!("salesforce_records_written_total").increment(report.written as u64);
    Ok(report)
}

/// The CSV one Bulk API 2.0 job is given at most: Salesforce takes 150 MB base64-encoded (about
/// 100 MB of CSV) per job; larger write-backs are split over several jobs.
const BULK_JOB_BYTES: usize = 90 * 1024 * 1024;

/// The risk fields through Bulk API 2.0 update jobs (a nightly rescore of a large pipeline):
/// every record but those a job's failed results list is recorded as written.
async fn bulk_write(
    store: &dyn Store,
    connection: &Connection,
    pending: &[(String, String, Value)],
    stamp: &str,
    now: DateTime<Utc>,
    report: &mut WriteReport,
) -> anyhow::Result<()> {
    const COLUMNS: [&str; 4] = ["Risk_Score__c", "Risk_Category__c", "Risk_Factors__c", "Win_Probability__c"];
    let header = || -> anyhow::Result<csv::Writer<Vec<u8>>> {
        let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
        w.write_record(["Id"].iter().chain(COLUMNS.iter()).chain(["Risk_Updated__c"].iter()))?;
        Ok(w)
    };
    let mut start = 0;
    while start < pending.len() {
        let mut w = header()?;
        let mut end = start;
        while end < pending.len() {
            let (id, _, fields) = &pending[end];
            let cell = |name: &str| match &fields[name] {
                Value::String(s) => s.clone(),
                Value::Null => "#N/A".to_owned(),
                other => other.to_string(),
            };
            let mut row = vec![id.clone()];
            row.extend(COLUMNS.iter().map(|c| cell(c)));
            row.push(stamp.to_owned());
            w.write_record(&row)?;
            end += 1;
            if w.get_ref().len() >= BULK_JOB_BYTES {
                break;
            }
        }
        let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("writing the Bulk upload: {e}"))?;
        let csv = String::from_utf8(bytes)?;
        let chunk = &pending[start..end];
        start = end;
        let outcome = connection
            .org
            .bulk_update("Opportunity", &csv, std::time::Duration::from_secs(30 * 60))
            .await
            .map_err(|e| explain(e, "writing risk fields through Bulk API 2.0"))?;
        report.calls += 1;
        let failed: HashMap<&str, &str> = outcome.failed.iter().map(|(id, why)| (id.as_str(), why.as_str())).collect();
        let mut done = Vec::with_capacity(chunk.len());
        for (id, d, _) in chunk {
            match failed.get(id.as_str()) {
                Some(why) => report.refused(id, (*why).to_owned()),
                None => done.push((id.clone(), d.clone())),
            }
        }
        report.written += done.len();
        store.record_crm_writes(&connection.tenant, &done, now).await?;
        tracing::info!(tenant = %connection.tenant, job = %outcome.job_id, written = done.len(), failed = chunk.len() - done.len(), "Bulk API 2.0 write-back");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> Mapping {
        service::resources::load_mapping(Some("salesforce")).expect("bundled").mapping
    }

    #[test]
    fn syncs_slow_down_and_stop_as_the_api_allowance_runs_out() {
        use super::super::client::ApiUsage;
        let at = |m: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 2, 10, m, 0).unwrap();
        let used = |n: u64| Some(ApiUsage { used: n, limit: 10_000 });
        assert_eq!(pace(None, Mode::Incremental, at(5)), None, "nothing known yet");
        assert_eq!(pace(used(7_000), Mode::Incremental, at(5)), None);
        assert!(pace(used(8_500), Mode::Incremental, at(5)).is_some_and(|w| w.contains("every 15 minutes")));
        assert_eq!(pace(used(8_500), Mode::Incremental, at(15)), None, "a quarter hour still runs");
        assert!(pace(used(9_600), Mode::Incremental, at(15)).is_some_and(|w| w.contains("pause")));
        assert_eq!(pace(used(9_600), Mode::Full, at(30)), None, "the nightly pass still runs");
        assert!(pace(used(9_900), Mode::Full, at(30)).is_some_and(|w| w.contains("9900 of the org's 10000")));
    }

    #[test]
    fn the_soql_names_what_the_mapping_reads_and_no_made_up_column() {
        let q = soql(&mapping(), Some("2026-12-02T10:00:00Z"), None);
        for field in [
            "Id",
            "IsClosed",
            "IsWon",
            "CloseDate",
            "Account.Name",
            "Owner.Email",
            "StageName",
            "Amount",
            "Account.Industry",
        ] {
            assert!(q.contains(field), "{field}: {q}");
        }
        assert!(!q.contains("Outcome") && !q.contains("ClosedOn") && !q.contains("Entered."), "{q}");
        assert!(q.contains("FROM OpportunityHistories"), "{q}");
        assert!(
            q.ends_with("FROM Opportunity WHERE SystemModstamp >= 2026-12-02T10:00:00Z ORDER BY SystemModstamp, Id"),
            "{q}"
        );
        let ids = soql(&mapping(), None, Some(&["006A".into(), "006'B".into()]));
        assert!(ids.contains("WHERE Id IN ('006A', '006\\'B')"), "{ids}");
    }

    #[test]
    fn records_flatten_into_the_mappings_columns() {
        let record = json!({
            "attributes": { "type": "Opportunity" }, "Id": "006000000000001AAA", "IsClosed": true, "IsWon": false,
            "CloseDate": "2026-10-01", "Amount": 52000.0, "CreatedDate": "2026-06-03T14:05:00.000+0000",
            "Account": { "attributes": { "type": "Account" }, "Name": "Acme", "Industry": null },
            "Owner": null,
            "OpportunityHistories": { "totalSize": 3, "done": true, "records": [
                { "StageName": "Prospecting", "CreatedDate": "2026-06-03T14:05:00.000+0000" },
                { "StageName": "Qualification", "CreatedDate": "2026-07-01T09:00:00.000+0000" },
                { "StageName": "Prospecting", "CreatedDate": "2026-07-09T09:00:00.000+0000" } ] },
        });
        let flat = flatten(&record);
        assert_eq!(flat["Outcome"], "Lost");
        assert_eq!(flat["ClosedOn"], "2026-10-01");
        assert_eq!(flat["CreatedDate"], "2026-06-03T14:05:00Z");
        assert_eq!(flat["Account.Name"], "Acme");
        assert_eq!(flat["Account.Industry"], "");
        assert_eq!(flat["Amount"], "52000.0");
        assert_eq!(flat["Entered.Prospecting"], "2026-06-03", "the first time in the stage");
        assert_eq!(flat["Entered.Qualification"], "2026-07-01");
        let open = flatten(&json!({ "Id": "006B", "IsClosed": false, "IsWon": false, "CloseDate": "2027-01-31" }));
        assert_eq!((open["Outcome"].as_str(), open["ClosedOn"].as_str()), ("Open", ""));
    }

    #[test]
    fn the_factors_field_reads_as_the_component_expects() {
        let card = json!({
            "risk_factors": [
                { "factor": "Deal age", "description": "Open for 140 days,\n twice the usual", "impact": 14.4 },
                { "factor": "Industry: EdTech", "description": "", "impact": 6.6 },
                { "factor": "Owner", "description": "rep_3 wins less", "impact": 3.0 },
                { "factor": "Fourth", "description": "not shown", "impact": 1.0 } ],
            "recommendations": [ { "action": "Book a call with the economic buyer" } ],
            "model_version": "v3", "as_of": "2026-11-30",
        });
        assert_eq!(
            factors_text(&card),
            "Risk factors:\n- Open for 140 days, twice the usual (+14)\n- Industry: EdTech (+7)\n- rep_3 wins less (+3)\n\
             Recommended actions:\n- Book a call with the economic buyer\nModel v3 · data of 2026-11-30"
        );
    }
}
