#!/usr/bin/env bash
# Soak of the server (issue 19): N simulated agents sending full reports to
# a real server for M minutes, its resident memory sampled all along; passes
# when no request failed, no report was refused and the memory stayed flat.
#
#   bash scripts/soak_server.sh                       # 1,000 agents, 5 s, 30 minutes
#   bash scripts/soak_server.sh --agents 200 --interval 1s --minutes 2
#
# Options: --agents N (1000), --minutes M (30), --interval I (5s, as
# tailmon-loadgen takes it), --sample-every S (10 seconds), --csv FILE
# (target/soak/server-TIME.csv).
#
# Builds the release tailmon-server and tailmon-loadgen (BIN_DIR=DIR uses
# the binaries in DIR instead, e.g. BIN_DIR=target/debug after `cargo
# test`). The server: SQLite store with `--sync disk` (the defaults) in a
# fresh temporary data directory, authentication required, the agents'
# token made with `tailmon-server token create`, rate limits off and room
# for every agent's connection from 127.0.0.1 (see docs/loadgen.md). The
# server's VmRSS (/proc/PID/status) goes to the CSV every S seconds and is
# judged by scripts/rss_flatness.py (after a warm-up of a sixth of the run,
# at most 10 minutes, the second half's peak within 10 % or 2 MiB of the
# first half's). Prints tailmon-loadgen's progress each minute, then one
# `soak_server:` line; exits 0 on a pass, 1 on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

agents=1000
minutes=30
interval=5s
every=10
csv="${CARGO_TARGET_DIR:-target}/soak/server-$(date -u +%Y%m%dT%H%M%SZ).csv"
while [ $# -gt 0 ]; do
  case "$1" in
    --agents) agents=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --sample-every) every=$2; shift 2 ;;
    --csv) csv=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak_server.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

. scripts/soak_harness.sh
soak_binaries tailmon-server tailmon-loadgen
# One connection per simulated agent, all from 127.0.0.1.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# The server's defaults (10,000 devices and connections) unless more are needed.
max_devices=$((agents > 10000 ? agents : 10000))
max_connections=$((agents + 1000 > 10000 ? agents + 1000 : 10000))
soak_start_server "$agents" --rate-limit-per-address 0 --rate-limit-per-token 0 \
  --max-connections-per-address $((agents + 64)) --max-connections "$max_connections" \
  --max-devices "$max_devices"
soak_sample "$csv" "$every" "$SERVER_PID"

echo "soak_server: $agents agents every $interval for $minutes min against $BIN/tailmon-server (pid $SERVER_PID); RSS every ${every}s into $csv" >&2
loadgen_status=0
"$BIN/tailmon-loadgen" --server-url "http://127.0.0.1:$PORT" --token "$AGENT_TOKEN" \
  --devices "$agents" --interval "$interval" --duration "${minutes}m" \
  --report-every 60s --max-error-rate 0 | tee "$WORK/loadgen.out" || loadgen_status=$?

# The last sample, now that the load is over.
sleep "$every"
server_up=yes
kill -0 "$SERVER_PID" 2>/dev/null || server_up=no
received=$(soak_counter tailmon_reports_received_total || echo unknown)
refused=$(soak_counter tailmon_reports_refused_total || echo unknown)
summary=$(grep '^summary:' "$WORK/loadgen.out" | tail -n 1 || true)
errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$summary")
reports=$(sed -n 's/.* reports=\([0-9]*\).*/\1/p' <<<"$summary")
memory_status=0
memory=$(python3 scripts/rss_flatness.py "$csv") || memory_status=$?

verdict=pass
if [ "$loadgen_status" != 0 ] || [ "${errors:-x}" != 0 ] || [ "$refused" != 0 ] \
  || [ "$server_up" != yes ] || [ "$memory_status" != 0 ]; then
  verdict=fail
fi
echo "soak_server: agents=$agents interval=$interval minutes=$minutes reports=${reports:-unknown} loadgen_errors=${errors:-unknown} loadgen_exit=$loadgen_status server_received=$received server_refused=$refused server_up=$server_up $memory verdict=$verdict csv=$csv"
if [ "$verdict" != pass ]; then
  grep -E ' (WARN|ERROR) ' "$WORK/server.log" | tail -n 20 >&2 || true
  exit 1
fi
