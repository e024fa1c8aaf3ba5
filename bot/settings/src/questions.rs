//! `[questions]`: which similarity reads a question's intent, and where the sentence-embedding
//! model is.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which similarity reads intents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The sentence-embedding model when its files are there, else the lexical similarity.
    #[default]
    Auto,
    /// The model, or refuse to start.
    Candle,
    /// Character n-grams only.
    Lexical,
    /// The same model run by rust-bert on libtorch (a build with `--features rust-bert`, and
    /// `rust_model.ot` beside the files, written by `dealwatch-convert-weights`).
    RustBert,
}

/// Where the model is looked for by default, wherever `dealwatch` is started from:
/// `$DEALWATCH_MODEL_DIR` when set, else the per-user data directory
/// (`$XDG_DATA_HOME/dealwatch/models/all-MiniLM-L6-v2`, by default under
/// `~/.local/share`). `scripts/fetch-model.sh` installs into the same place; `[questions]
/// model_dir` overrides both.
pub fn default_model_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("DEALWATCH_MODEL_DIR") {
        return dir;
    }
    let data = var("XDG_DATA_HOME").or_else(|| var("HOME").map(|home| home.join(".local/share")));
    match data {
        Some(data) => data.join("dealwatch/models").join(MODEL_NAME),
        // No home directory (a bare service account): the working directory, as before.
        None => PathBuf::from("models").join(MODEL_NAME),
    }
}

/// The sentence-embedding model's directory name.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";
