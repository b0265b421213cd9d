#!/usr/bin/env bash
# Scale-out capacity (issue 20): one tailmon-server replica with the remote
# store (`--store prometheus`, fleet refresh at its default of 2 s) over
# each engine in turn, Debian's Prometheus and VictoriaMetrics, started
# here on 127.0.0.1 with a fresh data folder each (the flags
# crates/tailmon-testkit/src/engines.rs gives them), loaded by
# tailmon-loadgen. Engine, replica and load generator share this machine.
#
#   bash benches/scale_out.sh
#
# For each engine and report shape (full agent reports, the original's
# small ones), on a fresh engine:
# 1. Samples per report: 50 agents, one report a second each, for 10 s.
#    The engine's own count of the samples it took (Prometheus:
#    prometheus_tsdb_head_samples_appended_total; VictoriaMetrics:
#    vm_rows_inserted_total{type="promremotewrite"}) over the reports the
#    replica stored (its tailmon_reports_received_total); and the series
#    per device (Prometheus: prometheus_tsdb_head_series; VictoriaMetrics:
#    /api/v1/series/count), over those 50 devices.
# 2. Throughput: TAILMON_BENCH_DEVICES (10000) agents flat out, after
#    TAILMON_BENCH_WARMUP_SECS (15) of the same load unmeasured (so that
#    each device has reported and its series exist),
#    TAILMON_BENCH_CONCURRENCY (64) requests in flight over as many
#    keep-alive connections, for TAILMON_BENCH_SECS (20): the reports a
#    second the replica acknowledged (each once the engine had it), p50 and
#    p99 latency, errors; the CPU the replica and the engine used (seconds
#    of CPU per second of the run: 2.0 is both cores); the engine's
#    samples a second; the replica's fleet refreshes (count, mean time).
#
# TAILMON_BENCH_ENGINES ("prometheus victoria-metrics"),
# TAILMON_BENCH_SHAPES ("full small") choose the cases;
# TAILMON_BENCH_INTERVAL (e.g. 5s) paces the measured run instead: each
# agent reports at that interval (10,000 agents at 5 s: 2,000 reports a
# second), to see latency and the fleet refresh at a fleet's own pace;
# TAILMON_BENCH_FLEET_REFRESH sets the replica's --fleet-refresh (`0`: the
# write path alone, without the replica reading the fleet back).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${TAILMON_BENCH_SECS:-20}"
warmup="${TAILMON_BENCH_WARMUP_SECS:-15}"
devices="${TAILMON_BENCH_DEVICES:-10000}"
concurrency="${TAILMON_BENCH_CONCURRENCY:-64}"
engines="${TAILMON_BENCH_ENGINES:-prometheus victoria-metrics}"
shapes="${TAILMON_BENCH_SHAPES:-full small}"

for binary in /usr/bin/prometheus /usr/bin/victoria-metrics; do
  [ -x "$binary" ] || { echo "$binary is missing (apt-get install prometheus victoria-metrics)" >&2; exit 2; }
done

cargo build --profile bench --quiet -p tailmon-server-bin --bin tailmon-server
cargo build --profile bench --quiet -p tailmon-loadgen --bin tailmon-loadgen
server="$PWD/target/release/tailmon-server"
loadgen="$PWD/target/release/tailmon-loadgen"

work="$(mktemp -d)"
engine_pid=""
server_pid=""
stop_all() {
  for pid in $server_pid $engine_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  server_pid=""
  engine_pid=""
}
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # URL
  for _ in $(seq 1 600); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  exit 1
}

# The sum of the values of the lines of metric text on stdin matching $1.
metric_sum() {
  awk -v pattern="$1" '$0 ~ pattern && $0 !~ /^#/ { sum += $NF } END { printf "%.6f\n", sum }'
}

engine_samples() { # ENGINE PORT
  case "$1" in
    prometheus) curl -fs "http://127.0.0.1:$2/metrics" | metric_sum '^prometheus_tsdb_head_samples_appended_total' ;;
    victoria-metrics) curl -fs "http://127.0.0.1:$2/metrics" | metric_sum '^vm_rows_inserted_total\{type="promremotewrite"\}' ;;
  esac
}

engine_series() { # ENGINE PORT
  case "$1" in
    prometheus) curl -fs "http://127.0.0.1:$2/metrics" | metric_sum '^prometheus_tsdb_head_series ' ;;
    victoria-metrics)
      curl -fs "http://127.0.0.1:$2/internal/force_flush" > /dev/null
      curl -fs "http://127.0.0.1:$2/api/v1/series/count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0])' ;;
  esac
}

# CPU seconds a process has used (user + system).
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$1/stat"
}

summary_field() { # FILE FIELD
  sed -n "s/^summary:.* $2=\([0-9.]*\).*/\1/p" "$1"
}

printf '%-16s %-5s %8s %8s %10s %7s %7s %7s %8s %8s %11s %9s\n' \
  engine shape samples series reports/s p50_ms p99_ms errors cpu_repl cpu_eng samples/s refresh_ms
for engine in $engines; do
  for shape in $shapes; do
    dir="$work/$engine-$shape"
    mkdir -p "$dir"
    port="$(free_port)"
    case "$engine" in
      prometheus)
        printf 'global:\n  scrape_interval: 1h\nstorage:\n  tsdb:\n    out_of_order_time_window: 30d\n' > "$dir/prometheus.yml"
        /usr/bin/prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
          --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver \
          --web.enable-admin-api --log.level=warn > "$dir/engine.log" 2>&1 &
        engine_pid=$!
        wait_http "http://127.0.0.1:$port/-/ready" ;;
      victoria-metrics)
        /usr/bin/victoria-metrics -storageDataPath="$dir/data" -httpListenAddr="127.0.0.1:$port" \
          -search.latencyOffset=0s -search.disableCache -dedup.minScrapeInterval=1ms \
          -retentionPeriod=100y -loggerLevel=WARN > "$dir/engine.log" 2>&1 &
        engine_pid=$!
        wait_http "http://127.0.0.1:$port/health" ;;
    esac
    server_port="$(free_port)"
    "$server" --store prometheus --remote-write-url "http://127.0.0.1:$port/api/v1/write" \
      --query-url "http://127.0.0.1:$port" --auth none --listen "127.0.0.1:$server_port" \
      --data-dir "$dir/replica" --no-local-agent --rate-limit-per-address 0 \
      --rate-limit-per-token 0 --max-connections-per-address 100000 \
      --max-connections 100000 --max-devices 1000000 \
      ${TAILMON_BENCH_FLEET_REFRESH:+--fleet-refresh "$TAILMON_BENCH_FLEET_REFRESH"} > "$dir/server.log" 2>&1 &
    server_pid=$!
    wait_http "http://127.0.0.1:$server_port/readyz"
    url="http://127.0.0.1:$server_port"
    small=""
    if [ "$shape" = small ]; then small="--small"; fi

    # 1. Samples per report, series per device.
    before="$(engine_samples "$engine" "$port")"
    "$loadgen" --server-url "$url" --devices 50 --prefix spr- --interval 1s --duration 10s \
      --report-every 3600s $small > "$dir/spr.load" 2>&1
    stored="$(curl -fs "$url/metrics" | metric_sum '^tailmon_reports_received_total')"
    after="$(engine_samples "$engine" "$port")"
    per_report="$(python3 -c "print(f'{($after - $before) / $stored:.1f}')")"
    per_device="$(python3 -c "print(f'{$(engine_series "$engine" "$port") / 50:.1f}')")"

    # 2. Throughput, flat out, once every device has its series (a first
    # report makes some 7 to 34 new series in the engine, which costs it
    # more than appending to them: an established fleet only appends).
    "$loadgen" --server-url "$url" --devices "$devices" --concurrency "$concurrency" \
      --connections "$concurrency" --duration "${warmup}s" --report-every 3600s \
      --max-error-rate 1 $small > "$dir.warmup" 2>&1 || true
    samples0="$(engine_samples "$engine" "$port")"
    refreshes0="$(curl -fs "$url/metrics" | metric_sum '^tailmon_fleet_refresh_duration_seconds_count')"
    refresh_sum0="$(curl -fs "$url/metrics" | metric_sum '^tailmon_fleet_refresh_duration_seconds_sum')"
    server_cpu0="$(cpu_seconds "$server_pid")"
    engine_cpu0="$(cpu_seconds "$engine_pid")"
    started="$(date +%s.%N)"
    pace=(--concurrency "$concurrency")
    if [ -n "${TAILMON_BENCH_INTERVAL:-}" ]; then pace=(--interval "$TAILMON_BENCH_INTERVAL"); fi
    "$loadgen" --server-url "$url" --devices "$devices" "${pace[@]}" \
      --connections "$concurrency" --duration "${secs}s" --report-every 3600s \
      --max-error-rate 1 $small > "$dir.load" 2> "$dir.load.err" || true
    elapsed="$(python3 -c "import time; print(time.time() - $started)")"
    server_cpu="$(python3 -c "print(f'{($(cpu_seconds "$server_pid") - $server_cpu0) / $elapsed:.2f}')")"
    engine_cpu="$(python3 -c "print(f'{($(cpu_seconds "$engine_pid") - $engine_cpu0) / $elapsed:.2f}')")"
    samples_per_s="$(python3 -c "print(f'{($(engine_samples "$engine" "$port") - $samples0) / $elapsed:.0f}')")"
    server_metrics="$(curl -fs "$url/metrics")"
    refreshes="$(python3 -c "print(round($(echo "$server_metrics" | metric_sum '^tailmon_fleet_refresh_duration_seconds_count') - $refreshes0))")"
    refresh_sum="$(echo "$server_metrics" | metric_sum '^tailmon_fleet_refresh_duration_seconds_sum')"
    refresh_ms="$(python3 -c "print(f'{1000 * ($refresh_sum - $refresh_sum0) / max($refreshes, 1):.0f}')")"
    printf '%-16s %-5s %8s %8s %10s %7s %7s %7s %8s %8s %11s %9s\n' \
      "$engine" "$shape" "$per_report" "$per_device" "$(summary_field "$dir.load" reports_per_s)" \
      "$(summary_field "$dir.load" p50_ms)" "$(summary_field "$dir.load" p99_ms)" \
      "$(summary_field "$dir.load" errors)" "$server_cpu" "$engine_cpu" "$samples_per_s" \
      "${refresh_ms} (${refreshes}x)"
    if [ "$(summary_field "$dir.load" errors)" != 0 ]; then
      grep -o 'error_[a-z0-9_]*=[0-9]*' "$dir.load" | tr '\n' ' ' || true
      head -c 600 "$dir.load.err"
      echo
    fi
    stop_all
    rm -rf "$dir" "$dir.load" "$dir.load.err" "$dir.warmup"
  done
done
