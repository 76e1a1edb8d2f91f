/* inferwatch dashboard: plain ES2020, no build step. Charts by uPlot (vendor/).
 *
 * Every number comes from the server's HTTP API through PromQL (/api/v1/query,
 * /api/v1/query_range, /api/v1/series, /api/v1/label/<name>/values), plus
 * /api/v1/alerts, /api/v1/rules, /api/v1/targets and Alertmanager's /api/v2/silences.
 * Data from the server reaches the DOM only as text (textContent / text nodes).
 */
"use strict";

(() => {
  const FEATURES = new Set(
    (document.querySelector('meta[name="inferwatch-features"]')?.content || "")
      .split(/\s+/)
      .filter(Boolean),
  );
  const RANGES = { "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 };
  const REFRESHES = { off: 0, "5s": 5000, "15s": 15000, "30s": 30000, "1m": 60000 };
  const VIEWS = ["overview", "alerts", "targets", "explore", "faults"];
  // Features shown in the drift chart and table (all drifted ones are listed).
  const DRIFT_TOP = 8;
  const TOKEN_KEY = "inferwatch.token";
  const THEME_KEY = "inferwatch.theme";
  const AUTHOR_KEY = "inferwatch.silence.createdBy";
  const PALETTE = [
    "#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6",
    "#06b6d4", "#ec4899", "#84cc16", "#f97316", "#64748b",
  ];
  const CHART_HEIGHT = 210;
  const MAX_TABLE_ROWS = 500;
  const MAX_GRAPH_SERIES = 100;

  // ---------------------------------------------------------------- DOM helpers

  /** An element; strings among the children become text nodes (never HTML). */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (key === "dataset") Object.assign(node.dataset, value);
      else if (typeof value === "boolean") node[key] = value;
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const $ = (selector, root = document) => root.querySelector(selector);

  function emptyNote(text) {
    return h("div", { class: "empty" }, text || "No data");
  }

  function badge(text, tone) {
    return h("span", { class: `badge ${tone || String(text).toLowerCase()}` }, text);
  }

  function labelChips(labels, skip) {
    const keys = Object.keys(labels || {}).filter((k) => !(skip || []).includes(k)).sort();
    return h(
      "div",
      { class: "chips" },
      keys.map((k) => h("span", { class: "chip" }, h("b", null, k), "=", labels[k])),
    );
  }

  // ---------------------------------------------------------------- formatting

  function num(text) {
    if (typeof text === "number") return text;
    if (text === "+Inf" || text === "Inf") return Infinity;
    if (text === "-Inf") return -Infinity;
    return parseFloat(text);
  }

  function fmtNum(v, digits = 3) {
    if (!Number.isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e9 || a < 1e-3)) return v.toExponential(2);
    return Number(v.toPrecision(digits)).toLocaleString("en-US", { maximumFractionDigits: 6 });
  }

  const UNITS = {
    seconds(v) {
      const a = Math.abs(v);
      if (a === 0) return "0 s";
      if (a < 1e-3) return `${fmtNum(v * 1e6)} µs`;
      if (a < 1) return `${fmtNum(v * 1e3)} ms`;
      return `${fmtNum(v)} s`;
    },
    bytes(v) {
      const steps = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
      let i = 0;
      let x = v;
      while (Math.abs(x) >= 1024 && i < steps.length - 1) {
        x /= 1024;
        i += 1;
      }
      return `${fmtNum(x)} ${steps[i]}`;
    },
    ratio(v) {
      const p = v * 100;
      return `${Math.abs(p) < 1 && p !== 0 ? p.toFixed(2) : fmtNum(p, 3)}%`;
    },
    rps: (v) => `${fmtNum(v)}/s`,
    cores: (v) => fmtNum(v),
    celsius: (v) => `${fmtNum(v)} °C`,
    count: (v) => fmtNum(v),
    money: (v) => (Math.abs(v) < 1 ? v.toPrecision(3) : v.toFixed(2)),
    none: (v) => fmtNum(v, 4),
  };
  const UNIT_NAMES = {
    seconds: "seconds", bytes: "bytes", ratio: "%", rps: "per second", cores: "CPU cores",
    celsius: "°C", count: "", money: "", none: "",
  };

  function fmt(unit, v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
    return (UNITS[unit] || UNITS.none)(v);
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function fmtTime(date) {
    return (
      `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
      `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
    );
  }

  function fmtSpan(seconds) {
    const s = Math.abs(seconds);
    if (s < 1) return `${Math.round(s * 1000)}ms`;
    if (s < 60) return `${Math.round(s)}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  }

  /** A Go/RFC 3339 time string as a Date; null for Go's zero time or nothing. */
  function parseTime(text) {
    if (!text || text.startsWith("0001-01-01")) return null;
    const d = new Date(text);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function when(text) {
    const d = parseTime(text);
    if (!d) return "never";
    const s = (Date.now() - d.getTime()) / 1000;
    return `${fmtTime(d)} (${s >= 0 ? `${fmtSpan(s)} ago` : `in ${fmtSpan(s)}`})`;
  }

  /** A Prometheus duration ("1h30m", "90s") in seconds; NaN when it is not one. */
  function parseDuration(text) {
    const units = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
    const t = String(text).trim();
    if (!/^(\d+(\.\d+)?(ms|s|m|h|d|w|y))+$/.test(t)) return NaN;
    let total = 0;
    for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g)) total += parseFloat(m[1]) * units[m[2]];
    return total;
  }

  /** A metric as Prometheus prints it: name{k="v", ...}. */
  function metricText(metric) {
    const { __name__: name = "", ...rest } = metric || {};
    const inner = Object.keys(rest)
      .sort()
      .map((k) => `${k}=${JSON.stringify(rest[k])}`)
      .join(", ");
    return inner ? `${name}{${inner}}` : name || "{}";
  }

  /** Short legend names: the labels that differ between the series. */
  function seriesNames(result, fallback) {
    if (result.length === 1 && fallback) return [fallback];
    const keys = new Set();
    for (const r of result) for (const k of Object.keys(r.metric || {})) keys.add(k);
    const varying = [...keys].filter(
      (k) => new Set(result.map((r) => (r.metric || {})[k] ?? "")).size > 1,
    );
    return result.map((r) => {
      if (!varying.length) return fallback || metricText(r.metric);
      const parts = varying.map((k) => {
        const v = (r.metric || {})[k] ?? "";
        return varying.length === 1 ? v || "(none)" : `${k}=${v}`;
      });
      return fallback ? `${fallback} ${parts.join(", ")}` : parts.join(", ");
    });
  }

  // ---------------------------------------------------------------- state in the URL hash

  function readState() {
    const raw = location.hash.replace(/^#\/?/, "");
    const at = raw.indexOf("?");
    const path = at < 0 ? raw : raw.slice(0, at);
    const params = new URLSearchParams(at < 0 ? "" : raw.slice(at + 1));
    const range = params.get("range");
    const refresh = params.get("refresh");
    return {
      view: VIEWS.includes(path) ? path : "overview",
      model: params.get("model") || "",
      range: range in RANGES ? range : "1h",
      refresh: refresh in REFRESHES ? refresh : "15s",
      expr: params.get("expr") || "",
      tab: params.get("tab") === "table" ? "table" : "graph",
    };
  }

  function hashFor(state) {
    const params = new URLSearchParams();
    if (state.model) params.set("model", state.model);
    params.set("range", state.range);
    params.set("refresh", state.refresh);
    if (state.view === "explore") {
      if (state.expr) params.set("expr", state.expr);
      params.set("tab", state.tab);
    }
    return `#/${state.view}?${params.toString()}`;
  }

  function setState(patch, { replace = false } = {}) {
    const next = hashFor({ ...readState(), ...patch });
    if (next === location.hash) {
      route();
    } else if (replace) {
      history.replaceState(null, "", next);
      route();
    } else {
      location.hash = next;
    }
  }

  function timeWindow(state) {
    const range = RANGES[state.range];
    const step = Math.max(1, Math.ceil(range / 240));
    const end = Math.ceil(Date.now() / 1000 / step) * step;
    const rate = `${Math.max(60, step * 4)}s`;
    return { start: end - range, end, step, rate };
  }

  // ---------------------------------------------------------------- HTTP API

  class ApiError extends Error {
    constructor(message, status, type) {
      super(message);
      this.status = status;
      this.type = type || "";
    }
  }

  async function request(path, { method = "GET", params = null, body } = {}) {
    const url = params ? `${path}?${new URLSearchParams(params).toString()}` : path;
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new ApiError(`cannot reach the server: ${err.message}`, 0, "network");
    }
    if (response.status === 401 && /^\s*bearer/i.test(response.headers.get("WWW-Authenticate") || "")) {
      showAuth(token ? "The server did not accept this token." : "");
      throw new ApiError("authentication required", 401, "auth");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!response.ok || (data && data.status === "error")) {
      const message =
        (data && typeof data === "object" && (data.error || data.message || detailText(data.detail))) ||
        text.trim() ||
        `${response.status} ${response.statusText}`;
      const type = (data && data.errorType) || "";
      throw new ApiError(`${type ? `${type}: ` : ""}${String(message).slice(0, 4000)}`, response.status, type);
    }
    return data;
  }

  /** FastAPI's error ``detail``: a string, or a list of {loc, msg}. */
  function detailText(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg || ""}`).join("; ");
    }
    return "";
  }

  const prom = {
    query: (expr, time) =>
      request("api/v1/query", { params: time ? { query: expr, time } : { query: expr } }).then((d) => d.data),
    range: (expr, w) =>
      request("api/v1/query_range", {
        params: { query: expr, start: w.start, end: w.end, step: w.step },
      }).then((d) => d.data),
    series: (match, w) =>
      request("api/v1/series", {
        params: [["match[]", match], ["start", w.start], ["end", w.end]],
      }).then((d) => d.data),
    labelValues: (name, match) =>
      request(`api/v1/label/${encodeURIComponent(name)}/values`, {
        params: match ? [["match[]", match]] : null,
      }).then((d) => d.data),
  };

  /** The value of an instant vector query with one series (or the first); null if none. */
  async function scalarOf(expr, w) {
    const data = await prom.query(expr, w.end);
    if (data.resultType === "scalar") return num(data.result[1]);
    if (!data.result.length) return null;
    return num(data.result[0].value[1]);
  }

  // ---------------------------------------------------------------- charts (uPlot)

  const charts = new Map();
  window.inferwatch = { charts, features: FEATURES };

  const resizer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const id = entry.target.dataset.chart;
      const chart = charts.get(id);
      const width = Math.floor(entry.contentRect.width);
      if (chart && width > 0 && Math.abs(chart.width - width) > 1) {
        chart.setSize({ width, height: CHART_HEIGHT });
      }
    }
  });

  function destroyChart(id) {
    const chart = charts.get(id);
    if (chart) {
      chart.destroy();
      charts.delete(id);
    }
  }

  function destroyAllCharts() {
    for (const id of [...charts.keys()]) destroyChart(id);
    resizer.disconnect();
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  /** Range results on one time axis: xs from start to end by step, nulls for gaps. */
  function align(results, w) {
    const n = Math.floor((w.end - w.start) / w.step) + 1;
    const xs = Array.from({ length: n }, (_, i) => w.start + i * w.step);
    const series = results.map((r) => {
      const values = new Array(n).fill(null);
      for (const [t, v] of r.values || []) {
        const i = Math.round((t - w.start) / w.step);
        const x = num(v);
        if (i >= 0 && i < n && Number.isFinite(x)) values[i] = x;
      }
      return { metric: r.metric, values };
    });
    return { xs, series };
  }

  /** Draw series ({label, values, color?, dash?, band?}) into a panel body. */
  function drawChart(id, body, xs, lines, unit, bands) {
    destroyChart(id);
    const holder = h("div", { class: "chart", dataset: { chart: id } });
    body.replaceChildren(holder);
    const axisColor = cssVar("--axis");
    const gridColor = cssVar("--grid");
    const axis = {
      stroke: axisColor,
      grid: { stroke: gridColor, width: 1 },
      ticks: { stroke: gridColor, width: 1 },
      font: "11px system-ui, sans-serif",
    };
    const zeroBased = !["bytes", "celsius", "none"].includes(unit);
    const last = (i) => {
      const values = lines[i - 1].values;
      for (let k = values.length - 1; k >= 0; k -= 1) if (values[k] !== null) return values[k];
      return null;
    };
    const options = {
      width: Math.max(240, Math.floor(body.clientWidth - 20)),
      height: CHART_HEIGHT,
      scales: {
        x: { time: true },
        y: zeroBased
          ? {
            range: (u, min, max) => {
              const top = max > 0 ? max * 1.1 : 1;
              return [Math.min(0, min), unit === "ratio" && max <= 1 ? Math.min(1, top) : top];
            },
          }
          : {},
      },
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      axes: [axis, { ...axis, size: 70, values: (u, ticks) => ticks.map((v) => fmt(unit, v)) }],
      series: [
        { label: "Time", value: (u, v) => (v === null ? "latest" : fmtTime(new Date(v * 1000))) },
        ...lines.map((line, i) => ({
          label: line.label,
          stroke: line.color || PALETTE[i % PALETTE.length],
          width: line.dash ? 1 : 1.6,
          dash: line.dash,
          points: { show: false },
          spanGaps: false,
          // Without the cursor on the chart, the legend shows each series' latest value.
          value: (u, v, si, idx) => fmt(unit, idx === null ? last(si) : v),
        })),
      ],
    };
    if (bands && bands.length) options.bands = bands;
    const chart = new uPlot(options, [xs, ...lines.map((line) => line.values)], holder);
    charts.set(id, chart);
    resizer.observe(holder);
    return chart;
  }

  // ---------------------------------------------------------------- panels

  function panel(id, title, unit, note) {
    const body = h("div", { class: "panel-body" }, emptyNote("Loading…"));
    const noteNode = h("span", { class: "note" }, note || "");
    const node = h(
      "section",
      { class: "card panel", id: `panel-${id}`, dataset: { panel: id } },
      h(
        "div",
        { class: "panel-head" },
        h("h2", null, title),
        UNIT_NAMES[unit] ? h("span", { class: "unit" }, UNIT_NAMES[unit]) : null,
        noteNode,
      ),
      body,
    );
    return { id, node, body, unit, noteNode };
  }

  function showPanelError(p, err) {
    destroyChart(p.id);
    if (err instanceof ApiError && err.type === "auth") {
      p.body.replaceChildren(emptyNote("Sign in to see this panel"));
      return;
    }
    p.body.replaceChildren(h("div", { class: "panel-error", role: "alert" }, String(err.message || err)));
  }

  /** Fill a chart panel from range queries [{expr, label, color, dash}] (+ bands). */
  async function fillChart(p, queries, w, options) {
    const results = await Promise.all(queries.map((q) => prom.range(q.expr, w)));
    return renderChart(p, queries, results, w, options);
  }

  /** Draw range query results (one per query) into a chart panel; null when empty. */
  function renderChart(p, queries, results, w, { emptyText, bands } = {}) {
    const lines = [];
    const { xs } = align([], w);
    const bandSpecs = [];
    results.forEach((data, qi) => {
      const q = queries[qi];
      const result = (data.result || []).slice(0, MAX_GRAPH_SERIES);
      const names = seriesNames(result, q.label);
      const aligned = align(result, w);
      aligned.series.forEach((s, i) => {
        lines.push({ label: names[i], values: s.values, color: q.color, dash: q.dash, role: q.role });
      });
    });
    const visible = lines.filter((line) => line.values.some((v) => v !== null));
    const main = visible.filter((line) => !line.role);
    if (!main.length) {
      destroyChart(p.id);
      p.body.replaceChildren(emptyNote(emptyText));
      return null;
    }
    if (bands) {
      const upper = visible.findIndex((line) => line.role === "upper");
      const lower = visible.findIndex((line) => line.role === "lower");
      if (upper >= 0 && lower >= 0) {
        bandSpecs.push({ series: [upper + 1, lower + 1], fill: "rgba(99, 132, 255, 0.14)" });
      }
    }
    return drawChart(p.id, p.body, xs, visible, p.unit, bandSpecs);
  }

  function stat(id, label, unit) {
    const value = h("div", { class: "value" }, "–");
    const sub = h("div", { class: "sub" }, "");
    const node = h("div", { class: "card stat", id: `stat-${id}`, dataset: { stat: id } },
      h("div", { class: "label" }, label), value, sub);
    return { id, node, value, sub, unit };
  }

  function setStat(s, v, { sub = "", tone = "", text } = {}) {
    s.value.textContent = text !== undefined ? text : v === null ? "–" : fmt(s.unit, v);
    s.sub.textContent = sub;
    s.node.classList.remove("ok", "warn", "bad");
    if (tone) s.node.classList.add(tone);
  }

  // ---------------------------------------------------------------- views

  let current = null;
  let timer = null;

  function setBusy(busy) {
    document.body.dataset.busy = busy ? "true" : "false";
  }

  /** Refresh the current view; a forced call during a refresh runs once more after it. */
  async function runRefresh(force = false) {
    const view = current;
    if (!view) return;
    if (view.busy) {
      if (force) view.again = true;
      return;
    }
    view.busy = true;
    setBusy(true);
    try {
      do {
        view.again = false;
        await Promise.allSettled([view.refresh(readState(), () => view !== current), updateAlertCount()]);
      } while (view.again && view === current);
    } finally {
      view.busy = false;
      if (view === current) setBusy(false);
    }
  }

  async function updateAlertCount() {
    const counter = $("#alert-count");
    try {
      const data = await request("api/v1/alerts");
      const firing = (data.data.alerts || []).filter((a) => a.state === "firing").length;
      counter.textContent = String(firing);
      counter.hidden = firing === 0;
    } catch (_) {
      counter.hidden = true;
    }
  }

  // ----- overview

  function modelSelector(m) {
    return `model=${JSON.stringify(m)}`;
  }

  function overviewView(root, state) {
    const modelSelect = h("select", {
      id: "model",
      "aria-label": "Model",
      onchange: (e) => setState({ model: e.target.value }),
    });
    const noModels = h("div", { class: "notice", hidden: true },
      "No inference series yet: instrument a model with inferwatch.Monitor or scrape a service " +
      "that exports inferwatch_inferences_total.");
    root.append(
      h("div", { class: "page-head" },
        h("h1", null, "Overview"),
        h("label", { class: "control" }, h("span", null, "Model"), modelSelect),
        h("span", { class: "spacer" }),
        h("span", { class: "muted", id: "updated" }, "")),
      noModels,
    );

    const stats = {
      rps: stat("rps", "Requests", "rps"),
      errors: stat("errors", "Error ratio", "ratio"),
      p95: stat("p95", "Latency p95", "seconds"),
      inflight: stat("inflight", "In flight", "count"),
      accuracy: stat("accuracy", "Accuracy", "ratio"),
      drift: stat("drift", "Drifted features", "count"),
      replicas: stat("replicas", "Recommended replicas", "count"),
      cost: stat("cost", "Cost / 1,000 inferences", "money"),
    };
    root.append(h("div", { class: "stats" }, Object.values(stats).map((s) => s.node)));

    const P = {
      throughput: panel("throughput", "Throughput", "rps"),
      errors: panel("errors", "Error ratio", "ratio"),
      latency: panel("latency", "Latency", "seconds", "p50 · p95 · p99"),
      inflight: panel("inflight", "In flight", "count", "inferences"),
      batch: panel("batch", "Mean batch size", "count", "items per call"),
      cpu: panel("cpu", "Process CPU", "cores"),
      memory: panel("memory", "Process memory (RSS)", "bytes"),
      sysmem: panel("sysmem", "System memory used", "ratio"),
      gpuutil: panel("gpuutil", "GPU utilisation", "ratio"),
      gpumem: panel("gpumem", "GPU memory used", "ratio"),
      gputemp: panel("gputemp", "GPU temperature", "celsius"),
      accuracy: panel("accuracy", "Accuracy", "ratio", "from delayed labels"),
      drift: panel("drift", "Drift statistic", "none", "PSI · JS distance"),
      driftlist: panel("driftlist", "Drift by feature", "none", "latest"),
      replicas: panel("replicas", "Recommended replicas", "count"),
      costhour: panel("costhour", "Cost per hour", "money"),
      costk: panel("costk", "Cost per 1,000 inferences", "money"),
    };
    const section = (title, ids) => [
      h("h2", { class: "section-title" }, title),
      h("div", { class: "grid" }, ids.map((id) => P[id].node)),
    ];
    root.append(
      ...section("Traffic & latency", ["throughput", "errors", "latency", "inflight", "batch"]),
      ...section("Resources", ["cpu", "memory", "sysmem", "gpuutil", "gpumem", "gputemp"]),
      ...section("Quality & drift", ["accuracy", "drift", "driftlist"]),
      ...section("Capacity & cost", ["replicas", "costhour", "costk"]),
    );

    async function pickModel(s) {
      const models = (await prom.labelValues("model", "inferwatch_inferences_total")) || [];
      const chosen = models.includes(s.model) ? s.model : models[0] || "";
      modelSelect.replaceChildren(...models.map((m) => h("option", { value: m }, m)));
      modelSelect.value = chosen;
      modelSelect.disabled = !models.length;
      noModels.hidden = models.length > 0;
      if (chosen !== s.model && chosen) history.replaceState(null, "", hashFor({ ...s, model: chosen }));
      return chosen;
    }

    async function baselineNames(m, w) {
      try {
        const series = await prom.series(`{__name__=~".+:upper", ${modelSelector(m)}}`, w);
        return [...new Set(series.map((s) => s.__name__.replace(/:upper$/, "")))].sort();
      } catch (_) {
        return [];
      }
    }

    function bandQueries(name, m) {
      if (!name) return [];
      const sel = `{${modelSelector(m)}}`;
      return [
        { expr: `max(${name}:upper${sel})`, label: `${name} upper`, color: "#94a3b8", dash: [4, 4], role: "upper" },
        { expr: `min(${name}:lower${sel})`, label: `${name} lower`, color: "#94a3b8", dash: [4, 4], role: "lower" },
      ];
    }

    async function refresh(s, stale) {
      const w = timeWindow(s);
      const model = await pickModel(s);
      if (stale()) return;
      const m = modelSelector(model);
      const r = w.rate;
      const qw = `${Math.max(300, parseDuration(r))}s`;
      const total = `sum(rate(inferwatch_inferences_total{${m}}[${r}]))`;
      const errors = `sum(rate(inferwatch_inferences_total{${m},outcome="error"}[${r}]))`;
      const errorRatio = `(${errors} or vector(0)) / (${total} > 0)`;
      const quantile = (q) =>
        `histogram_quantile(${q}, sum by (le) (rate(inferwatch_inference_duration_seconds_bucket{${m}}[${r}])))`;
      const accuracy =
        `sum(rate(inferwatch_labels_total{${m},correct="true"}[${qw}])) / ` +
        `(sum(rate(inferwatch_labels_total{${m},correct!=""}[${qw}])) > 0)`;
      const costK =
        `sum by (currency) (inferwatch_model_cost_per_hour{${m}} / on(model) group_left ` +
        `sum by (model) (rate(inferwatch_inferences_total{${m}}[1h])) / 3.6)`;
      const names = await baselineNames(model, w);
      const latencyBase = names.find((n) => /latency|duration/.test(n) && /99/.test(n)) ||
        names.find((n) => /latency|duration/.test(n));
      const rateBase = names.find((n) => /request|throughput|rps|rate/.test(n) && !/latency|duration|error/.test(n));
      const gpu = await scalarOf("max(gpu_available)", w).catch(() => null);
      if (stale()) return;
      const hasGpu = gpu !== null && gpu > 0;

      const jobs = [];
      const chart = (p, queries, opts) =>
        jobs.push(fillChart(p, queries, w, opts).catch((err) => showPanelError(p, err)));
      const single = (s2, expr, opts, extra) =>
        jobs.push(
          scalarOf(expr, w)
            .then(async (v) => {
              const more = extra ? await extra(v) : {};
              setStat(s2, v, { ...opts, ...(typeof opts === "function" ? opts(v) : {}), ...more });
            })
            .catch((err) => setStat(s2, null, { sub: err.type === "auth" ? "" : String(err.message) })),
        );

      chart(P.throughput, [
        { expr: total, label: "all" },
        { expr: errors, label: "errors", color: "#ef4444" },
        ...bandQueries(rateBase, model),
      ], { bands: true });
      chart(P.errors, [{ expr: errorRatio, label: "error ratio", color: "#ef4444" }]);
      chart(P.latency, [
        { expr: quantile(0.5), label: "p50" },
        { expr: quantile(0.95), label: "p95" },
        { expr: quantile(0.99), label: "p99" },
        ...bandQueries(latencyBase, model),
      ], { bands: true });
      P.latency.noteNode.textContent = latencyBase ? `p50 · p95 · p99 · baseline ${latencyBase}` : "p50 · p95 · p99";
      chart(P.inflight, [{ expr: `sum(inferwatch_inferences_in_flight{${m}})`, label: "in flight" }]);
      chart(P.batch, [{
        expr: `sum(rate(inferwatch_inference_batch_size_sum{${m}}[${r}])) / ` +
          `(sum(rate(inferwatch_inference_batch_size_count{${m}}[${r}])) > 0)`,
        label: "mean batch size",
      }], { emptyText: "No batch sizes recorded" });
      chart(P.cpu, [{ expr: `sum by (job, instance) (rate(process_cpu_seconds_total[${r}]))`, label: "cpu" }]);
      chart(P.memory, [{ expr: "sum by (job, instance) (process_resident_memory_bytes)", label: "rss" }]);
      chart(P.sysmem, [{ expr: "max by (instance) (system_memory_used_ratio)", label: "used" }]);
      if (hasGpu) {
        chart(P.gpuutil, [{ expr: "max by (instance, gpu) (gpu_utilization_ratio)", label: "gpu" }]);
        chart(P.gpumem, [{ expr: "max by (instance, gpu) (gpu_memory_used_ratio)", label: "gpu" }]);
        chart(P.gputemp, [{ expr: "max by (instance, gpu) (gpu_temperature_celsius)", label: "gpu" }]);
      } else {
        for (const p of [P.gpuutil, P.gpumem, P.gputemp]) {
          destroyChart(p.id);
          p.body.replaceChildren(emptyNote("No GPU"));
        }
      }
      chart(P.accuracy, [{ expr: accuracy, label: "accuracy", color: "#10b981" }],
        { emptyText: "No labels received" });
      chart(P.drift, [
        // The most shifted features only: a model with many inputs would draw a wall.
        { expr: `topk(${DRIFT_TOP}, max by (feature) (inferwatch_drift_psi{${m}}))`, label: "PSI" },
        { expr: `topk(${DRIFT_TOP}, max by (feature) (inferwatch_drift_js_distance{${m}}))`, label: "JS" },
      ], { emptyText: "No drift detector" });
      jobs.push(fillDriftTable(P.driftlist, m, w).catch((err) => showPanelError(P.driftlist, err)));
      chart(P.replicas, [
        { expr: `max(inferwatch_recommended_replicas{${m}})`, label: "replicas" },
      ], { emptyText: "No scaling policy" });
      chart(P.costhour, [{ expr: `sum by (currency) (inferwatch_model_cost_per_hour{${m}})`, label: "cost/h" }],
        { emptyText: "No prices configured" });
      chart(P.costk, [{ expr: costK, label: "cost/1k" }], { emptyText: "No prices or no traffic" });

      single(stats.rps, total, {});
      single(stats.errors, errorRatio, (v) => ({
        tone: v === null ? "" : v > 0.05 ? "bad" : v > 0.01 ? "warn" : "ok",
      }));
      single(stats.p95, quantile(0.95), {}, async () => {
        const p99 = await scalarOf(quantile(0.99), w).catch(() => null);
        return { sub: p99 === null ? "" : `p99 ${fmt("seconds", p99)}` };
      });
      single(stats.inflight, `sum(inferwatch_inferences_in_flight{${m}})`, {});
      single(stats.accuracy, accuracy, {}, async (v) => ({ sub: v === null ? "no labels yet" : `over ${qw}` }));
      jobs.push(
        prom.query(`inferwatch_drift_detected{${m}}`, w.end).then((data) => {
          const rows = data.result || [];
          const drifted = rows.filter((row) => num(row.value[1]) > 0);
          setStat(stats.drift, rows.length ? drifted.length : null, {
            sub: rows.length ? (drifted.length ? drifted.map((row) => row.metric.feature).join(", ") : `of ${rows.length} watched`) : "no drift detector",
            tone: rows.length ? (drifted.length ? "bad" : "ok") : "",
          });
        }).catch(() => setStat(stats.drift, null)),
      );
      jobs.push(
        Promise.all([
          scalarOf(`max(inferwatch_recommended_replicas{${m}})`, w),
          prom.query(`inferwatch_recommended_replicas_reason{${m}} > 0`, w.end),
        ]).then(([v, reasons]) => {
          const reason = (reasons.result || []).map((row) => row.metric.reason).filter(Boolean).join(", ");
          setStat(stats.replicas, v, { sub: v === null ? "no scaling policy" : reason ? `reason: ${reason}` : "" });
        }).catch(() => setStat(stats.replicas, null)),
      );
      jobs.push(
        prom.query(costK, w.end).then((data) => {
          const row = (data.result || [])[0];
          if (!row) return setStat(stats.cost, null, { sub: "no prices configured" });
          const currency = row.metric.currency || "";
          return setStat(stats.cost, num(row.value[1]), { sub: currency });
        }).catch(() => setStat(stats.cost, null)),
      );
      await Promise.allSettled(jobs);
      if (!stale()) $("#updated").textContent = `updated ${fmtTime(new Date())}`;
    }

    async function fillDriftTable(p, m, w) {
      const [detected, psi, js] = await Promise.all([
        prom.query(`inferwatch_drift_detected{${m}}`, w.end),
        prom.query(`max by (feature) (inferwatch_drift_psi{${m}})`, w.end),
        prom.query(`max by (feature) (inferwatch_drift_js_distance{${m}})`, w.end),
      ]);
      const byFeature = new Map();
      const get = (f) => {
        if (!byFeature.has(f)) byFeature.set(f, { drifted: false, psi: null, js: null });
        return byFeature.get(f);
      };
      for (const row of detected.result) {
        const entry = get(row.metric.feature || "");
        entry.drifted = entry.drifted || num(row.value[1]) > 0;
      }
      for (const row of psi.result) get(row.metric.feature || "").psi = num(row.value[1]);
      for (const row of js.result) get(row.metric.feature || "").js = num(row.value[1]);
      if (!byFeature.size) {
        p.body.replaceChildren(emptyNote("No drift detector"));
        return;
      }
      const sorted = [...byFeature.entries()].sort((a, b) =>
        Number(b[1].drifted) - Number(a[1].drifted) || (b[1].psi ?? -1) - (a[1].psi ?? -1) || a[0].localeCompare(b[0]));
      // Every drifted feature, then the most shifted others, up to DRIFT_TOP rows.
      const drifted = sorted.filter(([, v]) => v.drifted).length;
      const rows = sorted.slice(0, Math.max(drifted, DRIFT_TOP));
      const rest = sorted.length - rows.length;
      p.body.replaceChildren(
        ...(rest > 0 ? [h("div", { class: "muted" }, `${rows.length} of ${sorted.length} features, most shifted first; the other ${rest} have not drifted`)] : []),
        h("div", { class: "table-wrap" },
          h("table", null,
            h("thead", null, h("tr", null, h("th", null, "Feature"), h("th", null, "State"),
              h("th", null, "PSI"), h("th", null, "JS"))),
            h("tbody", null, rows.map(([feature, v]) => h("tr", null,
              h("td", { class: "mono" }, feature === "__prediction__" ? "prediction" : feature),
              h("td", null, v.drifted ? badge("drift", "bad") : badge("ok", "ok")),
              h("td", { class: "num" }, fmt("none", v.psi)),
              h("td", { class: "num" }, fmt("none", v.js)))))))
      );
    }

    return { refresh };
  }

  // ----- alerts and silences

  function alertsView(root) {
    const silencesOn = FEATURES.has("silences");
    const alertList = h("div", { class: "alert-list" }, emptyNote("Loading…"));
    const rulesBox = h("div", null, emptyNote("Loading…"));
    const silenceList = h("div", { class: "card" }, emptyNote("Loading…"));
    const formBox = h("div", { hidden: true });
    const silenceNotice = h("div", { class: "notice", hidden: true });
    const summary = h("span", { class: "muted" }, "");

    root.append(
      h("div", { class: "page-head" }, h("h1", null, "Alerts"), summary),
      h("h2", { class: "section-title" }, "Firing and pending"),
      alertList,
    );
    if (silencesOn) {
      root.append(
        h("div", { class: "page-head section-title-row" },
          h("h2", { class: "section-title" }, "Silences"),
          h("span", { class: "spacer" }),
          h("button", { type: "button", id: "new-silence", onclick: () => openSilenceForm({}) }, "New silence")),
        silenceNotice,
        formBox,
        silenceList,
      );
    }
    root.append(h("h2", { class: "section-title" }, "Rule groups"), rulesBox);

    function openSilenceForm(labels) {
      const matchers = h("div", { class: "matchers", style: "display:grid;gap:6px" });
      const addMatcher = (name = "", value = "", op = "=") => {
        const opSelect = h("select", { "aria-label": "Operator", class: "matcher-op" },
          ["=", "!=", "=~", "!~"].map((o) => h("option", { value: o }, o)));
        opSelect.value = op;
        const row = h("div", { class: "matcher" },
          h("input", { class: "matcher-name", "aria-label": "Label name", placeholder: "label", value: name, required: true }),
          opSelect,
          h("input", { class: "matcher-value", "aria-label": "Label value", placeholder: "value", value }),
          h("button", { type: "button", class: "small", title: "Remove", "aria-label": "Remove matcher", onclick: () => row.remove() }, "✕"));
        matchers.append(row);
      };
      const keys = Object.keys(labels).sort((a, b) => (a === "alertname" ? -1 : b === "alertname" ? 1 : a.localeCompare(b)));
      for (const k of keys) addMatcher(k, labels[k]);
      if (!keys.length) addMatcher();
      const duration = h("input", { id: "silence-duration", value: "2h", required: true, placeholder: "2h" });
      const ends = h("span", { class: "muted" }, "");
      const showEnds = () => {
        const s = parseDuration(duration.value);
        ends.textContent = Number.isFinite(s) && s > 0 ? `ends ${fmtTime(new Date(Date.now() + s * 1000))}` : "not a duration (e.g. 30m, 2h, 1d)";
      };
      duration.addEventListener("input", showEnds);
      showEnds();
      const author = h("input", { id: "silence-author", required: true, value: localStorage.getItem(AUTHOR_KEY) || "" });
      const comment = h("textarea", { id: "silence-comment", rows: 2, required: true });
      const error = h("p", { class: "error-box", role: "alert", hidden: true });
      const form = h("form", { class: "card silence", id: "silence-form" },
        h("h2", null, "New silence"),
        h("div", { class: "field" }, h("span", null, "Matchers (all must match)"), matchers,
          h("div", null, h("button", { type: "button", class: "small", onclick: () => addMatcher() }, "+ matcher"))),
        h("div", { class: "row" },
          h("label", { class: "field" }, h("span", null, "Duration"), duration, ends),
          h("label", { class: "field" }, h("span", null, "Created by"), author)),
        h("label", { class: "field" }, h("span", null, "Comment"), comment),
        error,
        h("div", { class: "actions" },
          h("button", { type: "button", onclick: () => { formBox.hidden = true; formBox.replaceChildren(); } }, "Cancel"),
          h("button", { type: "submit", class: "primary" }, "Create silence")));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        error.hidden = true;
        const seconds = parseDuration(duration.value);
        if (!Number.isFinite(seconds) || seconds <= 0) {
          error.textContent = `Duration: not a duration (got ${JSON.stringify(duration.value)}); use e.g. 30m, 2h, 1d`;
          error.hidden = false;
          return;
        }
        const rows = [...matchers.querySelectorAll(".matcher")].map((row) => {
          const op = $(".matcher-op", row).value;
          return {
            name: $(".matcher-name", row).value.trim(),
            value: $(".matcher-value", row).value,
            isRegex: op.includes("~"),
            isEqual: !op.startsWith("!"),
          };
        }).filter((mt) => mt.name);
        if (!rows.length) {
          error.textContent = "Matchers: add at least one label matcher";
          error.hidden = false;
          return;
        }
        const now = new Date();
        try {
          const result = await request("api/v2/silences", {
            method: "POST",
            body: {
              matchers: rows,
              startsAt: now.toISOString(),
              endsAt: new Date(now.getTime() + seconds * 1000).toISOString(),
              createdBy: author.value.trim(),
              comment: comment.value.trim(),
            },
          });
          localStorage.setItem(AUTHOR_KEY, author.value.trim());
          formBox.hidden = true;
          formBox.replaceChildren();
          silenceNotice.textContent = `Silence ${result && result.silenceID ? result.silenceID : ""} created.`;
          silenceNotice.hidden = false;
          await refreshSilences();
        } catch (err) {
          error.textContent = String(err.message || err);
          error.hidden = false;
        }
      });
      formBox.replaceChildren(form);
      formBox.hidden = false;
      form.scrollIntoView({ block: "nearest" });
      (keys.length ? comment : $(".matcher-name", matchers)).focus();
    }

    function renderAlerts(alerts) {
      const order = { firing: 0, pending: 1 };
      const shown = alerts
        .filter((a) => a.state === "firing" || a.state === "pending")
        .sort((a, b) => order[a.state] - order[b.state] || (a.labels.alertname || "").localeCompare(b.labels.alertname || ""));
      const firing = shown.filter((a) => a.state === "firing").length;
      summary.textContent = `${firing} firing · ${shown.length - firing} pending`;
      if (!shown.length) {
        alertList.replaceChildren(h("div", { class: "card" }, emptyNote("No alerts firing or pending")));
        return;
      }
      alertList.replaceChildren(...shown.map((a) => {
        const annotations = Object.keys(a.annotations || {}).sort((x, y) =>
          (x === "summary" ? -1 : y === "summary" ? 1 : x.localeCompare(y)));
        return h("article", { class: `card alert ${a.state}`, dataset: { alertname: a.labels.alertname || "" } },
          h("div", null,
            h("div", { class: "title" }, badge(a.state), h("h3", null, a.labels.alertname || "(no name)"),
              a.labels.severity ? badge(a.labels.severity, a.labels.severity === "critical" || a.labels.severity === "page" ? "bad" : "warn") : null),
            h("div", { style: "margin-top:6px" }, labelChips(a.labels, ["alertname"]))),
          h("div", { class: "side" },
            silencesOn ? h("button", { type: "button", class: "small silence-alert", onclick: () => openSilenceForm(a.labels) }, "Silence") : null),
          annotations.length ? h("div", { class: "annotations" }, annotations.map((k) =>
            h("div", { class: "annotation" }, h("span", { class: "k" }, k), h("span", { class: "v" }, a.annotations[k])))) : null,
          h("div", { class: "meta" }, `active since ${when(a.activeAt)}`, a.value !== undefined ? ` · value ${fmtNum(num(a.value), 4)}` : ""));
      }));
    }

    function renderRules(groups) {
      if (!groups.length) {
        rulesBox.replaceChildren(h("div", { class: "card" }, emptyNote("No rule files loaded")));
        return;
      }
      rulesBox.replaceChildren(...groups.map((g) => h("section", { class: "card rule-group" },
        h("div", { class: "panel-head" }, h("h2", null, g.name),
          h("span", { class: "unit" }, `${g.file || ""} · every ${fmtSpan(g.interval || 0)}`),
          h("span", { class: "note" }, `evaluated ${when(g.lastEvaluation)}`)),
        h("div", { class: "table-wrap" }, h("table", null,
          h("thead", null, h("tr", null, ["Rule", "Type", "Health", "State", "Query", "Last error"].map((t) => h("th", null, t)))),
          h("tbody", null, (g.rules || []).map((rule) => h("tr", null,
            h("td", null, rule.name),
            h("td", null, rule.type === "alerting" ? "alert" : "record"),
            h("td", null, badge(rule.health || "unknown", rule.health === "ok" ? "ok" : rule.health === "err" ? "err" : "unknown")),
            h("td", null, rule.type === "alerting" ? badge(rule.state || "inactive") : ""),
            h("td", { class: "mono" }, rule.query),
            h("td", { class: "err" }, rule.lastError || "")))))))));
    }

    function silenceState(s) {
      return (s.status && s.status.state) || "active";
    }

    async function refreshSilences() {
      const silences = await request("api/v2/silences");
      const order = { active: 0, pending: 1, expired: 2 };
      silences.sort((a, b) => order[silenceState(a)] - order[silenceState(b)] || String(b.endsAt).localeCompare(String(a.endsAt)));
      if (!silences.length) {
        silenceList.replaceChildren(emptyNote("No silences"));
        return;
      }
      silenceList.replaceChildren(h("div", { class: "table-wrap" }, h("table", { id: "silences" },
        h("thead", null, h("tr", null, ["State", "Matchers", "Comment", "Created by", "Starts", "Ends", ""].map((t) => h("th", null, t)))),
        h("tbody", null, silences.map((s) => {
          const state = silenceState(s);
          return h("tr", { dataset: { silence: s.id, state } },
            h("td", null, badge(state)),
            h("td", null, h("div", { class: "chips" }, (s.matchers || []).map((mt) =>
              h("span", { class: "chip" }, h("b", null, mt.name),
                `${mt.isEqual === false ? "!" : ""}${mt.isRegex ? (mt.isEqual === false ? "~" : "=~") : "="}`, mt.value)))),
            h("td", null, s.comment || ""),
            h("td", null, s.createdBy || ""),
            h("td", { class: "num" }, when(s.startsAt)),
            h("td", { class: "num" }, when(s.endsAt)),
            h("td", null, state === "expired" ? "" : h("button", {
              type: "button", class: "small danger expire", onclick: async (e) => {
                e.target.disabled = true;
                try {
                  await request(`api/v2/silence/${encodeURIComponent(s.id)}`, { method: "DELETE" });
                  silenceNotice.textContent = `Silence ${s.id} expired.`;
                  silenceNotice.hidden = false;
                } catch (err) {
                  silenceNotice.textContent = `Could not expire silence ${s.id}: ${err.message}`;
                  silenceNotice.hidden = false;
                }
                await refreshSilences().catch(() => {});
              },
            }, "Expire")));
        })))));
    }

    async function refresh() {
      const jobs = [
        request("api/v1/alerts").then((d) => renderAlerts(d.data.alerts || []))
          .catch((err) => alertList.replaceChildren(h("div", { class: "error-box", role: "alert" }, err.message))),
        request("api/v1/rules").then((d) => renderRules(d.data.groups || []))
          .catch((err) => rulesBox.replaceChildren(h("div", { class: "error-box", role: "alert" }, err.message))),
      ];
      if (silencesOn) {
        jobs.push(refreshSilences().catch((err) =>
          silenceList.replaceChildren(h("div", { class: "panel-error", role: "alert" }, err.message))));
      }
      await Promise.all(jobs);
    }

    return { refresh };
  }

  // ----- targets and probes

  function targetsView(root) {
    const box = h("div", null, emptyNote("Loading…"));
    const summary = h("span", { class: "muted" }, "");
    root.append(h("div", { class: "page-head" }, h("h1", null, "Targets & probes"), summary), box);

    function table(targets) {
      return h("div", { class: "card" }, h("div", { class: "table-wrap" }, h("table", null,
        h("thead", null, h("tr", null, ["Endpoint", "Pool", "Health", "Labels", "Last scrape", "Duration", "Last error"].map((t) => h("th", null, t)))),
        h("tbody", null, targets.map((t) => h("tr", { dataset: { health: t.health || "unknown" } },
          h("td", { class: "mono" }, t.scrapeUrl || ""),
          h("td", null, t.scrapePool || ""),
          h("td", null, badge(t.health || "unknown", t.health === "up" ? "up" : t.health === "down" ? "down" : "unknown")),
          h("td", null, labelChips(t.labels || {}, [])),
          h("td", null, when(t.lastScrape)),
          h("td", { class: "num" }, t.lastScrapeDuration ? fmt("seconds", t.lastScrapeDuration) : "–"),
          h("td", { class: "err" }, t.lastError || "")))))));
    }

    async function refresh() {
      if (!FEATURES.has("targets")) {
        box.replaceChildren(h("div", { class: "card" }, emptyNote("This server does not list its targets (no /api/v1/targets).")));
        return;
      }
      try {
        const data = await request("api/v1/targets");
        const all = (data.data && data.data.activeTargets) || [];
        const probes = all.filter((t) => t.scrapePool === "probes");
        const targets = all.filter((t) => t.scrapePool !== "probes");
        const up = all.filter((t) => t.health === "up").length;
        summary.textContent = `${up} of ${all.length} up`;
        box.replaceChildren(
          h("h2", { class: "section-title" }, "Scrape targets"),
          targets.length ? table(targets) : h("div", { class: "card" }, emptyNote("No scrape targets configured")),
          h("h2", { class: "section-title" }, "Probes"),
          probes.length ? table(probes) : h("div", { class: "card" }, emptyNote("No probes configured")),
        );
      } catch (err) {
        box.replaceChildren(h("div", { class: "error-box", role: "alert" }, err.message));
      }
    }

    return { refresh };
  }

  // ----- explore

  function exploreView(root, state) {
    const input = h("textarea", {
      id: "expr", rows: 1, spellcheck: "false", "aria-label": "PromQL expression",
      placeholder: "PromQL, e.g. sum by (model) (rate(inferwatch_inferences_total[5m])) (Enter runs, Shift+Enter adds a line)",
    });
    input.value = state.expr;
    const run = () => setState({ expr: input.value.trim() });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        run();
      }
    });
    const tabs = {
      graph: h("button", { type: "button", id: "tab-graph", onclick: () => setState({ tab: "graph", expr: input.value.trim() }) }, "Graph"),
      table: h("button", { type: "button", id: "tab-table", onclick: () => setState({ tab: "table", expr: input.value.trim() }) }, "Table"),
    };
    const error = h("div", { class: "error-box", id: "explore-error", role: "alert", hidden: true });
    const info = h("span", { class: "muted", id: "explore-info" }, "");
    const result = panel("explore", "Result", "none");
    result.node.id = "explore-result";
    root.append(
      h("div", { class: "page-head" }, h("h1", null, "Explore"), h("span", { class: "spacer" }),
        h("div", { class: "seg", role: "tablist" }, tabs.graph, tabs.table)),
      h("div", { class: "explore-bar" }, input, h("button", { type: "button", class: "primary", id: "run", onclick: run }, "Run")),
      error,
      result.node,
      h("p", null, info),
    );

    function renderTable(data) {
      const rows = [];
      if (data.resultType === "vector") {
        for (const r of data.result) rows.push([metricText(r.metric), r.value[1]]);
      } else if (data.resultType === "matrix") {
        for (const r of data.result) {
          rows.push([metricText(r.metric), r.values.slice(-10).map(([t, v]) => `${v} @${t}`).join("\n")]);
        }
      } else if (data.resultType === "scalar" || data.resultType === "string") {
        rows.push([data.resultType, data.result[1]]);
      }
      if (!rows.length) {
        result.body.replaceChildren(emptyNote("Empty result"));
        return 0;
      }
      result.body.replaceChildren(h("div", { class: "table-wrap" }, h("table", { id: "explore-table" },
        h("thead", null, h("tr", null, h("th", null, "Series"), h("th", null, "Value"))),
        h("tbody", null, rows.slice(0, MAX_TABLE_ROWS).map(([series, value]) =>
          h("tr", null, h("td", { class: "mono" }, series), h("td", { class: "num", style: "white-space:pre" }, value)))))));
      return rows.length;
    }

    async function refresh(s) {
      if (document.activeElement !== input) input.value = s.expr;
      for (const [name, button] of Object.entries(tabs)) button.classList.toggle("active", name === s.tab);
      if (!s.expr) {
        error.hidden = true;
        destroyChart(result.id);
        result.body.replaceChildren(emptyNote("Enter a PromQL expression and press Enter"));
        info.textContent = "";
        return;
      }
      const w = timeWindow(s);
      const started = performance.now();
      try {
        let count;
        if (s.tab === "table") {
          destroyChart(result.id);
          count = renderTable(await prom.query(s.expr, w.end));
        } else {
          const data = await prom.range(s.expr, w);
          count = data.result.length;
          renderChart(result, [{ expr: s.expr }], [data], w, { emptyText: "Empty result" });
        }
        error.hidden = true;
        info.textContent = `${count} series · ${Math.round(performance.now() - started)} ms`;
      } catch (err) {
        destroyChart(result.id);
        result.body.replaceChildren(emptyNote("No result"));
        error.textContent = String(err.message || err);
        error.hidden = false;
        info.textContent = "";
      }
    }

    return { refresh };
  }

  // ----- faults (the demo's switches)

  function faultsView(root) {
    const box = h("div", null, emptyNote("Loading…"));
    const error = h("div", { class: "error-box", role: "alert", hidden: true });
    root.append(
      h("div", { class: "page-head" }, h("h1", null, "Faults"),
        h("span", { class: "muted" }, "Switch a fault on in the demo service and watch an alert fire, then resolve.")),
      error,
      box,
    );
    let faults = null;

    function render() {
      const keys = Object.keys(faults || {});
      if (!keys.length) {
        box.replaceChildren(h("div", { class: "card" }, emptyNote("No fault switches")));
        return;
      }
      box.replaceChildren(h("div", { class: "toggles" }, keys.map((key) => {
        const input = h("input", { type: "checkbox", role: "switch", "aria-label": key, checked: Boolean(faults[key]), dataset: { fault: key } });
        input.addEventListener("change", async () => {
          const next = { ...faults, [key]: input.checked };
          input.disabled = true;
          try {
            const answer = await request("faults", { method: "POST", body: next });
            faults = isFaults(answer) ? answer : next;
            error.hidden = true;
          } catch (err) {
            error.textContent = `Could not switch ${key}: ${err.message}`;
            error.hidden = false;
          }
          render();
        });
        return h("label", { class: "card toggle" },
          h("span", null, h("strong", null, key.replace(/_/g, " ")), h("br"), h("span", { class: "muted mono" }, key)),
          h("span", { class: "switch" }, input, h("span")));
      })));
    }

    async function refresh() {
      try {
        const answer = await request("faults");
        if (!isFaults(answer)) throw new ApiError("GET /faults did not answer an object of booleans", 0);
        faults = answer;
        error.hidden = true;
        render();
      } catch (err) {
        box.replaceChildren();
        error.textContent = String(err.message || err);
        error.hidden = false;
      }
    }

    return { refresh };
  }

  function isFaults(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value) &&
      Object.values(value).every((v) => typeof v === "boolean");
  }

  const VIEW_FACTORIES = {
    overview: overviewView,
    alerts: alertsView,
    targets: targetsView,
    explore: exploreView,
    faults: faultsView,
  };

  // ---------------------------------------------------------------- router, header, auth

  function syncHeader(state) {
    $("#range").value = state.range;
    $("#refresh").value = state.refresh;
    for (const link of document.querySelectorAll("#nav a")) {
      const view = link.dataset.view;
      link.classList.toggle("active", view === state.view);
      link.setAttribute("href", hashFor({ ...state, view, expr: view === "explore" ? state.expr : "" }));
      if (view === state.view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  function schedule(state) {
    if (timer) clearInterval(timer);
    timer = null;
    const ms = REFRESHES[state.refresh];
    if (ms && $("#auth").hidden) timer = setInterval(() => runRefresh(), ms);
  }

  function route() {
    const state = readState();
    const canonical = hashFor(state);
    if (location.hash !== canonical) history.replaceState(null, "", canonical);
    syncHeader(state);
    if (!current || current.name !== state.view) {
      destroyAllCharts();
      const root = $("#view");
      root.replaceChildren();
      document.body.dataset.view = state.view;
      document.title = `${state.view[0].toUpperCase()}${state.view.slice(1)} · inferwatch`;
      current = { name: state.view, ...VIEW_FACTORIES[state.view](root, state) };
    }
    schedule(state);
    runRefresh(true);
  }

  function showAuth(message) {
    const box = $("#auth");
    const error = $("#auth-error");
    error.textContent = message || "";
    error.hidden = !message;
    if (box.hidden) {
      box.hidden = false;
      if (timer) clearInterval(timer);
      timer = null;
      $("#auth-token").focus();
    }
  }

  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
  }

  function boot() {
    const stored = localStorage.getItem(THEME_KEY);
    applyTheme(stored || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
    $("#theme").addEventListener("click", () => {
      const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      localStorage.setItem(THEME_KEY, next);
      applyTheme(next);
      runRefresh(true);
    });
    $("#range").addEventListener("change", (e) => setState({ range: e.target.value }));
    $("#refresh").addEventListener("change", (e) => setState({ refresh: e.target.value }));
    $("#reload").addEventListener("click", () => runRefresh(true));
    $("#nav-faults").hidden = !FEATURES.has("faults");
    $("#auth-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const token = $("#auth-token").value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      $("#auth-token").value = "";
      $("#auth").hidden = true;
      route();
    });
    window.addEventListener("hashchange", route);
    route();
  }

  boot();
})();
