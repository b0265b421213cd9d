#!/usr/bin/env bash
# Durable ingest against its floor, measured from outside the server
# (issue 19): the same router over each store in turn (benches/bin/
# bench_server.rs), loaded by tailmon-loadgen in another process, cases
# taking turns round after round; then the medians and the ratios.
#
#   bash benches/durable_ingest.sh
#
# Cases (TAILMON_BENCH_CASES, default "floor sqlite memory"):
#   floor   LogStore with fdatasync (benches/log_store.rs): append the report
#           and flush before answering, nothing else: the durable floor;
#   sqlite  the SQLite store, Durability::Disk (the default);
#   memory  the in-memory store.
# Shapes (TAILMON_BENCH_SHAPES, default "small full"): the original
# Tailmon's small reports, or full agent reports.
# TAILMON_BENCH_SECS (20), TAILMON_BENCH_ROUNDS (3), TAILMON_BENCH_DEVICES
# (10000), TAILMON_BENCH_CONCURRENCY (64 requests in flight over as many
# keep-alive connections, as `wrk -c64`).
#
# Each line gives reports/s as acknowledged, the server's RSS after the
# run, and how long it took to stop (for sqlite: the checkpoint sealing what
# the run sent).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${TAILMON_BENCH_SECS:-20}"
rounds="${TAILMON_BENCH_ROUNDS:-3}"
devices="${TAILMON_BENCH_DEVICES:-10000}"
concurrency="${TAILMON_BENCH_CONCURRENCY:-64}"
cases="${TAILMON_BENCH_CASES:-floor sqlite memory}"
shapes="${TAILMON_BENCH_SHAPES:-small full}"

# The bench profile (thin LTO) builds in a fraction of release's time; every
# case runs the same binary, so the ratios compare the stores alone.
cargo build --profile bench --quiet -p tailmon-benches --bin tailmon-bench-server
cargo build --profile bench --quiet -p tailmon-loadgen --bin tailmon-loadgen
server=target/release/tailmon-bench-server
loadgen=target/release/tailmon-loadgen

work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

results="$work/results"
: > "$results"
printf '%-6s %-7s %-6s %10s %8s %8s\n' round shape case reports/s rss_mb stop_s
for round in $(seq 1 "$rounds"); do
  for shape in $shapes; do
    for case in $cases; do
      dir="$work/$case-$shape-$round"
      port="$(free_port)"
      "$server" "$case" "$dir" "127.0.0.1:$port" > "$dir.server" 2>&1 &
      pid=$!
      for _ in $(seq 1 100); do
        grep -q '^listening on' "$dir.server" 2>/dev/null && break
        sleep 0.1
      done
      small=""
      if [ "$shape" = small ]; then small="--small"; fi
      "$loadgen" --server-url "http://127.0.0.1:$port" --devices "$devices" \
        --concurrency "$concurrency" --connections "$concurrency" --duration "${secs}s" --report-every 3600s \
        --max-error-rate 1 $small > "$dir.load" 2> "$dir.load.err" || true
      rate="$(sed -n 's/^summary:.* reports_per_s=\([0-9.]*\).*/\1/p' "$dir.load")"
      errors="$(sed -n 's/^summary:.* errors=\([0-9]*\).*/\1/p' "$dir.load")"
      rss_kb="$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")"
      kill -TERM "$pid"
      wait "$pid" || true
      pid=""
      stop="$(sed -n 's/^stopped in \([0-9.]*\) s/\1/p' "$dir.server")"
      rss_mb=$((rss_kb / 1024))
      printf '%-6s %-7s %-6s %10s %8s %8s%s\n' "$round" "$shape" "$case" "${rate:-0}" "$rss_mb" "${stop:-?}" \
        "$([ "${errors:-0}" != 0 ] && echo "  errors=$errors")"
      echo "$round $shape $case ${rate:-0} $rss_mb ${stop:-0}" >> "$results"
      rm -rf "$dir"
    done
  done
done

echo
echo "medians over $rounds rounds (reports/s; ratio to the floor of the same shape: of the medians, then the median of each round's own ratio)"
python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
by = {}
floors = {(r[0], r[1]): float(r[3]) for r in rows if r[2] == "floor"}
for rnd, shape, case, rate, rss, stop in rows:
    floor = floors.get((rnd, shape))
    ratio = float(rate) / floor if floor else None
    by.setdefault((shape, case), []).append((float(rate), int(rss), float(stop), ratio))
for shape in dict.fromkeys(r[1] for r in rows):
    floor = by.get((shape, "floor"))
    floor_rate = statistics.median(r[0] for r in floor) if floor else None
    for (s, case), runs in by.items():
        if s != shape:
            continue
        rate = statistics.median(r[0] for r in runs)
        lo, hi = min(r[0] for r in runs), max(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        stop = statistics.median(r[2] for r in runs)
        ratio = f"{rate / floor_rate:.2f}x" if floor_rate else "-"
        paired = [r[3] for r in runs if r[3] is not None]
        per_round = (
            f"{statistics.median(paired):.2f}x ({min(paired):.2f}-{max(paired):.2f})" if paired else "-"
        )
        print(f"{shape:6} {case:7} {rate:9.0f}  ({lo:.0f}-{hi:.0f})  {ratio:>6}  per round {per_round}  rss {rss:.0f} MB  stop {stop:.1f} s")
PY
