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

// A period as the admin API gives it ("2592000s") in the largest whole unit ("30d").
function period(p) {
  const m = /^(\d+)s$/.exec(p || "");
  if (!m) return p || "";
  const s = Number(m[1]);
  for (const [unit, n] of [["d", 86400], ["h", 3600], ["m", 60]]) if (s && s % n === 0) return s / n + unit;
  return p;
}

// "1.20 / $10.00 per 30d": spend against a budget and its period.
const spendOf = (spent, max, per) => money(spent || 0) + (max ? " / " + money(max) + (per ? " per " + period(per) : "") : "");
// "100 rpm, 5 parallel", or "-".
const limitsOf = (x) => [x.rpm_limit && x.rpm_limit + " rpm", x.tpm_limit && x.tpm_limit + " tpm",
  x.max_parallel_requests && x.max_parallel_requests + " parallel"].filter(Boolean).join(", ") || "-";
const state = (blocked) => (blocked ? el("span", { class: "badge bad" }, "blocked") : el("span", { class: "badge ok" }, "active"));

// A table row's button that POSTs `body` to `path` (after `confirmText`, if given), then calls
// `then` with the answer (to reload the page's data); errors go to the page's error line.
function action(label, path, body, then, confirmText) {
  return el("button", { type: "button", onclick: async () => {
    if (confirmText && !confirm(confirmText)) return;
    try { showError(null); await then(await api(path, { method: "POST", body: typeof body === "function" ? await body() : body })); } catch (e) { showError(e); }
  } }, label);
}

// The JSON body of a create or edit form. `fields` names the form's inputs by kind: `text`,
// `numbers`, `lists` (comma separated), `json`, and `ifChanged` ({name: value as shown}).
// Creating, an empty field is left out; editing, it is sent as null (the admin API's "unset").
// Editing, an `ifChanged` field is sent only when changed from what the form showed: a budget
// period or expiry sent again would restart from now.
function formBody(form, editing, fields) {
  const f = new FormData(form);
  const body = {};
  const val = (n) => String(f.get(n) || "").trim();
  const put = (n, v) => { if (v !== undefined) body[n] = v; else if (editing) body[n] = null; };
  for (const n of fields.text || []) put(n, val(n) || undefined);
  for (const n of fields.numbers || []) put(n, num(val(n)));
  for (const n of fields.lists || []) { const l = val(n).split(",").map((s) => s.trim()).filter(Boolean); put(n, l.length ? l : undefined); }
  for (const n of fields.json || []) put(n, val(n) ? JSON.parse(val(n)) : undefined);
  for (const [n, shown] of Object.entries(fields.ifChanged || {})) if (!editing || val(n) !== (shown || "")) put(n, val(n) || undefined);
  return body;
}

// Fills a form's inputs from `values` ({name: value}); null and undefined leave one empty.
function fillForm(form, values) {
  form.reset();
  for (const [n, v] of Object.entries(values)) if (v !== null && v !== undefined && form.elements[n]) form.elements[n].value = v;
}

// A create form in a <details> that also edits: `edit(x)` fills it from `x` and opens it,
// `done()` (or Cancel) goes back to creating. `ids` names the box, its summary, the submit and
// cancel buttons; `labels` is [create title, create button, edit title of x].
function editor(form, ids, labels) {
  const ed = { editing: null };
  ed.mode = (x) => {
    ed.editing = x;
    $(ids.title).textContent = x ? labels[2](x) : labels[0];
    $(ids.submit).textContent = x ? "Save" : labels[1];
    $(ids.cancel).hidden = !x;
  };
  ed.edit = (x, values) => { fillForm(form, values); ed.mode(x); $(ids.box).open = true; form.elements[0].focus(); };
  ed.done = () => { form.reset(); ed.mode(null); };
  $(ids.cancel).addEventListener("click", ed.done);
  return ed;
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
  let teamNames = {};
  const form = $("#create");
  const ed = editor(form, { box: "#create-box", title: "#create-title", submit: "#create-submit", cancel: "#create-cancel" },
    ["Create a key", "Create", (k) => "Edit " + (k.key_alias || short(k.token))]);
  const render = () => {
    const q = $("#search").value.toLowerCase();
    const shown = all.filter((k) => !q || (k.key_alias || "").toLowerCase().includes(q) || (k.token || "").includes(q));
    fill("#keys", shown.map((k) => {
      const act = (label, path, body, confirmText, secret) => action(label, path, body, async (r) => { if (secret && r && r.key) showSecret(r.key); await load(); }, confirmText);
      return el("tr", { "data-alias": k.key_alias || "" },
        el("td", {}, k.key_alias || ""), el("td", {}, el("code", {}, short(k.token))),
        el("td", {}, (k.models || []).join(", ") || "all"),
        el("td", {}, spendOf(k.spend, k.max_budget, k.budget_duration)),
        el("td", {}, limitsOf(k)), el("td", {}, k.expires || "never"),
        el("td", {}, k.team_id ? el("a", { href: "/ui/teams?team_id=" + encodeURIComponent(k.team_id) }, teamNames[k.team_id] || short(k.team_id)) : ""),
        el("td", {}, state(k.blocked)),
        el("td", { class: "actions" },
          k.blocked ? act("Unblock", "/key/unblock", { key: k.token }) : act("Block", "/key/block", { key: k.token }),
          el("button", { type: "button", onclick: () => edit(k) }, "Edit"),
          act("Regenerate", "/key/regenerate", { key: k.token }, "Regenerate this key? The old secret stops working.", true),
          act("Delete", "/key/delete", { keys: [k.token] }, "Delete this key?")));
    }));
  };
  // The expiry and budget period as they are: left so, they stay; emptied, they are removed;
  // a duration ("30d") sets a new one from now.
  const edit = (k) => {
    // A team_id that names no team (a label from before teams) is shown, and kept unless changed.
    const choice = $("#key-team");
    if (k.team_id && ![...choice.options].some((o) => o.value === k.team_id)) choice.append(el("option", { value: k.team_id }, k.team_id));
    ed.edit(k, {
      key_alias: k.key_alias, team_id: k.team_id || "", models: (k.models || []).join(", "),
      max_budget: k.max_budget, budget_duration: period(k.budget_duration), duration: k.expires,
      rpm_limit: k.rpm_limit, tpm_limit: k.tpm_limit, max_parallel_requests: k.max_parallel_requests,
      metadata: k.metadata && Object.keys(k.metadata).length ? JSON.stringify(k.metadata) : null,
    });
  };
  const load = async () => {
    const data = await api("/key/list?return_full_object=true&size=100");
    all = data.keys;
    render();
  };
  // The Team choice: every team (a gateway that keeps none offers "no team" only).
  const teams = await api("/team/list").catch(() => []);
  teamNames = Object.fromEntries(teams.map((t) => [t.team_id, t.team_alias || t.team_id]));
  $("#key-team").append(...teams.map((t) => el("option", { value: t.team_id }, t.team_alias || t.team_id)));
  $("#search").addEventListener("input", render);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const editing = ed.editing;
    try {
      const body = formBody(form, editing, {
        text: ["key_alias"], numbers: ["max_budget", "rpm_limit", "tpm_limit", "max_parallel_requests"],
        lists: ["models"], json: ["metadata"],
        ifChanged: { team_id: editing && editing.team_id, budget_duration: editing && period(editing.budget_duration), duration: editing && editing.expires },
      });
      showError(null);
      if (editing) {
        body.key = editing.token;
        await api("/key/update", { method: "POST", body });
      } else {
        const r = await api("/key/generate", { method: "POST", body });
        showSecret(r.key);
      }
      ed.done();
      await load();
    } catch (e) { showError(e); }
  });
  $("#copy").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("#secret-value").textContent); $("#copy").textContent = "Copied"; } catch (e) { showError(e); }
  });
  // /ui/keys?team_id=... (the Teams page's "Create a key in this team"): the form, in that team.
  const team = new URLSearchParams(location.search).get("team_id");
  if (team && teamNames[team]) {
    form.elements.team_id.value = team;
    $("#create-title").textContent = "Create a key in team " + teamNames[team];
    $("#create-box").open = true;
  }
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

// Each page's script, by <body data-page>; spend.js and teams.js add theirs.
const pages = { overview, models, keys, logs, alerts, config };

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
