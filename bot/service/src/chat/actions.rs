//! Buttons, whatever the platform. Our templates in `prompts/` give every button an action id
//! and a value (`useful` + an alert id, `card_snooze` with `D7|82|1w`, `pick:D9`); an adapter
//! reads its platform's click payload back into an [`Action`] and [`act`] does it, the same way
//! for Slack, Teams and Discord: judgements stored once as feedback (which tunes the team's
//! thresholds), follow-up tasks recorded once per message and person, pick-lists and ask-back
//! readings answered. The adapter then renders the [`Outcome`] in its own format.

use chrono::Utc;
use serde_json::{Value, json};

use super::Reply;
use crate::Services;
use crate::alerts::feedback::{Action as Judgement, Feedback, SnoozeFor};
use crate::feedback::Click;
use crate::tenants::Scope;
use store::{FollowUpTask, TenantId, User};

/// What a click asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A pick-list or pipeline button: that deal's card.
    Pick(String),
    OpenSettings,
    /// A follow-up task on the deal.
    Task(String),
    /// A judgement of an alert (its id); a false alarm asks why first where the platform can.
    Alert(String, Click),
    /// A judgement of a deal's risk card (deal, score then).
    Card(String, u8, Click),
    /// An ask-back button: answer the question (the value) with this reading.
    Ask(engine::question::Intent, String),
}

fn snooze_length(s: &str) -> SnoozeFor {
    match s {
        "1w" => SnoozeFor::Week,
        "score" => SnoozeFor::ScoreChange,
        _ => SnoozeFor::Day,
    }
}

/// What a click on a deal's card is about: (deal, its score then), from `D7|82` (and a snooze
/// length after a second `|`).
fn card_value(value: &str) -> Option<(&str, u8)> {
    let (deal, score) = value.split_once('|')?;
    Some((deal, score.split('|').next()?.parse().ok()?))
}

impl Action {
    /// Reads a click from its action id, its value and the option chosen in a menu (a snooze's
    /// length). `None`: a button that needs no answer (a link) or one we did not make.
    pub fn read(id: &str, value: Option<&str>, choice: Option<&str>) -> Option<Action> {
        let plain = |action| Click { action, reason: None, snooze: None };
        let snooze =
            |length: &str| Click { action: Judgement::Snooze, reason: None, snooze: Some(snooze_length(length)) };
        if let Some(deal) = id.strip_prefix("pick:") {
            return Some(Action::Pick(deal.to_owned()));
        }
        if let Some(intent) = id.strip_prefix("ask:") {
            return Some(Action::Ask(engine::question::Intent::parse(intent)?, value?.to_owned()));
        }
        Some(match id {
            "pick" => Action::Pick(value?.to_owned()),
            "open_settings" => Action::OpenSettings,
            "task" => Action::Task(value?.to_owned()),
            "useful" => Action::Alert(value?.to_owned(), plain(Judgement::Useful)),
            "not_relevant" => Action::Alert(value?.to_owned(), plain(Judgement::NotRelevant)),
            "false_alarm" => Action::Alert(value?.to_owned(), plain(Judgement::FalseAlarm)),
            "snooze" => {
                let (alert, length) = choice?.split_once('|')?;
                Action::Alert(alert.to_owned(), snooze(length))
            }
            "card_useful" | "card_false_alarm" => {
                let (deal, score) = card_value(value?)?;
                let action = if id == "card_useful" { Judgement::Useful } else { Judgement::FalseAlarm };
                Action::Card(deal.to_owned(), score, plain(action))
            }
            "card_snooze" => {
                let choice = choice?;
                let (deal, score) = card_value(choice)?;
                Action::Card(deal.to_owned(), score, snooze(choice.rsplit('|').next()?))
            }
            _ => return None,
        })
    }

    /// Reads an action packed into one string as `id:value` (a Discord custom id), with the
    /// option chosen in a menu.
    pub fn unpack(packed: &str, choice: Option<&str>) -> Option<Action> {
        match packed.split_once(':') {
            Some((id, value)) if !id.starts_with("ask") => Action::read(id, Some(value), choice),
            _ => Action::read(packed, None, choice),
        }
    }
}

/// What is judged: an alert (its id) or a deal's risk card (deal, score).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judge {
    Alert(String),
    Card(String, u8),
}

impl Judge {
    /// `alert:<id>` or `card:<deal>|<score>`: carried by a form that asks why.
    pub fn pack(&self) -> String {
        match self {
            Judge::Alert(id) => format!("alert:{id}"),
            Judge::Card(deal, score) => format!("card:{deal}|{score}"),
        }
    }

    pub fn unpack(s: &str) -> Option<Judge> {
        if let Some(id) = s.strip_prefix("alert:") {
            return Some(Judge::Alert(id.to_owned()));
        }
        let (deal, score) = card_value(s.strip_prefix("card:")?)?;
        Some(Judge::Card(deal.to_owned(), score))
    }
}

/// A stored judgement, and what it changed.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub given: Feedback,
    /// The team's critical threshold after this click, when the click (new) retuned it.
    pub threshold: Option<u8>,
}

impl Verdict {
    /// Whether the click was on a risk card rather than an alert.
    pub fn on_card(&self) -> bool {
        self.given.alert_id.starts_with("card:")
    }

    /// What was done, in the user's time zone: "🔕 Snoozed until Tue 09 Jun 09:00".
    pub fn what(&self, time_zone: &str) -> String {
        let given = &self.given;
        match given.action {
            Judgement::Useful => "✅ Marked useful".to_owned(),
            Judgement::NotRelevant => "Marked not relevant".to_owned(),
            Judgement::FalseAlarm => match &given.reason {
                Some(reason) => format!("Marked a false alarm ({})", reason.replace('\n', " ")),
                None => "Marked a false alarm".to_owned(),
            },
            Judgement::Snooze => {
                let what = if self.on_card() { "🔕 Alerts on this deal snoozed" } else { "🔕 Snoozed" };
                match (given.snooze_until_ms.and_then(chrono::DateTime::from_timestamp_millis), given.snooze_score) {
                    (Some(until), _) => format!("{what} until {}", local(until, time_zone)),
                    (None, Some(score)) => format!("{what} until the score moves 10 points from {score}"),
                    (None, None) => what.to_owned(),
                }
            }
        }
    }

    /// The line that takes the place of the buttons: what was done, by whom (`who`, as the
    /// platform writes a person), and the team's new threshold when this click moved it.
    pub fn line(&self, time_zone: &str, who: &str) -> String {
        let mut line = format!("{} by {who}", self.what(time_zone));
        if let Some(t) = self.threshold {
            line.push_str(&format!(" · the team's critical threshold is now {t}"));
        }
        line
    }
}

/// A time as people read it on a message: "Tue 09 Jun 09:30" in their time zone.
pub fn local(at: chrono::DateTime<Utc>, time_zone: &str) -> String {
    let tz: chrono_tz::Tz = time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    at.with_timezone(&tz).format("%a %d %b %H:%M").to_string()
}

/// Said when someone judges an alert that was not sent to them, or the card of a deal they
/// cannot see (or one no longer open).
pub const NOT_YOURS: &str =
    "I can't record that: the alert was sent to someone else, or the deal is not an open one of yours to judge.";

/// Stores `user`'s judgement once (a click delivered twice has one effect) and retunes the
/// team's threshold; `None` when the alert is not the user's to judge.
pub async fn judge(
    state: &Services,
    tenant: &TenantId,
    user: &User,
    on: &Judge,
    request: &Click,
) -> anyhow::Result<Option<Verdict>> {
    use crate::feedback::{give_card_feedback, give_feedback};
    let failed = |e: crate::ServiceError| e.into_anyhow().context("recording feedback");
    Ok(match on {
        Judge::Alert(alert) => {
            give_feedback(state, tenant, &user.user_id, user.role, alert, request).await.map_err(failed)?.map(|j| {
                Verdict { threshold: j.tuning.as_ref().filter(|_| j.recorded).map(|t| t.threshold), given: j.given }
            })
        }
        // The score on the button is not trusted: the card is judged at the deal's score now.
        Judge::Card(deal, _) => give_card_feedback(state, tenant, user, deal, request).await.map_err(failed)?.map(
            |(given, recorded, tuning)| Verdict { given, threshold: tuning.filter(|_| recorded).map(|t| t.threshold) },
        ),
    })
}

/// What a false alarm is about, as a form asking why names it: the deal's company for an
/// alert on a deal, else the alert's subject (or the deal id on a card).
pub async fn subject_of(state: &Services, tenant: &TenantId, on: &Judge) -> anyhow::Result<String> {
    Ok(match on {
        Judge::Card(deal, _) => deal.clone(),
        Judge::Alert(alert) => {
            let query = alerts::AlertQuery { alert_id: Some(alert.clone()), ..Default::default() };
            let found = state.store.alerts(tenant, &query).await?.into_iter().next();
            found.map_or_else(
                || alert.clone(),
                |a| a.payload.pointer("/deal/company").and_then(Value::as_str).unwrap_or(&a.subject).to_owned(),
            )
        }
    })
}

/// Subjects of follow-up tasks when the deal has no recommendation.
const DEFAULT_TASK: &str = "Follow up on this deal's risk";

/// Create follow-up task: recorded once per `key` (the platform, the person and the message
/// clicked: a second click says it exists), for the deal's owner, due the next working day in
/// the user's time zone, titled with the deal's top recommendation. With a Salesforce org
/// connected it is queued and written there as a Task at once (the sync job retries); without
/// one it stays recorded in Dealwatch. Returns what to tell the user.
pub async fn follow_up_task(
    state: &Services,
    tenant: &TenantId,
    user: &User,
    scope: Scope,
    deal: &str,
    key: String,
    via: &'static str,
) -> anyhow::Result<String> {
    let command = super::command::Command::DealRisk { query: deal.to_owned() };
    let card = match super::answer(state, tenant, user, scope, command, via).await? {
        Reply::RiskCard { card } => card,
        Reply::Refused { .. } => return Ok(format!("Sorry, {deal} is in a pipeline you don't have access to.")),
        Reply::Closed { .. } => return Ok(format!("{deal} is closed; no task was created.")),
        _ => return Ok(format!("I can't find an open deal {deal}; no task was created.")),
    };
    // The task is on the deal the lookup found (a name may have been typed), by its id.
    let deal = card.deal_id.as_str();
    let now = state.now();
    let tz: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let due = crate::workflow::next_working_day(now.with_timezone(&tz).date_naive());
    let crm = state.crm.writes_tasks(tenant);
    let task = FollowUpTask {
        task_id: uuid::Uuid::now_v7().to_string(),
        task_key: key,
        deal_id: deal.to_owned(),
        subject: card.recommendations.first().map_or(DEFAULT_TASK.to_owned(), |r| r.action.clone()),
        due_date: Some(due),
        owner: card.owner.clone(),
        created_by: user.user_id.clone(),
        created_at: now,
        state: if crm { "queued" } else { "recorded" }.into(),
        crm_id: None,
        error: None,
    };
    let (stored, new) = state.store.record_task(tenant, &task).await?;
    if crm && new {
        // Written now rather than at the next sync; a failure leaves it queued for the job.
        let (store, crm, tenant) = (state.store.clone(), state.crm.clone(), tenant.clone());
        tokio::spawn(async move {
            if let Err(e) = crm.write_tasks(store.as_ref(), &tenant).await {
                tracing::warn!(error = %format!("{e:#}"), "writing a follow-up task to Salesforce; the sync job retries");
            }
        });
    }
    if new {
        let details =
            json!({ "task_id": stored.task_id, "subject": stored.subject, "due": stored.due_date, "via": via });
        let entry = store::AuditEntry {
            at: now,
            actor: user.user_id.clone(),
            action: "task.create".into(),
            target: Some(deal.to_owned()),
            details: Some(details),
            request_id: None,
        };
        state.audit.now(tenant, entry).await?;
        metrics::counter!("follow_up_tasks_total", "via" => via).increment(1);
    }
    let due = stored.due_date.map_or_else(String::new, |d| format!(", due {}", d.format("%a %d %b")));
    let owner = stored.owner.as_deref().map_or_else(String::new, |o| format!(" for {o}"));
    Ok(if new {
        let whereto = if stored.state == "queued" {
            "It goes onto the Opportunity in Salesforce as a Task."
        } else {
            "It is recorded in Dealwatch (no CRM is connected)."
        };
        format!("📝 Task created on {deal}{owner}: {}{due}. {whereto}", stored.subject)
    } else {
        format!("📝 You already created this task on {deal}: {}{due}.", stored.subject)
    })
}

/// What came of a click, for the adapter to show.
#[derive(Debug)]
pub enum Outcome {
    /// Show this in place of the message clicked (a deal's card, a question's answer).
    Replace(Reply),
    /// The judgement was stored: the message loses its judgement buttons and shows the verdict.
    Judged(Verdict),
    /// Tell the user this, leaving the message as it is.
    Say(String),
    /// Open the user's alert settings.
    Settings,
    /// A false alarm: ask why before storing it (`subject` names what it is about).
    AskWhy { on: Judge, subject: String },
}

/// Who clicked: the tenant, the person and what they may see.
#[derive(Debug, Clone)]
pub struct Clicker<'a> {
    pub tenant: &'a TenantId,
    pub user: &'a User,
    pub scope: Scope,
    /// The platform, for the audit log and metrics (`slack`, `teams`, `discord`).
    pub via: &'static str,
}

/// Does what `action` asks. `task_key` names the message clicked, so a task is made once per
/// message and person; `ask_why` is false where the platform cannot ask (the false alarm is
/// then stored without a reason).
pub async fn act(
    state: &Services,
    who: &Clicker<'_>,
    action: Action,
    task_key: impl FnOnce(&str) -> String,
    ask_why: bool,
) -> anyhow::Result<Outcome> {
    let (tenant, user) = (who.tenant, who.user);
    let judged = |verdict: Option<Verdict>| verdict.map_or_else(|| Outcome::Say(NOT_YOURS.into()), Outcome::Judged);
    Ok(match action {
        Action::Pick(deal) => {
            let command = super::command::Command::DealRisk { query: deal };
            Outcome::Replace(super::answer(state, tenant, user, who.scope.clone(), command, who.via).await?)
        }
        Action::Ask(intent, question) => {
            let today = state.now().date_naive();
            let asked =
                super::ask::ask(state, tenant, user, who.scope.clone(), &question, today, Some(intent), who.via)
                    .await?;
            Outcome::Replace(asked.reply)
        }
        Action::OpenSettings => Outcome::Settings,
        Action::Task(deal) => {
            let key = task_key(&deal);
            Outcome::Say(follow_up_task(state, tenant, user, who.scope.clone(), &deal, key, who.via).await?)
        }
        Action::Alert(alert, request) if request.action == Judgement::FalseAlarm && ask_why => {
            let on = Judge::Alert(alert);
            Outcome::AskWhy { subject: subject_of(state, tenant, &on).await?, on }
        }
        Action::Card(deal, score, request) if request.action == Judgement::FalseAlarm && ask_why => {
            let on = Judge::Card(deal, score);
            Outcome::AskWhy { subject: subject_of(state, tenant, &on).await?, on }
        }
        Action::Alert(alert, request) => judged(judge(state, tenant, user, &Judge::Alert(alert), &request).await?),
        Action::Card(deal, score, request) => {
            judged(judge(state, tenant, user, &Judge::Card(deal, score), &request).await?)
        }
    })
}

/// A false alarm's reason from a form: the reason picked and the words typed, either or both.
pub fn reason(picked: Option<String>, typed: Option<String>) -> Option<String> {
    let clean = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    match (clean(picked), clean(typed)) {
        (Some(r), Some(d)) => Some(format!("{r}: {d}")),
        (r, d) => r.or(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_are_read_from_their_action_ids_and_values() {
        let c = Action::read("useful", Some("a1"), None).expect("useful");
        assert!(matches!(c, Action::Alert(ref id, ref r) if id == "a1" && r.action == Judgement::Useful));
        let c = Action::read("snooze", None, Some("a2|1w")).expect("snooze");
        assert!(matches!(c, Action::Alert(ref id, ref r) if id == "a2" && r.snooze == Some(SnoozeFor::Week)));
        let c = Action::read("card_snooze", None, Some("D7|82|score")).expect("card snooze");
        assert!(matches!(c, Action::Card(ref d, 82, ref r) if d == "D7" && r.snooze == Some(SnoozeFor::ScoreChange)));
        let c = Action::read("card_false_alarm", Some("D7|82"), None).expect("card false alarm");
        assert!(matches!(c, Action::Card(_, 82, ref r) if r.action == Judgement::FalseAlarm));
        assert_eq!(Action::read("task", Some("D7"), None), Some(Action::Task("D7".into())));
        assert_eq!(Action::read("pick:D9", None, None), Some(Action::Pick("D9".into())));
        assert_eq!(Action::read("open_settings", None, None), Some(Action::OpenSettings));
        assert_eq!(Action::read("false_alarm", None, None), None, "no alert id");
        assert_eq!(Action::read("card_useful", Some("D7"), None), None, "no score");
        assert_eq!(Action::read("open_deal", Some("x"), None), None, "a link button needs no answer");
        assert_eq!(
            Action::read("ask:win_rate", Some("how are we doing"), None),
            Some(Action::Ask(engine::question::Intent::WinRate, "how are we doing".into()))
        );
    }

    #[test]
    fn packed_actions_read_like_their_parts() {
        assert_eq!(Action::unpack("pick:D9", None), Some(Action::Pick("D9".into())));
        assert_eq!(Action::unpack("task:D7", None), Some(Action::Task("D7".into())));
        let c = Action::unpack("useful:0190f0e2-0000-7000-8000-000000000000", None).expect("useful");
        assert!(matches!(c, Action::Alert(ref id, _) if id == "0190f0e2-0000-7000-8000-000000000000"));
        let c = Action::unpack("card_useful:D7|82", None).expect("card");
        assert!(matches!(c, Action::Card(ref d, 82, _) if d == "D7"));
        let c = Action::unpack("snooze", Some("a2|score")).expect("snooze menu");
        assert!(matches!(c, Action::Alert(ref id, ref r) if id == "a2" && r.snooze == Some(SnoozeFor::ScoreChange)));
        assert_eq!(Action::unpack("dance:now", None), None);
    }

    #[test]
    fn judgements_travel_packed_through_forms() {
        for judge in [Judge::Alert("0190f0e2-0000-7000-8000-000000000000".into()), Judge::Card("D-7".into(), 82)] {
            assert_eq!(Judge::unpack(&judge.pack()), Some(judge.clone()), "{judge:?}");
        }
        assert_eq!(Judge::unpack("card:D7"), None);
        assert_eq!(Judge::unpack("nonsense"), None);
    }

    #[test]
    fn a_false_alarms_reason_joins_what_was_picked_and_typed() {
        let s = |t: &str| Some(t.to_owned());
        assert_eq!(reason(s("Already won"), s(" signed today ")), s("Already won: signed today"));
        assert_eq!(reason(None, s("signed")), s("signed"));
        assert_eq!(reason(s("Wrong owner"), s("  ")), s("Wrong owner"));
        assert_eq!(reason(None, None), None);
    }

    #[test]
    fn tasks_fall_due_on_the_next_working_day() {
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert_eq!(crate::workflow::next_working_day(d("2026-12-02")), d("2026-12-03"), "Wed → Thu");
        assert_eq!(crate::workflow::next_working_day(d("2026-12-04")), d("2026-12-07"), "Fri → Mon");
        assert_eq!(crate::workflow::next_working_day(d("2026-12-05")), d("2026-12-07"), "Sat → Mon");
    }
}
