// Small time-series charts drawn as SVG, from the samples of /api/history:
// lines for levels and rates, bars for counts per sample. A value that
// could not be read (null) and a gap in the samples break the line rather
// than drawing across what is not known.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const CHART_HEIGHT = 150;
const PAD = { left: 44, right: 8, top: 10, bottom: 20 };
// Lines of the busiest mailboxes, from light to dark so that they read
// apart from the status colours of the other charts.
const MAILBOX_COLOURS = ["#2b6cb0", "#b7791f", "#6b46c1", "#1f8a4c", "#c0392b"];

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

// Wall-clock milliseconds from a sample's time: an RFC 3339 string, epoch
// seconds or milliseconds, or serde's {secs_since_epoch, nanos_since_epoch}.
function toMillis(at) {
  if (typeof at === "string") return Date.parse(at);
  if (typeof at === "number") return at < 1e12 ? at * 1000 : at;
  if (at && typeof at.secs_since_epoch === "number") {
    return at.secs_since_epoch * 1000 + (at.nanos_since_epoch || 0) / 1e6;
  }
  return NaN;
}

// A round upper bound for the y axis: 1, 2, 2.5 or 5 times a power of ten.
function niceMax(max) {
  if (!(max > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(max)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (max <= step * power) return step * power;
  }
  return 10 * power;
}

// Counts as integers with separators; rates with two significant decimals.
function formatValue(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (Number.isInteger(v)) return v.toLocaleString("en");
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString("en");
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

// A time of day, to the second when the axis spans less than ten minutes:
// to the minute, its three labels would repeat (19:31 19:31 19:32).
function clock(ms, span) {
  const d = new Date(ms);
  const parts = { hour: "2-digit", minute: "2-digit" };
  if (span < 10 * 60 * 1000) parts.second = "2-digit";
  return d.toLocaleTimeString("en-GB", parts);
}

// The series of a chart for these samples: fixed ones, or, for the
// mailboxes, the five children deepest at some point in the window.
function seriesOf(chart, samples) {
  if (chart.series) return chart.series;
  const peak = new Map();
  for (const s of samples) {
    for (const m of s.mailboxes || []) {
      peak.set(m.child, Math.max(peak.get(m.child) || 0, m.depth));
    }
  }
  return [...peak.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, MAILBOX_COLOURS.length)
    .map(([child], i) => ({
      name: child.replace(/^root\//, ""),
      colour: MAILBOX_COLOURS[i],
      // Absent from a sample's deepest: shallower than all of them, drawn
      // as 0 rather than as a gap.
      get: s => {
        const m = (s.mailboxes || []).find(m => m.child === child);
        return m ? m.depth : 0;
      },
    }));
}

// Draws `chart` (its <figure>) from `samples` over the last `range`
// seconds; sets data-points to the points drawn, for tests and curious
// operators.
function drawChart(figure, chart, samples, range, every) {
  const holder = figure.querySelector(".plot");
  const width = Math.max(240, Math.round(holder.clientWidth || 400));
  const height = CHART_HEIGHT;
  const end = samples.length ? toMillis(samples[samples.length - 1].at) : Date.now();
  // The last `range` seconds, or less while the daemon is younger than
  // that, so that a new daemon's first minutes fill the chart.
  const oldest = samples.length ? toMillis(samples[0].at) : end;
  const start = Math.min(end - 60 * 1000, Math.max(end - range * 1000, oldest));
  const shown = samples.filter(s => toMillis(s.at) >= start);
  const series = seriesOf(chart, shown);
  let max = 0;
  for (const sr of series) {
    for (const s of shown) {
      const v = sr.get(s);
      if (typeof v === "number" && v > max) max = v;
    }
  }
  const top = niceMax(max);
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const x = ms => PAD.left + ((ms - start) / (end - start || 1)) * plotW;
  const y = v => PAD.top + plotH - (v / top) * plotH;

  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": chart.title });
  for (const frac of [0, 0.5, 1]) {
    const gy = y(top * frac);
    root.append(svg("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: gy, y2: gy }));
    root.append(svg("text", { class: "tick", x: PAD.left - 4, y: gy + 4, "text-anchor": "end" },
      formatValue(top * frac)));
  }
  // Each label once: a label the same as the one before it is left out.
  let lastLabel = null;
  for (const [frac, anchor] of [[0, "start"], [0.5, "middle"], [1, "end"]]) {
    const label = clock(start + frac * (end - start), end - start);
    if (label === lastLabel) continue;
    lastLabel = label;
    root.append(svg("text", { class: "tick axis-time", x: PAD.left + frac * plotW, y: height - 5,
      "text-anchor": anchor }, label));
  }

  // A gap longer than three sampling periods is a gap, not a slope.
  const gap = 3 * every * 1000;
  let points = 0;
  const barWidth = Math.max(1, (every * 1000 / (end - start || 1)) * plotW * 0.8);
  for (const sr of series) {
    if (chart.bars) {
      const g = svg("g", { class: "bars", style: "fill:" + sr.colour });
      for (const s of shown) {
        const v = sr.get(s);
        if (typeof v !== "number") continue;
        points += 1;
        if (v <= 0) continue;
        g.append(svg("rect", { x: x(toMillis(s.at)) - barWidth / 2, y: y(v), width: barWidth,
          height: PAD.top + plotH - y(v) }));
      }
      root.append(g);
      continue;
    }
    let d = "";
    let last = null;
    for (const s of shown) {
      const v = sr.get(s);
      const t = toMillis(s.at);
      if (typeof v !== "number" || Number.isNaN(t)) { last = null; continue; }
      const joined = last !== null && t - last <= gap;
      d += (joined ? "L" : "M") + x(t).toFixed(1) + " " + y(v).toFixed(1);
      last = t;
      points += 1;
    }
    if (d) {
      root.append(svg("path", { class: "line", d, style: "stroke:" + sr.colour,
        "data-series": sr.name }));
    }
  }

  const cursor = svg("line", { class: "cursor", x1: 0, x2: 0, y1: PAD.top, y2: PAD.top + plotH,
    visibility: "hidden" });
  root.append(cursor);
  root.setAttribute("data-chart", chart.id);
  root.setAttribute("data-points", points);
  holder.replaceChildren(root);

  const legend = figure.querySelector(".legend");
  const showValues = sample => {
    legend.replaceChildren(...series.map(sr => {
      const v = sample ? sr.get(sample) : null;
      return el("span", { class: "key", "data-series": sr.name },
        el("i", { style: "background:" + sr.colour }), sr.name + " ",
        el("b", {}, formatValue(typeof v === "number" ? v : null)));
    }));
    const when = figure.querySelector(".when");
    when.textContent = sample ? new Date(toMillis(sample.at)).toLocaleTimeString("en-GB") : "";
  };
  showValues(shown[shown.length - 1]);
  if (!series.length) legend.replaceChildren(el("span", { class: "key" }, "no data yet"));
  // Hovering reads the values at one moment; leaving shows the latest.
  root.addEventListener("mousemove", event => {
    if (!shown.length) return;
    const box = root.getBoundingClientRect();
    const at = start + ((event.clientX - box.left - PAD.left) / plotW) * (end - start);
    let best = shown[0];
    for (const s of shown) {
      if (Math.abs(toMillis(s.at) - at) < Math.abs(toMillis(best.at) - at)) best = s;
    }
    const bx = x(toMillis(best.at));
    cursor.setAttribute("x1", bx);
    cursor.setAttribute("x2", bx);
    cursor.setAttribute("visibility", "visible");
    showValues(best);
  });
  root.addEventListener("mouseleave", () => {
    cursor.setAttribute("visibility", "hidden");
    showValues(shown[shown.length - 1]);
  });
}
