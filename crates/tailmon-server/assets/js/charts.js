// Time-series charts over the vendored uPlot (vendor/uPlot.iife.min.js,
// loaded before this module as a classic script: it defines `uPlot`).
//
// A chart is a <figure> holding a title, the plot (hidden from screen
// readers) and a visually hidden table that says, for each series, the
// latest value, the smallest and the largest in the window shown. Colours
// come from CSS variables (--chart-1 … --chart-8, --chart-axis,
// --chart-grid, --chart-text), read again whenever the theme changes.
//
// Data comes as History objects (`{metric, tier, points: [[t, avg, min,
// max], …]}`): one line per metric (the average), and, when the points are
// rollups (tier not "raw"), a band from min to max around it. Missing
// points (a metric absent from some reports, or no report for a while)
// leave gaps rather than straight lines across.

const PALETTE_SIZE = 8;

/** Numbers the charts' title ids (labels may hold any character). */
let chartCount = 0;

/** Every chart alive, so a theme change can repaint them all. */
const live = new Set();

/** The uPlot constructor, or null when the vendored script did not load. */
function uPlotClass() {
  return typeof globalThis.uPlot === "function" ? globalThis.uPlot : null;
}

/** The value of CSS variable `name` on `el`, or `fallback`. */
function cssVar(el, name, fallback) {
  const value = getComputedStyle(el).getPropertyValue(name).trim();
  return value || fallback;
}

/** `color` with its alpha multiplied by `alpha` (rgb(), #rgb, #rrggbb). */
export function withAlpha(color, alpha) {
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color);
  if (hex) {
    let digits = hex[1];
    if (digits.length === 3) digits = [...digits].map((d) => d + d).join("");
    const n = parseInt(digits, 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }
  const rgb = /^rgba?\(([^)]*)\)$/i.exec(color);
  if (rgb) {
    const parts = rgb[1].split(/[\s,/]+/).filter(Boolean).slice(0, 3);
    if (parts.length === 3) return `rgba(${parts.join(", ")}, ${alpha})`;
  }
  return color;
}

/** A finite number, or null. */
function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** Seconds per bucket of a History tier (null for raw reports). */
export function bucketSeconds(tier) {
  if (tier === "minute") return 60;
  if (tier === "hour") return 3600;
  return null;
}

/**
 * Joins `histories` on their times: `{xs, avg: [[…]], min: [[…]], max:
 * [[…]]}`, one array per history, null where a history has no point, and a
 * row of nulls inserted wherever the data stops for well over its usual
 * step (so the line breaks there).
 */
export function align(histories, tier) {
  const times = new Set();
  for (const h of histories) {
    for (const p of h.points || []) {
      if (Array.isArray(p) && num(p[0]) !== null) times.add(p[0]);
    }
  }
  const sorted = [...times].sort((a, b) => a - b);
  // A gap: a step more than three times both steps beside it (and, for
  // rollups, more than two buckets). Judged locally, as the spacing may
  // change along a range (a report every minute, then every 10 s).
  const bucket = bucketSeconds(tier) || 0;
  const xs = [];
  for (let i = 0; i < sorted.length; i++) {
    if (i > 0) {
      const step = sorted[i] - sorted[i - 1];
      const before = i > 1 ? sorted[i - 1] - sorted[i - 2] : 0;
      const after = i + 1 < sorted.length ? sorted[i + 1] - sorted[i] : 0;
      const usual = Math.max(before, after);
      if (usual > 0 && step > usual * 3 && step > bucket * 2) xs.push(sorted[i - 1] + usual);
    }
    xs.push(sorted[i]);
  }
  const index = new Map(xs.map((x, i) => [x, i]));
  const empty = () => new Array(xs.length).fill(null);
  const avg = [];
  const min = [];
  const max = [];
  for (const h of histories) {
    const a = empty();
    const lo = empty();
    const hi = empty();
    for (const p of h.points || []) {
      if (!Array.isArray(p)) continue;
      const i = index.get(p[0]);
      if (i === undefined) continue;
      a[i] = num(p[1]);
      lo[i] = num(p[2]) ?? a[i];
      hi[i] = num(p[3]) ?? a[i];
    }
    avg.push(a);
    min.push(lo);
    max.push(hi);
  }
  return { xs, avg, min, max };
}

/** Latest, smallest and largest value of a series (nulls skipped). */
function summarize(avg, min, max) {
  let latest = null;
  let lo = null;
  let hi = null;
  for (let i = 0; i < avg.length; i++) {
    if (avg[i] !== null) latest = avg[i];
    const a = min[i] ?? avg[i];
    const b = max[i] ?? avg[i];
    if (a !== null && (lo === null || a < lo)) lo = a;
    if (b !== null && (hi === null || b > hi)) hi = b;
  }
  return { latest, min: lo, max: hi };
}

/**
 * A time-series chart in `parent`.
 *
 * `spec`: `{id, key (e.g. the interface), title, format(value) → text, yMax (e.g. 100 for
 * percentages, else null), syncKey, onZoom(from, to), onReset()}`.
 */
export class TimeChart {
  constructor(parent, spec) {
    this.spec = spec;
    this.labels = [];
    this.tier = "raw";
    this.window = null;
    this.data = { xs: [], avg: [], min: [], max: [] };
    this.plot = null;

    const figure = document.createElement("figure");
    figure.className = "chart";
    figure.dataset.chart = spec.id;
    if (spec.key !== undefined) figure.dataset.key = spec.key;
    const caption = document.createElement("figcaption");
    const title = document.createElement("h3");
    title.className = "chart-title";
    title.id = `chart-title-${++chartCount}`;
    title.textContent = spec.title;
    const tierNote = document.createElement("span");
    tierNote.className = "chart-tier";
    caption.append(title, tierNote);
    const plot = document.createElement("div");
    plot.className = "chart-plot";
    plot.setAttribute("aria-hidden", "true");
    const empty = document.createElement("p");
    empty.className = "chart-empty";
    empty.textContent = "No data in this range";
    empty.hidden = true;
    // In a wrapper: a table grows to its content whatever its width says.
    const hidden = document.createElement("div");
    hidden.className = "visually-hidden";
    const table = document.createElement("table");
    table.className = "chart-summary";
    hidden.append(table);
    const tcaption = document.createElement("caption");
    const thead = document.createElement("thead");
    const headRow = document.createElement("tr");
    for (const name of ["Series", "Latest", "Minimum", "Maximum"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = name;
      headRow.append(th);
    }
    thead.append(headRow);
    const tbody = document.createElement("tbody");
    table.append(tcaption, thead, tbody);
    figure.setAttribute("aria-labelledby", title.id);
    figure.append(caption, plot, empty, hidden);
    parent.append(figure);

    this.el = { figure, plot, empty, tierNote, tcaption, tbody };
    figure.chart = this;
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(plot);
    live.add(this);
  }

  /** The uPlot instance (for tests and debugging), or null. */
  get uplot() {
    return this.plot;
  }

  /**
   * Replaces the data: `histories` (one per series, `labels` their names)
   * over `window` = `{from, to}` in Unix seconds.
   */
  setHistories(histories, labels, window) {
    const tier = histories.find((h) => h && h.tier)?.tier || "raw";
    this.tier = tier;
    this.window = window;
    this.labels = labels;
    this.data = align(histories, tier);
    this.rebuild();
  }

  /**
   * Live mode: adds the point `values` (an array, one per series, null
   * where absent) at `at` (Unix seconds), drops what falls before
   * `window.from`, and moves the window; no refetch, no rebuilt chart.
   */
  append(at, values, window) {
    const d = this.data;
    if (num(at) === null) return;
    if (d.xs.length && at <= d.xs[d.xs.length - 1]) return; // seen, or out of order
    this.window = window;
    const n = d.xs.length;
    const usual = n > 1 ? d.xs[n - 1] - d.xs[n - 2] : 0;
    if (usual > 0 && at - d.xs[n - 1] > usual * 3) {
      // Reports stopped for a while: the line breaks, as in `align`.
      d.xs.push(d.xs[n - 1] + usual);
      for (const arr of [...d.avg, ...d.min, ...d.max]) arr.push(null);
    }
    d.xs.push(at);
    this.labels.forEach((_, i) => {
      const v = num(values[i]);
      d.avg[i].push(v);
      d.min[i].push(v);
      d.max[i].push(v);
    });
    let drop = 0;
    while (drop < d.xs.length && d.xs[drop] < window.from) drop++;
    if (drop > 0) {
      d.xs.splice(0, drop);
      for (const arr of [...d.avg, ...d.min, ...d.max]) arr.splice(0, drop);
    }
    if (!this.plot) {
      this.rebuild();
      return;
    }
    if (values.some((v) => num(v) !== null)) {
      this.el.empty.hidden = true;
      this.el.figure.classList.remove("chart-no-data");
    }
    this.el.figure.dataset.points = String(d.xs.length);
    this.plot.setData(this.uplotData(), false);
    this.plot.setScale("x", { min: window.from, max: window.to });
    this.updateSummary();
  }

  /** Whether bands are drawn: points from rollups. */
  get banded() {
    return this.tier !== "raw" && this.tier !== undefined;
  }

  uplotData() {
    const d = this.data;
    const out = [d.xs, ...d.avg];
    if (this.banded) {
      d.min.forEach((lo, i) => out.push(lo, d.max[i]));
    }
    return out;
  }

  colors() {
    const fig = this.el.figure;
    const palette = [];
    for (let i = 1; i <= PALETTE_SIZE; i++) {
      palette.push(cssVar(fig, `--chart-${i}`, ["#4f8cff", "#22c55e", "#f59e0b", "#ef4444", "#a855f7", "#06b6d4", "#ec4899", "#84cc16"][i - 1]));
    }
    return {
      palette,
      axis: cssVar(fig, "--chart-axis", "#8a94a6"),
      grid: cssVar(fig, "--chart-grid", "rgba(128,128,128,0.18)"),
      text: cssVar(fig, "--chart-text", "#8a94a6"),
    };
  }

  /** Builds (again) the uPlot instance from the data held. */
  rebuild() {
    const d = this.data;
    const fig = this.el.figure;
    fig.dataset.tier = this.tier;
    fig.dataset.band = String(this.banded && d.xs.length > 0);
    fig.dataset.points = String(d.xs.length);
    this.el.tierNote.textContent = this.banded
      ? `${this.tier} averages, band: min–max`
      : "";
    this.updateSummary();
    const hasData = d.avg.some((a) => a.some((v) => v !== null));
    this.el.empty.hidden = hasData;
    fig.classList.toggle("chart-no-data", !hasData);
    if (this.plot) {
      this.plot.destroy();
      this.plot = null;
    }
    const UPlot = uPlotClass();
    if (!UPlot) {
      this.el.empty.textContent = "Charts could not load";
      this.el.empty.hidden = false;
      return;
    }
    const colors = this.colors();
    const format = (v) => (v === null || v === undefined ? "—" : this.spec.format(v));
    const series = [{}];
    this.labels.forEach((label, i) => {
      series.push({
        label,
        stroke: colors.palette[i % PALETTE_SIZE],
        width: 1.5,
        spanGaps: false,
        value: (u, v) => format(v),
      });
    });
    const bands = [];
    if (this.banded) {
      this.labels.forEach((label, i) => {
        const lo = series.length;
        const hidden = { stroke: "transparent", width: 0, points: { show: false }, spanGaps: false };
        series.push({ ...hidden, label: `${label} min`, value: (u, v) => format(v) });
        series.push({ ...hidden, label: `${label} max`, value: (u, v) => format(v) });
        bands.push({ series: [lo + 1, lo], fill: withAlpha(colors.palette[i % PALETTE_SIZE], 0.18) });
      });
    }
    const yMax = this.spec.yMax;
    const width = Math.max(this.el.plot.clientWidth, 200);
    const axis = {
      stroke: colors.text,
      grid: { stroke: colors.grid, width: 1 },
      ticks: { stroke: colors.grid, width: 1 },
    };
    const opts = {
      width,
      height: this.height(),
      series,
      bands,
      legend: { live: true },
      scales: {
        x: { time: true },
        y: {
          range: (u, min, max) => {
            const top = yMax ? Math.max(yMax, max ?? 0) : max === null ? 1 : max > 0 ? max * 1.1 : 1;
            const bottom = Math.min(0, min ?? 0);
            return [bottom, top > bottom ? top : bottom + 1];
          },
        },
      },
      axes: [
        axis,
        {
          ...axis,
          size: 64,
          values: (u, splits) => splits.map((v) => this.spec.format(v)),
        },
      ],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        sync: this.spec.syncKey ? { key: this.spec.syncKey } : undefined,
      },
      hooks: {
        setSelect: [(u) => this.selected(u)],
        ready: [(u) => this.hideBandLegend(u)],
      },
    };
    this.plot = new UPlot(opts, this.uplotData(), this.el.plot);
    if (this.window) this.plot.setScale("x", { min: this.window.from, max: this.window.to });
    this.plot.over.addEventListener("dblclick", () => this.spec.onReset?.());
  }

  /** The plot's height: shorter on narrow screens. */
  height() {
    return window.matchMedia("(max-width: 600px)").matches ? 180 : 220;
  }

  hideBandLegend(u) {
    const rows = u.root.querySelectorAll(".u-legend .u-series");
    rows.forEach((row, i) => {
      if (i > this.labels.length) row.hidden = true;
    });
  }

  /** A drag ended: the span selected goes to the page, which refetches. */
  selected(u) {
    const { left, width } = u.select;
    if (width < 4) return;
    const from = u.posToVal(left, "x");
    const to = u.posToVal(left + width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (Number.isFinite(from) && Number.isFinite(to) && to > from) {
      u.setScale("x", { min: from, max: to });
      this.spec.onZoom?.(from, to);
    }
  }

  resize() {
    if (!this.plot) return;
    const width = Math.max(this.el.plot.clientWidth, 200);
    const height = this.height();
    if (width !== this.plot.width || height !== this.plot.height) {
      this.plot.setSize({ width, height });
    }
  }

  /** Refreshes the hidden table that screen readers read. */
  updateSummary() {
    const d = this.data;
    const format = (v) => (v === null ? "—" : this.spec.format(v));
    const rows = this.labels.map((label, i) => {
      const s = summarize(d.avg[i] || [], d.min[i] || [], d.max[i] || []);
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = label;
      tr.append(th);
      for (const v of [s.latest, s.min, s.max]) {
        const td = document.createElement("td");
        td.textContent = format(v);
        tr.append(td);
      }
      return tr;
    });
    this.el.tbody.replaceChildren(...rows);
    this.el.tcaption.textContent = `${this.spec.title}: latest, minimum and maximum in the range shown`;
  }

  destroy() {
    this.resizeObserver.disconnect();
    this.plot?.destroy();
    this.plot = null;
    this.el.figure.remove();
    live.delete(this);
  }
}

/** Repaints every chart with the colours of the theme now in force. */
export function repaintAll() {
  for (const chart of live) chart.rebuild();
}

// The theme changes with the system's preference or with the shell's
// toggle (an attribute or class on <html>): repaint then.
let repaintQueued = false;
function queueRepaint() {
  if (repaintQueued) return;
  repaintQueued = true;
  requestAnimationFrame(() => {
    repaintQueued = false;
    repaintAll();
  });
}
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", queueRepaint);
new MutationObserver(queueRepaint).observe(document.documentElement, {
  attributes: true,
  attributeFilter: ["class", "data-theme", "style"],
});
