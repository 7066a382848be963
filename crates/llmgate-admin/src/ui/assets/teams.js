// llmgate admin UI: the Teams and End users pages (loaded after app.js, whose helpers they
// use). Teams are /team/*, end users (LiteLLM's customers) /customer/*, both master key only.
"use strict";

// --- Teams ----------------------------------------------------------------------------------

async function teams() {
  let all = [];
  let shown = new URLSearchParams(location.search).get("team_id");
  const nameOf = (t) => t.team_alias || t.team_id;
  const form = $("#team-form");
  const ed = editor(form, { box: "#team-box", title: "#team-form-title", submit: "#team-submit", cancel: "#team-cancel" },
    ["Create a team", "Create", (t) => "Edit " + nameOf(t)]);
  const load = async () => {
    all = await api("/team/list");
    fill("#teams", all.map(row));
    const t = all.find((x) => x.team_id === shown);
    if (t) await detail(t); else $("#team-detail").hidden = true;
  };
  const act = (label, path, body, confirmText) => action(label, path, body, load, confirmText);
  const row = (t) => el("tr", { "data-team": nameOf(t), class: t.team_id === shown ? "selected" : "" },
    el("td", {}, t.team_alias || ""), el("td", {}, el("code", {}, short(t.team_id))),
    el("td", {}, (t.models || []).join(", ") || "all"),
    el("td", {}, spendOf(t.spend, t.max_budget, t.budget_duration)),
    el("td", {}, limitsOf(t)), el("td", {}, (t.members_with_roles || []).length),
    el("td", {}, state(t.blocked)),
    el("td", { class: "actions" },
      el("button", { type: "button", onclick: () => { shown = t.team_id; load().catch(showError); } }, "Members and keys"),
      t.blocked ? act("Unblock", "/team/unblock", { team_id: t.team_id }) : act("Block", "/team/block", { team_id: t.team_id }),
      el("button", { type: "button", onclick: () => edit(t) }, "Edit"),
      el("button", { type: "button", onclick: () => remove(t) }, "Delete")));
  // Deleting a team deletes its keys too (as LiteLLM does): the confirm says how many.
  const remove = async (t) => {
    try {
      showError(null);
      const n = (await api("/key/list?size=1&team_id=" + encodeURIComponent(t.team_id))).total_count;
      if (!confirm(`Delete the team ${nameOf(t)}? Its ${n} key${n === 1 ? " is" : "s are"} deleted too.`)) return;
      await api("/team/delete", { method: "POST", body: { team_ids: [t.team_id] } });
      if (shown === t.team_id) shown = null;
      await load();
    } catch (e) { showError(e); }
  };
  const edit = (t) => ed.edit(t, {
    team_alias: t.team_alias, models: (t.models || []).join(", "), max_budget: t.max_budget,
    budget_duration: period(t.budget_duration), rpm_limit: t.rpm_limit, tpm_limit: t.tpm_limit,
    max_parallel_requests: t.max_parallel_requests,
    metadata: t.metadata && Object.keys(t.metadata).length ? JSON.stringify(t.metadata) : null,
  });
  // One team's members (add, remove) and keys, with a link to create a key in it.
  const detail = async (t) => {
    $("#team-detail").hidden = false;
    $("#team-title").textContent = "Team " + nameOf(t);
    fill("#members", (t.members_with_roles || []).map((m) => el("tr", { "data-member": m.user_id || m.user_email },
      el("td", {}, m.user_id || ""), el("td", {}, m.user_email || ""), el("td", {}, m.role),
      el("td", {}, act("Remove", "/team/member_delete", m.user_id ? { team_id: t.team_id, user_id: m.user_id } : { team_id: t.team_id, user_email: m.user_email })))));
    const keys = (await api("/key/list?return_full_object=true&size=100&team_id=" + encodeURIComponent(t.team_id))).keys;
    fill("#team-keys", keys.map((k) => el("tr", { "data-alias": k.key_alias || "" },
      el("td", {}, k.key_alias || ""), el("td", {}, el("code", {}, short(k.token))),
      el("td", {}, spendOf(k.spend, k.max_budget, k.budget_duration)), el("td", {}, state(k.blocked)))));
    $("#team-new-key").href = "/ui/keys?team_id=" + encodeURIComponent(t.team_id);
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const editing = ed.editing;
    try {
      const body = formBody(form, editing, {
        text: ["team_alias"], numbers: ["max_budget", "rpm_limit", "tpm_limit", "max_parallel_requests"],
        lists: ["models"], json: ["metadata"], ifChanged: { budget_duration: editing && period(editing.budget_duration) },
      });
      showError(null);
      if (editing) await api("/team/update", { method: "POST", body: { ...body, team_id: editing.team_id } });
      else shown = (await api("/team/new", { method: "POST", body })).team_id;
      ed.done();
      await load();
    } catch (e) { showError(e); }
  });
  $("#member-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const member = { role: f.get("role") };
    for (const n of ["user_id", "user_email"]) { const v = String(f.get(n) || "").trim(); if (v) member[n] = v; }
    try {
      showError(null);
      await api("/team/member_add", { method: "POST", body: { team_id: shown, member } });
      ev.target.reset();
      await load();
    } catch (e) { showError(e); }
  });
  await load();
}

// --- End users ------------------------------------------------------------------------------

async function endUsers() {
  let all = [];
  const form = $("#customer-form");
  const ed = editor(form, { box: "#customer-box", title: "#customer-form-title", submit: "#customer-submit", cancel: "#customer-cancel" },
    ["Add an end user", "Add", (u) => "Edit " + u.user_id]);
  const budget = (u) => u.litellm_budget_table || {};
  const act = (label, path, body, confirmText) => action(label, path, body, load, confirmText);
  const render = () => {
    const q = $("#customer-search").value.toLowerCase();
    const match = (u) => !q || u.user_id.toLowerCase().includes(q) || (u.alias || "").toLowerCase().includes(q);
    fill("#customers", all.filter(match).map((u) => el("tr", { "data-user": u.user_id },
      el("td", {}, u.user_id), el("td", {}, u.alias || ""),
      el("td", {}, spendOf(u.spend, budget(u).max_budget, budget(u).budget_duration)),
      el("td", {}, budget(u).budget_reset_at ? new Date(budget(u).budget_reset_at).toLocaleString() : ""),
      el("td", {}, state(u.blocked)),
      el("td", { class: "actions" },
        u.blocked ? act("Unblock", "/customer/unblock", { user_ids: [u.user_id] }) : act("Block", "/customer/block", { user_ids: [u.user_id] }),
        el("button", { type: "button", onclick: () => edit(u) }, "Edit"),
        act("Delete", "/customer/delete", { user_ids: [u.user_id] }, `Delete the end user ${u.user_id}? Its budget and spend total go; a later request of it starts a new total.`)))));
  };
  const edit = (u) => {
    ed.edit(u, { user_id: u.user_id, alias: u.alias, max_budget: budget(u).max_budget, budget_duration: period(budget(u).budget_duration) });
    form.elements.user_id.readOnly = true;
    form.elements.alias.focus();
  };
  $("#customer-cancel").addEventListener("click", () => { form.elements.user_id.readOnly = false; });
  const load = async () => {
    all = await api("/customer/list");
    render();
  };
  $("#customer-search").addEventListener("input", render);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const editing = ed.editing;
    try {
      const body = formBody(form, editing, {
        text: ["alias"], numbers: ["max_budget"],
        ifChanged: { budget_duration: editing && period(budget(editing).budget_duration) },
      });
      body.user_id = editing ? editing.user_id : String(new FormData(form).get("user_id") || "").trim();
      showError(null);
      await api(editing ? "/customer/update" : "/customer/new", { method: "POST", body });
      ed.done();
      form.elements.user_id.readOnly = false;
      await load();
    } catch (e) { showError(e); }
  });
  await load();
}

pages.teams = teams;
pages["end-users"] = endUsers;
