#!/usr/bin/env bash
# Local service stack for capflow development and tests (all on 127.0.0.1,
# state under .local/):
#   MLflow tracking server  :5055   (sqlite backend, proxied local artifacts)
#   PostgreSQL 15 + pgvector :55432 (private cluster, user/db "capflow", trust auth)
#   Redis                    :56379 (no persistence)
#
# Usage:
#   scripts/services.sh up|down|status|env
#   scripts/services.sh mlflow-fresh PORT DIR   start a throwaway MLflow server on PORT with
#                                               its own state in DIR; waits for /health and
#                                               prints its pid (= process group id) on stdout
#   scripts/services.sh mlflow-stop DIR         stop a server started by mlflow-fresh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$ROOT/.venv"

MLFLOW_PORT="${CAPFLOW_MLFLOW_PORT:-5055}"
MLFLOW_WORKERS="${CAPFLOW_MLFLOW_WORKERS:-1}"
MLFLOW_DIR="$LOCAL/mlflow"
PG_PORT="${CAPFLOW_PG_PORT:-55432}"
REDIS_PORT="${CAPFLOW_REDIS_PORT:-56379}"
REDIS_DIR="$LOCAL/redis"
PGBIN=/usr/lib/postgresql/15/bin
PG_USER=postgres # OS user that owns/runs the cluster (postgres refuses to run as root)
WAIT_SECS="${CAPFLOW_WAIT_SECS:-120}"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ helpers
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
read_pid() { [ -f "$1" ] && tr -dc '0-9' <"$1" || true; }

# Stop a process group started with setsid (pid == pgid), TERM then KILL.
stop_group() {
  local pid="$1" name="$2" i
  pid_alive "$pid" || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 150); do
    pid_alive "$pid" || { log "$name stopped"; return 0; }
    sleep 0.2
  done
  log "$name did not stop in 30 s, killing"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

# ------------------------------------------------------------------ MLflow
mlflow_healthy() { # PORT
  [ "$(curl -fsS --max-time 3 "http://127.0.0.1:$1/health" 2>/dev/null)" = "OK" ]
}

# mlflow_start PORT DIR  -> starts detached, waits for /health, prints pid
mlflow_start() {
  local port="$1" dir="$2" pid t0 deadline
  [ -x "$VENV/bin/mlflow" ] || die "$VENV/bin/mlflow missing: run 'make deps'"
  mkdir -p "$dir/artifacts"
  pid="$(read_pid "$dir/server.pid")"
  if pid_alive "$pid" && mlflow_healthy "$port"; then
    echo "$pid"
    return 0
  fi
  if mlflow_healthy "$port"; then
    die "something else already serves MLflow on 127.0.0.1:$port (not started by this script)"
  fi
  t0=$(date +%s)
  # setsid: own process group so stop kills uvicorn/gunicorn workers too.
  # --allowed-hosts: MLflow 3.x host-header middleware; allow loopback names explicitly.
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}" \
    setsid "$VENV/bin/mlflow" server \
    --backend-store-uri "sqlite:///$dir/mlflow.db" \
    --artifacts-destination "$dir/artifacts" \
    --serve-artifacts \
    --host 127.0.0.1 --port "$port" \
    --workers "$MLFLOW_WORKERS" \
    --allowed-hosts "localhost,localhost:$port,127.0.0.1,127.0.0.1:$port,[::1]:$port" \
    </dev/null >>"$dir/server.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/server.pid"
  deadline=$((t0 + WAIT_SECS))
  until mlflow_healthy "$port"; do
    if ! pid_alive "$pid"; then
      tail -40 "$dir/server.log" >&2
      die "MLflow server on :$port exited during startup (log: $dir/server.log)"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -40 "$dir/server.log" >&2
      stop_group "$pid" "mlflow:$port"
      die "MLflow server on :$port not healthy after ${WAIT_SECS}s (log: $dir/server.log)"
    fi
    sleep 0.5
  done
  log "mlflow on 127.0.0.1:$port healthy after $(($(date +%s) - t0)) s (pid $pid)"
  echo "$pid"
}

mlflow_stop() { # DIR
  local pid
  pid="$(read_pid "$1/server.pid")"
  stop_group "$pid" "mlflow ($1)"
  rm -f "$1/server.pid"
}

# ------------------------------------------------------------------ PostgreSQL
# Data directory under .local/pg when the postgres user can reach it; otherwise
# (e.g. a checkout under a 0700 home) a private dir in /var/tmp.
pg_base() {
  if [ -L "$LOCAL/pg" ] || [ -d "$LOCAL/pg" ]; then
    echo "$LOCAL/pg"; return
  fi
  mkdir -p "$LOCAL"
  if runuser -u "$PG_USER" -- test -x "$LOCAL" 2>/dev/null; then
    mkdir -p "$LOCAL/pg"
  else
    local alt="/var/tmp/capflow-pg-$(echo "$ROOT" | sha256sum | cut -c1-12)"
    mkdir -p "$alt"
    ln -sfn "$alt" "$LOCAL/pg"
  fi
  echo "$LOCAL/pg"
}

pg_sockdir() { # unix socket paths are limited to ~107 bytes
  local d
  d="$(cd "$(pg_base)" && pwd -P)/run"
  if [ "${#d}" -gt 90 ]; then d="/tmp/capflow-pg-$(echo "$ROOT" | sha256sum | cut -c1-12)"; fi
  echo "$d"
}

as_pg() { if [ "$(id -un)" = "$PG_USER" ]; then "$@"; else runuser -u "$PG_USER" -- "$@"; fi; }

pg_ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }

pg_up() {
  [ -x "$PGBIN/initdb" ] || die "PostgreSQL 15 not installed: run 'make deps'"
  [ -f "$($PGBIN/pg_config --sharedir)/extension/vector.control" ] || die "pgvector not installed: run 'make deps'"
  id "$PG_USER" >/dev/null 2>&1 || die "OS user $PG_USER missing (comes with postgresql-common)"
  local base data sock t0
  base="$(pg_base)"; data="$base/data"; sock="$(pg_sockdir)"
  mkdir -p "$sock"
  chown "$PG_USER:" "$(cd "$base" && pwd -P)" "$sock"
  chmod 700 "$(cd "$base" && pwd -P)"
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initdb $data"
    as_pg "$PGBIN/initdb" -D "$data" -U capflow --auth=trust -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 ||
      as_pg "$PGBIN/initdb" -D "$data" -U capflow --auth=trust -E UTF8 --no-locale >"$base/initdb.log" 2>&1 ||
      { cat "$base/initdb.log" >&2; die "initdb failed"; }
    cat >>"$data/postgresql.conf" <<EOF

# --- capflow local dev/test settings ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
max_connections = 200
shared_buffers = 256MB
# throwaway dev/test data: trade durability for speed
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi
  if pg_ready; then
    log "postgres already running on 127.0.0.1:$PG_PORT"
  else
    t0=$(date +%s)
    as_pg "$PGBIN/pg_ctl" -D "$data" -l "$base/postgres.log" -w -t "$WAIT_SECS" \
      -o "-k $sock -p $PG_PORT" start >/dev/null ||
      { tail -30 "$base/postgres.log" >&2; die "postgres failed to start"; }
    until pg_ready; do
      [ $(($(date +%s) - t0)) -lt "$WAIT_SECS" ] || { tail -30 "$base/postgres.log" >&2; die "postgres not ready"; }
      sleep 0.2
    done
    log "postgres on 127.0.0.1:$PG_PORT ready after $(($(date +%s) - t0)) s"
  fi
  local psql=("$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U capflow -v ON_ERROR_STOP=1)
  if [ "$("${psql[@]}" -d postgres -tAc "select 1 from pg_database where datname='capflow'")" != "1" ]; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE capflow"
  fi
  "${psql[@]}" -d capflow -c "CREATE EXTENSION IF NOT EXISTS vector" 2>&1 | grep -v 'already exists' >&2 || true
}

pg_down() {
  local base data
  base="$(pg_base)"; data="$base/data"
  if [ -f "$data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 && log "postgres stopped" ||
      log "postgres was not running"
  fi
}

# ------------------------------------------------------------------ Redis
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

redis_up() {
  command -v redis-server >/dev/null || die "redis-server not installed: run 'make deps'"
  mkdir -p "$REDIS_DIR"
  if redis_ready; then log "redis already running on 127.0.0.1:$REDIS_PORT"; return 0; fi
  local t0; t0=$(date +%s)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
    --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
    --save '' --appendonly no </dev/null >/dev/null
  until redis_ready; do
    [ $(($(date +%s) - t0)) -lt "$WAIT_SECS" ] || { tail -20 "$REDIS_DIR/redis.log" >&2; die "redis not ready"; }
    sleep 0.1
  done
  log "redis on 127.0.0.1:$REDIS_PORT ready"
}

redis_down() {
  if redis_ready; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    local i
    for i in $(seq 1 100); do redis_ready || break; sleep 0.1; done
    log "redis stopped"
  fi
  rm -f "$REDIS_DIR/redis.pid"
}

# ------------------------------------------------------------------ commands
cmd_env() {
  cat <<EOF
export CAPFLOW_ROOT=$ROOT
export MLFLOW_TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT
export CAPFLOW_PG_DSN='postgres://capflow@127.0.0.1:$PG_PORT/capflow?sslmode=disable'
export CAPFLOW_REDIS_ADDR=127.0.0.1:$REDIS_PORT
export ONNXRUNTIME_SHARED_LIBRARY_PATH=$LOCAL/ort/libonnxruntime.so
export CAPFLOW_PYTHON=$VENV/bin/python
export CAPFLOW_MLFLOW_BIN=$VENV/bin/mlflow
export CAPFLOW_SERVICES_SH=$ROOT/scripts/services.sh
export CAPFLOW_MINILM_SRC=$LOCAL/models/src/all-MiniLM-L6-v2
export CAPFLOW_MINILM_DIR=$LOCAL/models/all-MiniLM-L6-v2
EOF
}

cmd_status() {
  local rc=0
  if mlflow_healthy "$MLFLOW_PORT"; then echo "mlflow   up    http://127.0.0.1:$MLFLOW_PORT"; else echo "mlflow   down"; rc=1; fi
  if pg_ready; then echo "postgres up    127.0.0.1:$PG_PORT"; else echo "postgres down"; rc=1; fi
  if redis_ready; then echo "redis    up    127.0.0.1:$REDIS_PORT"; else echo "redis    down"; rc=1; fi
  return $rc
}

case "${1:-}" in
  up)
    redis_up
    pg_up
    mlflow_start "$MLFLOW_PORT" "$MLFLOW_DIR" >/dev/null
    cmd_status
    ;;
  down)
    mlflow_stop "$MLFLOW_DIR"
    pg_down
    redis_down
    ;;
  status) cmd_status ;;
  env) cmd_env ;;
  mlflow-fresh)
    [ $# -eq 3 ] || die "usage: $0 mlflow-fresh PORT DIR"
    mkdir -p "$3"
    mlflow_start "$2" "$(cd "$3" && pwd)"
    ;;
  mlflow-stop)
    [ $# -eq 2 ] || die "usage: $0 mlflow-stop DIR"
    mlflow_stop "$(cd "$2" && pwd)"
    ;;
  *)
    echo "usage: $0 up|down|status|env|mlflow-fresh PORT DIR|mlflow-stop DIR" >&2
    exit 2
    ;;
esac
