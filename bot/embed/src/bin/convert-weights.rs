//! `dealwatch-convert-weights [MODEL_DIR]`: writes `rust_model.ot` (libtorch's archive, what
//! rust-bert loads) from all-MiniLM-L6-v2's `model.safetensors` in the model directory
//! (default `$DEALWATCH_MODEL_DIR`, else the per-user data directory). Built only with
//! `--features rust-bert`.
//!
//! rust-bert builds the BERT model at the root of its variable store, so the names are the
//! plain Hugging Face ones: a `bert.` or `0.auto_model.` prefix goes, old `gamma`/`beta` layer
//! norms become `weight`/`bias`, and buffers (`position_ids`) and heads (`cls.*`) are dropped.

use std::path::PathBuf;

use anyhow::{Context, bail};
use tch::{Kind, Tensor};

fn renamed(name: &str) -> Option<String> {
    let mut n = name;
    for prefix in ["0.auto_model.", "bert."] {
        n = n.strip_prefix(prefix).unwrap_or(n);
    }
    if n.ends_with("position_ids") || n.starts_with("cls.") {
        return None;
    }
    Some(match (n.strip_suffix(".gamma"), n.strip_suffix(".beta")) {
        (Some(base), _) => format!("{base}.weight"),
        (_, Some(base)) => format!("{base}.bias"),
        _ => n.to_owned(),
    })
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).map_or_else(embed::default_model_dir, PathBuf::from);
    let source = dir.join("model.safetensors");
    if !source.is_file() {
        bail!("{} is missing: run scripts/fetch-model.sh first", source.display());
    }
    let tensors = Tensor::read_safetensors(&source).with_context(|| format!("reading {}", source.display()))?;
    let mut out: Vec<(String, Tensor)> = Vec::with_capacity(tensors.len());
    let mut dropped = Vec::new();
    for (name, tensor) in tensors {
        match renamed(&name) {
            Some(new) => {
                let tensor = if tensor.kind() == Kind::Float { tensor } else { tensor.to_kind(Kind::Float) };
                out.push((new, tensor.contiguous()));
            }
            None => dropped.push(name),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(twice) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!("two tensors are both named {}", twice[0].0);
    }
    let target = dir.join("rust_model.ot");
    let partial = dir.join("rust_model.ot.partial");
    Tensor::save_multi(&out, &partial).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &target)?;
    let parameters: i64 = out.iter().map(|(_, t)| t.numel() as i64).sum();
    println!(
        "wrote {} ({} tensors, {parameters} parameters; dropped {})",
        target.display(),
        out.len(),
        dropped.join(", ")
    );
    Ok(())
}
