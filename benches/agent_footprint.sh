#!/usr/bin/env bash
# Measures the tailmon-agent's resident memory and CPU share while it reports
# to a real server on loopback, at a 5 s and a 1 s interval side by side.
#
#   bash benches/agent_footprint.sh            # 10 minutes (600 s)
#   DURATION=60 bash benches/agent_footprint.sh
#
# Prints, per interval: peak and final resident memory (VmHWM, VmRSS) and the
# CPU time used over the run as a share of one core.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-600}"
cargo build --release --quiet --bin tailmon-server --bin tailmon-agent

data=$(mktemp -d)
# Agents authenticate as in production: one agent token, one read-only token
# for the final count.
agent_token=$(./target/release/tailmon-server token create --data-dir "$data" --device 'footprint-*' | tail -n 1)
read_token=$(./target/release/tailmon-server token create --data-dir "$data" --read-only | tail -n 1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
./target/release/tailmon-server --listen "127.0.0.1:$port" --data-dir "$data" --no-local-agent 2>/dev/null &
server=$!
trap 'kill $server ${agents[*]:-} 2>/dev/null || true; rm -rf "$data"' EXIT
sleep 1

declare -A agents_by_interval
agents=()
for interval in 5 1; do
  TAILMON_SERVER_URL="http://127.0.0.1:$port/api/metrics" TAILMON_INTERVAL=$interval TAILMON_TOKEN="$agent_token" \
    TAILMON_DEVICE_ID="footprint-$interval" ./target/release/tailmon-agent 2>/dev/null &
  agents+=($!)
  agents_by_interval[$interval]=$!
done

sleep "$DURATION"

for interval in 5 1; do
  pid=${agents_by_interval[$interval]}
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  # The first field of /proc/PID/schedstat is the time spent on a CPU, in ns
  # (finer than utime + stime, which count 10 ms ticks).
  cpu_ns=$(awk '{print $1}' "/proc/$pid/schedstat")
  share=$(python3 -c "print(f'{100 * $cpu_ns / 1e9 / $DURATION:.4f}')")
  echo "interval ${interval}s over ${DURATION}s: peak RSS ${hwm} kB, final RSS ${rss} kB, CPU $((cpu_ns / 1000000)) ms = ${share} % of one core"
done
count=$(curl -s -H "Authorization: Bearer $read_token" "http://127.0.0.1:$port/api/all_metrics" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "devices on the server: $count"
