// The metric names and values a report holds: the page's twin of
// `tailmon_core::metric::for_each` (crates/tailmon-core/src/metric.rs), in
// the same order. Live mode turns each report the stream brings into chart
// points with it, and it lists a device's metrics when the server cannot.

/** A finite number, or null. */
function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** Rounded to hundredths, as the server rounds derived percentages. */
function hundredths(value) {
  return Math.round(value * 100) / 100;
}

/** A disk's used percentage as `df` shows it (see `Disk::used_percent`). */
function diskUsedPercent(d) {
  const used = num(d.used_bytes);
  if (used === null) return null;
  const available = num(d.available_bytes);
  if (available !== null) {
    return used + available > 0 ? (used * 100) / (used + available) : null;
  }
  const total = num(d.total_bytes);
  return total !== null && total > 0 ? (used * 100) / total : null;
}

/** Every `[name, value]` of `report` (a Report or a DeviceSummary). */
export function reportMetrics(report) {
  const out = [];
  if (!report || typeof report !== "object") return out;
  const add = (name, value) => {
    const v = num(value);
    if (v !== null) out.push([name, v]);
  };
  const list = (value) => (Array.isArray(value) ? value.filter((x) => x && typeof x === "object") : []);
  add("cpu_usage", report.cpu_usage);
  add("ram_used_mb", report.ram_used_mb);
  add("ram_total_mb", report.ram_total_mb);
  const used = num(report.ram_used_mb);
  const total = num(report.ram_total_mb);
  if (used !== null && total !== null && total > 0) add("ram_used_percent", hundredths((used * 100) / total));
  if (Array.isArray(report.cpu_per_core)) {
    report.cpu_per_core.forEach((v, i) => add(`cpu_core:${i}`, v));
  }
  const b = report.cpu_breakdown;
  if (b && typeof b === "object") {
    add("cpu_user", b.user);
    add("cpu_system", b.system);
    add("cpu_iowait", b.iowait);
    add("cpu_steal", b.steal);
  }
  const l = report.load_avg;
  if (l && typeof l === "object") {
    add("load_one", l.one);
    add("load_five", l.five);
    add("load_fifteen", l.fifteen);
  }
  add("swap_used_mb", report.swap_used_mb);
  add("swap_total_mb", report.swap_total_mb);
  for (const d of list(report.disks)) {
    if (typeof d.mount_point !== "string") continue;
    const percent = diskUsedPercent(d);
    if (percent !== null) add(`disk_used_percent:${d.mount_point}`, hundredths(percent));
    add(`disk_used_bytes:${d.mount_point}`, d.used_bytes);
    add(`disk_total_bytes:${d.mount_point}`, d.total_bytes);
    add(`disk_available_bytes:${d.mount_point}`, d.available_bytes);
  }
  for (const d of list(report.disk_io)) {
    if (typeof d.device !== "string") continue;
    add(`disk_read_bytes_per_sec:${d.device}`, d.read_bytes_per_sec);
    add(`disk_write_bytes_per_sec:${d.device}`, d.write_bytes_per_sec);
  }
  for (const n of list(report.networks)) {
    if (typeof n.interface !== "string") continue;
    add(`net_rx_bytes_per_sec:${n.interface}`, n.rx_bytes_per_sec);
    add(`net_tx_bytes_per_sec:${n.interface}`, n.tx_bytes_per_sec);
    add(`net_rx_errors:${n.interface}`, n.rx_errors);
    add(`net_tx_errors:${n.interface}`, n.tx_errors);
  }
  for (const t of list(report.temperatures)) {
    if (typeof t.label === "string") add(`temperature:${t.label}`, t.celsius);
  }
  add("uptime_seconds", report.uptime_seconds);
  add("process_count", report.process_count);
  const custom = report.custom;
  if (custom && typeof custom === "object" && !Array.isArray(custom)) {
    for (const name of Object.keys(custom).sort()) add(`custom:${name}`, custom[name]);
  }
  return out;
}
