//! What the bot says, whatever the platform: commands ([`command`]) are answered here as typed
//! [`Reply`] values from the tenant's engine and the store, questions through [`ask`], button
//! clicks through [`actions`]; each platform's adapter (Slack, Teams, Discord) only reads its
//! wire format into these, renders the answers in its own format and carries them
//! ([`transport`] is the seam).

pub mod actions;
pub mod ask;
pub mod command;
pub use ::embed;
pub mod form;
pub mod pipeline;
pub mod samples;
pub mod transport;

use crate::names::{Name, SIMILAR, normalise};

use engine::asof::{Status, status};
use engine::score::{RiskScore, Scorer};
use serde::Serialize;

use crate::tenants::{Scope, TenantEngine};

/// A deal as a pick-list or suggestion shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub deal_id: String,
    pub company: String,
    pub owner: Option<String>,
    pub amount: Option<f64>,
}

/// The bot's answer, before any platform formats it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// The full risk card of one open deal.
    RiskCard {
        card: Box<RiskScore>,
    },
    /// Several open deals match the name: which one?
    PickList {
        query: String,
        candidates: Vec<Candidate>,
    },
    /// Nothing matches; maybe one of these was meant.
    NotFound {
        query: String,
        suggestions: Vec<Candidate>,
    },
    /// The deal exists but is closed: no risk to score.
    Closed {
        deal_id: String,
        company: String,
        won: bool,
    },
    /// The deal exists but belongs to a pipeline the user may not see.
    Refused {
        query: String,
    },
    /// The tenant has no model yet.
    NoModel,
    /// `/pipeline`: the pipeline the user may see, as filtered.
    Pipeline {
        view: Box<pipeline::PipelineView>,
    },
    /// A change was made (a mute, an unmute): what it was, and a hint.
    Done {
        text: String,
        hint: Option<String>,
    },
    /// `/dealwatch settings`: the platform shows its settings form (which reads the values).
    Settings,
    /// The command text could not be read, with why.
    Unreadable {
        message: String,
    },
    Help,
    /// A plain-English question's answer: its template and values, and what was understood.
    Answer {
        answered: Box<ask::Answered>,
    },
    /// A question too unclear to answer: the readings it could be, to pick from.
    AskBack {
        question: String,
        text: String,
        options: Vec<ask::AskOption>,
    },
}

/// The words of a short reply (a refusal, a closed deal, a change made), with a hint under them,
/// bold marked the platform's way; `None` for the replies a platform draws as a card or a list,
/// and for help, which each platform words for its own commands.
pub fn notice(reply: &Reply, style: ask::Style) -> Option<(String, Option<String>)> {
    let b = style.bold;
    let e = |name: &str| style.markup.escape(name);
    Some(match reply {
        Reply::Closed { deal_id, company, won } => (
            format!(
                "{} ({}) is already {}: risk scores are for open deals.",
                e(deal_id),
                e(company),
                if *won { "won" } else { "lost" }
            ),
            None,
        ),
        Reply::Refused { query } => (
            format!("Sorry, {b}{}{b} is in a pipeline you don't have access to.", e(query)),
            Some("Ask your manager or a Dealwatch admin if you should see it.".into()),
        ),
        Reply::NoModel => (
            "There is no trained model for your team yet, so there are no scores.".into(),
            Some("An admin can train one with `dealwatch train` or POST /v1/models/train.".into()),
        ),
        Reply::Unreadable { message } => (message.clone(), Some("`/dealwatch help` lists what I understand.".into())),
        Reply::Done { text, hint } => (text.clone(), hint.clone()),
        Reply::Settings => (
            "Your alert settings open in a form.".into(),
            Some("If it does not open, POST /v1/alerts/configure takes the same settings.".into()),
        ),
        Reply::Help
        | Reply::RiskCard { .. }
        | Reply::PickList { .. }
        | Reply::NotFound { .. }
        | Reply::Pipeline { .. }
        | Reply::Answer { .. }
        | Reply::AskBack { .. } => return None,
    })
}

/// Answers `command` from `user` (who sees `scope`) in `tenant`: scores and figures from the
/// tenant's engine, setting changes through the same path as the REST API.
pub async fn answer(
    state: &crate::Services,
    tenant: &store::TenantId,
    user: &store::User,
    scope: Scope,
    command: command::Command,
    via: &'static str,
) -> anyhow::Result<Reply> {
    use command::Command;
    Ok(match command {
        Command::Help => Reply::Help,
        Command::DealRisk { query } => {
            let Some(engine) = engine(state, tenant).await? else { return Ok(Reply::NoModel) };
            deal_risk_of(state, tenant, user, &engine, &query, scope, via).await?
        }
        Command::Pipeline { filters } => {
            let Some(engine) = engine(state, tenant).await? else { return Ok(Reply::NoModel) };
            let texts = state.texts.clone();
            tokio::task::spawn_blocking(move || pipeline::pipeline(&engine, &filters, &scope, &texts)).await?
        }
        Command::Settings => Reply::Settings,
        Command::Mute { kind } => mute(state, tenant, user, Some(kind), true).await?,
        Command::Unmute { kind } => mute(state, tenant, user, kind, false).await?,
        Command::Set { setting } => set(state, tenant, user, setting).await?,
    })
}

/// "Critical-deal alerts above 75, wherever you can be reached. Daily digest at 08:00
/// (Europe/Berlin). Quiet hours 20:00–08:00. Muted: segment decline."
fn describe(settings: &alerts::settings::AlertSettings, user: &store::User) -> String {
    let critical = settings.critical();
    let mut parts = Vec::new();
    parts.push(if !critical.enabled {
        "Critical-deal alerts are off.".to_owned()
    } else if critical.channels.is_empty() {
        format!("Critical-deal alerts above {}, wherever you can be reached.", critical.threshold)
    } else {
        format!("Critical-deal alerts above {}, on {}.", critical.threshold, critical.channels.join(", "))
    });
    parts.push(match settings.digest_for(user.role, &user.time_zone) {
        Some(d) => format!("Daily digest at {} ({}).", d.time, d.timezone),
        None => "No daily digest.".to_owned(),
    });
    parts.push(match settings.quiet_window() {
        Some((start, end)) => format!("Quiet hours {}–{}.", start.format("%H:%M"), end.format("%H:%M")),
        None => "No quiet hours.".to_owned(),
    });
    let muted: Vec<String> = settings.muted.iter().flatten().map(|k| k.as_str().replace('_', " ")).collect();
    if !muted.is_empty() {
        parts.push(format!("Muted: {}.", muted.join(", ")));
    }
    parts.join(" ")
}

/// A settings form submitted from Teams or Discord: saved through the same checks as the REST
/// API, answered with the settings now in force, or with what is wrong (the field and why).
pub async fn save_form(
    state: &crate::Services,
    tenant: &store::TenantId,
    user: &store::User,
    submission: &form::Submission,
) -> anyhow::Result<Reply> {
    use crate::alerts::settings::AlertSettings;
    let current = AlertSettings::from_stored(state.store.alert_settings(tenant, &user.user_id).await?);
    let update = match form::settings_from(submission, &current, user).and_then(|u| u.validate().map(|()| u)) {
        Ok(update) => update,
        Err(e) => return Ok(Reply::Unreadable { message: format!("Not saved: {}", e.message) }),
    };
    let (now_in_force, _) = crate::preferences::update_settings(state, tenant, &user.user_id, update)
        .await
        .map_err(|e| e.into_anyhow().context("saving the settings"))?;
    Ok(Reply::Done { text: format!("✅ Saved. {}", describe(&now_in_force, user)), hint: None })
}

/// The form a user's settings open in: the values in force, the channels this deployment has.
pub async fn settings_form(
    state: &crate::Services,
    tenant: &store::TenantId,
    user: &store::User,
) -> anyhow::Result<form::SettingsForm> {
    let stored = state.store.alert_settings(tenant, &user.user_id).await?;
    let settings = alerts::settings::AlertSettings::from_stored(stored);
    Ok(form::SettingsForm::new(&settings, user, &state.settings.alert_channels(), "command"))
}

/// `/dealwatch set …`: one setting changed, as if that one field of the settings form were
/// submitted (the same checks as the REST API; a value the settings refuse is said back).
async fn set(
    state: &crate::Services,
    tenant: &store::TenantId,
    user: &store::User,
    setting: command::Setting,
) -> anyhow::Result<Reply> {
    use command::Setting;
    let submission = match setting {
        Setting::Critical(on) => form::Submission { critical: Some(on), ..Default::default() },
        Setting::Threshold(t) => form::Submission { threshold: Some(t.to_string()), ..Default::default() },
        Setting::Channels(channels) => form::Submission { channels: Some(channels), ..Default::default() },
        Setting::Digest(time) => {
            form::Submission { digest: Some(time.is_some()), digest_time: time, ..Default::default() }
        }
        Setting::TimeZone(zone) => form::Submission { timezone: Some(zone), ..Default::default() },
        Setting::Quiet(window) => form::Submission {
            quiet: Some(window.is_some()),
            quiet_start: window.as_ref().map(|w| w.0.clone()),
            quiet_end: window.map(|w| w.1),
            ..Default::default()
        },
    };
    save_form(state, tenant, user, &submission).await
}

/// The risk card of the deal `query` names (an id, an account or a deal name) in `engine`,
/// audited as a read by `user`.
pub async fn deal_risk_of(
    state: &crate::Services,
    tenant: &store::TenantId,
    user: &store::User,
    engine: &std::sync::Arc<TenantEngine>,
    query: &str,
    scope: Scope,
    via: &'static str,
) -> anyhow::Result<Reply> {
    let texts = state.texts.clone();
    let (engine, query) = (engine.clone(), query.to_owned());
    let reply = tokio::task::spawn_blocking(move || deal_risk(&engine, &query, &scope, &texts)).await?;
    if let Reply::RiskCard { card } = &reply {
        let entry = store::AuditEntry {
            at: state.now(),
            actor: user.user_id.clone(),
            action: "deal.score".into(),
            target: Some(card.deal_id.clone()),
            details: Some(serde_json::json!({ "via": via })),
            request_id: None,
        };
        state.audit.read(tenant, entry).await?;
        metrics::counter!("deals_scored_total", "path" => via).increment(1);
    }
    Ok(reply)
}

async fn engine(
    state: &crate::Services,
    tenant: &store::TenantId,
) -> anyhow::Result<Option<std::sync::Arc<TenantEngine>>> {
    let engine = state.cache.get(&state.store, tenant, state.now().date_naive()).await;
    engine.map_err(|e| e.into_anyhow().context("loading the tenant"))
}

/// Mutes `kind` for the user, or unmutes it (every kind when `None`), through the settings.
async fn mute(
    state: &crate::Services,
    tenant: &store::TenantId,
    user: &store::User,
    kind: Option<engine::alerts::AlertKind>,
    on: bool,
) -> anyhow::Result<Reply> {
    let stored = state.store.alert_settings(tenant, &user.user_id).await?;
    let mut muted = alerts::settings::AlertSettings::from_stored(stored).muted.unwrap_or_default();
    let before = muted.clone();
    match (on, kind) {
        (true, Some(k)) if !muted.contains(&k) => muted.push(k),
        (false, Some(k)) => muted.retain(|m| *m != k),
        (false, None) => muted.clear(),
        _ => {}
    }
    muted.sort();
    let label = |k: engine::alerts::AlertKind| k.as_str().replace('_', " ");
    let list = |m: &[engine::alerts::AlertKind]| m.iter().map(|&k| label(k)).collect::<Vec<_>>().join(", ");
    if muted != before {
        let update = alerts::settings::AlertSettings { muted: Some(muted.clone()), ..Default::default() };
        crate::preferences::update_settings(state, tenant, &user.user_id, update)
            .await
            .map_err(|e| e.into_anyhow().context("saving the settings"))?;
    }
    let text = match (on, kind) {
        (true, Some(k)) => format!("🔕 Muted {} alerts: you won't get them anywhere until you unmute them.", label(k)),
        (false, Some(k)) if before.contains(&k) => format!("🔔 Unmuted {} alerts.", label(k)),
        (false, Some(k)) => format!("{} alerts were not muted.", label(k)),
        (false, None) if before.is_empty() => "Nothing was muted.".to_owned(),
        (false, None) => format!("🔔 Unmuted every alert type ({}).", list(&before)),
        (true, None) => String::new(),
    };
    let hint = if muted.is_empty() {
        None
    } else {
        Some(format!("Muted now: {}. `/dealwatch unmute` brings them all back.", list(&muted)))
    };
    Ok(Reply::Done { text, hint })
}

/// Most candidates a pick-list offers.
const PICK_LIST: usize = 5;
/// Closest names suggested for an unknown one.
const SUGGESTIONS: usize = 3;

/// Answers `/deal-risk <query>` for a user who sees `scope`.
pub fn deal_risk(engine: &TenantEngine, query: &str, scope: &Scope, texts: &engine::texts::Texts) -> Reply {
    let Some(model) = engine.model.as_ref() else { return Reply::NoModel };
    let data = &engine.dataset;
    let owner_col = data.schema.owner_column();
    let owner_of = |i: usize| owner_col.and_then(|c| data.cat_name(c, data.deals[i].cats[c]));
    let candidate = |i: usize| {
        let d = &data.deals[i];
        Candidate {
            deal_id: d.id.to_string(),
            company: d.name.clone(),
            owner: owner_of(i).map(str::to_owned),
            amount: d.amount.map(|a| a.get()),
        }
    };
    let query = query.trim();

    // A deal id, exactly or in another case.
    let by_id = engine.index.get(query).copied().or_else(|| {
        let upper = query.to_ascii_uppercase();
        engine.index.get(&upper).copied()
    });
    if let Some(i) = by_id {
        if !scope.allows(owner_of(i)) {
            return Reply::Refused { query: query.to_owned() };
        }
        return match status(&data.deals[i], Some(engine.as_of)) {
            Status::Open => score(engine, model, i, scope, texts),
            Status::Won | Status::Lost => Reply::Closed {
                deal_id: data.deals[i].id.to_string(),
                company: data.deals[i].name.clone(),
                won: status(&data.deals[i], Some(engine.as_of)) == Status::Won,
            },
            Status::Future => not_found(engine, query, scope, &owner_of, &candidate),
        };
    }

    // An account or deal name among the open deals: exact first, then the names containing it.
    let needle = normalise(query);
    let names = &engine.open_names;
    let exact = names.binary_search_by(|(n, _)| n.text.as_str().cmp(&needle)).map(|k| names[k].1.clone());
    let matches: Vec<usize> = match exact {
        Ok(deals) => deals,
        Err(_) => names
            .iter()
            .filter(|(n, _)| !needle.is_empty() && n.text.contains(&needle))
            .flat_map(|(_, deals)| deals.iter().copied())
            .collect(),
    };
    // Names the user may not see are as if absent: "in a pipeline you don't have access to"
    // would tell a rep that someone else's account name contains what they typed.
    let visible: Vec<usize> = matches.iter().copied().filter(|&i| scope.allows(owner_of(i))).collect();
    match visible.as_slice() {
        [] => not_found(engine, query, scope, &owner_of, &candidate),
        [one] => score(engine, model, *one, scope, texts),
        many => {
            let mut many = many.to_vec();
            // The biggest deals first: the likeliest to be meant.
            many.sort_by(|&a, &b| {
                let amount = |i: usize| data.deals[i].amount.map_or(0.0, |a| a.get());
                amount(b).total_cmp(&amount(a)).then(data.deals[a].id.cmp(&data.deals[b].id))
            });
            Reply::PickList {
                query: query.to_owned(),
                candidates: many.into_iter().take(PICK_LIST).map(candidate).collect(),
            }
        }
    }
}

/// The card of deal `i`, its similar won deals among those `scope` may see.
fn score(
    engine: &TenantEngine,
    model: &engine::model::TrainedModel,
    i: usize,
    scope: &Scope,
    texts: &engine::texts::Texts,
) -> Reply {
    let filter = scope.deal_filter(&engine.dataset);
    let keep = |d: &engine::dataset::Deal| filter.as_ref().is_none_or(|f| f.keeps(d));
    let scorer =
        Scorer::with_similar(model, &engine.dataset, Some(engine.as_of), texts, &engine.similar, &engine.dataset)
            .similar_among(&keep);
    let mut work = scorer.work();
    Reply::RiskCard { card: Box::new(scorer.score(i, &mut work)) }
}

/// Nothing matched: the open deals the user may see whose name or id is closest.
fn not_found<'a>(
    engine: &'a TenantEngine,
    query: &str,
    scope: &Scope,
    owner_of: &dyn Fn(usize) -> Option<&'a str>,
    candidate: &dyn Fn(usize) -> Candidate,
) -> Reply {
    let data = &engine.dataset;
    let needle = normalise(query);
    // Deal ids have digits; a query without one is a name, and ids are not compared.
    let id_like = needle.chars().any(|c| c.is_ascii_digit());
    let asked = Name::new(needle.clone());
    let mut scored: Vec<(f64, usize)> = Vec::new();
    for (name, deals) in &engine.open_names {
        let by_name = if asked.could_be_similar(name) { strsim::jaro_winkler(&needle, &name.text) } else { 0.0 };
        if !id_like && by_name < SIMILAR {
            continue;
        }
        for &i in deals.iter().filter(|&&i| scope.allows(owner_of(i))) {
            let by_id = if id_like {
                strsim::jaro_winkler(&needle, &data.deals[i].id.to_string().to_ascii_lowercase())
            } else {
                0.0
            };
            let best = by_name.max(by_id);
            if best >= SIMILAR {
                scored.push((best, i));
            }
            if !id_like {
                // Every deal of a name scores the same: one is enough.
                break;
            }
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    // One suggestion per name: an account with five deals is one suggestion.
    let mut suggestions: Vec<Candidate> = Vec::new();
    for (_, i) in scored {
        let c = candidate(i);
        if !suggestions.iter().any(|s| s.company == c.company) {
            suggestions.push(c);
        }
        if suggestions.len() == SUGGESTIONS {
            break;
        }
    }
    Reply::NotFound { query: query.to_owned(), suggestions }
}
