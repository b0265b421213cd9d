#!/usr/bin/env bash
# Fleet reads (issue 15): requests a second and latency of GET /api/all_metrics
# and GET /api/v1/devices with 10,000 devices stored, for a baseline build
# and this tree's, in the same run, with wrk:
#
#   wrk -t2 -c16 -d10s -H 'Accept-Encoding: gzip, br' URL
#
# Needs wrk (apt-get install wrk), curl and python3. The baseline is any
# tailmon-server binary, e.g. today's main built in a separate worktree:
#
#   git worktree add /tmp/tailmon-baseline 1ead415
#   (cd /tmp/tailmon-baseline && cargo build --release --bin tailmon-server)
#   BASELINE=/tmp/tailmon-baseline/target/release/tailmon-server bash benches/fleet_reads.sh
#
# Without BASELINE only this tree's server is measured. Each server runs
# alone with the in-memory store, authentication off and no rate limit; the
# 10,000 devices are posted in batches of 1,000 (as the original's agent
# writes them: device_id, os_info, cpu_usage, ram, last_seen). A third case
# reads /api/all_metrics while 2,000 reports a second keep arriving (10,000
# agents every 5 s). DURATION (default 10s) sets wrk's -d; MINE the binary to
# measure instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}"
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "fleet_reads.sh needs $tool (apt-get install $tool)" >&2; exit 1; }
done
if [ -z "${MINE:-}" ]; then
  cargo build --release --quiet --bin tailmon-server
  MINE=./target/release/tailmon-server
fi

work=$(mktemp -d)
server=
loader=
cleanup() {
  [ -n "$loader" ] && kill "$loader" 2>/dev/null || true
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The 10 batches of 1,000 reports, written once for every server.
python3 - "$work" <<'EOF'
import json, sys, datetime
now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
for batch in range(10):
    reports = [{
        "device_id": f"host-{batch * 1000 + i:05d}",
        "os_info": "Ubuntu 22.04 (Kernel: 5.15.0-105-generic)",
        "cpu_usage": (batch * 1000 + i) % 100 + 0.5,
        "ram_used_mb": 2048 + i,
        "ram_total_mb": 16384,
        "last_seen": now,
    } for i in range(1000)]
    with open(f"{sys.argv[1]}/batch-{batch}.json", "w") as out:
        json.dump(reports, out)
EOF

# Posts 2,000 reports a second (10 batches of 200 every second) until killed.
changes() {
  exec python3 - "$1" <<'EOF'
import json, sys, time, datetime, urllib.request
url = f"http://{sys.argv[1]}/api/v1/reports"
n = 0
while True:
    start = time.monotonic()
    for _ in range(10):
        now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
        reports = [{"device_id": f"host-{(n + i) % 10000:05d}", "os_info": "Ubuntu 22.04",
                    "cpu_usage": (n + i) % 97 + 0.25, "ram_used_mb": 1024, "ram_total_mb": 16384,
                    "last_seen": now} for i in range(200)]
        n += 200
        req = urllib.request.Request(url, json.dumps(reports).encode(), {"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req).read()
        except Exception:
            pass
    time.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
EOF
}

# Prints "requests/s p99 bytes/request" of one wrk run.
measure() {
  local url=$1
  wrk -t2 -c16 -d"$DURATION" --latency -H 'Accept-Encoding: gzip, br' "$url" >"$work/wrk.txt"
  python3 - "$work/wrk.txt" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", text)
bps = float(transfer.group(1)) * {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[transfer.group(2)]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
note = f"  ({errors.group(1)} non-2xx)" if errors else ""
print(f"{rps:10.1f} req/s   p99 {ms:8.2f} ms   {bps / rps / 1024:8.1f} KiB/request{note}")
EOF
}

run() {
  local name=$1 binary=$2
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$work/data-$name"
  "$binary" --listen "127.0.0.1:$port" --data-dir "$work/data-$name" --store memory --auth none \
    --no-local-agent --rate-limit-per-address 0 2>"$work/$name.log" &
  server=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  for batch in "$work"/batch-*.json; do
    curl -fs -o /dev/null -H 'Content-Type: application/json' --data-binary "@$batch" \
      "http://127.0.0.1:$port/api/v1/reports"
  done
  local count
  count=$(curl -fs "http://127.0.0.1:$port/api/all_metrics" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  echo "== $name ($binary): $count devices stored"
  for path in /api/all_metrics /api/v1/devices; do
    printf '%-44s' "$path"
    measure "http://127.0.0.1:$port$path"
  done
  changes "127.0.0.1:$port" &
  loader=$!
  sleep 1
  printf '%-44s' "/api/all_metrics, 2,000 reports/s arriving"
  measure "http://127.0.0.1:$port/api/all_metrics"
  kill "$loader"; wait "$loader" 2>/dev/null || true; loader=
  kill "$server"; wait "$server" 2>/dev/null || true; server=
}

if [ -n "${BASELINE:-}" ]; then
  run baseline "$BASELINE"
fi
run this-tree "$MINE"
