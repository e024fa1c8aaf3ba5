#!/usr/bin/env bash
# Fetch a CPU-usable libtorch 2.4.0 for the rust-bert / tch embedding backend
# (tch 0.17 / torch-sys 0.17 expect exactly PyTorch 2.4.0).
#
# There is no official libtorch zip reachable offline, so the libraries are
# taken from PyPI wheels, each pinned by sha256 (pip --require-hashes):
#   torch==2.4.0 (cp311, manylinux1_x86_64, CUDA 12.1 build)
#       -> libtorch_cpu.so, libtorch.so, libc10.so, libgomp-a34b3233.so.1
#          and the C++ headers (torch/include)
#   nvidia-cuda-runtime-cu12==12.1.105 -> libcudart.so.12
#   nvidia-cuda-cupti-cu12==12.1.105   -> libcupti.so.12
# libtorch_cpu.so of the CUDA build NEEDs libcudart.so.12 and libcupti.so.12
# (they load without a GPU or driver). libtorch_cuda.so (~900 MB) is left out:
# without it torch runs on the CPU only. Note that libtorch.so itself lists
# libtorch_cuda.so as NEEDED; it is only a link-time shim (tch passes
# -ltorch, and --as-needed drops it from the final binary), so nothing loads
# it at run time.
# The wheel is built with the pre-C++11 libstdc++ ABI: build tch with
# LIBTORCH_CXX11_ABI=0.
#
# Usage: scripts/fetch-libtorch.sh [DEST_DIR]
#   DEST_DIR defaults to $DEALWATCH_LIBTORCH_DIR, else
#   $HOME/.cache/dealwatch/libtorch-2.4.0
# Result: DEST_DIR/lib (the six .so files), DEST_DIR/include (headers),
#   DEST_DIR/build-version (read by torch-sys' version check).
#
# Idempotent: if DEST_DIR already holds the libraries with the expected hashes
# and a completed include/ dir, nothing is downloaded.
set -euo pipefail

TORCH_VERSION="2.4.0"
# Wheels: "name==version sha256".
# torch-2.4.0-cp311-cp311-manylinux1_x86_64.whl (797,262,052 bytes)
# nvidia_cuda_runtime_cu12-12.1.105-py3-none-manylinux1_x86_64.whl (823,596 bytes)
# nvidia_cuda_cupti_cu12-12.1.105-py3-none-manylinux1_x86_64.whl (14,109,015 bytes)
WHEELS=(
  "torch==2.4.0 e743adadd8c8152bb8373543964551a7cb7cc20ba898dc8f9c0cdbe47c283de0"
  "nvidia-cuda-runtime-cu12==12.1.105 6e258468ddf5796e25f1dc591a31029fa317d97a0a94ed93468fc86301d61e40"
  "nvidia-cuda-cupti-cu12==12.1.105 e54fde3983165c624cb79254ae9818a456eb6e87a7fd4d56a2352c24ee542d7e"
)
# The wheels are for CPython 3.11 / manylinux1 x86_64; pip is told so, so the
# script works whatever the local python3 version is.
PIP_TARGET_ARGS=(--platform manylinux1_x86_64 --python-version 3.11
                 --implementation cp --abi cp311)

# Libraries to copy into DEST/lib: "name-in-lib path-in-wheel sha256".
LIBS=(
  "libtorch_cpu.so torch/lib/libtorch_cpu.so c1d237422ff0f010bddf58193a62c68b200123a24e1ee53b40166f609f19ca92"
  "libtorch.so torch/lib/libtorch.so cd10b05eb9ff793068dbc4de7e54f3050bc1c5a51be541da10ae5f91dc82ce40"
  "libc10.so torch/lib/libc10.so ff4eddb5dec320702e7cf1a35af3a83cf2fcce29c68e4bfeeb0e0bfd48724041"
  "libgomp-a34b3233.so.1 torch/lib/libgomp-a34b3233.so.1 9eb01021bb58ec36925daeb5a56606bfab558332eb5f5119e990e4c208ed2581"
  "libcudart.so.12 nvidia/cuda_runtime/lib/libcudart.so.12 9335f6a29ca91010e2da9f40e82fb4b28e3a4ae22fd385e1293e93bf3c46c9e6"
  "libcupti.so.12 nvidia/cuda_cupti/lib/libcupti.so.12 abc63100e9cf516b8ed1fa25354ae53dbfe8df4838ac525d8d738332c2198dc2"
)
# Prefix of the headers in the torch wheel, copied to DEST/include.
INCLUDE_PREFIX="torch/include/"
# Written last; its presence marks a complete include/ dir.
STAMP=".dealwatch-libtorch-complete"

log() { printf 'fetch-libtorch: %s\n' "$*"; }
die() { printf 'fetch-libtorch: error: %s\n' "$*" >&2; exit 1; }

DEST="${1:-${DEALWATCH_LIBTORCH_DIR:-$HOME/.cache/dealwatch/libtorch-$TORCH_VERSION}}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

print_env() {
  log "destination: $DEST"
  log "build and run with:"
  printf '  export LIBTORCH=%q\n' "$DEST"
  printf '  export LIBTORCH_CXX11_ABI=0\n'
  printf '  export LD_LIBRARY_PATH=%q${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n' "$DEST/lib"
  log "(LIBTORCH_BYPASS_VERSION_CHECK is not needed: $DEST/build-version says $TORCH_VERSION)"
}

# True if DEST has every library with the expected hash, the headers and the stamp.
dest_is_complete() {
  local entry name _path sum
  [[ -f "$DEST/$STAMP" && -f "$DEST/build-version" ]] || return 1
  [[ -f "$DEST/include/torch/csrc/api/include/torch/torch.h" ]] || return 1
  for entry in "${LIBS[@]}"; do
    read -r name _path sum <<<"$entry"
    [[ -f "$DEST/lib/$name" ]] || return 1
    [[ "$(sha256_of "$DEST/lib/$name")" == "$sum" ]] || return 1
  done
  [[ ! -e "$DEST/lib/libtorch_cuda.so" ]] || return 1
}

if dest_is_complete; then
  log "libtorch $TORCH_VERSION already present and verified in $DEST (nothing to do)"
  print_env
  exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 not found in PATH (needed to run pip)"
python3 -m pip --version >/dev/null 2>&1 \
  || die "pip is not available for python3 (try: apt-get install python3-pip, or python3 -m ensurepip)"

mkdir -p "$DEST" || die "cannot create destination directory $DEST"
# Work area on the same filesystem as DEST so the final moves are renames.
TMP="$(mktemp -d "$DEST/.fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

REQ="$TMP/requirements.txt"
for w in "${WHEELS[@]}"; do
  read -r spec sum <<<"$w"
  printf '%s --hash=sha256:%s\n' "$spec" "$sum"
done >"$REQ"

log "downloading torch==$TORCH_VERSION (~800 MB) and the two CUDA runtime wheels (hash-pinned)"
PIP_LOG="$TMP/pip.log"
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip download \
      --no-deps --require-hashes --only-binary=:all: "${PIP_TARGET_ARGS[@]}" \
      --retries 3 --timeout 60 \
      --dest "$TMP/wheels" -r "$REQ" >"$PIP_LOG" 2>&1; then
  printf 'fetch-libtorch: error: pip download failed. Last lines of pip output:\n' >&2
  tail -n 20 "$PIP_LOG" | sed 's/^/    /' >&2
  if grep -qiE 'hashes? .*(not match|mismatch)|THESE PACKAGES DO NOT MATCH THE HASHES' "$PIP_LOG"; then
    die "a downloaded wheel does not match its pinned sha256 (corrupt download or tampered package)"
  elif grep -qiE 'NewConnectionError|Max retries exceeded|Temporary failure in name resolution|ConnectTimeout|ReadTimeout|Network is unreachable|ProxyError|SSLError' "$PIP_LOG"; then
    die "network problem while reaching the package index (check connectivity / PIP_INDEX_URL / proxy settings)"
  elif grep -qiE 'No matching distribution|Could not find a version' "$PIP_LOG"; then
    die "a pinned wheel was not found on the configured package index"
  elif grep -qiE 'No space left' "$PIP_LOG"; then
    die "out of disk space (the torch wheel alone is ~800 MB; ~1.3 GB free is needed)"
  else
    die "pip download failed (see output above)"
  fi
fi

# Extract only what is needed, straight from the zip files (no unzip needed).
STAGE="$TMP/stage"
mkdir -p "$STAGE/lib" "$STAGE/include"
log "extracting libraries and headers"
python3 - "$TMP/wheels" "$STAGE" "$INCLUDE_PREFIX" "${LIBS[@]}" <<'PY' || die "extraction failed"
import glob, os, shutil, sys, zipfile
wheels_dir, stage, inc_prefix, *libs = sys.argv[1:]
wanted = {}  # path in wheel -> name in lib/
for entry in libs:
    name, path, _sum = entry.split()
    wanted[path] = name
found = set()
n_headers = 0
for whl in sorted(glob.glob(os.path.join(wheels_dir, "*.whl"))):
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            if info.filename in wanted:
                dst = os.path.join(stage, "lib", wanted[info.filename])
                found.add(info.filename)
            elif info.filename.startswith(inc_prefix):
                rel = info.filename[len(inc_prefix):]
                if rel.startswith("/") or ".." in rel.split("/"):
                    sys.exit(f"unsafe path in wheel: {info.filename}")
                dst = os.path.join(stage, "include", rel)
                n_headers += 1
            else:
                continue
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with z.open(info) as src, open(dst, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            os.chmod(dst, 0o755 if dst.startswith(os.path.join(stage, "lib")) else 0o644)
missing = sorted(set(wanted) - found)
if missing:
    sys.exit("not found in the wheels: " + ", ".join(missing))
if n_headers < 1000:
    sys.exit(f"only {n_headers} headers found under {inc_prefix}")
print(f"fetch-libtorch: extracted {len(found)} libraries and {n_headers} headers")
PY

for entry in "${LIBS[@]}"; do
  read -r name _path sum <<<"$entry"
  got="$(sha256_of "$STAGE/lib/$name")"
  [[ "$got" == "$sum" ]] || die "sha256 mismatch for $name: expected $sum, got $got"
  log "verified $name (sha256 ${got:0:16}...)"
done
printf '%s\n' "$TORCH_VERSION" >"$STAGE/build-version"

# Replace lib/ and include/ (only those) with the staged ones.
rm -f "$DEST/$STAMP"
for d in lib include; do
  rm -rf "$DEST/$d"
  mv "$STAGE/$d" "$DEST/$d"
done
mv -f "$STAGE/build-version" "$DEST/build-version"
: >"$DEST/$STAMP"

dest_is_complete || die "files in $DEST failed verification after copying"
log "libtorch $TORCH_VERSION installed and verified (CPU only; libtorch_cuda.so not included)"
print_env
