// The admin UI's browser test: the real `llmgate` binary against two mock upstreams (one that
// answers, one that refuses its key), driven in Debian's headless chromium by playwright-core.
// Run through tests/ui/run, which installs the tools and builds the binary.
//
// Checks, in order: a page without a session goes to sign-in; a wrong key does not sign in;
// the master key does; every page loads with no console error; a key created on the Keys page
// (its secret shown once) works with the OpenAI SDK; the request appears in the request log
// with its cost; blocking the key on the Keys page makes the SDK's next call a 401; a failing
// deployment is marked on the Models page; the edit form clears what is emptied (budget,
// limits, models, expiry, alias: the key API's null); the Alerts page lists the cooldown alert
// the webhook receiver got, with the counts; the Overview's figures are the server's
// (GET /global/overview); the Config page masks every secret; on the Teams page a team is
// created, given members (one removed), edited, given a key through "Create a key in this
// team" (which answers the SDK; editing a key keeps its team unless changed), blocked (its keys get 401) and unblocked, and another team is
// deleted with its key after a confirm naming it; on the End users page the end user that
// spent is listed with its spend, one is added with a budget, its budget edited, one blocked
// (its requests get 403) and unblocked, one deleted; the Spend page shows spend by team, end
// user and internal user and the report grouped by end user, key and team as the API sums
// them; the overview, alerts, teams, end users and spend fit a phone's width. Screenshots go
// to $SCREENSHOTS (docs/ui/).

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import OpenAI from "openai";

const BIN = process.env.LLMGATE_BIN;
const SHOTS = process.env.SCREENSHOTS;
const MASTER = "sk-ui-test-master-5f1c";
const UPSTREAM_KEY = "sk-upstream-secret-9d2e";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

const step = (s) => console.log("ui test: " + s);

function listen(handler) {
  return new Promise((resolve) => {
    const server = createServer(handler);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

function readBody(req) {
  return new Promise((resolve) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => resolve(data));
  });
}

// An OpenAI-compatible upstream answering every chat completion.
const good = await listen(async (req, res) => {
  const body = JSON.parse((await readBody(req)) || "{}");
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({
    id: "chatcmpl-mock", object: "chat.completion", created: Math.floor(Date.now() / 1000),
    model: body.model || "gpt-4o-mini",
    choices: [{ index: 0, message: { role: "assistant", content: "Hello from the mock." }, finish_reason: "stop" }],
    usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
  }));
});
// An upstream that refuses its key: the router cools the deployment down at once.
const bad = await listen(async (req, res) => {
  await readBody(req);
  res.statusCode = 401;
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } }));
});

// The alerting webhook's receiver.
const received = [];
const receiver = await listen(async (req, res) => {
  received.push(JSON.parse((await readBody(req)) || "{}"));
  res.end("ok");
});

const freePort = async () => {
  const s = await listen(() => {});
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
};

const dir = mkdtempSync(join(tmpdir(), "llmgate-ui-"));
const config = join(dir, "config.yaml");
writeFileSync(config, `model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:${good.address().port}/v1
      api_key: ${UPSTREAM_KEY}
      rpm: 100
  - model_name: broken-model
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:${bad.address().port}/v1
      api_key: ${UPSTREAM_KEY}
router_settings:
  cooldown_time: 600
general_settings:
  master_key: ${MASTER}
  alerting: ["webhook"]
`);

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const gateway = spawn(BIN, ["--config", config, "--host", "127.0.0.1", "--port", String(port)], {
  cwd: dir, stdio: ["ignore", "inherit", "inherit"],
  env: { ...process.env, RUST_LOG: "warn", WEBHOOK_URL: `http://127.0.0.1:${receiver.address().port}/alerts` },
});
let exited = false;
gateway.on("exit", (code) => { exited = true; if (code) console.error(`llmgate exited with ${code}`); });

async function waitUp() {
  for (let i = 0; i < 200; i++) {
    if (exited) throw new Error("llmgate exited before it answered");
    try {
      const r = await fetch(base + "/health/liveliness");
      if (r.ok) return;
    } catch (_) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("llmgate did not answer within 20 s");
}

async function until(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { if (Date.now() > end) throw e; }
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 500));
  }
}

let browser;
let failed = false;
try {
  await waitUp();
  step(`gateway up at ${base}`);

  // A wrong key does not sign in (checked over HTTP: the browser would log the 401 page).
  for (const key of ["sk-not-the-master", ""]) {
    const r = await fetch(base + "/ui/login", { method: "POST", redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" }, body: "key=" + key });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get("set-cookie"), null);
  }
  // The UI's API answers nobody without a session or the master key.
  assert.equal((await fetch(base + "/ui/api/key/list")).status, 401);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`${page.url()}: ${m.text()}`); });
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) external.push(r.url()); });

  const shot = async (name, p = page) => { if (SHOTS) await p.screenshot({ path: join(SHOTS, name), fullPage: true }); };
  const open = async (path) => {
    await page.goto(base + path);
    await page.waitForSelector("body[data-loaded]");
    assert.equal(await page.getAttribute("body", "data-loaded"), "true", `${path} failed: ${await page.textContent("#error")}`);
  };

  // Sign in.
  await page.goto(base + "/ui/keys");
  assert.ok(page.url().endsWith("/ui/login"), "a page without a session goes to sign-in");
  await shot("login.png");
  await page.fill("#key", MASTER);
  await Promise.all([page.waitForURL(base + "/ui/"), page.click("form:has(#key) button[type=submit]")]);
  const cookie = (await context.cookies()).find((c) => c.name === "llmgate_ui");
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === "Strict", "session cookie is HttpOnly, SameSite=Strict");
  assert.ok(!cookie.value.includes(MASTER), "the cookie is not the key");
  step("signed in");

  // Create a key; its secret is shown once.
  await open("/ui/keys");
  await page.click("#create-box summary");
  await page.fill("input[name=key_alias]", "ui-test-key");
  await page.fill("input[name=max_budget]", "5");
  await page.fill("input[name=rpm_limit]", "100");
  await page.click("#create button[type=submit]");
  await page.waitForSelector("#secret:not([hidden])");
  const secret = (await page.textContent("#secret-value")).trim();
  assert.match(secret, /^sk-/);
  await page.waitForSelector('tr[data-alias="ui-test-key"]');
  await page.click("#copy");
  // The screenshot hides the secret (it is a throwaway key, but secret scanners cannot tell).
  const hideSecret = [page.locator("#secret-value")];
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, "copy puts the secret on the clipboard");
  if (SHOTS) await page.screenshot({ path: join(SHOTS, "keys-created.png"), fullPage: true, mask: hideSecret });
  await open("/ui/keys");
  assert.ok(!(await page.content()).includes(secret), "the secret is not shown again");
  step("key created");

  // Use it with the OpenAI SDK.
  const client = new OpenAI({ apiKey: secret, baseURL: base + "/v1", maxRetries: 0 });
  const answer = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
  assert.equal(answer.choices[0].message.content, "Hello from the mock.");
  step("the SDK call with the new key answered");

  // The request appears in the request log, with its cost.
  await open("/ui/logs");
  await page.fill("#filters input[name=key_alias]", "ui-test-key");
  const row = await until("the request in the log", async () => {
    await page.click("#filters button[type=submit]");
    await page.waitForTimeout(300);
    const r = await page.$("#logs tbody tr[data-request-id]");
    return r;
  });
  const cells = await row.$$eval("td", (tds) => tds.map((t) => t.textContent));
  assert.equal(cells[2], "ui-test-key");
  assert.equal(cells[3], "gpt-4o-mini");
  const cost = await row.$eval("td.cost", (t) => t.textContent);
  assert.match(cost, /^\$0\.\d*[1-9]/, "a cost above zero: " + cost);
  await shot("request-log.png");
  step(`in the request log with cost ${cost}`);

  // Edit the key: a new rpm limit shows in the list.
  await open("/ui/keys");
  await page.click('tr[data-alias="ui-test-key"] button:has-text("Edit")');
  assert.equal(await page.inputValue("input[name=rpm_limit]"), "100");
  await page.fill("input[name=rpm_limit]", "250");
  await page.fill("input[name=models]", "gpt-4o-mini");
  await page.fill("input[name=duration]", "30d");
  await page.click("#create button[type=submit]");
  await page.waitForSelector('tr[data-alias="ui-test-key"] td:has-text("250 rpm")');
  const info = async () => (await (await fetch(base + "/key/info?key=" + secret, { headers: { authorization: "Bearer " + MASTER } })).json()).info;
  let k = await info();
  assert.deepEqual([k.rpm_limit, k.max_budget, k.models], [250, 5, ["gpt-4o-mini"]]);
  assert.ok(k.expires, "an expiry was set");
  // Editing again, the expiry left as shown stays; emptied fields are removed.
  await page.click('tr[data-alias="ui-test-key"] button:has-text("Edit")');
  await page.fill("input[name=tpm_limit]", "1000");
  await page.click("#create button[type=submit]");
  await page.waitForSelector('tr[data-alias="ui-test-key"] td:has-text("1000 tpm")');
  assert.equal((await info()).expires, k.expires, "an expiry left as shown is kept");
  await page.click('tr[data-alias="ui-test-key"] button:has-text("Edit")');
  assert.equal(await page.inputValue("input[name=duration]"), k.expires);
  for (const n of ["max_budget", "rpm_limit", "tpm_limit", "models", "duration"]) await page.fill(`input[name=${n}]`, "");
  await page.click("#create button[type=submit]");
  await page.waitForSelector('tr[data-alias="ui-test-key"] td:has-text("never")');
  k = await info();
  assert.deepEqual([k.rpm_limit, k.tpm_limit, k.max_budget, k.models, k.expires], [null, null, null, [], null]);
  const cleared = await page.$$eval('tr[data-alias="ui-test-key"] td', (tds) => tds.map((t) => t.textContent));
  assert.equal(cleared[2], "all");
  assert.equal(cleared[4], "-");
  step("key edited; emptied fields cleared (budget, limits, models, expiry)");

  // Block the key on the Keys page: the SDK is refused.
  await open("/ui/keys");
  await page.click('tr[data-alias="ui-test-key"] button:has-text("Block")');
  await page.waitForSelector('tr[data-alias="ui-test-key"] .badge.bad');
  await until("the blocked key refused", async () => {
    try { await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }); return false; }
    catch (e) { assert.equal(e.status, 401, String(e)); return true; }
  }, 10000);
  await shot("keys-blocked.png");
  step("blocked key refused with 401");
  // The alias is cleared too: the row has none, and the API says null.
  await page.click('tr[data-alias="ui-test-key"] button:has-text("Edit")');
  await page.fill("input[name=key_alias]", "");
  await page.click("#create button[type=submit]");
  await page.waitForSelector('tr[data-alias="ui-test-key"]', { state: "detached" });
  assert.equal((await info()).key_alias, null);
  step("alias cleared");

  // A failing deployment is marked on the Models page.
  const master = new OpenAI({ apiKey: MASTER, baseURL: base + "/v1", maxRetries: 0 });
  await master.chat.completions.create({ model: "broken-model", messages: [{ role: "user", content: "hi" }] }).catch(() => {});
  await open("/ui/models");
  const marked = await page.$$eval("#deployments tbody tr", (trs) => trs.map((t) => t.textContent));
  assert.ok(marked.some((t) => t.includes("broken-model") && t.includes("cooling down")), marked.join("\n"));
  assert.ok(marked.some((t) => t.includes("gpt-4o-mini") && t.includes("in rotation") && t.includes("1 / 100")), "rpm used against the limit:\n" + marked.join("\n"));
  await page.click("#health");
  await page.waitForFunction(() => /\d+ healthy, \d+ unhealthy/.test(document.querySelector("#health-result").textContent));
  const health = await page.textContent("#health-result");
  assert.equal(health, "1 healthy, 1 unhealthy");
  await shot("models.png");
  step("the failing deployment is marked");

  // The Alerts page lists the cooldown alert the receiver got, with the counts.
  await until("the cooldown alert at the receiver", () => received.some((a) => a.alert_type === "cooldown_deployment"));
  await open("/ui/alerts");
  const alertRow = await until("the cooldown alert on the Alerts page", async () => {
    await page.click("#alerts-refresh");
    await page.waitForTimeout(300);
    const r = await page.$('#alerts tbody tr[data-alert-type="cooldown_deployment"]');
    const sent = await page.$$eval("#alert-counts .card", (cs) => cs.map((c) => c.textContent)).then((t) => t.find((x) => x.startsWith("Sent")));
    return r && sent !== "Sent0" ? r : null;
  });
  const alertText = await alertRow.textContent();
  assert.ok(alertText.includes("broken-model") && alertText.includes("webhook: sent"), alertText);
  const countRows = await page.$$eval("#alert-count-table tbody tr", (trs) => trs.map((t) => t.textContent));
  assert.ok(countRows.some((t) => t.startsWith("cooldown_deploymentwebhooksent")), countRows.join("\n"));
  await shot("alerts.png");
  step("the Alerts page lists the cooldown alert and the counts");

  // The failure is in the request log too, with its error.
  await open("/ui/logs");
  await page.selectOption("#filters select[name=status]", "failure");
  await page.fill("#filters input[name=model]", "broken-model");
  const failedRow = await until("the failed request in the log", async () => {
    await page.click("#filters button[type=submit]");
    await page.waitForTimeout(300);
    return page.$("#logs tbody tr[data-request-id]");
  });
  const failedText = await failedRow.textContent();
  assert.ok(failedText.includes("401") && failedText.includes("Incorrect API key"), failedText);
  await shot("request-log-failure.png");
  step("the failed request is in the log with its error");

  // Config: every secret masked.
  await open("/ui/config");
  const yaml = await page.textContent("#yaml");
  assert.ok(yaml.includes("model_list"), yaml);
  assert.ok(!yaml.includes(UPSTREAM_KEY) && !yaml.includes(MASTER), "secrets masked:\n" + yaml);
  await page.click("#reload");
  await page.waitForFunction(() => document.querySelector("#reload-result").textContent.startsWith("Reloaded"));
  await shot("config.png");
  step("config masked; reloaded from the Config page");

  // Teams: create one, add and remove members, edit it, create a key in it from its page, use
  // the key, block and unblock the team, and delete another team (the confirm names its keys).
  const asMaster = async (path, body) => {
    const r = await fetch(base + path, { method: body ? "POST" : "GET", headers: { authorization: "Bearer " + MASTER, "content-type": "application/json" }, body: body && JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  const teamOf = async (alias) => (await asMaster("/team/list")).body.find((t) => t.team_alias === alias);
  await open("/ui/teams");
  await page.click("#team-box summary");
  for (const [n, v] of [["team_alias", "ui-team"], ["models", "gpt-4o-mini"], ["max_budget", "20"], ["budget_duration", "30d"], ["rpm_limit", "50"], ["metadata", '{"cost_center": "ml"}']]) await page.fill(`#team-form input[name=${n}]`, v);
  await page.click("#team-form button[type=submit]");
  await page.waitForSelector('#teams tr[data-team="ui-team"] td:has-text("50 rpm")');
  let team = await teamOf("ui-team");
  assert.deepEqual([team.models, team.max_budget, team.budget_duration, team.rpm_limit, team.metadata], [["gpt-4o-mini"], 20, "2592000s", 50, { cost_center: "ml" }]);
  assert.equal(await page.isVisible("#team-detail"), true, "the new team's members and keys are shown");
  for (const [user, role] of [["ana", "admin"], ["bo", "user"]]) {
    await page.fill("#member-form input[name=user_id]", user);
    await page.selectOption("#member-form select[name=role]", role);
    await page.click("#member-form button[type=submit]");
    await page.waitForSelector(`#members tr[data-member="${user}"]`);
  }
  await page.waitForSelector('#teams tr[data-team="ui-team"] td:text-is("2")');
  await page.click('#members tr[data-member="bo"] button:has-text("Remove")');
  await page.waitForSelector('#members tr[data-member="bo"]', { state: "detached" });
  assert.deepEqual((await teamOf("ui-team")).members_with_roles.map((m) => [m.user_id, m.role]), [["ana", "admin"]]);
  step("team created on the Teams page; members added and removed");
  // Edit: the period is shown as given and kept; an emptied budget is removed.
  await page.click('#teams tr[data-team="ui-team"] button:has-text("Edit")');
  assert.equal(await page.inputValue("#team-form input[name=budget_duration]"), "30d");
  await page.fill("#team-form input[name=rpm_limit]", "75");
  await page.fill("#team-form input[name=max_budget]", "");
  await page.click("#team-form button[type=submit]");
  await page.waitForSelector('#teams tr[data-team="ui-team"] td:has-text("75 rpm")');
  const edited = await teamOf("ui-team");
  assert.deepEqual([edited.rpm_limit, edited.max_budget, edited.budget_duration, edited.budget_reset_at], [75, null, "2592000s", team.budget_reset_at]);
  team = edited;
  step("team edited: rpm limit changed, budget removed, its period kept");
  // A key in the team, from the team's "Create a key in this team".
  await Promise.all([page.waitForURL(/\/ui\/keys\?team_id=/), page.click("#team-new-key")]);
  await page.waitForSelector("body[data-loaded=true]");
  assert.equal(await page.inputValue("#create select[name=team_id]"), team.team_id);
  assert.equal(await page.textContent("#create-title"), "Create a key in team ui-team");
  await page.fill("input[name=key_alias]", "ui-team-key");
  await page.click("#create button[type=submit]");
  await page.waitForSelector("#secret:not([hidden])");
  const teamSecret = (await page.textContent("#secret-value")).trim();
  await page.waitForSelector('#keys tr[data-alias="ui-team-key"] td a:text-is("ui-team")');
  const teamKey = (await asMaster("/key/info?key=" + teamSecret)).body.info;
  assert.equal(teamKey.team_id, team.team_id);
  const teamClient = new OpenAI({ apiKey: teamSecret, baseURL: base + "/v1", maxRetries: 0 });
  const ask = (user) => teamClient.chat.completions.create({ model: "gpt-4o-mini", user, messages: [{ role: "user", content: "hi" }] });
  assert.equal((await ask("ui-end-user")).choices[0].message.content, "Hello from the mock.");
  // An internal user's key in the team, for the Spend page's "by internal user".
  const anaKey = (await asMaster("/key/generate", { team_id: team.team_id, user_id: "ana", key_alias: "ana-key" })).body.key;
  await new OpenAI({ apiKey: anaKey, baseURL: base + "/v1", maxRetries: 0 }).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
  // The team's page lists both keys, and the team's spend once the spend writer has flushed.
  await until("the team's keys and spend", async () => {
    await open("/ui/teams?team_id=" + encodeURIComponent(team.team_id));
    const both = (await page.$('#team-keys tr[data-alias="ui-team-key"]')) && (await page.$('#team-keys tr[data-alias="ana-key"]'));
    return both && /^\$0\.0*[1-9]/.test(await page.textContent('#teams tr[data-team="ui-team"] td:nth-child(4)'));
  });
  await shot("teams.png");
  step("a key created in the team from its page answers the SDK; the team lists its keys");
  // Editing a key, its team stays unless changed; "no team" takes it out.
  await open("/ui/keys");
  await page.click('#keys tr[data-alias="ana-key"] button:has-text("Edit")');
  assert.equal(await page.inputValue("#create select[name=team_id]"), team.team_id);
  await page.fill("input[name=tpm_limit]", "500");
  await page.click("#create button[type=submit]");
  await page.waitForSelector('#keys tr[data-alias="ana-key"] td:has-text("500 tpm")');
  assert.equal((await asMaster("/key/info?key=" + anaKey)).body.info.team_id, team.team_id);
  await page.click('#keys tr[data-alias="ana-key"] button:has-text("Edit")');
  await page.selectOption("#create select[name=team_id]", "");
  await page.click("#create button[type=submit]");
  await page.waitForSelector('#keys tr[data-alias="ana-key"] td a', { state: "detached" });
  assert.equal((await asMaster("/key/info?key=" + anaKey)).body.info.team_id, null);
  step("a key's team kept when left as shown, removed with \"no team\"");
  // Block the team: its keys are refused; unblocked, they answer again.
  await open("/ui/teams");
  await page.click('#teams tr[data-team="ui-team"] button:has-text("Block")');
  await page.waitForSelector('#teams tr[data-team="ui-team"] .badge.bad');
  await until("the blocked team's key refused", async () => {
    try { await ask(); return false; } catch (e) { assert.equal(e.status, 401, String(e)); return true; }
  }, 10000);
  await page.click('#teams tr[data-team="ui-team"] button:has-text("Unblock")');
  await page.waitForSelector('#teams tr[data-team="ui-team"] .badge.ok');
  await until("the unblocked team's key answering", async () => (await ask()).choices.length === 1, 10000);
  step("blocking the team refuses its keys (401); unblocking lets them in");
  // Names are shown as text: a team alias of markup shows as typed, and makes no element.
  const markup = '<img src="/ui/nope" id="injected"><b>bold</b>';
  const markupTeam = (await asMaster("/team/new", { team_alias: markup })).body;
  await open("/ui/teams");
  assert.equal(await page.textContent(`#teams tr[data-team='${markup}'] td:first-child`), markup);
  assert.equal(await page.$("#injected, #teams b"), null, "no element from a team's alias");
  assert.equal((await asMaster("/team/delete", { team_ids: [markupTeam.team_id] })).status, 200);
  // Delete a team: the confirm says its keys go too, and they do.
  const gone = (await asMaster("/team/new", { team_alias: "ui-team-gone" })).body;
  const goneKey = (await asMaster("/key/generate", { team_id: gone.team_id })).body.key;
  await open("/ui/teams");
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.accept(); });
  await page.click('#teams tr[data-team="ui-team-gone"] button:has-text("Delete")');
  await page.waitForSelector('#teams tr[data-team="ui-team-gone"]', { state: "detached" });
  assert.equal(asked, "Delete the team ui-team-gone? Its 1 key is deleted too.");
  assert.equal((await asMaster("/key/info?key=" + goneKey)).status, 404, "the deleted team's key is gone");
  step("team deleted, with its key, after a confirm naming it");

  // End users: the one that spent is listed; add one with a budget, edit the budget, block one
  // (its requests are refused), delete one.
  const spent = await until("the end user that spent", async () => {
    await open("/ui/end-users");
    const row = await page.$('#customers tr[data-user="ui-end-user"]');
    const t = row ? await row.textContent() : "";
    return /\$0\.0*[1-9]/.test(t) ? t : null;
  });
  assert.ok(spent.includes("active"), spent);
  await page.click("#customer-box summary");
  for (const [n, v] of [["user_id", "ui-customer"], ["alias", "Acme"], ["max_budget", "3"], ["budget_duration", "7d"]]) await page.fill(`#customer-form input[name=${n}]`, v);
  await page.click("#customer-form button[type=submit]");
  await page.waitForSelector('#customers tr[data-user="ui-customer"] td:has-text("$3.00 per 7d")');
  await page.click('#customers tr[data-user="ui-customer"] button:has-text("Edit")');
  assert.equal(await page.getAttribute("#customer-form input[name=user_id]", "readonly"), "");
  assert.equal(await page.inputValue("#customer-form input[name=budget_duration]"), "7d");
  await page.fill("#customer-form input[name=max_budget]", "5");
  await page.click("#customer-form button[type=submit]");
  await page.waitForSelector('#customers tr[data-user="ui-customer"] td:has-text("$5.00 per 7d")');
  const customer = (await asMaster("/customer/info?end_user_id=ui-customer")).body;
  assert.deepEqual([customer.alias, customer.litellm_budget_table.max_budget, customer.litellm_budget_table.budget_duration], ["Acme", 5, "604800s"]);
  await page.click('#customers tr[data-user="ui-end-user"] button:has-text("Block")');
  await page.waitForSelector('#customers tr[data-user="ui-end-user"] .badge.bad');
  await until("the blocked end user refused", async () => {
    try { await ask("ui-end-user"); return false; } catch (e) { assert.equal(e.status, 403, String(e)); return true; }
  }, 10000);
  await shot("end-users.png");
  await page.click('#customers tr[data-user="ui-end-user"] button:has-text("Unblock")');
  await page.waitForSelector('#customers tr[data-user="ui-end-user"] .badge.ok');
  page.once("dialog", (d) => d.accept());
  await page.click('#customers tr[data-user="ui-customer"] button:has-text("Delete")');
  await page.waitForSelector('#customers tr[data-user="ui-customer"]', { state: "detached" });
  assert.equal((await asMaster("/customer/info?end_user_id=ui-customer")).status, 404);
  step("end users: listed with spend, added, budget edited, blocked (403), unblocked, deleted");

  // Spend: by team, end user and internal user, and the report grouped each way, as the API sums them.
  await open("/ui/spend");
  const cellsOf = (sel) => page.$$eval(sel + " tbody tr", (trs) => trs.map((t) => [...t.children].map((c) => c.textContent)));
  await until("the team's requests on the Spend page", async () => {
    await page.click("#range button[type=submit]");
    await page.waitForTimeout(300);
    return (await cellsOf("#by-team")).some(([n, r]) => n === "ui-team" && Number(r) >= 3);
  });
  assert.ok((await cellsOf("#by-end-user")).some(([n, r]) => n === "ui-end-user" && Number(r) >= 1));
  assert.ok((await cellsOf("#by-user")).some(([n, r]) => n === "ana" && r === "1"));
  assert.ok((await cellsOf("#by-user")).some(([n]) => n === "no user"));
  const range = `start_date=${await page.inputValue("#range input[name=start_date]")}&end_date=${await page.inputValue("#range input[name=end_date]")}`;
  for (const [group, list, id, name, label] of [["customer", "customers", "customer", "ui-end-user", "End user"], ["api_key", "api_keys", "api_key", null, "Key"], ["team", "teams", "team_name", "ui-team", "Team"]]) {
    await page.selectOption("#report-form select[name=group_by]", group);
    await page.click("#report-form button[type=submit]");
    const days = (await asMaster(`/global/spend/report?group_by=${group}&${range}`)).body;
    const want = days.flatMap((d) => d[list].map((g) => [d.group_by_day, g[id], g.total_requests]));
    await page.waitForFunction(([n, label]) => document.querySelector("#report-group").textContent === label
      && document.querySelectorAll("#report tbody tr[data-group]").length === n, [want.length, label]);
    const shown = await page.$$eval("#report tbody tr", (trs) => trs.map((t) => [t.children[0].textContent, t.dataset.group, Number(t.children[2].textContent), t.children[1].textContent]));
    assert.deepEqual(shown.map((r) => r.slice(0, 3)), want.map(([d, g, n]) => [d, g === null ? "" : g, n]), `report by ${group}`);
    if (name) assert.ok(shown.some((r) => r[3] === name), `${name} in the report by ${group}`);
  }
  await shot("spend.png");
  step("spend by team, end user and internal user, and the report by end user, key and team");

  // Every page loads with no console error, and nothing leaves the machine.
  for (const [path, name] of [["/ui/", null], ["/ui/models", null], ["/ui/keys", null], ["/ui/logs", null], ["/ui/teams", null], ["/ui/end-users", null], ["/ui/spend", null], ["/ui/alerts", null], ["/ui/config", null]]) {
    await open(path);
    if (name) await shot(name);
  }
  // Overview: each range counts the request and names its deployment.
  await open("/ui/");
  for (const range of ["hour", "month", "day"]) {
    await page.click(`#ranges button[data-range=${range}]`);
    await page.waitForSelector(`#ranges button[data-range=${range}][aria-pressed=true]`);
    await page.waitForFunction(() => document.querySelector("#top-deployments tbody").textContent.includes("gpt-4o-mini-0"));
    const first = await page.textContent("#cards .card:first-child strong");
    assert.ok(Number(first) >= 1, `requests in range ${range}: ${first}`);
    // The figures are the server's sums.
    const window = { hour: "hour", day: "day", month: "30d" }[range];
    const o = await (await fetch(base + "/global/overview?window=" + window, { headers: { authorization: "Bearer " + MASTER } })).json();
    assert.equal(Number(first), o.requests, `requests in range ${range}`);
    assert.equal(await page.textContent("#cards .card:nth-child(2) strong"), String(o.errors));
    assert.match(await page.textContent("#cards .card:nth-child(4) strong"), /^\d+ ms \/ \d+ ms$/);
    assert.equal(await page.$$eval("#chart-requests svg rect", (r) => r.length) > 0, true);
  }
  await shot("overview.png");
  step("overview counts the requests in each range");

  // Spend: the CSV export holds the request.
  await open("/ui/spend");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
  const csv = readFileSync(await download.path(), "utf8");
  assert.match(csv.split("\n")[0], /^startTime,request_id,key_alias/);
  assert.ok(csv.includes('"ui-test-key"') && csv.includes('"gpt-4o-mini"'), csv);
  step("spend exported as CSV");
  // An internal user signs in with their e-mail and password in a browser of their own: they
  // land on their keys, see only theirs, make one, and have no gateway-wide pages.
  const made = await asMaster("/user/new", { user_id: "uma", user_email: "uma@example.com", password: "uma-ui-password", user_role: "internal_user" });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  const anaCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ana = await anaCtx.newPage();
  ana.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`ana ${ana.url()}: ${m.text()}`); });
  ana.on("pageerror", (e) => consoleErrors.push(`ana ${ana.url()}: ${e.message}`));
  await ana.goto(base + "/ui/login");
  await ana.fill("#username", "uma@example.com");
  await ana.fill("#password", "uma-ui-password");
  await Promise.all([ana.waitForURL(base + "/ui/keys"), ana.click("form:has(#username) button[type=submit]")]);
  await ana.waitForSelector("body[data-loaded=true]");
  assert.equal(await ana.getAttribute("body", "data-role"), "internal_user");
  const nav = await ana.$$eval("header nav a", (as) => as.map((a) => a.textContent));
  assert.deepEqual(nav, ["Models", "Keys", "Teams", "Request log"], "an internal user's navigation");
  assert.equal(await ana.$$eval("tbody tr[data-alias]", (r) => r.length), 1, "only her one key is listed");
  assert.ok(!(await ana.content()).includes("ui-test-key"), "another's key is not shown");
  await ana.click("#create-box summary");
  await ana.fill("input[name=key_alias]", "uma-laptop");
  await ana.click("#create button[type=submit]");
  await ana.waitForSelector("#secret:not([hidden])");
  await ana.waitForSelector('tr[data-alias="uma-laptop"]');
  const anaKeys = await asMaster("/key/list?user_id=uma&return_full_object=true");
  assert.equal(anaKeys.body.keys.length, 2, "her new key is hers: " + JSON.stringify(anaKeys.body));
  if (SHOTS) await ana.screenshot({ path: join(SHOTS, "user-keys.png"), fullPage: true, mask: [ana.locator("#secret-value")] });
  for (const path of ["/ui/teams", "/ui/logs", "/ui/models"]) {
    await ana.goto(base + path);
    await ana.waitForSelector("body[data-loaded=true]");
  }
  await anaCtx.close();
  step("an internal user signed in with a password sees and makes only her own keys");
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, storageState: await context.storageState() });
  const p2 = await phone.newPage();
  p2.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`phone ${p2.url()}: ${m.text()}`); });
  await p2.goto(base + "/ui/logs");
  await p2.waitForSelector("body[data-loaded=true]");
  await shot("phone-request-log.png", p2);
  for (const [path, name] of [["/ui/", "phone-overview.png"], ["/ui/alerts", "phone-alerts.png"], ["/ui/teams", "phone-teams.png"], ["/ui/end-users", null], ["/ui/spend", null]]) {
    await p2.goto(base + path);
    await p2.waitForSelector("body[data-loaded=true]");
    const fits = await p2.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
    assert.ok(fits, `${path} fits a phone's width`);
    if (name) await shot(name, p2);
  }
  assert.deepEqual(consoleErrors, [], "console errors");
  assert.deepEqual(external, [], "requests beyond the gateway");
  step("every page loaded with no console error");
  console.log("ui test: all checks passed");
} catch (e) {
  failed = true;
  console.error("ui test FAILED:", e);
} finally {
  if (browser) await browser.close();
  gateway.kill("SIGTERM");
  good.close();
  bad.close();
  receiver.close();
}
process.exit(failed ? 1 : 0);
