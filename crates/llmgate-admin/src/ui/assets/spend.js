// llmgate admin UI: the Spend page (loaded after app.js, whose helpers it uses). Every figure
// is summed by the database over the range: /global/spend/* and /global/spend/report.
"use strict";

async function spend() {
  const form = $("#range");
  form.start_date.value = form.start_date.value || daysAgo(30);
  form.end_date.value = form.end_date.value || today();
  const range = () => "start_date=" + form.start_date.value + "&end_date=" + form.end_date.value;
  // Names for the ids the sums are kept by: team aliases, and key aliases by token.
  const teams = await api("/team/list").catch(() => []);
  const teamName = (id) => (id === null || id === undefined ? "no team" : (teams.find((t) => t.team_id === id) || {}).team_alias || id);
  let keyAlias = {};
  const row = (name, requests, spent) => el("tr", {}, el("td", {}, name), el("td", {}, requests), el("td", {}, money(spent)));
  const load = async () => {
    const r = range();
    const [total, models, keys, providers, days] = await Promise.all([
      api("/global/spend?" + r), api("/global/spend/models?limit=50&" + r), api("/global/spend/keys?limit=100&" + r),
      api("/global/spend/provider?" + r), api("/global/spend/days?" + r),
    ]);
    $("#total").replaceChildren(card("Spend in range", money(total.spend)));
    fill("#by-provider", providers.map((p) => row(p.provider, p.requests, p.spend)));
    fill("#by-day", days.map((d) => row(d.date, d.requests, d.spend)));
    fill("#by-model", models.map((m) => el("tr", {}, el("td", {}, m.model), el("td", {}, money(m.total_spend)))));
    fill("#by-key", keys.map((k) => el("tr", {}, el("td", {}, k.key_alias || short(k.api_key)), el("td", {}, money(k.total_spend)))));
    keyAlias = Object.fromEntries(keys.filter((k) => k.key_alias).map((k) => [k.api_key, k.key_alias]));
    const [byTeam, byEndUser, byUser] = await Promise.all([
      api("/global/spend/teams?" + r), api("/global/spend/end_users?" + r), api("/global/spend/users?" + r),
    ]);
    fill("#by-team", byTeam.total_spend_per_team.map((t) => row(teamName(t.team_id), t.requests, t.total_spend)));
    fill("#by-end-user", byEndUser.map((u) => row(u.end_user === null ? "none given" : u.end_user, u.total_count, u.total_spend)));
    fill("#by-user", byUser.map((u) => row(u.user_id === null ? "no user" : u.user_id, u.requests, u.total_spend)));
    await report();
  };
  // The report: per UTC day, newest first, then per team, end user or key, with its models.
  const report = async () => {
    const group = $("#report-form").group_by.value;
    const [list, key, label, none] = {
      team: ["teams", "team_name", "Team", "no team"],
      customer: ["customers", "customer", "End user", "none given"],
      api_key: ["api_keys", "api_key", "Key", "master key"],
    }[group];
    const name = (id) => (id === null ? none : group === "team" ? teamName(id) : group === "api_key" ? keyAlias[id] || short(id) : id);
    const days = await api("/global/spend/report?group_by=" + group + "&" + range());
    $("#report-group").textContent = label;
    fill("#report", days.flatMap((d) => d[list].map((g) => el("tr", { "data-group": g[key] === null ? "" : g[key] },
      el("td", {}, d.group_by_day), el("td", {}, name(g[key])), el("td", {}, g.total_requests), el("td", {}, money(g.total_spend)),
      el("td", {}, g.metadata.map((m) => `${m.model}: ${money(m.spend)} (${m.requests} request${m.requests === 1 ? "" : "s"}, ${m.total_tokens} tokens)`).join("; "))))));
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); showError(null); load().catch(showError); });
  $("#report-form").addEventListener("submit", (ev) => { ev.preventDefault(); showError(null); report().catch(showError); });
  $("#csv").addEventListener("click", async (ev) => {
    ev.preventDefault();
    try {
      // Every row in the range, page by page (each page continues after the last row's cursor).
      const base = "/spend/logs?limit=10000&" + range();
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

pages.spend = spend;
