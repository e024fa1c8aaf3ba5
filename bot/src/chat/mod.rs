//! What the bot says, whatever the platform: commands ([`command`]) are answered here as typed
//! [`Reply`] values from the tenant's engine and the store; each platform's adapter (Slack now,
//! Teams and Discord later) only renders a reply in its own format and carries it.

pub mod command;

use engine::asof::{Status, status};
use engine::score::{RiskScore, Scorer};
use serde::Serialize;

use crate::server::tenants::{Scope, TenantEngine};

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
    /// The command text could not be read, with why.
    Unreadable {
        message: String,
    },
    Help,
}

/// Most candidates a pick-list offers.
const PICK_LIST: usize = 5;
/// Closest names suggested for an unknown one.
const SUGGESTIONS: usize = 3;
/// Below this Jaro–Winkler similarity a name is not suggested.
const SIMILAR: f64 = 0.82;

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
    let open = |i: usize| status(&data.deals[i], Some(engine.as_of)) == Status::Open;

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
            Status::Open => score(engine, model, i, texts),
            Status::Won | Status::Lost => Reply::Closed {
                deal_id: data.deals[i].id.to_string(),
                company: data.deals[i].name.clone(),
                won: status(&data.deals[i], Some(engine.as_of)) == Status::Won,
            },
            Status::Future => not_found(engine, query, scope, &open, &owner_of, &candidate),
        };
    }

    // An account or deal name among the open deals: exact first, then the names containing it.
    let needle = normalise(query);
    let open_deals: Vec<usize> = (0..data.deals.len()).filter(|&i| open(i)).collect();
    let exact: Vec<usize> = open_deals.iter().copied().filter(|&i| normalise(&data.deals[i].name) == needle).collect();
    let matches = if exact.is_empty() {
        open_deals
            .iter()
            .copied()
            .filter(|&i| !needle.is_empty() && normalise(&data.deals[i].name).contains(&needle))
            .collect()
    } else {
        exact
    };
    let visible: Vec<usize> = matches.iter().copied().filter(|&i| scope.allows(owner_of(i))).collect();
    match visible.as_slice() {
        [] if !matches.is_empty() => Reply::Refused { query: query.to_owned() },
        [] => not_found(engine, query, scope, &open, &owner_of, &candidate),
        [one] => score(engine, model, *one, texts),
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

fn score(engine: &TenantEngine, model: &engine::model::TrainedModel, i: usize, texts: &engine::texts::Texts) -> Reply {
    let scorer =
        Scorer::with_similar(model, &engine.dataset, Some(engine.as_of), texts, &engine.similar, &engine.dataset);
    let mut work = scorer.work();
    Reply::RiskCard { card: Box::new(scorer.score(i, &mut work)) }
}

/// Nothing matched: the open deals the user may see whose name or id is closest.
fn not_found<'a>(
    engine: &'a TenantEngine,
    query: &str,
    scope: &Scope,
    open: &dyn Fn(usize) -> bool,
    owner_of: &dyn Fn(usize) -> Option<&'a str>,
    candidate: &dyn Fn(usize) -> Candidate,
) -> Reply {
    let data = &engine.dataset;
    let needle = normalise(query);
    let mut scored: Vec<(f64, usize)> = (0..data.deals.len())
        .filter(|&i| open(i) && scope.allows(owner_of(i)))
        .map(|i| {
            let name = strsim::jaro_winkler(&needle, &normalise(&data.deals[i].name));
            let id = strsim::jaro_winkler(&needle, &data.deals[i].id.to_string().to_ascii_lowercase());
            (name.max(id), i)
        })
        .filter(|(s, _)| *s >= SIMILAR)
        .collect();
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

/// Lower case, spaces collapsed, and the legal suffixes people leave out dropped.
fn normalise(s: &str) -> String {
    let lower = s.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == ',' || c == '.')
        .filter(|w| !w.is_empty())
        .filter(|w| !matches!(*w, "inc" | "corp" | "corporation" | "llc" | "ltd" | "gmbh" | "co" | "plc"))
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn names_match_without_case_punctuation_or_legal_suffixes() {
        assert_eq!(normalise("Acme Corp"), "acme");
        assert_eq!(normalise("  ACME,  Inc. "), "acme");
        assert_eq!(normalise("Bluepeak Logistics Inc"), "bluepeak logistics");
    }
}
