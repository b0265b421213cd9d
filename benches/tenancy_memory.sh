#!/usr/bin/env bash
# What organisations cost in memory (issue 18): the server's resident size
# with 10,000 devices in one organisation, then with 10,000 devices over
# 100 organisations of 100, each case a fresh server process:
#
#   bash benches/tenancy_memory.sh
#
# Needs curl and python3. Builds this tree's server with `cargo build
# --release` (PROFILE=bench builds it with the bench profile instead, which
# shares the Criterion benchmarks' build; MINE=path measures that binary).
# STORE=sqlite keeps the reports in a SQLite database in the temporary data
# directory instead of in memory (the default). SINGLE_ORG=NAME puts the
# one organisation's devices in organisation NAME instead of `default`.
#
# Each case: organisations and an agent and a read token per organisation
# made with `tailmon-server org create` and `token create --org` before the
# start; the server on 127.0.0.1 with authentication on, no rate limit;
# the 10,000 devices posted 100 to a `POST /api/v1/reports` in both cases
# (one organisation's in each of the 100), each with its organisation's
# agent token (as the original's agent writes a report: device_id,
# os_info, cpu_usage, ram, last_seen), then each organisation's
# `GET /api/v1/devices`, `/api/all_metrics` and `/metrics` read once with
# its read token, asking for gzip or brotli as a browser does (so that every
# cached body exists, plain and compressed). VmRSS and VmHWM from
# /proc/PID/status: started, after the reports, after the reads. The server
# is stopped at the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${STORE:-memory}"
SINGLE_ORG="${SINGLE_ORG:-default}"
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "tenancy_memory.sh needs $tool (apt-get install $tool)" >&2; exit 1; }
done
if [ -z "${MINE:-}" ]; then
  profile="${PROFILE:-release}"
  cargo build --profile "$profile" --quiet --bin tailmon-server
  MINE=./target/release/tailmon-server
fi

work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Prints "VmRSS VmHWM" of process $1, in MiB.
memory() {
  python3 - "$1" <<'EOF'
import sys
fields = {}
for line in open(f"/proc/{sys.argv[1]}/status"):
    key, _, value = line.partition(":")
    fields[key] = value.split()
print(f"VmRSS {int(fields['VmRSS'][0]) / 1024:7.1f} MiB   VmHWM {int(fields['VmHWM'][0]) / 1024:7.1f} MiB")
EOF
}

# Posts every organisation's reports (post) or reads each organisation's
# views once (read): python3 client.py PORT TOKENS post|read.
cat >"$work/client.py" <<'EOF'
import json, sys, datetime, urllib.request
port, tokens, what = sys.argv[1], sys.argv[2], sys.argv[3]
orgs = [line.split() for line in open(tokens)]
per_org = 10000 // len(orgs)
now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
def call(method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if body is None:
        headers["Accept-Encoding"] = "gzip, br"  # as a browser asks: the compressed forms are kept too
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", body, method=method, headers=headers)
    with urllib.request.urlopen(request) as answer:
        return answer.read()
for k, (org, agent, read) in enumerate(orgs):
    if what == "post":
        for start in range(k * per_org, (k + 1) * per_org, 100):
            reports = [{"device_id": f"host-{n:05d}", "os_info": "Ubuntu 22.04 (Kernel: 5.15.0-105-generic)",
                        "cpu_usage": n % 100 + 0.5, "ram_used_mb": 2048 + n % 1000, "ram_total_mb": 16384,
                        "last_seen": now} for n in range(start, start + 100)]
            result = json.loads(call("POST", "/api/v1/reports", agent, json.dumps(reports).encode()))
            assert result["accepted"] == len(reports), result
    else:
        call("GET", "/api/v1/devices", read)
        call("GET", "/api/all_metrics", read)
        call("GET", "/metrics", read)
EOF

run() {
  local orgs=$1
  local data="$work/data-$orgs"
  mkdir -p "$data"
  # Organisation k's name and its agent and read tokens, one line each.
  : >"$work/tokens-$orgs"
  for k in $(seq 0 $((orgs - 1))); do
    local org=$SINGLE_ORG
    if [ "$orgs" -gt 1 ]; then
      org=$(printf 'org-%03d' "$k")
    fi
    if [ "$org" != default ]; then
      "$MINE" org create "$org" --data-dir "$data" >/dev/null
    fi
    local agent read
    agent=$("$MINE" token create --org "$org" --name "$org-agents" --max-devices 10000 --data-dir "$data" | tail -n 1)
    read=$("$MINE" token create --org "$org" --name "$org-scripts" --read-only --data-dir "$data" | tail -n 1)
    echo "$org $agent $read" >>"$work/tokens-$orgs"
  done
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$MINE" --listen "127.0.0.1:$port" --data-dir "$data" --store "$STORE" --auth required \
    --no-local-agent --rate-limit-per-address 0 --rate-limit-per-token 0 \
    2>"$work/server-$orgs.log" &
  server=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local over="100 organisations"
  [ "$orgs" -gt 1 ] || over="organisation $SINGLE_ORG"
  echo "== 10,000 devices in $over, $STORE store ($MINE)"
  printf '%-40s' "started"; memory "$server"
  python3 "$work/client.py" "$port" "$work/tokens-$orgs" post
  printf '%-40s' "after 10,000 devices' reports"; memory "$server"
  python3 "$work/client.py" "$port" "$work/tokens-$orgs" read
  printf '%-40s' "after every organisation's reads"; memory "$server"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
}

run 1
run 100
