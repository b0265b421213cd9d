// Which charts the device page draws from a device's metric names, and
// how: the chart ids users choose among (saved as `device_charts` in the
// preferences), the series of each and the unit of its values.

/** Every chart id, in the default order. */
export const CHART_IDS = [
  "cpu",
  "cpu_cores",
  "cpu_breakdown",
  "memory",
  "swap",
  "load",
  "disk_usage",
  "disk_io",
  "network",
  "temperatures",
  "custom",
];

/** What each chart id shows, for the Customize dialog. */
export const CHART_NAMES = {
  cpu: "CPU",
  cpu_cores: "CPU per core",
  cpu_breakdown: "CPU time (user, system, iowait, steal)",
  memory: "Memory",
  swap: "Swap",
  load: "Load average",
  disk_usage: "Disk usage",
  disk_io: "Disk I/O",
  network: "Network (per interface)",
  temperatures: "Temperatures",
  custom: "Custom metrics",
};

const MIB = 1024 * 1024;

/** The base and key of a metric name (`disk_used_percent:/` → both parts). */
function split(name) {
  const i = name.indexOf(":");
  return i < 0 ? [name, null] : [name.slice(0, i), name.slice(i + 1)];
}

/**
 * The charts to draw for `chartIds` (in that order) from the metric
 * `names` a device has. Each: `{id, key, title, unit, yMax, series:
 * [{metric, label, scale}]}`; `unit` is one of percent, bytes, rate,
 * celsius, number. A chart id with no metric gives no chart.
 */
export function chartsFor(chartIds, names) {
  const has = new Set(names);
  const keyed = (base) => names.filter((n) => split(n)[0] === base).map((n) => split(n)[1]);
  const plain = (list) => list.filter(([metric]) => has.has(metric)).map(([metric, label, scale]) => ({ metric, label, scale: scale ?? 1 }));
  const one = (id, title, unit, series, yMax = null) => (series.length ? [{ id, key: "", title, unit, yMax, series }] : []);
  const build = {
    cpu: () => one("cpu", "CPU", "percent", plain([["cpu_usage", "total"]]), 100),
    cpu_cores: () =>
      one(
        "cpu_cores",
        "CPU per core",
        "percent",
        keyed("cpu_core")
          .sort((a, b) => Number(a) - Number(b))
          .map((k) => ({ metric: `cpu_core:${k}`, label: `core ${k}`, scale: 1 })),
        100,
      ),
    cpu_breakdown: () =>
      one(
        "cpu_breakdown",
        "CPU time",
        "percent",
        plain([
          ["cpu_user", "user"],
          ["cpu_system", "system"],
          ["cpu_iowait", "iowait"],
          ["cpu_steal", "steal"],
        ]),
        100,
      ),
    memory: () =>
      one(
        "memory",
        "Memory",
        "bytes",
        plain([
          ["ram_used_mb", "used", MIB],
          ["ram_total_mb", "total", MIB],
        ]),
      ),
    swap: () =>
      one(
        "swap",
        "Swap",
        "bytes",
        plain([
          ["swap_used_mb", "used", MIB],
          ["swap_total_mb", "total", MIB],
        ]),
      ),
    load: () =>
      one(
        "load",
        "Load average",
        "number",
        plain([
          ["load_one", "1 min"],
          ["load_five", "5 min"],
          ["load_fifteen", "15 min"],
        ]),
      ),
    disk_usage: () =>
      one(
        "disk_usage",
        "Disk usage",
        "percent",
        keyed("disk_used_percent").map((k) => ({ metric: `disk_used_percent:${k}`, label: k, scale: 1 })),
        100,
      ),
    disk_io: () => {
      const devices = [...new Set([...keyed("disk_read_bytes_per_sec"), ...keyed("disk_write_bytes_per_sec")])];
      const series = [];
      for (const d of devices) {
        for (const [base, what] of [
          ["disk_read_bytes_per_sec", "read"],
          ["disk_write_bytes_per_sec", "write"],
        ]) {
          if (has.has(`${base}:${d}`)) series.push({ metric: `${base}:${d}`, label: `${d} ${what}`, scale: 1 });
        }
      }
      return one("disk_io", "Disk I/O", "rate", series);
    },
    network: () => {
      const interfaces = [...new Set([...keyed("net_rx_bytes_per_sec"), ...keyed("net_tx_bytes_per_sec")])];
      return interfaces.map((i) => ({
        id: "network",
        key: i,
        title: `Network: ${i}`,
        unit: "rate",
        yMax: null,
        series: [
          ["net_rx_bytes_per_sec", "received"],
          ["net_tx_bytes_per_sec", "sent"],
        ]
          .filter(([base]) => has.has(`${base}:${i}`))
          .map(([base, label]) => ({ metric: `${base}:${i}`, label, scale: 1 })),
      }));
    },
    temperatures: () =>
      one(
        "temperatures",
        "Temperatures",
        "celsius",
        keyed("temperature").map((k) => ({ metric: `temperature:${k}`, label: k, scale: 1 })),
      ),
    custom: () =>
      keyed("custom").map((k) => ({
        id: "custom",
        key: k,
        title: k,
        unit: "number",
        yMax: null,
        series: [{ metric: `custom:${k}`, label: k, scale: 1 }],
      })),
  };
  const charts = [];
  for (const id of chartIds) {
    if (build[id]) charts.push(...build[id]());
  }
  return charts;
}

/** The chart ids to show: the user's saved choice if valid, else all. */
export function chosenCharts(prefs) {
  const saved = prefs && Array.isArray(prefs.device_charts) ? prefs.device_charts : null;
  if (!saved) return [...CHART_IDS];
  return saved.filter((id, i) => CHART_IDS.includes(id) && saved.indexOf(id) === i);
}
