//! Feedback on alerts (seed 001 "User Feedback Loop"): Useful, Not relevant, False alarm (with a
//! reason), Snooze (a day, a week, or until the score moves by 10). Stored per alert and
//! recipient; the same click delivered twice is one row.
//!
//! What it changes: a snooze silences that alert's subject for that recipient; a recipient who
//! dismissed the last three alerts of a kind gets that kind in the digest instead of at once;
//! and each tenant's critical-deal threshold follows its false-alarm share (bounded, logged in
//! the audit log, visible and reversible by an admin at `/v1/alerts/tuning`). Once outcomes are
//! known, `/v1/alerts/effectiveness` shows whether alerted deals were lost more often than the
//! others, and how many were won after their alert.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use engine::alerts::{AlertKind, FeedbackCounts};
use engine::domain::Outcome;
use serde::{Deserialize, Serialize};

use super::{Alert, ms};

pub use store::{Action, Feedback, Tuning};

/// How long a snooze lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum SnoozeFor {
    #[serde(rename = "1d")]
    Day,
    #[serde(rename = "1w")]
    Week,
    /// Until the deal's score moves by 10 points or more, either way.
    #[serde(rename = "score")]
    ScoreChange,
}

/// What a click judges: an alert, or a deal's risk card.
#[derive(Clone, Copy)]
struct Judging<'a> {
    id: &'a str,
    kind: AlertKind,
    subject: &'a str,
    score: Option<u8>,
}

/// `user_id`'s click on `alert` at `now`. The dedup key makes a repeated delivery of the same
/// click (same alert, user, action and snooze) one row.
pub fn on_alert(
    alert: &Alert,
    user_id: &str,
    action: Action,
    reason: Option<String>,
    snooze: Option<SnoozeFor>,
    now: DateTime<Utc>,
) -> Feedback {
    let on = Judging { id: &alert.alert_id, kind: alert.kind, subject: &alert.subject, score: alert.score };
    about(on, user_id, action, reason, snooze, now)
}

/// `user_id`'s click on a deal's risk card (no alert): a judgement of the deal's critical risk,
/// and a snooze silences critical-deal alerts on the deal for them.
pub fn on_card(
    deal_id: &str,
    score: u8,
    user_id: &str,
    action: Action,
    reason: Option<String>,
    snooze: Option<SnoozeFor>,
    now: DateTime<Utc>,
) -> Feedback {
    let id = format!("card:{deal_id}");
    let on = Judging { id: &id, kind: AlertKind::CriticalDeal, subject: deal_id, score: Some(score) };
    about(on, user_id, action, reason, snooze, now)
}

fn about(
    on: Judging<'_>,
    user_id: &str,
    action: Action,
    reason: Option<String>,
    snooze: Option<SnoozeFor>,
    now: DateTime<Utc>,
) -> Feedback {
    let (until, score) = match (action, snooze) {
        (Action::Snooze, Some(SnoozeFor::Day) | None) => (Some(ms(now + Duration::days(1))), None),
        (Action::Snooze, Some(SnoozeFor::Week)) => (Some(ms(now + Duration::weeks(1))), None),
        (Action::Snooze, Some(SnoozeFor::ScoreChange)) => (None, Some(on.score.unwrap_or(0))),
        _ => (None, None),
    };
    let variant = match snooze {
        Some(SnoozeFor::Day) => ":1d",
        Some(SnoozeFor::Week) => ":1w",
        Some(SnoozeFor::ScoreChange) => ":score",
        None => "",
    };
    Feedback {
        alert_id: on.id.to_owned(),
        user_id: user_id.to_owned(),
        kind: on.kind,
        subject: on.subject.to_owned(),
        action,
        reason: reason.map(|r| r.trim().chars().take(500).collect()).filter(|r: &String| !r.is_empty()),
        snooze_until_ms: until,
        snooze_score: score,
        score: on.score,
        created_at: now,
        dedup_key: format!("{}:{user_id}:{}{variant}", on.id, action.as_str()),
    }
}

/// What a stored click means for the alerts that follow.
pub trait Silences {
    /// Whether this is a snooze that still silences a new alert with `score` at `now`.
    fn silences(&self, score: Option<u8>, now: DateTime<Utc>) -> bool;
}

impl Silences for Feedback {
    fn silences(&self, score: Option<u8>, now: DateTime<Utc>) -> bool {
        if self.action != Action::Snooze {
            return false;
        }
        if let Some(until) = self.snooze_until_ms {
            return ms(now) < until;
        }
        match (self.snooze_score, score) {
            (Some(then), Some(now_score)) => then.abs_diff(now_score) < 10,
            _ => false,
        }
    }
}

/// The feedback that shapes routing: snoozes and dismissal streaks, by recipient.
#[derive(Debug, Clone, Default)]
pub struct Loop {
    snoozes: Vec<Feedback>,
    /// (recipient, kind) whose last three judgements were all dismissals.
    demoted: HashSet<(String, AlertKind)>,
}

/// Dismissals in a row that move a kind to the digest for a recipient.
pub const DEMOTE_AFTER: usize = 3;

impl Loop {
    /// From every stored click, oldest first.
    pub fn new(feedback: &[Feedback]) -> Loop {
        let snoozes = feedback.iter().filter(|f| f.action == Action::Snooze).cloned().collect();
        let mut judged: HashMap<(String, AlertKind), Vec<Action>> = HashMap::new();
        for f in feedback.iter().filter(|f| f.action != Action::Snooze) {
            judged.entry((f.user_id.clone(), f.kind)).or_default().push(f.action);
        }
        let demoted = judged
            .into_iter()
            .filter(|(_, actions)| {
                actions.len() >= DEMOTE_AFTER && actions.iter().rev().take(DEMOTE_AFTER).all(|a| a.dismisses())
            })
            .map(|(key, _)| key)
            .collect();
        Loop { snoozes, demoted }
    }

    pub fn snoozed(&self, user: &str, kind: AlertKind, subject: &str, score: Option<u8>, now: DateTime<Utc>) -> bool {
        self.snoozes
            .iter()
            .any(|f| f.user_id == user && f.kind == kind && f.subject == subject && f.silences(score, now))
    }

    /// Whether `user` dismissed `kind` too often to get it at once: it goes in their digest.
    pub fn demoted(&self, user: &str, kind: AlertKind) -> bool {
        self.demoted.contains(&(user.to_owned(), kind))
    }
}

/// Judgements of a tenant's alerts of `kind` (the latest `window`), for threshold tuning.
///
/// One vote per person and subject: the latest of someone's judgements of a deal (on its
/// alerts or its card) counts, once. A risk card judged below the critical threshold says
/// nothing about the threshold, and does not count.
pub fn counts(feedback: &[Feedback], kind: AlertKind, window: usize) -> FeedbackCounts {
    let critical = engine::alerts::CriticalRule::default().threshold;
    let mut voted: HashSet<(&str, &str)> = HashSet::new();
    let mut c = FeedbackCounts::default();
    let votes = feedback
        .iter()
        .rev()
        .filter(|f| f.kind == kind && f.action != Action::Snooze)
        .filter(|f| !f.alert_id.starts_with("card:") || f.score.is_some_and(|s| s >= critical))
        .filter(|f| voted.insert((f.user_id.as_str(), f.subject.as_str())));
    for f in votes.take(window) {
        match f.action {
            Action::Useful => c.useful += 1,
            Action::NotRelevant | Action::FalseAlarm => c.dismissed += 1,
            Action::Snooze => {}
        }
    }
    c
}

/// What alerting achieved, once outcomes are known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Effectiveness {
    /// Alerts delivered, by kind.
    pub sent: BTreeMap<String, u64>,
    /// Clicks, by kind and action.
    pub feedback: BTreeMap<String, BTreeMap<String, u64>>,
    /// Distinct deals that got a critical alert, and of those, how many have closed since.
    pub alerted_deals: u64,
    pub alerted_closed: u64,
    pub alerted_lost: u64,
    /// Won after their alert: deals recovered.
    pub alerted_won: u64,
    /// Loss rate of the alerted deals that closed, and of every other deal that closed in the
    /// same period (since the first alert): an alert that means something is lost more often.
    pub alerted_loss_rate: Option<f64>,
    pub base_loss_rate: Option<f64>,
    pub since: Option<DateTime<Utc>>,
}

/// Computes [`Effectiveness`] from a tenant's alerts, feedback and deals (id, outcome, close
/// date).
pub fn effectiveness(
    alerts: &[Alert],
    feedback: &[Feedback],
    deals: &[(String, Outcome, Option<chrono::NaiveDate>)],
) -> Effectiveness {
    let mut e = Effectiveness::default();
    for a in alerts.iter().filter(|a| a.state == super::AlertState::Sent) {
        *e.sent.entry(a.kind.as_str().to_owned()).or_insert(0) += 1;
    }
    for f in feedback {
        *e.feedback.entry(f.kind.as_str().to_owned()).or_default().entry(f.action.as_str().to_owned()).or_insert(0) +=
            1;
    }
    let critical: Vec<&Alert> =
        alerts.iter().filter(|a| a.kind == AlertKind::CriticalDeal && a.escalated_from.is_none()).collect();
    let Some(since) = critical.iter().map(|a| a.created_at).min() else { return e };
    e.since = Some(since);
    let first_alert: HashMap<&str, DateTime<Utc>> = critical.iter().fold(HashMap::new(), |mut m, a| {
        let t = m.entry(a.subject.as_str()).or_insert(a.created_at);
        *t = (*t).min(a.created_at);
        m
    });
    e.alerted_deals = first_alert.len() as u64;
    let (mut other_closed, mut other_lost) = (0u64, 0u64);
    for (id, outcome, closed) in deals {
        let Some(closed) = closed else { continue };
        if *outcome == Outcome::Open || *closed < since.date_naive() {
            continue;
        }
        match first_alert.get(id.as_str()) {
            Some(at) if *closed >= at.date_naive() => {
                e.alerted_closed += 1;
                match outcome {
                    Outcome::Lost => e.alerted_lost += 1,
                    _ => e.alerted_won += 1,
                }
            }
            Some(_) => {}
            None => {
                other_closed += 1;
                other_lost += u64::from(*outcome == Outcome::Lost);
            }
        }
    }
    let rate = |lost: u64, closed: u64| (closed > 0).then(|| lost as f64 / closed as f64);
    e.alerted_loss_rate = rate(e.alerted_lost, e.alerted_closed);
    e.base_loss_rate = rate(other_lost, other_closed);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).expect("time") + Duration::hours(hours)
    }

    fn alert(id: &str, subject: &str, score: u8) -> Alert {
        let mut a = super::super::templates::sample(AlertKind::CriticalDeal);
        a.alert_id = id.into();
        a.subject = subject.into();
        a.score = Some(score);
        a
    }

    #[test]
    fn snoozes_last_their_time_or_until_the_score_moves_by_ten() {
        let a = alert("a1", "D1", 80);
        let day = on_alert(&a, "maria", Action::Snooze, None, Some(SnoozeFor::Day), at(0));
        assert!(day.silences(Some(99), at(23)) && !day.silences(Some(99), at(24)));
        let week = on_alert(&a, "maria", Action::Snooze, None, Some(SnoozeFor::Week), at(0));
        assert!(week.silences(None, at(167)) && !week.silences(None, at(168)));
        let score = on_alert(&a, "maria", Action::Snooze, None, Some(SnoozeFor::ScoreChange), at(0));
        assert!(score.silences(Some(89), at(500)), "9 points is not a move");
        assert!(!score.silences(Some(90), at(1)) && !score.silences(Some(70), at(1)), "10 either way is");
        let useful = on_alert(&a, "maria", Action::Useful, None, None, at(0));
        assert!(!useful.silences(Some(80), at(1)));
        // The same click twice has the same key; another snooze length is another click.
        assert_eq!(day.dedup_key, on_alert(&a, "maria", Action::Snooze, None, Some(SnoozeFor::Day), at(5)).dedup_key);
        assert_ne!(day.dedup_key, week.dedup_key);
        let l = Loop::new(&[day]);
        assert!(l.snoozed("maria", AlertKind::CriticalDeal, "D1", Some(90), at(1)));
        assert!(!l.snoozed("maria", AlertKind::CriticalDeal, "D2", Some(90), at(1)), "another deal");
        assert!(!l.snoozed("omar", AlertKind::CriticalDeal, "D1", Some(90), at(1)), "another person");
    }

    #[test]
    fn three_dismissals_in_a_row_demote_and_a_useful_click_restores() {
        let click = |i: usize, action| {
            on_alert(&alert(&format!("a{i}"), &format!("D{i}"), 80), "omar", action, None, None, at(i as i64))
        };
        let dismissed: Vec<Feedback> = (0..3).map(|i| click(i, Action::FalseAlarm)).collect();
        assert!(Loop::new(&dismissed).demoted("omar", AlertKind::CriticalDeal));
        assert!(!Loop::new(&dismissed[..2]).demoted("omar", AlertKind::CriticalDeal));
        let mut then_useful = dismissed.clone();
        then_useful.push(click(3, Action::Useful));
        assert!(!Loop::new(&then_useful).demoted("omar", AlertKind::CriticalDeal));
        assert!(!Loop::new(&dismissed).demoted("maria", AlertKind::CriticalDeal));
        let c = counts(&then_useful, AlertKind::CriticalDeal, 30);
        assert_eq!((c.useful, c.dismissed), (1, 3));
    }

    #[test]
    fn one_person_has_one_vote_per_deal_and_cards_below_critical_do_not_count() {
        let now = at(0);
        let on_alert =
            |id: &str, deal: &str, who: &str, action| on_alert(&alert(id, deal, 80), who, action, None, None, now);
        let on_card = |deal: &str, score: u8, who: &str, action| on_card(deal, score, who, action, None, None, now);
        let clicks = vec![
            // The same rep judging one deal five ways: the latest counts, once.
            on_alert("a1", "D1", "rep", Action::FalseAlarm),
            on_card("D1", 80, "rep", Action::FalseAlarm),
            on_alert("a2", "D1", "rep", Action::NotRelevant),
            on_card("D1", 81, "rep", Action::Useful),
            // Another person's judgement of the same deal is their own vote.
            on_alert("a3", "D1", "boss", Action::FalseAlarm),
            // A card judged at medium risk says nothing about the critical threshold.
            on_card("D2", 40, "rep", Action::FalseAlarm),
            on_card("D3", 75, "rep", Action::FalseAlarm),
        ];
        let c = counts(&clicks, AlertKind::CriticalDeal, 30);
        assert_eq!((c.useful, c.dismissed), (1, 2), "rep on D1 (useful), boss on D1, rep on D3");
    }

    #[test]
    fn effectiveness_compares_alerted_deals_with_the_rest() {
        let mut a = alert("a1", "D1", 85);
        a.state = super::super::AlertState::Sent;
        a.created_at = at(0);
        let mut b = alert("a2", "D2", 90);
        b.state = super::super::AlertState::Sent;
        b.created_at = at(0);
        let day = |d: i64| (at(0) + Duration::days(d)).date_naive();
        let deals = vec![
            ("D1".to_owned(), Outcome::Lost, Some(day(5))),
            ("D2".to_owned(), Outcome::Won, Some(day(9))), // recovered
            ("D3".to_owned(), Outcome::Lost, Some(day(3))),
            ("D4".to_owned(), Outcome::Won, Some(day(4))),
            ("D5".to_owned(), Outcome::Won, Some(day(6))),
            ("D6".to_owned(), Outcome::Won, Some(day(-30))), // closed before any alert
            ("D7".to_owned(), Outcome::Open, None),
        ];
        let e = effectiveness(&[a, b], &[], &deals);
        assert_eq!((e.alerted_deals, e.alerted_closed, e.alerted_lost, e.alerted_won), (2, 2, 1, 1));
        assert_eq!(e.alerted_loss_rate, Some(0.5));
        assert_eq!(e.base_loss_rate, Some(1.0 / 3.0));
        assert_eq!(e.sent["critical_deal"], 2);
    }
}
