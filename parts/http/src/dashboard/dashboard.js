// The muster dashboard: polls the daemon's JSON API and draws the last
// minutes as charts, then the supervision tree, agents by status per model
// and machines by phase, each list one page at a time. What is shown (the
// pages, the filters, the model, the chart range) lives in the address's
// #fragment, so a view can be bookmarked or shared.
"use strict";

// A token given once as ?token= is kept for this tab and sent as a bearer
// header; it is taken out of the address bar so it is not bookmarked.
const params = new URLSearchParams(location.search);
if (params.has("token")) {
  sessionStorage.setItem("muster-token", params.get("token"));
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
}
const token = sessionStorage.getItem("muster-token");

// Dynamic groups larger than this are folded into one row.
const FOLD = 12;
const PAGE = { machines: 50, models: 20, agents: 100 };
const REFRESH_MS = 2000;

const CHARTS = [
  { id: "agents", title: "Agent connections", series: [
    { name: "alive", colour: "var(--alive)", get: s => s.agents && s.agents.alive },
    { name: "missing", colour: "var(--missing)", get: s => s.agents && s.agents.missing },
  ] },
  { id: "machines", title: "Machines by phase", series: [
    { name: "short", colour: "var(--short)", get: s => s.machines && s.machines.short },
    { name: "long", colour: "var(--long)", get: s => s.machines && s.machines.long },
    { name: "manual", colour: "var(--manual)", get: s => s.machines && s.machines.manual },
  ] },
  { id: "calls", title: "Provider calls per second", series: [
    { name: "calls", colour: "var(--long)", get: s => s.provider && s.provider.calls },
  ] },
  { id: "errors", title: "Provider errors and throttles per second", series: [
    { name: "errors", colour: "var(--missing)", get: s => s.provider && s.provider.errors },
    { name: "throttles", colour: "var(--short)", get: s => s.provider && s.provider.throttles },
  ] },
  { id: "restarts", title: "Restarts per sample", bars: true, series: [
    { name: "restarts", colour: "var(--manual)", get: s => s.restarts },
  ] },
  { id: "mailboxes", title: "Busiest mailboxes (messages waiting)" },
];

// What the page shows, read from and written to the #fragment.
const view = {
  range: 900,
  model: null,
  machines: { page: 0, filter: "", phase: "" },
  models: { page: 0, filter: "" },
  agents: { page: 0, filter: "" },
};

function readFragment() {
  const f = new URLSearchParams(location.hash.slice(1));
  const page = key => Math.max(0, (parseInt(f.get(key), 10) || 1) - 1);
  const range = parseInt(f.get("range"), 10);
  if ([300, 900, 1800].includes(range)) view.range = range;
  view.model = f.get("model");
  view.machines = { page: page("machines-page"), filter: f.get("machines-filter") || "",
    phase: ["short", "long", "manual"].includes(f.get("phase")) ? f.get("phase") : "" };
  view.models = { page: page("models-page"), filter: f.get("models-filter") || "" };
  view.agents = { page: page("agents-page"), filter: f.get("agents-filter") || "" };
}

function writeFragment() {
  const f = new URLSearchParams();
  if (view.range !== 900) f.set("range", view.range);
  if (view.model) f.set("model", view.model);
  for (const list of ["machines", "models", "agents"]) {
    if (view[list].page) f.set(list + "-page", view[list].page + 1);
    if (view[list].filter) f.set(list + "-filter", view[list].filter);
  }
  if (view.machines.phase) f.set("phase", view.machines.phase);
  const text = f.toString();
  history.replaceState(null, "", location.pathname + location.search + (text ? "#" + text : ""));
}

async function api(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch(path, { headers });
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}

function query(fields) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== "" && v !== null) q.set(k, v);
  return q.toString();
}

// --- history -------------------------------------------------------------

const samples = [];
let every = 2;
let keep = 900;

function seconds(duration) {
  // "2s" as the daemon writes it; anything else reads as two seconds.
  const m = /^(\d+(?:\.\d+)?)s$/.exec(String(duration || ""));
  return m ? parseFloat(m[1]) : 2;
}

async function refreshHistory() {
  const last = samples.length ? samples[samples.length - 1].seq : null;
  const answer = await api("api/history" + (last === null ? "" : "?after=" + last));
  every = seconds(answer.every);
  keep = answer.keep || keep;
  // A daemon started again numbers its samples from 0: start over.
  if (last !== null && (answer.latest === null || answer.latest < last)) {
    samples.length = 0;
    return refreshHistory();
  }
  samples.push(...answer.samples);
  if (samples.length > keep) samples.splice(0, samples.length - keep);
  drawCharts();
}

function drawCharts() {
  for (const chart of CHARTS) {
    drawChart(document.getElementById("chart-" + chart.id), chart, samples, view.range, every);
  }
}

// --- pagers and filters --------------------------------------------------

// "‹ 51–100 of 10,000 ›" under a list; `list` names its state in `view`.
function renderPager(list, answer, shown) {
  const state = view[list];
  const matched = answer.matched ?? shown;
  const pages = Math.max(1, Math.ceil(matched / PAGE[list]));
  const from = matched ? state.page * PAGE[list] + 1 : 0;
  const to = state.page * PAGE[list] + shown;
  const of = answer.total !== undefined && answer.total !== matched
    ? `${matched.toLocaleString("en")} matching (of ${answer.total.toLocaleString("en")})`
    : matched.toLocaleString("en");
  const go = page => () => { state.page = page; writeFragment(); refresh(); };
  const prev = el("button", { type: "button" }, "‹ prev");
  const next = el("button", { type: "button" }, "next ›");
  prev.disabled = state.page === 0;
  next.disabled = state.page + 1 >= pages;
  prev.addEventListener("click", go(state.page - 1));
  next.addEventListener("click", go(state.page + 1));
  const pager = document.getElementById(list + "-pager");
  pager.setAttribute("data-offset", state.page * PAGE[list]);
  pager.setAttribute("data-matched", matched);
  pager.setAttribute("data-shown", shown);
  pager.replaceChildren(prev, el("span", { class: "range" }, `${from}–${to} of ${of}`), next);
}

// A page beyond the last (the list shrank, or a bookmark is old) moves to
// the last page.
function clampPage(list, answer) {
  const matched = answer.matched;
  if (typeof matched !== "number") return false;
  const last = Math.max(0, Math.ceil(matched / PAGE[list]) - 1);
  if (view[list].page > last) { view[list].page = last; writeFragment(); return true; }
  return false;
}

function bindFilter(list) {
  const input = document.getElementById(list + "-filter");
  input.value = view[list].filter;
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      view[list].filter = input.value.trim();
      view[list].page = 0;
      writeFragment();
      refresh();
    }, 250);
  });
}

// --- the supervision tree ------------------------------------------------

function restartsOf(child) {
  const r = child.restarts || {};
  return (r.failure || 0) + (r.bounce || 0) + (r.dependency || 0);
}

function actorRow(child, depth) {
  const mailbox = child.mailbox || {};
  return el("tr", { class: "actor", "data-actor": child.name },
    el("td", { style: "padding-left:" + (0.5 + depth * 1.2) + "em" }, child.name),
    el("td", { class: "state " + child.state }, child.state),
    el("td", {}, mailbox.depth ?? "-"),
    el("td", {}, mailbox.high_water ?? "-"),
    el("td", { class: "restarts" }, restartsOf(child)),
    el("td", { class: "err" }, child.last_error || ""));
}

// Rows for a supervisor's children, nested supervisors indented under
// their name; a large dynamic group (the pollers) is summed in one row,
// here or, when the daemon folds it already, from its `dynamic` summary.
function treeRows(report, depth, rows) {
  const children = report.children || [];
  const dynamic = children.filter(c => c.dynamic);
  const fold = dynamic.length > FOLD;
  for (const child of children) {
    if (fold && child.dynamic) continue;
    rows.push(actorRow(child, depth));
    if (child.report && child.report.children) treeRows(child.report, depth + 1, rows);
  }
  let group = null;
  if (report.dynamic) {
    const d = report.dynamic;
    group = { count: d.children, states: d.states || {}, depth: d.mailbox_depth ?? "-",
      restarts: restartsOf(d) };
  } else if (fold) {
    group = { count: dynamic.length, states: {}, depth: 0, restarts: 0 };
    for (const c of dynamic) {
      group.states[c.state] = (group.states[c.state] || 0) + 1;
      group.depth += (c.mailbox && c.mailbox.depth) || 0;
      group.restarts += restartsOf(c);
    }
  }
  if (group) {
    const summary = Object.entries(group.states).filter(([, n]) => n > 0)
      .map(([s, n]) => n.toLocaleString("en") + " " + s).join(", ");
    rows.push(el("tr", { class: "actor group" },
      el("td", { style: "padding-left:" + (0.5 + depth * 1.2) + "em" },
        group.count.toLocaleString("en") + " dynamic children"),
      el("td", {}, summary),
      el("td", {}, group.depth),
      el("td", {}, "-"),
      el("td", { class: "restarts" }, group.restarts),
      el("td", {}, "")));
  }
  return rows;
}

function renderTree(report) {
  const root = { name: report.path, state: report.state, restarts: {}, mailbox: null };
  const rows = [actorRow(root, 0)];
  treeRows(report, 1, rows);
  document.querySelector("#tree tbody").replaceChildren(...rows);
}

// --- the cluster ---------------------------------------------------------

// The bridge's report, under presence in the tree's report; none when the
// daemon is the controller's only API server.
function bridgeOf(report) {
  return presenceChild(report, "cluster");
}

// A child of the presence subtree's report, by name; muster's subtree may
// be the whole tree or one child of a host's.
function presenceChild(report, name) {
  const presence = findChild(report, "presence");
  const children = (presence && presence.report && presence.report.children) || [];
  const child = children.find(c => c.name === name);
  return child && child.report;
}

// The first child called `name`, anywhere in the report's tree.
function findChild(report, name) {
  for (const child of report.children || []) {
    if (child.name === name) return child;
    const nested = child.report && findChild(child.report, name);
    if (nested) return nested;
  }
  return null;
}

function ago(rfc3339) {
  if (!rfc3339) return "never";
  const seconds = Math.max(0, (Date.now() - Date.parse(rfc3339)) / 1000);
  const clock = new Date(rfc3339).toLocaleTimeString("en-GB");
  return clock + " (" + (seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)) + " s ago)";
}

function renderCluster(report) {
  const panel = document.getElementById("cluster-panel");
  const bridge = bridgeOf(report);
  panel.hidden = !bridge;
  if (!bridge) return;
  const link = document.getElementById("cluster-link");
  link.textContent = bridge.link + (bridge.nats ? " to " + bridge.nats : "");
  link.className = "badge " + (bridge.link === "connected" ? "ok" : "bad");
  document.getElementById("cluster-node").textContent =
    bridge.node + " of " + bridge.cluster + " · change " + bridge.seq.toLocaleString("en");
  // The models this node polls, when it holds leases on them.
  const leases = presenceChild(report, "leases");
  const held = document.getElementById("cluster-leases");
  held.hidden = !leases;
  if (leases) {
    const models = (leases.held || []).map(h => String(h.model).slice(0, 8) + "…");
    held.textContent = "polls " + models.length + " of " + (leases.leases || []).length +
      " models" + (models.length ? ": " + models.join(", ") : "") + " · lease " + leases.lease_ttl;
    held.setAttribute("data-held", String(models.length));
  }
  const rows = (bridge.peers || []).map(peer => el("tr", { class: "peer", "data-peer": peer.server },
    el("td", {}, peer.server),
    el("td", { class: "state " + peer.state }, peer.state),
    el("td", {}, ago(peer.last_heartbeat)),
    el("td", {}, peer.applied ?? "-"),
    el("td", {}, peer.snapshots_applied + " / " + peer.snapshots_asked),
    el("td", {}, peer.gaps)));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6 }, "no peer heard yet")));
  document.querySelector("#peers tbody").replaceChildren(...rows);
}

// --- agents by model -----------------------------------------------------

function total(label, n, cls) {
  return el("span", { class: "total " + cls, "data-total": label },
    el("b", {}, (n ?? 0).toLocaleString("en")), label);
}

async function renderPresence() {
  const state = view.models;
  let answer = await api("api/models?" + query({ offset: state.page * PAGE.models,
    limit: PAGE.models, filter: state.filter }));
  if (clampPage("models", answer)) {
    answer = await api("api/models?" + query({ offset: state.page * PAGE.models,
      limit: PAGE.models, filter: state.filter }));
  }
  const models = answer.models;
  // Totals of every model; summed from the page when the daemon does not
  // give them.
  const totals = answer.totals || models.reduce((t, m) => {
    t.alive += m.alive; t.missing += m.missing; return t;
  }, { alive: 0, missing: 0 });
  document.getElementById("agent-totals").replaceChildren(
    total("alive", totals.alive, "alive"), total("missing", totals.missing, "missing"));
  if (!view.model && models.length) view.model = models[0].model;
  const rows = models.map(m => {
    const row = el("tr", { class: "model" + (m.model === view.model ? " selected" : ""), "data-model": m.model },
      el("td", { class: m.name ? "" : "mono", title: m.model, "data-name": m.name || "" },
        m.name || String(m.model).slice(0, 8) + "…"),
      el("td", { class: "alive" }, m.alive),
      el("td", { class: "missing" }, m.missing), el("td", { class: "controller" }, m.controller),
      el("td", {}, m.agents), el("td", {}, m.connections));
    row.addEventListener("click", () => {
      view.model = m.model;
      view.agents.page = 0;
      writeFragment();
      refresh();
    });
    return row;
  });
  document.querySelector("#models tbody").replaceChildren(...rows);
  renderPager("models", answer, models.length);
  document.getElementById("model-shown").textContent = view.model || "-";
  if (!view.model) {
    document.getElementById("agents").replaceChildren();
    document.getElementById("agents-pager").replaceChildren();
    return;
  }
  const a = view.agents;
  const presence = await api("api/presence?" + query({ model: view.model,
    offset: a.page * PAGE.agents, limit: PAGE.agents, filter: a.filter }));
  const chips = presence.agents.map(agent => {
    const status = agent.controller ? "controller" : agent.status;
    return el("span", { class: "chip " + status, title: status, "data-agent": agent.agent,
      "data-status": status }, agent.agent);
  });
  document.getElementById("agents").replaceChildren(...chips);
  renderPager("agents", presence, presence.agents.length);
}

// --- machines ------------------------------------------------------------

// Durations as the daemon writes them ("16s 907ms", or older
// "16s 906ms 822us 352ns"), shortened to two units.
function short(duration) {
  if (duration === null || duration === undefined) return "-";
  if (typeof duration === "object" && "secs" in duration) {
    return (duration.secs + (duration.nanos || 0) / 1e9).toFixed(1) + "s";
  }
  return String(duration).split(" ").slice(0, 2).join(" ");
}

async function renderMachines() {
  const state = view.machines;
  const ask = () => api("api/machines?" + query({ offset: state.page * PAGE.machines,
    limit: PAGE.machines, filter: state.filter, phase: state.phase }));
  let answer = await ask();
  if (clampPage("machines", answer)) answer = await ask();
  const machines = answer.machines;
  const counts = answer.phases || { short: 0, long: 0, manual: 0 };
  if (!answer.phases) for (const m of machines) counts[m.phase || "manual"] += 1;
  document.getElementById("phases").replaceChildren(
    ...["short", "long", "manual"].map(phase => total(phase, counts[phase], phase)));
  // A model by its name where it has one, else by the start of its UUID.
  const names = {};
  for (const model of answer.models || []) names[model.uuid] = model.name;
  const model = m => m.model ? (names[m.model] || m.model.slice(0, 8)) : "-";
  const rows = machines.map(m => {
    const phase = m.phase || "manual";
    const status = m.instance_status
      ? m.instance_status.status + (m.instance_status.message ? " (" + m.instance_status.message + ")" : "")
      : "-";
    return el("tr", { class: "machine", "data-machine": m.tag, "data-model": m.model || "" },
      el("td", {}, m.tag), el("td", { title: m.model || "" }, model(m)),
      el("td", { class: phase }, phase),
      el("td", {}, short(m.interval)), el("td", {}, short(m.next_poll_in)),
      el("td", {}, status), el("td", {}, (m.addresses || []).map(a => a.value).join(", ")),
      el("td", { class: "err" }, m.last_error || ""));
  });
  document.querySelector("#machines tbody").replaceChildren(...rows);
  renderPager("machines", answer, machines.length);
}

// --- the loop ------------------------------------------------------------

let running = false;
let again = false;

// One refresh at a time: a click during one asks for another after it, a
// timer tick during one is skipped, so a slow daemon is not asked more.
async function refresh(fromTimer) {
  if (running) { if (!fromTimer) again = true; return; }
  running = true;
  const conn = document.getElementById("conn");
  try {
    await Promise.all([
      refreshHistory(),
      api("api/report").then(report => { renderTree(report); renderCluster(report); }),
      renderMachines(),
      renderPresence(),
    ]);
    conn.textContent = "live";
    conn.className = "badge ok";
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
  } catch (e) {
    conn.textContent = "no answer: " + e.message;
    conn.className = "badge bad";
  } finally {
    running = false;
    if (again) { again = false; refresh(); }
  }
}

function start() {
  readFragment();
  for (const list of ["machines", "models", "agents"]) bindFilter(list);
  const phase = document.getElementById("machines-phase");
  phase.value = view.machines.phase;
  phase.addEventListener("change", () => {
    view.machines.phase = phase.value;
    view.machines.page = 0;
    writeFragment();
    refresh();
  });
  const range = document.getElementById("range");
  range.value = String(view.range);
  range.addEventListener("change", () => {
    view.range = parseInt(range.value, 10);
    writeFragment();
    drawCharts();
  });
  for (const chart of CHARTS) {
    document.getElementById("chart-" + chart.id).querySelector("figcaption .title").textContent = chart.title;
  }
  window.addEventListener("resize", drawCharts);
  refresh();
  setInterval(() => refresh(true), REFRESH_MS);
}

start();
