# shellcheck shell=bash disable=SC2034 # (variables set here are used by the sourcing scripts)
# The soak runs' harness, sourced by scripts/soak_server.sh and
# scripts/soak_agent.sh (not run on its own): the binaries, a server on
# 127.0.0.1 with a fresh data directory and authentication on, the resident
# memory sampler and the server's report counters.
#
# Expects `set -euo pipefail`, and sets: BIN (the binaries' directory),
# WORK (a temporary directory, removed at exit), SERVER_PID, PORT,
# AGENT_TOKEN and READ_TOKEN (after soak_start_server).

SOAK_PIDS=()
WORK=$(mktemp -d)
soak_cleanup() {
  local pid
  for pid in "${SOAK_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap soak_cleanup EXIT

# soak_binaries NAME...: builds the release binaries NAME (cargo build
# --release), unless BIN_DIR names a directory holding them already built
# (CI passes target/debug, which `cargo test --workspace` has built).
soak_binaries() {
  local name
  for tool in curl python3; do
    command -v "$tool" >/dev/null || { echo "soak: needs $tool (apt-get install $tool)" >&2; exit 2; }
  done
  if [ -n "${BIN_DIR:-}" ]; then
    BIN=$BIN_DIR
  else
    local bins=()
    for name in "$@"; do bins+=(--bin "$name"); done
    echo "soak: cargo build --release ${bins[*]}" >&2
    cargo build --release --quiet "${bins[@]}"
    BIN="${CARGO_TARGET_DIR:-target}/release"
  fi
  for name in "$@"; do
    [ -x "$BIN/$name" ] || { echo "soak: $BIN/$name is missing" >&2; exit 2; }
  done
}

# soak_start_server MAX_DEVICES [SERVER FLAGS...]: an agent token for
# MAX_DEVICES devices and a read-only token made with `tailmon-server token
# create`, then the server (SQLite store, `--sync disk`, authentication
# required) on a free port of 127.0.0.1; waits until /healthz answers. Its
# log is $WORK/server.log.
soak_start_server() {
  local max_devices=$1
  shift
  local data="$WORK/data"
  mkdir -m 700 "$data"
  AGENT_TOKEN=$("$BIN/tailmon-server" token create --data-dir "$data" --name soak-agents \
    --max-devices "$max_devices" | tail -n 1)
  READ_TOKEN=$("$BIN/tailmon-server" token create --data-dir "$data" --name soak-reader \
    --read-only | tail -n 1)
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$BIN/tailmon-server" --listen "127.0.0.1:$PORT" --data-dir "$data" --store sqlite --sync disk \
    --auth required --no-local-agent "$@" 2>"$WORK/server.log" &
  SERVER_PID=$!
  SOAK_PIDS+=("$SERVER_PID")
  local _
  for _ in $(seq 300); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "soak: the server did not start; its log:" >&2
  cat "$WORK/server.log" >&2
  exit 1
}

# soak_sample CSV EVERY PID [PID2]: from now on, every EVERY seconds, PID's
# resident memory (VmRSS, KiB) as a line `elapsed_s,rss_kib` of CSV (and
# PID2's as a third column `server_rss_kib`); the first sample at once.
# Stops when PID ends or the script exits.
soak_sample() {
  local csv=$1 every=$2 pid=$3 pid2=${4:-}
  mkdir -p "$(dirname "$csv")"
  if [ -n "$pid2" ]; then echo "elapsed_s,rss_kib,server_rss_kib" >"$csv"; else echo "elapsed_s,rss_kib" >"$csv"; fi
  (
    local start rss rss2 elapsed
    start=$EPOCHREALTIME
    while rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) && [ -n "$rss" ]; do
      elapsed=$(awk -v now="$EPOCHREALTIME" -v start="$start" 'BEGIN {printf "%.1f", now - start}')
      if [ -n "$pid2" ]; then
        rss2=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid2/status" 2>/dev/null || true)
        echo "$elapsed,$rss,$rss2" >>"$csv"
      else
        echo "$elapsed,$rss" >>"$csv"
      fi
      sleep "$every"
    done
  ) &
  SOAK_PIDS+=($!)
}

# soak_counter NAME: the sum of the server's /metrics samples of NAME (all
# labels), read with the read-only token.
soak_counter() {
  curl -fs -H "Authorization: Bearer $READ_TOKEN" "http://127.0.0.1:$PORT/metrics" \
    | awk -v name="$1" '$1 == name || index($1, name "{") == 1 {sum += $NF} END {printf "%d\n", sum}'
}
