#!/usr/bin/env bash
# Soak of the agent (issue 19): the real tailmon-agent collecting and
# sending every second to a real server for H hours, its resident memory
# sampled all along; passes when the agent logged no warning or error, the
# server refused nothing and stored (nearly) a report a second, and the
# agent's memory stayed flat.
#
#   bash scripts/soak_agent.sh                 # 24 hours
#   bash scripts/soak_agent.sh --hours 2
#   bash scripts/soak_agent.sh --minutes 2 --sample-every 5
#
# Options: --hours H (24) or --minutes M, --sample-every S (60 seconds),
# --csv FILE (target/soak/agent-TIME.csv).
#
# Builds the release tailmon-server and tailmon-agent (BIN_DIR=DIR uses the
# binaries in DIR instead, e.g. BIN_DIR=target/debug after `cargo test`).
# The server: SQLite store with `--sync disk` in a fresh temporary data
# directory, authentication required, the agent's token made with
# `tailmon-server token create`. The agent: `TAILMON_INTERVAL=1`, its
# memory queue (the default). The agent's VmRSS (/proc/PID/status) goes to
# the CSV every S seconds, the server's beside it (not judged), and is
# judged by scripts/rss_flatness.py (after a warm-up of a sixth of the run,
# at most 10 minutes, the second half's peak within 10 % or 2 MiB of the
# first half's). Prints one `soak_agent:` line; exits 0 on a pass, 1 on a
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=$((24 * 3600))
every=60
csv="${CARGO_TARGET_DIR:-target}/soak/agent-$(date -u +%Y%m%dT%H%M%SZ).csv"
while [ $# -gt 0 ]; do
  case "$1" in
    --hours) seconds=$(awk -v h="$2" 'BEGIN {printf "%d", h * 3600}'); shift 2 ;;
    --minutes) seconds=$(awk -v m="$2" 'BEGIN {printf "%d", m * 60}'); shift 2 ;;
    --sample-every) every=$2; shift 2 ;;
    --csv) csv=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak_agent.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

. scripts/soak_harness.sh
soak_binaries tailmon-server tailmon-agent
soak_start_server 1

TAILMON_SERVER_URL="http://127.0.0.1:$PORT" TAILMON_TOKEN="$AGENT_TOKEN" TAILMON_INTERVAL=1 \
  TAILMON_DEVICE_ID=soak-agent "$BIN/tailmon-agent" 2>"$WORK/agent.log" &
agent=$!
SOAK_PIDS+=("$agent")
soak_sample "$csv" "$every" "$agent" "$SERVER_PID"
echo "soak_agent: $BIN/tailmon-agent (pid $agent) every 1 s for ${seconds}s; RSS every ${every}s into $csv" >&2

# Waits out the run, a line on standard error each hour (or at the end).
started=$SECONDS
agent_up=yes
while [ $((SECONDS - started)) -lt "$seconds" ]; do
  left=$((seconds - (SECONDS - started)))
  sleep $((left < 3600 ? left : 3600))
  if ! kill -0 "$agent" 2>/dev/null; then agent_up=no; break; fi
  echo "soak_agent: $(((SECONDS - started) / 60)) min: $(tail -n 1 "$csv")" >&2
done
ran=$((SECONDS - started))

sleep 2 # the last report delivered
received=$(soak_counter tailmon_reports_received_total || echo 0)
refused=$(soak_counter tailmon_reports_refused_total || echo unknown)
problems=$(grep -cE ' (WARN|ERROR) ' "$WORK/agent.log" || true)
memory_status=0
memory=$(python3 scripts/rss_flatness.py "$csv") || memory_status=$?
# A report a second; 90 % of them at least, for a machine busy elsewhere
# can delay a collection (the agent then sends the next one late, never twice).
enough=$(awk -v r="$received" -v s="$ran" 'BEGIN {print (r >= 0.9 * s) ? "yes" : "no"}')
server_rss=$(tail -n 1 "$csv" | cut -d, -f3)

verdict=pass
if [ "$agent_up" != yes ] || [ "$problems" != 0 ] || [ "$refused" != 0 ] || [ "$enough" != yes ] \
  || [ "$memory_status" != 0 ]; then
  verdict=fail
fi
echo "soak_agent: seconds=$ran server_received=$received server_refused=$refused agent_warnings=$problems agent_up=$agent_up $memory server_rss_end_kib=$server_rss verdict=$verdict csv=$csv"
if [ "$verdict" != pass ]; then
  grep -E ' (WARN|ERROR) ' "$WORK/agent.log" | tail -n 20 >&2 || true
  exit 1
fi
