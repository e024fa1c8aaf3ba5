//! Follow-up tasks to Salesforce: a task queued in Dealwatch (from the Slack button, or a risky
//! deal's recommended action, see [`queue_recommended`]) becomes a
//! Task on its Opportunity, upserted on `Dealwatch_Key__c` = the task's id, so a retry after a
//! timeout updates the Task it created instead of making a second one. A task Salesforce refuses
//! for good (the Opportunity is gone, a field is missing) is marked `failed` with the reason; one
//! refused for now (limits, 5xx, a lock) stays queued for the next pass.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use chrono::{DateTime, Utc};
use engine::domain::RiskCategory;

use super::Connection;
use super::client::COLLECTION_LIMIT;
use settings::AutoTasks;
use store::{FollowUpTask, ScoreUpdate, Store};

/// What a pass over the queued tasks did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskReport {
    pub written: usize,
    pub failed: usize,
    /// Left queued for a retry.
    pub waiting: usize,
}

/// The Task's fields for `task` on an Opportunity owned by `owner_id`.
pub fn task_fields(task: &FollowUpTask, owner_id: Option<&str>) -> Value {
    let mut fields = json!({
        "WhatId": task.deal_id,
        "Subject": task.subject.chars().take(255).collect::<String>(),
        "Priority": "High",
        "Status": "Not Started",
        "Description": if task.task_key.starts_with(RECOMMENDED) {
            "Recommended by Dealwatch: the deal's risk score is high; the risk factors are on the Opportunity.".to_owned()
        } else {
            format!("Created by {} in Dealwatch from the deal's risk card.", task.created_by)
        },
    });
    if let Some(due) = task.due_date {
        fields["ActivityDate"] = json!(due.to_string());
    }
    if let Some(owner) = owner_id {
        fields["OwnerId"] = json!(owner);
    }
    fields
}

/// The key prefix of tasks Dealwatch queued from a recommendation.
const RECOMMENDED: &str = "recommended:";

/// Tasks for the top recommended action of each deal in `updates` scored at `auto` or above,
/// keyed by deal, rule and month: a deal that stays risky gets one Task per action a month, not
/// one a pass.
pub fn recommended(updates: &[ScoreUpdate], auto: AutoTasks, now: DateTime<Utc>) -> Vec<FollowUpTask> {
    let floor = match auto {
        AutoTasks::Off => return Vec::new(),
        AutoTasks::High => RiskCategory::High,
        AutoTasks::Critical => RiskCategory::Critical,
    };
    let due = service::workflow::next_working_day(now.date_naive());
    updates
        .iter()
        .filter(|u| u.risk_category >= floor)
        .filter_map(|u| {
            let top = u.card["recommendations"].get(0)?;
            let action = top["action"].as_str()?;
            let rule = top["rule"].as_str().unwrap_or("action");
            Some(FollowUpTask {
                task_id: uuid::Uuid::now_v7().to_string(),
                task_key: format!("{RECOMMENDED}{}:{rule}:{}", u.deal_id, now.format("%Y-%m")),
                deal_id: u.deal_id.clone(),
                subject: action.to_owned(),
                due_date: Some(due),
                owner: u.card["owner"].as_str().map(str::to_owned),
                created_by: "dealwatch".to_owned(),
                created_at: now,
                state: "queued".to_owned(),
                crm_id: None,
                error: None,
            })
        })
        .collect()
}

/// Queues the recommended tasks (see [`recommended`]) of the deals whose risk rose with these
/// scores (a category up, or a new deal: [`service::workflow::risk_rose`]), that are not queued yet; returns how
/// many are new. They are written with the other queued tasks. A pipeline scored for the first
/// time is a baseline: its risky deals get no Task until their risk rises.
pub async fn queue_recommended(
    store: &dyn Store,
    connection: &Connection,
    updates: &[ScoreUpdate],
    saved: &store::ScoresSaved,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let rose = service::workflow::risk_rose(updates, saved);
    if rose.is_empty() {
        return Ok(0);
    }
    let rose: std::collections::HashSet<&str> = rose.iter().map(String::as_str).collect();
    let news: Vec<ScoreUpdate> = updates.iter().filter(|u| rose.contains(u.deal_id.as_str())).cloned().collect();
    let mut new = 0;
    for task in recommended(&news, connection.settings.auto_tasks, now) {
        new += usize::from(store.record_task(&connection.tenant, &task).await?.1);
    }
    Ok(new)
}

/// Writes the tenant's queued tasks.
pub async fn write_queued(store: &dyn Store, connection: &Connection) -> anyhow::Result<TaskReport> {
    let tenant = &connection.tenant;
    let queued = store.tasks_in_state(tenant, "queued").await?;
    let mut report = TaskReport::default();
    if queued.is_empty() {
        return Ok(report);
    }
    // The Opportunities' owners, so the Task is theirs rather than the integration user's.
    let mut owners: HashMap<String, String> = HashMap::new();
    let ids: Vec<String> = {
        let mut ids: Vec<String> = queued.iter().map(|t| t.deal_id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    for chunk in ids.chunks(COLLECTION_LIMIT) {
        let quoted: Vec<String> =
            chunk.iter().map(|id| format!("'{}'", id.replace('\\', "\\\\").replace('\'', "\\'"))).collect();
        let soql = format!("SELECT Id, OwnerId FROM Opportunity WHERE Id IN ({})", quoted.join(", "));
        for r in connection.org.query_all(&soql).await? {
            if let (Some(id), Some(owner)) = (r["Id"].as_str(), r["OwnerId"].as_str()) {
                owners.insert(id.to_owned(), owner.to_owned());
            }
        }
    }
    for task in &queued {
        let Some(owner) = owners.get(&task.deal_id) else {
            let why = format!(
                "Opportunity {} is not in Salesforce (deleted, or not visible to the integration user)",
                task.deal_id
            );
            store.finish_task(tenant, &task.task_id, "failed", None, Some(&why)).await?;
            report.failed += 1;
            continue;
        };
        match connection.org.upsert_task(&task.task_id, &task_fields(task, Some(owner))).await {
            Ok((id, _created)) => {
                store.finish_task(tenant, &task.task_id, "written", id.as_deref(), None).await?;
                report.written += 1;
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(tenant = %tenant, task = %task.task_id, error = %e, "a Task waits for Salesforce");
                report.waiting += 1;
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant, task = %task.task_id, error = %e, "Salesforce refused a Task");
                store.finish_task(tenant, &task.task_id, "failed", None, Some(&e.to_string())).await?;
                report.failed += 1;
            }
        }
    }
    metrics::counter!("salesforce_tasks_written_total").increment(report.written as u64);
    Ok(report)
}
