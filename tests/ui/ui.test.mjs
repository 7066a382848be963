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
// (GET /global/overview); the Config page masks every secret; the overview and alerts fit a
// phone's width. Screenshots go to $SCREENSHOTS (docs/ui/).

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
  await Promise.all([page.waitForURL(base + "/ui/"), page.click("button[type=submit]")]);
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

  // Every page loads with no console error, and nothing leaves the machine.
  for (const [path, name] of [["/ui/", null], ["/ui/models", null], ["/ui/keys", null], ["/ui/logs", null], ["/ui/spend", "spend.png"], ["/ui/alerts", null], ["/ui/config", null]]) {
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
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, storageState: await context.storageState() });
  const p2 = await phone.newPage();
  p2.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`phone ${p2.url()}: ${m.text()}`); });
  await p2.goto(base + "/ui/logs");
  await p2.waitForSelector("body[data-loaded=true]");
  await shot("phone-request-log.png", p2);
  for (const [path, name] of [["/ui/", "phone-overview.png"], ["/ui/alerts", "phone-alerts.png"]]) {
    await p2.goto(base + path);
    await p2.waitForSelector("body[data-loaded=true]");
    const fits = await p2.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
    assert.ok(fits, `${path} fits a phone's width`);
    await shot(name, p2);
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
