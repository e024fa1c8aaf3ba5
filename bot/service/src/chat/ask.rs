//! Plain-English questions: read into a typed [`Query`] by the engine (slots by the parser
//! that knows the tenant's vocabulary, intent by similarity to `prompts/questions/examples.toml`),
//! answered from the tenant's engine and store, and rendered from `prompts/questions/` with the
//! line "Understood: …" so the user can see and correct the reading. `dealwatch ask`,
//! `POST /v1/ask` and Slack mentions and DMs all come through [`ask`].

use std::path::Path;

use anyhow::Context as _;
use chrono::NaiveDate;
use engine::question::answer::{self, Problem};
use engine::question::intent::{Classifier, Embedder, Examples, Lexical};
use engine::question::{Intent, Query, Reading, understand};
use serde::Serialize;
use serde_json::{Value, json};
use tera::Tera;

use super::Reply;
use super::command::{Filter, FilterKey};
use crate::tenants::{Scope, TenantEngine};
use store::{TenantId, User};

const EXAMPLES: &str = include_str!("../../../../prompts/questions/examples.toml");

/// The answer templates, by intent (and the parts around them).
const TEMPLATES: [(&str, &str); 12] = [
    ("understood.txt", include_str!("../../../../prompts/questions/understood.txt.tera")),
    ("win_rate.txt", include_str!("../../../../prompts/questions/win_rate.txt.tera")),
    ("at_risk_deals.txt", include_str!("../../../../prompts/questions/at_risk_deals.txt.tera")),
    ("compare_segments.txt", include_str!("../../../../prompts/questions/compare_segments.txt.tera")),
    ("trend.txt", include_str!("../../../../prompts/questions/trend.txt.tera")),
    ("rep_performance.txt", include_str!("../../../../prompts/questions/rep_performance.txt.tera")),
    ("cycle_time.txt", include_str!("../../../../prompts/questions/cycle_time.txt.tera")),
    ("deal_count.txt", include_str!("../../../../prompts/questions/deal_count.txt.tera")),
    ("forecast.txt", include_str!("../../../../prompts/questions/forecast.txt.tera")),
    ("pipeline_summary.txt", include_str!("../../../../prompts/questions/pipeline_summary.txt.tera")),
    ("help.txt", include_str!("../../../../prompts/questions/help.txt.tera")),
    ("ask_back.txt", include_str!("../../../../prompts/questions/ask_back.txt.tera")),
];

/// Most readings offered when asking back.
const ASK_BACK: usize = 3;

/// The question reader and the answer templates, loaded once at start-up.
pub struct Questions {
    classifier: Classifier,
    tera: Tera,
}

impl std::fmt::Debug for Questions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Questions").field("classifier", &self.classifier).finish()
    }
}

/// How an answer's text is marked up: the chat platform's adapter says which markers it
/// takes, so the templates stay the same everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Around a figure in bold: `*` (Slack mrkdwn), `**` (Markdown), nothing (plain text).
    pub bold: &'static str,
    /// Around a table: a code fence where the platform renders one in a fixed-width font.
    pub fence: &'static str,
    /// The markup names from the CRM are escaped for.
    pub markup: Markup,
}

/// Which markup a text is read in, so what the CRM or a person wrote is escaped for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    Plain,
    /// Slack's mrkdwn: `&`, `<`, `>` (mentions, links).
    Slack,
    /// Markdown (Teams, Discord): emphasis, links, code, mentions.
    Markdown,
}

impl Markup {
    /// `text` as it must be written to show as written.
    pub fn escape(self, text: &str) -> String {
        match self {
            Markup::Plain => text.to_owned(),
            Markup::Slack => alerts::templates::mrkdwn(text),
            Markup::Markdown => alerts::templates::markdown(text),
        }
    }

    /// Every string in `value` escaped (the values an answer's template reads: names and
    /// labels; its words are the template's own).
    pub fn escape_all(self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.escape(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.escape_all(v)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.escape_all(v))).collect()),
            other => other.clone(),
        }
    }
}

impl Style {
    /// A terminal or a JSON field: no markup.
    pub const PLAIN: Style = Style { bold: "", fence: "", markup: Markup::Plain };
    /// Slack mrkdwn: `*bold*`, fenced tables.
    pub const SLACK: Style = Style { bold: "*", fence: "```", markup: Markup::Slack };
    /// Markdown as Discord and Teams render it: `**bold**`, fenced tables.
    pub const MARKDOWN: Style = Style { bold: "**", fence: "```", markup: Markup::Markdown };
}

/// An answer, before a platform renders it: the template and its values, what was understood,
/// and for a deal's risk or the pipeline summary the command's own reply (a card).
#[derive(Debug, Clone, Serialize)]
pub struct Answered {
    pub template: String,
    pub values: Value,
    pub understood: String,
    pub card: Option<Box<Reply>>,
}

/// One reading offered when the question was unclear.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AskOption {
    pub intent: Intent,
    pub label: String,
}

impl Questions {
    /// The examples and templates from `prompts_dir/questions/` where it has them, else the
    /// bundled ones, with the embedder given (the lexical one when `None`).
    pub fn load(prompts_dir: Option<&Path>, embedder: Option<Box<dyn Embedder>>) -> anyhow::Result<Questions> {
        Questions::load_cached(prompts_dir, embedder, None)
    }

    /// The same, keeping the examples' vectors in `cache_dir`: embedding them is most of a
    /// model's start-up, and they change only with the examples or the model.
    pub fn load_cached(
        prompts_dir: Option<&Path>,
        embedder: Option<Box<dyn Embedder>>,
        cache_dir: Option<&Path>,
    ) -> anyhow::Result<Questions> {
        let dir = prompts_dir.map(|d| d.join("questions"));
        let examples_text = match dir.as_ref().map(|d| d.join("examples.toml")).filter(|p| p.is_file()) {
            Some(path) => std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
            None => EXAMPLES.to_owned(),
        };
        let examples = Examples::from_toml(&examples_text).context("prompts/questions/examples.toml")?;
        let classifier = match embedder {
            // n-grams are cheaper to compute than to read back.
            None => Classifier::new(Box::new(Lexical::for_examples(&examples)), &examples)
                .context("embedding the example questions")?,
            Some(embedder) => cached_classifier(embedder, &examples, cache_dir)?,
        };
        let tera = crate::resources::templates(&TEMPLATES, dir.as_deref(), "questions")?;
        Ok(Questions { classifier, tera })
    }

    /// As `[questions]` and `prompts_dir` say; the model (or why not) is logged.
    pub fn configured(settings: &crate::config::Settings) -> anyhow::Result<Questions> {
        let q = &settings.questions;
        let (embedder, line) = embed::choose(q.backend, &q.model_dir)?;
        if embedder.is_some() {
            tracing::info!("{line}");
        } else {
            tracing::warn!("{line}");
        }
        Questions::load_cached(settings.prompts_dir.as_deref(), embedder, Some(&settings.data_dir.join("cache")))
    }

    /// Which similarity reads intents: `lexical`, or a sentence-embedding model.
    pub fn backend(&self) -> &str {
        self.classifier.backend()
    }

    /// Reads `question` for `engine`'s tenant.
    pub fn read(&self, question: &str, engine: &TenantEngine, forced: Option<Intent>) -> anyhow::Result<Reading> {
        let mut reading =
            understand(question, engine.vocabulary(), engine.as_of, &self.classifier).map_err(anyhow::Error::msg)?;
        if let Some(intent) = forced {
            let slots = engine::question::slots::read(question, engine.vocabulary(), engine.as_of);
            reading.query =
                Query { intent, slots: engine::question::settle(intent, slots.values, slots.trailing_period) };
            reading.confidence = 1.0;
        }
        Ok(reading)
    }

    fn render(&self, template: &str, values: &Value, style: Style) -> anyhow::Result<String> {
        let mut context = tera::Context::from_value(values.clone()).unwrap_or_default();
        context.insert("b", style.bold);
        context.insert("fence", style.fence);
        let text = self
            .tera
            .render(template, &context)
            .with_context(|| format!("rendering prompts/questions/{template}.tera"))?;
        Ok(text.trim().to_owned())
    }

    /// The answer's words in `style`, the names in them escaped for its markup.
    pub fn text(&self, answered: &Answered, style: Style) -> anyhow::Result<String> {
        self.render(&answered.template, &style.markup.escape_all(&answered.values), style)
    }

    /// The words asking which reading was meant.
    pub fn ask_back(&self, question: &str, unknown: &[String]) -> anyhow::Result<String> {
        self.render("ask_back.txt", &json!({ "question": question, "unknown": unknown }), Style::PLAIN)
    }

    pub fn help(&self, style: Style) -> anyhow::Result<String> {
        self.render("help.txt", &json!({}), style)
    }

    /// "Understood: win rate · industry = EdTech · 2024-01-01 … 2024-03-31".
    pub fn understood(&self, query: &Query) -> anyhow::Result<String> {
        let s = &query.slots;
        let mut parts = vec![label(query.intent).to_owned()];
        if let Some(deal) = &s.deal {
            parts.push(format!("deal = {deal}"));
        }
        parts.extend(s.filters.iter().map(|(k, v)| format!("{} = {v}", k.replace('_', " "))));
        match (s.amount_min, s.amount_max) {
            (Some(a), Some(b)) => parts.push(format!("amount {} – {}", money(a), money(b))),
            (Some(a), None) => parts.push(format!("amount ≥ {}", money(a))),
            (None, Some(b)) => parts.push(format!("amount ≤ {}", money(b))),
            (None, None) => {}
        }
        if let Some(c) = s.risk_category {
            parts.push(format!("{} risk", c.as_str()));
        }
        if let Some(d) = &s.dimension {
            parts.push(format!("by {}", d.replace('_', " ")));
        }
        if let Some(m) = s.metric {
            parts.push(format!("metric = {}", m.as_str().replace('_', " ")));
        }
        if let Some(o) = s.outcome {
            parts.push(serde_json::to_value(o)?.as_str().unwrap_or_default().to_owned());
        }
        if let Some(n) = s.limit {
            parts.push(format!("top {n}"));
        }
        if let Some(p) = s.period {
            parts.push(format!("{} … {}", p.from, p.to));
        }
        self.render("understood.txt", &json!({ "parts": parts }), Style::PLAIN)
    }
}

/// The classifier over `examples`, with their vectors read from `cache_dir` when an earlier
/// start wrote them for the same examples and model, else embedded (and written there).
fn cached_classifier(
    embedder: Box<dyn Embedder>,
    examples: &Examples,
    cache_dir: Option<&Path>,
) -> anyhow::Result<Classifier> {
    use sha2::Digest as _;
    let mut key = sha2::Sha256::new();
    key.update(embedder.name().as_bytes());
    for (intent, text) in examples.pairs() {
        key.update(format!("\n{}\t{text}", intent.as_str()).as_bytes());
    }
    let key = hex::encode(&key.finalize()[..12]);
    let path = cache_dir.map(|d| d.join(format!("question-examples-{key}.f32")));
    // A file that does not fit (cut short, another model's) is embedded again and replaced.
    let mut embedder = embedder;
    if let Some(vectors) = path.as_deref().and_then(read_vectors) {
        match Classifier::with_vectors(embedder, examples, vectors) {
            Ok(classifier) => return Ok(classifier),
            Err(back) => embedder = back,
        }
    }
    let classifier = Classifier::new(embedder, examples).context("embedding the example questions")?;
    if let Some(path) = path
        && let Err(e) = write_vectors(&path, &classifier.vectors())
    {
        tracing::warn!(error = %e, path = %path.display(), "could not keep the example vectors; they are embedded at every start");
    }
    Ok(classifier)
}

/// Vectors as `n`, `dim` (u32 little-endian) then `n × dim` f32s.
fn read_vectors(path: &Path) -> Option<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).ok()?;
    let word = |i: usize| bytes.get(4 * i..4 * i + 4).map(|b| [b[0], b[1], b[2], b[3]]);
    let (n, dim) = (u32::from_le_bytes(word(0)?) as usize, u32::from_le_bytes(word(1)?) as usize);
    if bytes.len() != 8 + 4 * n * dim {
        return None;
    }
    let values: Vec<f32> = (0..n * dim).map(|i| word(2 + i).map(f32::from_le_bytes)).collect::<Option<_>>()?;
    Some(values.chunks(dim.max(1)).map(<[f32]>::to_vec).collect())
}

fn write_vectors(path: &Path, vectors: &[Vec<f32>]) -> std::io::Result<()> {
    let dim = vectors.first().map_or(0, Vec::len);
    let mut bytes = Vec::with_capacity(8 + 4 * vectors.len() * dim);
    bytes.extend((vectors.len() as u32).to_le_bytes());
    bytes.extend((dim as u32).to_le_bytes());
    for v in vectors {
        v.iter().for_each(|x| bytes.extend(x.to_le_bytes()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Written whole, then renamed: a reader never sees half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)?;
    std::fs::rename(partial, path)
}

/// An intent as users read it in "Understood: …" and on ask-back buttons.
fn label(intent: Intent) -> &'static str {
    match intent {
        Intent::DealRisk => "deal risk",
        Intent::WinRate => "win rate",
        Intent::AtRiskDeals => "deals at risk",
        Intent::PipelineSummary => "pipeline summary",
        Intent::CompareSegments => "segment comparison",
        Intent::Trend => "trend",
        Intent::RepPerformance => "rep performance",
        Intent::CycleTime => "sales cycle",
        Intent::DealCount => "deal count",
        Intent::Forecast => "forecast",
        Intent::Help => "help",
    }
}

fn money(amount: f64) -> String {
    alerts::templates::money(amount)
}

/// A question's reading and its answer, as `dealwatch ask --format json` and `POST /v1/ask`
/// return them: the typed query's fields, the confidence, and the answer's text.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Asked {
    #[serde(flatten)]
    pub query: Query,
    pub confidence: f32,
    /// The answer in plain text (the question asked back, when unsure).
    pub answer: String,
    pub understood: String,
    /// The similarity that read the intent.
    pub backend: String,
    /// The readings offered when the question was unclear.
    pub options: Vec<AskOption>,
    /// The figures behind the answer.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    #[serde(skip)]
    #[schema(ignore)]
    pub reply: Reply,
}

/// Answers `question` from `user` (who sees `scope`) in `tenant` as of `as_of`; `forced` is the
/// intent a user picked when asked back.
#[allow(clippy::too_many_arguments)]
pub async fn ask(
    state: &crate::Services,
    tenant: &TenantId,
    user: &User,
    scope: Scope,
    question: &str,
    as_of: NaiveDate,
    forced: Option<Intent>,
    via: &'static str,
) -> anyhow::Result<Asked> {
    let questions = &state.questions;
    // A question as of another date gets an engine of its own, never today's in its place.
    let today = state.now().date_naive();
    let engine = state
        .cache
        .get_as_of(&state.store, tenant, as_of, today)
        .await
        .map_err(|e| e.into_anyhow().context("loading the tenant"))?;
    let Some(engine) = engine else {
        let reply = Reply::NoModel;
        return Ok(Asked {
            query: Query::new(Intent::Help),
            confidence: 0.0,
            answer: plain(state, &reply)?,
            understood: String::new(),
            backend: questions.backend().to_owned(),
            options: Vec::new(),
            data: None,
            reply,
        });
    };
    let reading = {
        let engine = engine.clone();
        let question = question.to_owned();
        let state = state.clone();
        tokio::task::spawn_blocking(move || state.questions.read(&question, &engine, forced)).await??
    };
    metrics::counter!("questions_total", "via" => via, "intent" => reading.query.intent.as_str()).increment(1);
    let understood = questions.understood(&reading.query)?;
    let backend = questions.backend().to_owned();
    let mut asked = Asked {
        query: reading.query.clone(),
        confidence: reading.confidence,
        answer: String::new(),
        understood: understood.clone(),
        backend,
        options: Vec::new(),
        data: None,
        reply: Reply::Help,
    };

    if forced.is_none() && reading.unsure() {
        let options: Vec<AskOption> = reading
            .likely(ASK_BACK)
            .into_iter()
            .map(|intent| AskOption { intent, label: option_label(intent, &reading.query) })
            .collect();
        asked.understood = String::new();
        asked.answer = questions.ask_back(question, &reading.unknown)?;
        asked.reply =
            Reply::AskBack { question: question.to_owned(), text: asked.answer.clone(), options: options.clone() };
        asked.options = options;
        return Ok(asked);
    }

    // Another rep's figures are refused, not shown as empty.
    if let Some(rep) = reading.query.slots.filters.get("rep")
        && !scope.allows(Some(rep))
    {
        asked.reply = Reply::Refused { query: rep.clone() };
        asked.answer = plain(state, &asked.reply)?;
        return Ok(asked);
    }

    let query = &reading.query;
    let answered = match query.intent {
        Intent::Help => {
            asked.answer = questions.help(Style::PLAIN)?;
            asked.understood = String::new();
            asked.reply = Reply::Help;
            return Ok(asked);
        }
        Intent::DealRisk => {
            let Some(deal) = reading.deal_named.clone().or_else(|| query.slots.deal.clone()) else {
                asked.reply = Reply::Unreadable {
                    message: "Which deal? Name it by its id (D00042) or its account (Acme).".into(),
                };
                asked.answer = plain(state, &asked.reply)?;
                return Ok(asked);
            };
            let card = super::deal_risk_of(state, tenant, user, &engine, &deal, scope, via).await?;
            // The card is the answer: no template of ours renders it.
            Answered { template: "deal_risk.txt".into(), values: Value::Null, understood, card: Some(Box::new(card)) }
        }
        Intent::PipelineSummary => {
            let filters = command_filters(query);
            let texts = state.texts.clone();
            let engine = engine.clone();
            let reply =
                tokio::task::spawn_blocking(move || super::pipeline::pipeline(&engine, &filters, &scope, &texts))
                    .await?;
            let values = match &reply {
                Reply::Pipeline { view } => json!({ "v": view }),
                _ => Value::Null,
            };
            Answered { template: "pipeline_summary.txt".into(), values, understood, card: Some(Box::new(reply)) }
        }
        _ => {
            let query = query.clone();
            let texts = state.texts.clone();
            let engine = engine.clone();
            let figures = tokio::task::spawn_blocking(move || figures(&engine, &query, &scope, &texts)).await?;
            match figures {
                Ok(values) => {
                    asked.data = Some(values["a"].clone());
                    Answered {
                        template: format!("{}.txt", reading.query.intent.as_str()),
                        values,
                        understood,
                        card: None,
                    }
                }
                Err(problem) => {
                    asked.reply = Reply::Unreadable { message: problem_message(&problem) };
                    asked.answer = plain(state, &asked.reply)?;
                    return Ok(asked);
                }
            }
        }
    };
    asked.answer = match answered.card.as_deref() {
        Some(Reply::RiskCard { card }) => {
            asked.data = Some(serde_json::to_value(card)?);
            crate::report::card(card, None)
        }
        Some(Reply::Pipeline { .. }) => {
            asked.data = Some(answered.values["v"].clone());
            questions.text(&answered, Style::PLAIN)?
        }
        Some(other) => plain(state, other)?,
        None => questions.text(&answered, Style::PLAIN)?,
    };
    asked.reply = match answered.card.as_deref() {
        // Not a card (a pick-list, a refusal, a closed deal): the command's reply as it is.
        Some(other) if !matches!(other, Reply::RiskCard { .. } | Reply::Pipeline { .. }) => other.clone(),
        _ => Reply::Answer { answered: Box::new(answered) },
    };
    Ok(asked)
}

/// A reply that is not an answer (a pick-list, a deal not found, a refusal) in plain words.
fn plain(state: &crate::Services, reply: &Reply) -> anyhow::Result<String> {
    let line = |c: &super::Candidate| {
        let mut s = format!("  • {} {}", c.deal_id, c.company);
        if let Some(a) = c.amount {
            s.push_str(&format!(", {}", money(a)));
        }
        if let Some(o) = &c.owner {
            s.push_str(&format!(", {o}"));
        }
        s
    };
    Ok(match reply {
        Reply::PickList { query, candidates } => {
            let list: Vec<String> = candidates.iter().map(line).collect();
            format!("Several open deals match {query}. Which one?\n{}", list.join("\n"))
        }
        Reply::NotFound { query, suggestions } if suggestions.is_empty() => format!("No open deal called {query}."),
        Reply::NotFound { query, suggestions } => {
            let list: Vec<String> = suggestions.iter().map(line).collect();
            format!("No open deal called {query}. Did you mean:\n{}", list.join("\n"))
        }
        Reply::Help => state.questions.help(Style::PLAIN)?,
        other => match super::notice(other, Style::PLAIN) {
            Some((text, Some(hint))) => format!("{text}\n{hint}"),
            Some((text, None)) => text,
            None => String::new(),
        },
    })
}

/// What the button offering `intent` says.
fn option_label(intent: Intent, query: &Query) -> String {
    let mut label = label(intent).to_owned();
    if let Some((k, v)) = query.slots.filters.iter().next() {
        label.push_str(&format!(" · {} {v}", k.replace('_', " ")));
    }
    let mut c = label.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// `/pipeline`'s filters for the query's slots.
fn command_filters(query: &Query) -> Vec<Filter> {
    let mut out: Vec<Filter> = Vec::new();
    for (k, v) in &query.slots.filters {
        let key = match k.as_str() {
            "region" => FilterKey::Region,
            "industry" => FilterKey::Industry,
            "product" => FilterKey::Product,
            "lead_source" => FilterKey::LeadSource,
            "rep" => FilterKey::Rep,
            _ => continue,
        };
        out.push(Filter { key, value: v.clone() });
    }
    if let Some(c) = query.slots.risk_category {
        out.push(Filter { key: FilterKey::Risk, value: c.as_str().to_owned() });
    }
    if let Some(a) = query.slots.amount_min {
        out.push(Filter { key: FilterKey::MinAmount, value: a.to_string() });
    }
    if let Some(a) = query.slots.amount_max {
        out.push(Filter { key: FilterKey::MaxAmount, value: a.to_string() });
    }
    out
}

/// The engine's figures for `query`, with what the templates need beside them.
fn figures(
    engine: &TenantEngine,
    query: &Query,
    scope: &Scope,
    texts: &engine::texts::Texts,
) -> Result<Value, Problem> {
    let data = &engine.dataset;
    let owner_col = data.schema.owner_column();
    let visible = |i: usize| scope.allows(owner_col.and_then(|c| data.cat_name(c, data.deals[i].cats[c])));
    let p_loss = engine.open_risk(engine.as_of, texts);
    let ctx = answer::Context {
        dataset: data,
        as_of: engine.as_of,
        p_loss: p_loss.as_deref().map(Vec::as_slice),
        visible: &visible,
    };
    let a = answer::answer(query, &ctx)?;
    let metric = query.slots.metric.unwrap_or(engine::question::Metric::WinRate);
    let (metric_label, unit) = match metric {
        engine::question::Metric::WinRate => ("win rate", "%"),
        engine::question::Metric::CycleTime => ("median sales cycle", " days"),
        engine::question::Metric::DealSize => ("median won deal size", ""),
        engine::question::Metric::DealCount => ("deals created", ""),
        engine::question::Metric::Pipeline => ("open pipeline at quarter end", ""),
    };
    Ok(json!({
        "a": a,
        "scoped": *scope != Scope::All,
        "dimension": query.slots.dimension.clone().unwrap_or_default().replace('_', " "),
        "single": query.slots.filters.contains_key("rep"),
        "metric_label": metric_label,
        "unit": unit,
        "as_of": engine.as_of,
    }))
}

fn problem_message(problem: &Problem) -> String {
    match problem {
        Problem::UnknownValue { suggestions, .. } if !suggestions.is_empty() => {
            format!("{problem}: did you mean {}?", suggestions.join(", "))
        }
        Problem::NoModel => {
            "There is no trained model for your team yet, so there are no risk scores to answer with.".into()
        }
        other => format!("{other}, so I can't answer that."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexical() -> Box<dyn Embedder> {
        let examples = Examples::from_toml(EXAMPLES).expect("examples");
        Box::new(Lexical::for_examples(&examples))
    }

    #[test]
    fn example_vectors_are_kept_read_back_and_replaced_when_they_do_not_fit() {
        let dir = std::env::temp_dir().join(format!("dealwatch-cache-{}", uuid::Uuid::new_v4().simple()));
        let first = Questions::load_cached(None, Some(lexical()), Some(&dir)).expect("first start");
        let files: Vec<_> = std::fs::read_dir(&dir).expect("cache dir").flatten().map(|e| e.path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let kept = std::fs::read(&files[0]).expect("kept");
        let again = Questions::load_cached(None, Some(lexical()), Some(&dir)).expect("second start");
        assert_eq!(again.classifier.vectors(), first.classifier.vectors());
        // Cut short: embedded again, and the file written whole once more.
        std::fs::write(&files[0], &kept[..kept.len() / 2]).expect("truncate");
        let third = Questions::load_cached(None, Some(lexical()), Some(&dir)).expect("third start");
        assert_eq!(third.classifier.vectors(), first.classifier.vectors());
        assert_eq!(std::fs::read(&files[0]).expect("rewritten"), kept);
        std::fs::remove_dir_all(&dir).ok();
    }
}
