// The muster dashboard: polls the daemon's JSON API and renders the
// supervision tree, agents by status per model, and machines by phase.
"use strict";

// A token given once as ?token= is kept for this tab and sent as a bearer
// header; it is taken out of the address bar so it is not bookmarked.
const params = new URLSearchParams(location.search);
if (params.has("token")) {
  sessionStorage.setItem("muster-token", params.get("token"));
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
}
const token = sessionStorage.getItem("muster-token");
let selectedModel = null;
// Dynamic groups larger than this are folded into one row.
const FOLD = 12;

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
// here or, past the server's own limit, already by /api/report.
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
    group = { count: d.children, states: d.states, depth: d.mailbox_depth, restarts: restartsOf(d) };
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
      .map(([s, n]) => n + " " + s).join(", ");
    rows.push(el("tr", { class: "actor group" },
      el("td", { style: "padding-left:" + (0.5 + depth * 1.2) + "em" }, group.count + " dynamic children"),
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

function total(label, n, cls) {
  return el("span", { class: "total " + cls, "data-total": label }, el("b", {}, n), label);
}

async function renderPresence() {
  const { models } = await api("api/models");
  let alive = 0, missing = 0;
  for (const m of models) { alive += m.alive; missing += m.missing; }
  document.getElementById("agent-totals").replaceChildren(
    total("alive", alive, "alive"), total("missing", missing, "missing"));
  if (!models.some(m => m.model === selectedModel)) {
    selectedModel = models.length ? models[0].model : null;
  }
  const rows = models.map(m => {
    const row = el("tr", { class: "model" + (m.model === selectedModel ? " selected" : ""), "data-model": m.model },
      el("td", {}, m.model), el("td", { class: "alive" }, m.alive),
      el("td", { class: "missing" }, m.missing), el("td", { class: "controller" }, m.controller),
      el("td", {}, m.agents), el("td", {}, m.connections));
    row.addEventListener("click", () => { selectedModel = m.model; refresh(); });
    return row;
  });
  document.querySelector("#models tbody").replaceChildren(...rows);
  document.getElementById("model-shown").textContent = selectedModel || "-";
  if (!selectedModel) { document.getElementById("agents").replaceChildren(); return; }
  const presence = await api("api/presence?model=" + encodeURIComponent(selectedModel));
  const chips = presence.agents.map(a => {
    const status = a.controller ? "controller" : a.status;
    return el("span", { class: "chip " + status, title: status, "data-agent": a.agent, "data-status": status }, a.agent);
  });
  document.getElementById("agents").replaceChildren(...chips);
}

// "34s 894ms 503us" reads as "34s 894ms": two units are plenty.
function short(duration) {
  return duration ? duration.split(" ").slice(0, 2).join(" ") : "-";
}

function renderMachines({ machines }) {
  const counts = { short: 0, long: 0, manual: 0 };
  for (const m of machines) counts[m.phase || "manual"] += 1;
  document.getElementById("phases").replaceChildren(
    ...Object.entries(counts).map(([phase, n]) => total(phase, n, phase)));
  const rows = machines.map(m => {
    const phase = m.phase || "manual";
    const status = m.instance_status ? m.instance_status.status + (m.instance_status.message ? " (" + m.instance_status.message + ")" : "") : "-";
    return el("tr", { class: "machine", "data-machine": m.tag },
      el("td", {}, m.tag), el("td", { class: phase }, phase),
      el("td", {}, short(m.interval)), el("td", {}, short(m.next_poll_in)),
      el("td", {}, status), el("td", {}, (m.addresses || []).map(a => a.value).join(", ")),
      el("td", { class: "err" }, m.last_error || ""));
  });
  document.querySelector("#machines tbody").replaceChildren(...rows);
}

async function refresh() {
  const conn = document.getElementById("conn");
  try {
    const [report, machines] = await Promise.all([api("api/report"), api("api/machines")]);
    renderTree(report);
    renderMachines(machines);
    await renderPresence();
    conn.textContent = "live";
    conn.className = "badge ok";
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    conn.textContent = "no answer: " + e.message;
    conn.className = "badge bad";
  }
}

refresh();
setInterval(refresh, 1500);
