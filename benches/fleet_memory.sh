#!/usr/bin/env bash
# Resident memory of the server with a fleet reporting at the agent's pace
# (issue 19): the stock tailmon-server (SQLite store, fresh data directory,
# no authentication, limits lifted for one load generator), tailmon-loadgen
# with N agents sending full reports every 5 s, the server's RSS sampled
# every 10 s.
#
#   bash benches/fleet_memory.sh [DEVICES] [MINUTES] [CONNECTIONS]
#
# DEVICES defaults to 10000, MINUTES to 12 (so a checkpoint, every 10
# minutes, falls inside), CONNECTIONS to "agents": each agent its own
# keep-alive connection, as real agents; a number N makes the agents share
# N connections, as behind a proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
devices="${1:-10000}"
minutes="${2:-12}"
connections="${3:-agents}"

cargo build --profile bench --quiet --bin tailmon-server --bin tailmon-loadgen
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
target/release/tailmon-server --auth none --data-dir "$work/data" --listen "127.0.0.1:$port" \
  --rate-limit-per-address 0 --rate-limit-per-token 0 \
  --max-connections-per-address 100000 --max-devices 100000 > "$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
shared=()
if [ "$connections" != agents ]; then shared=(--connections "$connections"); fi
target/release/tailmon-loadgen --server-url "http://127.0.0.1:$port" --devices "$devices" \
  --interval 5s --duration "${minutes}m" --report-every 60s "${shared[@]}" > "$work/load" 2>&1 &
load=$!
echo "elapsed_s rss_mb connections"
start=$(date +%s)
peak=0
while kill -0 "$load" 2>/dev/null; do
  sleep 10
  rss_kb="$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")"
  conns="$(ss -Htn state established "( sport = :$port )" | wc -l)"
  mb=$((rss_kb / 1024))
  [ "$mb" -gt "$peak" ] && peak=$mb
  echo "$(( $(date +%s) - start )) $mb $conns"
done
wait "$load" || true
grep '^summary:' "$work/load"
echo "peak_rss_mb=$peak devices=$devices connections=$connections"
