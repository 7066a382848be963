// llmgate admin UI. Every action is a call to /ui/api/<admin API path>, which the server
// answers as the admin API would for the master key; calls that change something carry the
// page's CSRF token. No framework, no network beyond this gateway.
"use strict";

const csrf = document.querySelector('meta[name="csrf"]')?.content || "";
const $ = (sel) => document.querySelector(sel);

async function api(path, opts = {}) {
  const headers = { "x-csrf-token": csrf };
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch("/ui/api" + path, {
    method: opts.method || "GET",
    headers,
    credentials: "same-origin",
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  if (res.status === 401) { location.href = "/ui/login"; throw new Error("signed out"); }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!res.ok) {
    const msg = (data && data.error && data.error.message) || res.status + " " + res.statusText;
    const err = new Error(msg);
    err.data = data;
    throw err;
  }
  return data;
}

function showError(e) {
  const el = $("#error");
  if (!el) return;
  if (!e) { el.hidden = true; el.textContent = ""; return; }
  el.textContent = e.message || String(e);
  el.hidden = false;
}

// Builds an element: el("td", {class: "x"}, "text", child, ...).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fill(tableSel, rows) {
  const body = $(tableSel + " tbody");
  body.replaceChildren(...rows);
  if (!rows.length) {
    const cols = $(tableSel + " thead tr").children.length;
    body.append(el("tr", {}, el("td", { colspan: cols, class: "empty" }, "Nothing yet")));
  }
}

const money = (n) => (n === null || n === undefined ? "" : "$" + Number(n).toFixed(Number(n) < 1 ? 6 : 2));
const short = (s) => (s && s.length > 16 ? s.slice(0, 8) + "…" + s.slice(-4) : s || "");
const num = (s) => (s === "" ? undefined : Number(s));
const today = () => new Date().toISOString().slice(0, 10);
const daysAgo = (d) => new Date(Date.now() - d * 86400000).toISOString().slice(0, 10);

function card(label, value, cls) {
  return el("div", { class: "card " + (cls || "") }, el("span", {}, label), el("strong", {}, value));
}

// --- Overview -------------------------------------------------------------------------------

// The windows the overview shows (GET /global/overview sums them in the database): the label,
// and how a bucket's start is written under the chart.
const RANGES = {
  hour: { label: "last hour", window: "hour", fmt: (d) => d.toISOString().slice(11, 16) },
  day: { label: "last day", window: "day", fmt: (d) => d.toISOString().slice(11, 13) + "h" },
  month: { label: "last 30 days", window: "30d", fmt: (d) => d.toISOString().slice(5, 10) },
};

async function overview() {
  const total = await api("/global/spend");
  const show = async (name) => {
    const range = RANGES[name];
    for (const b of document.querySelectorAll("#ranges button")) b.setAttribute("aria-pressed", String(b.dataset.range === name));
    const o = await api("/global/overview?window=" + range.window);
    const ms = (v) => (v === null || v === undefined ? "-" : Math.round(v) + " ms");
    $("#cards").replaceChildren(
      card("Requests, " + range.label, o.requests),
      card("Errors", o.errors, o.errors ? "bad" : ""),
      card("Fell back", o.fallbacks),
      card("Latency p50 / p95", ms(o.latency_p50_ms) + " / " + ms(o.latency_p95_ms)),
      card("Spend, " + range.label, money(o.spend)),
      card("Spend, all time", money(total.spend) + (total.max_budget ? " of " + money(total.max_budget) : "")),
    );
    const b = o.buckets;
    const label = (i) => range.fmt(new Date(b[i].start_time));
    bars("#chart-requests", b.map((x) => [x.requests - x.errors, x.errors]), label, "requests (failures in red)");
    const p50 = (x) => x.latency_p50_ms || 0;
    bars("#chart-latency", b.map((x) => [p50(x), Math.max(0, (x.latency_p95_ms || 0) - p50(x))]), label, "latency p50 (blue) and p95 (the bar's top), ms");
    bars("#chart-spend", b.map((x) => [x.spend, 0]), label, "spend, USD");
    topTable("#top-models", o.top_models, (t) => t.model_group);
    topTable("#top-keys", o.top_keys, (t) => t.key_alias || (t.api_key ? short(t.api_key) : "master key"));
    topTable("#top-deployments", o.top_deployments, (t) => t.model_id);
  };
  for (const b of document.querySelectorAll("#ranges button")) b.addEventListener("click", () => show(b.dataset.range).catch(showError));
  await show("day");
}

// A top table from the server's rows: name, requests, errors, spend.
function topTable(sel, rows, name) {
  fill(sel, rows.map((t) => el("tr", {}, el("td", {}, name(t) || "unknown"), el("td", {}, t.requests), el("td", {}, t.errors), el("td", {}, money(t.spend)))));
}

// A stacked bar chart as inline SVG: each value is [lower, upper]; the upper part is red.
function bars(sel, values, label, title) {
  const ns = "http://www.w3.org/2000/svg";
  const n = values.length, w = 600, h = 120, top = 14;
  const max = Math.max(...values.map(([a, b]) => a + b), 0);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h + 16}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const text = (x, y, t, anchor) => {
    const e = document.createElementNS(ns, "text");
    e.setAttribute("x", x); e.setAttribute("y", y); e.setAttribute("text-anchor", anchor || "start");
    e.textContent = t; svg.append(e);
  };
  text(0, 10, title + (max ? " · max " + (max < 1 ? max.toPrecision(2) : Math.round(max)) : " · none yet"));
  const bw = w / n;
  values.forEach(([a, b], i) => {
    for (const [y0, v, cls] of [[0, a, "ok"], [a, b, "bad"]]) {
      if (!v || !max) continue;
      const r = document.createElementNS(ns, "rect");
      const hh = (v / max) * (h - top);
      r.setAttribute("x", i * bw + 1); r.setAttribute("width", Math.max(1, bw - 2));
      r.setAttribute("y", h - (y0 / max) * (h - top) - hh); r.setAttribute("height", hh);
      r.setAttribute("class", cls);
      svg.append(r);
    }
  });
  for (const i of [0, Math.floor(n / 2), n - 1]) text(i * bw + bw / 2, h + 13, label(i), i === 0 ? "start" : i === n - 1 ? "end" : "middle");
  $(sel).replaceChildren(svg);
}

// --- Models ---------------------------------------------------------------------------------

async function models() {
  const load = async () => {
    const data = await api("/deployments");
    fill("#deployments", data.deployments.map((d) => el("tr", { class: d.cooling_down ? "cooling" : "" },
      el("td", {}, d.model_name), el("td", {}, short(d.id)), el("td", {}, d.provider), el("td", {}, d.model),
      el("td", {}, d.cooling_down ? el("span", { class: "badge bad" }, "cooling down: " + d.cooldown_reason) : el("span", { class: "badge ok" }, "in rotation")),
      el("td", {}, d.in_flight),
      el("td", {}, used(d.rpm_used, d.rpm)), el("td", {}, used(d.tpm_used, d.tpm)), el("td", {}, used(d.rpd_used, d.rpd)),
      el("td", {}, [d.latency_ms, d.ttft_ms].map((v, i) => (v ? (i ? "first byte " : "") + Math.round(v) + " ms" : null)).filter(Boolean).join(", ") || "-"))));
  };
  const used = (n, limit) => (limit === null || limit === undefined ? String(n || 0) : `${n || 0} / ${limit}`);
  $("#refresh").addEventListener("click", () => load().catch(showError));
  $("#health").addEventListener("click", async () => {
    const out = $("#health-result");
    out.textContent = "Checking…";
    try {
      const h = await api("/health");
      out.textContent = `${h.healthy_count} healthy, ${h.unhealthy_count} unhealthy`;
      await load();
    } catch (e) { out.textContent = ""; showError(e); }
  });
  await load();
}

// --- Keys -----------------------------------------------------------------------------------

async function keys() {
  let all = [];
  const render = () => {
    const q = $("#search").value.toLowerCase();
    const shown = all.filter((k) => !q || (k.key_alias || "").toLowerCase().includes(q) || (k.token || "").includes(q));
    fill("#keys", shown.map((k) => {
      const act = (label, path, body, confirmText, secret) => el("button", { type: "button", onclick: async () => {
        if (confirmText && !confirm(confirmText)) return;
        try { showError(null); const r = await api(path, { method: "POST", body }); if (secret && r && r.key) showSecret(r.key); await load(); } catch (e) { showError(e); }
      } }, label);
      const limits = [k.rpm_limit && k.rpm_limit + " rpm", k.tpm_limit && k.tpm_limit + " tpm", k.max_parallel_requests && k.max_parallel_requests + " parallel"].filter(Boolean).join(", ");
      return el("tr", { "data-alias": k.key_alias || "" },
        el("td", {}, k.key_alias || ""), el("td", {}, el("code", {}, short(k.token))),
        el("td", {}, (k.models || []).join(", ") || "all"),
        el("td", {}, money(k.spend || 0) + (k.max_budget ? " / " + money(k.max_budget) + (k.budget_duration ? " per " + k.budget_duration : "") : "")),
        el("td", {}, limits || "-"), el("td", {}, k.expires || "never"),
        el("td", {}, k.blocked ? el("span", { class: "badge bad" }, "blocked") : el("span", { class: "badge ok" }, "active")),
        el("td", { class: "actions" },
          k.blocked ? act("Unblock", "/key/unblock", { key: k.token }) : act("Block", "/key/block", { key: k.token }),
          el("button", { type: "button", onclick: () => edit(k) }, "Edit"),
          act("Regenerate", "/key/regenerate", { key: k.token }, "Regenerate this key? The old secret stops working.", true),
          act("Delete", "/key/delete", { keys: [k.token] }, "Delete this key?")));
    }));
  };
  let editing = null;
  const form = $("#create");
  const setMode = (key) => {
    editing = key;
    $("#create-title").textContent = key ? "Edit " + (key.key_alias || short(key.token)) : "Create a key";
    $("#create-submit").textContent = key ? "Save" : "Create";
    $("#create-cancel").hidden = !key;
  };
  const edit = (k) => {
    form.reset();
    const set = (n, v) => { if (v !== null && v !== undefined) form.elements[n].value = v; };
    set("key_alias", k.key_alias); set("models", (k.models || []).join(", "));
    set("max_budget", k.max_budget); set("budget_duration", k.budget_duration);
    set("rpm_limit", k.rpm_limit); set("tpm_limit", k.tpm_limit); set("max_parallel_requests", k.max_parallel_requests);
    if (k.metadata && Object.keys(k.metadata).length) set("metadata", JSON.stringify(k.metadata));
    // The expiry and budget period as they are: left so, they stay; emptied, they are
    // removed; a duration ("30d") sets a new one from now.
    set("duration", k.expires);
    setMode(k);
    $("#create-box").open = true;
    form.elements.key_alias.focus();
  };
  $("#create-cancel").addEventListener("click", () => { form.reset(); setMode(null); });
  const load = async () => {
    const data = await api("/key/list?return_full_object=true&size=100");
    all = data.keys;
    render();
  };
  $("#search").addEventListener("input", render);
  $("#create").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const body = {};
    // Creating, an empty field is left out; editing, it clears the value (the key API's null),
    // except the expiry left as it was shown.
    const empty = (n) => { if (editing) body[n] = null; };
    const text = (n) => { const v = String(f.get(n) || "").trim(); if (v) body[n] = v; else empty(n); };
    text("key_alias");
    // Sent again, a period would restart it: sent only when changed.
    const changed = (n, was) => !editing || String(f.get(n) || "").trim() !== (was || "");
    if (changed("budget_duration", editing && editing.budget_duration)) text("budget_duration");
    if (changed("duration", editing && editing.expires)) text("duration");
    ["max_budget", "rpm_limit", "tpm_limit", "max_parallel_requests"].forEach((n) => { const v = num(String(f.get(n) || "").trim()); if (v !== undefined) body[n] = v; else empty(n); });
    const models = String(f.get("models") || "").split(",").map((s) => s.trim()).filter(Boolean);
    if (models.length) body.models = models; else empty("models");
    try {
      const meta = String(f.get("metadata") || "").trim();
      if (meta) body.metadata = JSON.parse(meta); else empty("metadata");
      showError(null);
      if (editing) {
        body.key = editing.token;
        await api("/key/update", { method: "POST", body });
        setMode(null);
      } else {
        const r = await api("/key/generate", { method: "POST", body });
        showSecret(r.key);
      }
      ev.target.reset();
      await load();
    } catch (e) { showError(e); }
  });
  $("#copy").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("#secret-value").textContent); $("#copy").textContent = "Copied"; } catch (e) { showError(e); }
  });
  await load();
}

function showSecret(key) {
  $("#secret-value").textContent = key;
  $("#copy").textContent = "Copy";
  $("#secret").hidden = false;
}

// --- Request log ----------------------------------------------------------------------------

async function logs() {
  let cursor = null;
  const query = () => {
    const f = new FormData($("#filters"));
    const p = new URLSearchParams({ limit: "100" });
    for (const [k, v] of f.entries()) if (String(v).trim()) p.set(k, String(v).trim());
    return p;
  };
  const row = (l) => {
    const err = l.metadata && l.metadata.error_information;
    const ms = Date.parse(l.endTime) - Date.parse(l.startTime);
    return el("tr", { class: l.status === "success" ? "" : "failed", "data-request-id": l.request_id },
      el("td", {}, new Date(l.startTime).toLocaleString()), el("td", {}, el("code", {}, l.request_id)),
      el("td", {}, l.key_alias || short(l.api_key) || "master key"), el("td", {}, l.model_group), el("td", {}, short(l.model_id)),
      el("td", {}, el("span", { class: "badge " + (l.status === "success" ? "ok" : "bad") }, l.status_code)),
      el("td", {}, (l.latency_ms ?? (isNaN(ms) ? "" : ms)) + " ms"),
      el("td", {}, l.time_to_first_token_ms === null || l.time_to_first_token_ms === undefined ? "" : l.time_to_first_token_ms + " ms"),
      el("td", {}, (l.prompt_tokens || 0) + " + " + (l.completion_tokens || 0)),
      el("td", { class: "cost" }, money(l.cost)),
      el("td", {}, (l.attempts || 1) + (l.fallbacks ? `, ${l.fallbacks} fallback${l.fallbacks > 1 ? "s" : ""}` : "")),
      el("td", {}, err ? err.error_class + ": " + (err.error_message || "") : ""));
  };
  const load = async (more) => {
    const p = query();
    if (more && cursor) p.set("cursor", cursor);
    const rows = await api("/spend/logs?" + p);
    const body = $("#logs tbody");
    if (more) body.append(...rows.map(row)); else fill("#logs", rows.map(row));
    cursor = rows.length ? rows[rows.length - 1].cursor : null;
    $("#more").hidden = rows.length < 100;
  };
  $("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); showError(null); load(false).catch(showError); });
  $("#more").addEventListener("click", () => load(true).catch(showError));
  await load(false);
}

// --- Spend ----------------------------------------------------------------------------------

async function spend() {
  const form = $("#range");
  form.start_date.value = form.start_date.value || daysAgo(30);
  form.end_date.value = form.end_date.value || today();
  const load = async () => {
    const r = "start_date=" + form.start_date.value + "&end_date=" + form.end_date.value;
    const [total, models, keys] = await Promise.all([
      api("/global/spend?" + r), api("/global/spend/models?limit=50&" + r), api("/global/spend/keys?limit=50&" + r),
    ]);
    $("#total").replaceChildren(card("Spend in range", money(total.spend)));
    const [providers, days] = await Promise.all([api("/global/spend/provider?" + r), api("/global/spend/days?" + r)]);
    fill("#by-provider", providers.map((p) => el("tr", {}, el("td", {}, p.provider), el("td", {}, p.requests), el("td", {}, money(p.spend)))));
    fill("#by-day", days.map((d) => el("tr", {}, el("td", {}, d.date), el("td", {}, d.requests), el("td", {}, money(d.spend)))));
    fill("#by-model", models.map((m) => el("tr", {}, el("td", {}, m.model), el("td", {}, money(m.total_spend)))));
    fill("#by-key", keys.map((k) => el("tr", {}, el("td", {}, k.key_alias || short(k.api_key)), el("td", {}, money(k.total_spend)))));
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load().catch(showError); });
  $("#csv").addEventListener("click", async (ev) => {
    ev.preventDefault();
    try {
      // Every row in the range, page by page (each page continues after the last row's cursor).
      const base = "/spend/logs?limit=10000&start_date=" + form.start_date.value + "&end_date=" + form.end_date.value;
      const rows = [];
      for (let page = await api(base); ; page = await api(base + "&cursor=" + encodeURIComponent(page[page.length - 1].cursor))) {
        rows.push(...page);
        if (page.length < 10000) break;
      }
      const cols = ["startTime", "request_id", "key_alias", "model_group", "model_id", "status_code", "prompt_tokens", "completion_tokens", "cost"];
      const esc = (v) => '"' + String(v === null || v === undefined ? "" : v).replace(/"/g, '""') + '"';
      const csv = [cols.join(",")].concat(rows.map((r) => cols.map((c) => esc(r[c])).join(","))).join("\n");
      const a = el("a", { href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })), download: "spend.csv" });
      a.click();
    } catch (e) { showError(e); }
  });
  await load();
}

// --- Alerts ---------------------------------------------------------------------------------

async function alerts() {
  const load = async () => {
    const r = await api("/alerting/recent");
    $("#alerting-state").textContent = r.enabled
      ? "Alerting is on: the most recent alerts, newest first, and what became of every alert since the gateway started."
      : "Alerting is off: set general_settings.alerting (see docs/alerting.md).";
    const sum = (result) => r.counts.filter((c) => c.result === result).reduce((a, c) => a + c.count, 0);
    $("#alert-counts").replaceChildren(
      card("Recent alerts", r.alerts.length),
      card("Sent", sum("sent")),
      card("Failed", sum("failed"), sum("failed") ? "bad" : ""),
      card("Deduplicated", sum("deduplicated")),
      card("Dropped", sum("dropped"), sum("dropped") ? "bad" : ""),
    );
    fill("#alerts", r.alerts.slice().reverse().map((a) => el("tr", { "data-alert-type": a.alert_type, class: a.level === "High" ? "failed" : "" },
      el("td", {}, a.timestamp ? new Date(a.timestamp).toLocaleString() : ""), el("td", {}, a.alert_type), el("td", {}, a.event || ""),
      el("td", {}, a.level || ""), el("td", { class: "message" }, a.event_message || ""),
      el("td", {}, Object.entries(a.delivery || {}).map(([k, v]) => k + ": " + v).join(", ")))));
    fill("#alert-count-table", r.counts.map((c) => el("tr", {}, el("td", {}, c.alert_type), el("td", {}, c.channel), el("td", {}, c.result), el("td", {}, c.count))));
  };
  $("#alerts-refresh").addEventListener("click", () => load().catch(showError));
  await load();
}

// --- Config ---------------------------------------------------------------------------------

async function config() {
  const load = async () => {
    const c = await api("/config");
    $("#config-path").textContent = "Config file: " + (c.path || "(none)");
    $("#yaml").textContent = c.yaml || "";
    const notices = (c.notices || []).map((n) => el("li", {}, n));
    $("#notices").replaceChildren(...(notices.length ? notices : [el("li", {}, "None")]));
  };
  $("#reload").addEventListener("click", async () => {
    const out = $("#reload-result");
    out.textContent = "Reloading…";
    try {
      const r = await api("/config/reload", { method: "POST" });
      out.textContent = "Reloaded: " + JSON.stringify(r);
      await load();
    } catch (e) {
      const problems = (e.data && e.data.error && e.data.error.problems) || [];
      out.textContent = e.message + (problems.length ? ": " + problems.join("; ") : "");
    }
  });
  await load();
}

// --- Shell ----------------------------------------------------------------------------------

const pages = { overview, models, keys, logs, spend, alerts, config };

document.addEventListener("DOMContentLoaded", () => {
  const logout = $("#logout");
  if (logout) logout.addEventListener("click", async () => {
    await fetch("/ui/logout", { method: "POST", headers: { "x-csrf-token": csrf }, credentials: "same-origin" });
    location.href = "/ui/login";
  });
  const page = pages[document.body.dataset.page];
  if (page) page().then(() => document.body.setAttribute("data-loaded", "true")).catch((e) => {
    showError(e);
    document.body.setAttribute("data-loaded", "error");
  });
});
