//! The intent of a question, by similarity to example questions.
//!
//! The examples live in `prompts/questions/examples.toml` (editable without recompiling), each
//! written with the slot placeholders the parser masks (`why is <deal> risky`), so a question is
//! compared by its shape and not by this tenant's names. Any [`Embedder`] turns texts into
//! vectors: the bot's sentence-embedding backends (candle, rust-bert) or the [`Lexical`]
//! character n-gram one here, which needs no weights. The classifier ranks intents by the
//! cosine similarity of the question to each intent's closest examples.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Intent;
use crate::stats::stable_hash;

/// Turns texts into vectors, L2-normalised (so a dot product is the cosine).
pub trait Embedder: Send + Sync {
    /// Shown at start-up and in answers' metadata: `candle all-MiniLM-L6-v2`, `lexical`.
    fn name(&self) -> &str;
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

/// The example questions of each intent, as `prompts/questions/examples.toml` lists them.
#[derive(Debug, Clone, Deserialize)]
pub struct Examples {
    #[serde(flatten)]
    pub by_intent: BTreeMap<String, IntentExamples>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentExamples {
    pub examples: Vec<String>,
    /// Words or phrases that mark the intent ("trend", "how many"): a question with one gets
    /// [`CUE_BONUS`] added to the intent's similarity.
    #[serde(default)]
    pub cues: Vec<String>,
    /// What a cue adds here, instead of [`CUE_BONUS`]: more for an intent whose questions
    /// also name another's cue (a trend names its metric: "is the win rate improving").
    pub cue_bonus: Option<f32>,
}

/// What a cue adds to an intent's similarity.
pub const CUE_BONUS: f32 = 0.12;

#[derive(Debug, thiserror::Error)]
pub enum ExamplesError {
    #[error("the examples do not parse: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("[{0}] is not an intent (known: {known})", known = Intent::ALL.map(Intent::as_str).join(", "))]
    UnknownIntent(String),
    #[error("intent {0} has no example questions")]
    Empty(&'static str),
    #[error("embedding the examples: {0}")]
    Embed(String),
}

impl Examples {
    /// Parses the TOML; every intent must have examples and every table must be an intent.
    pub fn from_toml(text: &str) -> Result<Examples, ExamplesError> {
        let examples: Examples = toml::from_str(text)?;
        for name in examples.by_intent.keys() {
            Intent::parse(name).ok_or_else(|| ExamplesError::UnknownIntent(name.clone()))?;
        }
        for intent in Intent::ALL {
            let listed = examples.by_intent.get(intent.as_str()).is_some_and(|e| !e.examples.is_empty());
            if !listed {
                return Err(ExamplesError::Empty(intent.as_str()));
            }
        }
        Ok(examples)
    }

    /// Each intent's cues, masked like questions.
    pub fn cues(&self) -> Vec<(Intent, Vec<String>, f32)> {
        let vocab = super::Vocabulary::default();
        let date = chrono::NaiveDate::from_ymd_opt(2024, 6, 30).expect("a date");
        self.by_intent
            .iter()
            .map(|(name, list)| {
                let intent = Intent::parse(name).expect("checked when parsed");
                let cues = list.cues.iter().map(|c| super::slots::read(c, &vocab, date).masked).collect();
                (intent, cues, list.cue_bonus.unwrap_or(CUE_BONUS))
            })
            .collect()
    }

    /// Every (intent, example) pair, each example masked the way questions are (its periods,
    /// amounts, counts and dimension words replaced by their placeholders), so both are
    /// compared in the same terms.
    pub fn pairs(&self) -> Vec<(Intent, String)> {
        let vocab = super::Vocabulary::default();
        let date = chrono::NaiveDate::from_ymd_opt(2024, 6, 30).expect("a date");
        let mut out = Vec::new();
        for (name, list) in &self.by_intent {
            let intent = Intent::parse(name).expect("checked when parsed");
            out.extend(list.examples.iter().map(|e| (intent, super::slots::read(e, &vocab, date).masked)));
        }
        out
    }
}

/// One intent's similarity to a question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    pub intent: Intent,
    pub similarity: f32,
}

/// The examples embedded once, ready to rank questions.
pub struct Classifier {
    embedder: Box<dyn Embedder>,
    examples: Vec<(Intent, Vec<f32>)>,
    /// Each intent's cues, masked like questions, and what they add.
    cues: Vec<(Intent, Vec<String>, f32)>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("embedder", &self.embedder.name())
            .field("examples", &self.examples.len())
            .finish()
    }
}

/// How many of an intent's closest examples its score averages: one close paraphrase is not
/// enough to win over an intent that several examples support.
const NEAREST: usize = 2;

impl Classifier {
    pub fn new(embedder: Box<dyn Embedder>, examples: &Examples) -> Result<Classifier, ExamplesError> {
        let pairs = examples.pairs();
        let texts: Vec<&str> = pairs.iter().map(|(_, t)| t.as_str()).collect();
        let vectors = embedder.embed(&texts).map_err(ExamplesError::Embed)?;
        Ok(Classifier {
            embedder,
            examples: pairs.iter().map(|(i, _)| *i).zip(vectors).collect(),
            cues: examples.cues(),
        })
    }

    /// The same, with the examples' vectors as an earlier [`Classifier::vectors`] gave them
    /// for these examples and this embedder (a cache); the embedder back when they do not fit.
    pub fn with_vectors(
        embedder: Box<dyn Embedder>,
        examples: &Examples,
        vectors: Vec<Vec<f32>>,
    ) -> Result<Classifier, Box<dyn Embedder>> {
        let pairs = examples.pairs();
        let dim = vectors.first().map_or(0, Vec::len);
        if vectors.len() != pairs.len() || dim == 0 || vectors.iter().any(|v| v.len() != dim) {
            return Err(embedder);
        }
        let examples_vectors = pairs.iter().map(|(i, _)| *i).zip(vectors).collect();
        Ok(Classifier { embedder, examples: examples_vectors, cues: examples.cues() })
    }

    /// The examples' vectors, in the order of [`Examples::pairs`].
    pub fn vectors(&self) -> Vec<Vec<f32>> {
        self.examples.iter().map(|(_, v)| v.clone()).collect()
    }

    pub fn backend(&self) -> &str {
        self.embedder.name()
    }

    /// Every intent ranked by its similarity to `masked` (the question with its slots
    /// replaced by placeholders), most similar first.
    pub fn rank(&self, masked: &str) -> Result<Vec<Ranked>, String> {
        let vector = self.embedder.embed(&[masked])?.pop().ok_or("the embedder returned nothing")?;
        let mut by_intent: BTreeMap<Intent, Vec<f32>> = BTreeMap::new();
        for (intent, example) in &self.examples {
            let similarity: f32 = example.iter().zip(&vector).map(|(a, b)| a * b).sum();
            by_intent.entry(*intent).or_default().push(similarity);
        }
        let mut ranked: Vec<Ranked> = by_intent
            .into_iter()
            .map(|(intent, mut sims)| {
                sims.sort_by(|a, b| b.total_cmp(a));
                let n = sims.len().min(NEAREST);
                let bonus = self
                    .cues
                    .iter()
                    .find(|(i, cues, _)| {
                        *i == intent && cues.iter().any(|c| super::words::find_phrase(masked, c).is_some())
                    })
                    .map_or(0.0, |(_, _, bonus)| *bonus);
                Ranked { intent, similarity: sims[..n].iter().sum::<f32>() / n as f32 + bonus }
            })
            .collect();
        ranked.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.intent.cmp(&b.intent)));
        Ok(ranked)
    }
}

/// Character n-gram similarity: each word's 3- and 4-grams (with its boundaries) and each word
/// and word pair, hashed into a fixed number of dimensions and weighted by how rare they are
/// among the examples (so "deals", in every intent's examples, counts for little). Needs no
/// model; tolerant of typos because most of a misspelt word's n-grams survive.
#[derive(Debug, Clone)]
pub struct Lexical {
    idf: Vec<f32>,
}

const DIMENSIONS: usize = 1 << 14;

impl Lexical {
    /// Fitted on `corpus` (the example questions): the weights of rare features.
    pub fn fit(corpus: &[String]) -> Lexical {
        let mut df = vec![0u32; DIMENSIONS];
        for text in corpus {
            let mut seen: Vec<usize> = features(text).into_iter().map(|(f, _)| f).collect();
            seen.sort_unstable();
            seen.dedup();
            for f in seen {
                df[f] += 1;
            }
        }
        let n = corpus.len() as f32;
        Lexical { idf: df.iter().map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0).collect() }
    }

    /// Fitted on the examples' texts.
    pub fn for_examples(examples: &Examples) -> Lexical {
        let corpus: Vec<String> = examples.pairs().into_iter().map(|(_, t)| t).collect();
        Lexical::fit(&corpus)
    }

    fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; DIMENSIONS];
        for (f, weight) in features(text) {
            v[f] += weight * self.idf[f];
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

impl Embedder for Lexical {
    fn name(&self) -> &str {
        "lexical"
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}

/// Hashed features of `text` with their weights: whole words and word pairs count more than
/// the n-grams of a word.
fn features(text: &str) -> Vec<(usize, f32)> {
    let hash = |kind: u64, s: &str| (stable_hash(s.as_bytes(), kind) as usize) % DIMENSIONS;
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    for w in &words {
        out.push((hash(1, w), 1.0));
        let padded: Vec<char> = format!(" {w} ").chars().collect();
        for n in [3, 4] {
            for gram in padded.windows(n) {
                out.push((hash(2, &gram.iter().collect::<String>()), 0.35));
            }
        }
    }
    for pair in words.windows(2) {
        out.push((hash(3, &format!("{} {}", pair[0], pair[1])), 0.8));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: &str = r#"
        [deal_risk]
        examples = ["why is <deal> risky", "risk score of <deal>"]
        [win_rate]
        examples = ["what is our win rate", "win rate in <industry>"]
        [at_risk_deals]
        examples = ["which deals are at risk", "list the riskiest deals"]
        [pipeline_summary]
        examples = ["how is the pipeline looking"]
        [compare_segments]
        examples = ["compare win rates by <dimension>"]
        [trend]
        examples = ["how has the win rate changed over time"]
        [rep_performance]
        examples = ["how is <rep> doing"]
        [cycle_time]
        examples = ["how long do deals take to close"]
        [deal_count]
        examples = ["how many deals did we win"]
        [forecast]
        examples = ["what will we close this quarter"]
        [help]
        examples = ["help", "what can you do"]
    "#;

    #[test]
    fn the_examples_must_name_intents_and_cover_every_one() {
        assert!(Examples::from_toml(EXAMPLES).is_ok());
        let unknown = format!("{EXAMPLES}\n[weather]\nexamples = [\"is it sunny\"]\n");
        let err = Examples::from_toml(&unknown).unwrap_err().to_string();
        assert!(err.contains("[weather] is not an intent"), "{err}");
        let missing = EXAMPLES.replace("[forecast]\n        examples = [\"what will we close this quarter\"]", "");
        let err = Examples::from_toml(&missing).unwrap_err().to_string();
        assert_eq!(err, "intent forecast has no example questions");
    }

    #[test]
    fn lexical_similarity_ranks_the_closest_intent_first_despite_typos() {
        let examples = Examples::from_toml(EXAMPLES).unwrap();
        let classifier = Classifier::new(Box::new(Lexical::for_examples(&examples)), &examples).unwrap();
        let top = |q: &str| classifier.rank(q).unwrap()[0].intent;
        assert_eq!(top("why is <deal> so risky"), Intent::DealRisk);
        assert_eq!(top("whats the win rat in <industry>"), Intent::WinRate);
        assert_eq!(top("how lnog do deals take"), Intent::CycleTime);
        assert_eq!(top("how is <rep> doing lately"), Intent::RepPerformance);
        let ranked = classifier.rank("help").unwrap();
        assert_eq!(ranked[0].intent, Intent::Help);
        assert!(ranked[0].similarity > 4.0 * ranked[1].similarity, "{ranked:?}");
        assert_eq!(ranked.len(), Intent::ALL.len());
    }
}
