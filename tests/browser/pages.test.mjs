// The chatroom and account pages in a real headless Chromium (Debian's), served by the
// built worker with its assets, against mock upstreams. Screenshots go to
// tests/artifacts/ for a person to look at.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../artifacts");
let mock, worker, browser, account;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: mockBindings(mock.url) });
  account = await worker.createAccount({ credits: 5 });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // Playwright gives each launch a fresh, empty profile directory.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});
after(async () => {
  await browser?.close();
  await worker?.close();
  await mock?.close();
});

async function page() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const p = await ctx.newPage();
  const errors = [];
  p.on("pageerror", (e) => errors.push(e.message));
  return { p, errors };
}

test("chatroom asks several models at once and streams each reply", async () => {
  const { p, errors } = await page();
  await p.goto(`${worker.url}/`);
  await p.fill("#key", account.key);
  await p.dispatchEvent("#key", "change");
  // The model list comes from /api/v1/models.
  await p.waitForFunction(() => document.querySelectorAll("#model-list option").length > 5);
  await p.fill("#model-pick", "anthropic-mock/stream");
  await p.click("#add-model");
  await p.fill("#model-pick", "gemini-mock/ok");
  await p.press("#model-pick", "Enter");
  assert.deepEqual(await p.$$eval(".column", (cs) => cs.map((c) => c.dataset.model)), ["modelmux/echo", "anthropic-mock/stream", "gemini-mock/ok"]);
  await p.fill("#prompt", "hello brave new world");
  await p.press("#prompt", "Enter");
  await p.waitForFunction(() => !document.querySelector("#send").disabled);
  const replies = await p.$$eval(".column", (cs) => Object.fromEntries(cs.map((c) => [c.dataset.model, c.querySelector(".msg.assistant span")?.textContent])));
  assert.deepEqual(replies, {
    "modelmux/echo": "hello brave new world",
    "anthropic-mock/stream": "Hello from the mock",
    "gemini-mock/ok": "Hello from the mock",
  });
  const meta = await p.$eval('.column[data-model="anthropic-mock/stream"] .meta', (m) => m.textContent);
  assert.match(meta, /MockAnthropic · 12 \+ 4 tokens · \$0\.0000\d\d/);
  // A second turn carries the conversation.
  await p.fill("#prompt", "and again");
  await p.press("#prompt", "Enter");
  await p.waitForFunction(() => document.querySelectorAll('.column[data-model="modelmux/echo"] .msg.assistant').length === 2 && !document.querySelector("#send").disabled);
  const sent = mock.last("/gemini/").body.contents;
  assert.deepEqual(sent.map((c) => c.role), ["user", "model", "user"]);
  await p.screenshot({ path: path.join(ARTIFACTS, "chatroom.png") });
  assert.deepEqual(errors, []);
});

test("chatroom shows errors in the model's column", async () => {
  const { p } = await page();
  await p.goto(`${worker.url}/`);
  await p.evaluate((k) => { localStorage.setItem("modelmux.key", k); localStorage.setItem("modelmux.models", '["openai-mock/fail500"]'); }, account.key);
  await p.reload();
  await p.fill("#prompt", "x");
  await p.click("#send");
  await p.waitForSelector(".msg.failed");
  assert.match(await p.textContent(".msg.failed .meta"), /internal mock failure/);
});

test("account page: balance, key management with a provisioning key", async () => {
  const { p, errors } = await page();
  await p.goto(`${worker.url}/account.html`);
  await p.fill("#key", account.provisioningKey);
  await p.click("#key-save");
  await p.waitForSelector("#keys:not([hidden])");
  assert.equal(await p.textContent("#balance"), "$5.00");
  assert.match(await p.textContent("#kind"), /provisioning/);
  const before = await p.$$eval("#key-rows tr", (rows) => rows.length);
  await p.fill("#new-name", "from-the-page");
  await p.fill("#new-limit", "2");
  await p.selectOption("#new-reset", "monthly");
  await p.click("#create button[type=submit]");
  await p.waitForSelector("#new-key:not([hidden])");
  const newKey = await p.textContent("#new-key-value");
  assert.match(newKey, /^sk-mm-v1-[0-9a-f]{64}$/);
  await p.waitForFunction((n) => document.querySelectorAll("#key-rows tr").length === n + 1, before);
  assert.match(await p.textContent("#key-rows"), /from-the-page.*\$2\.00 \/ monthly/);
  // The new key works for a model call.
  const r = await fetch(`${worker.base}/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${newKey}` }, body: JSON.stringify({ model: "test/ok", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }) });
  assert.equal(r.status, 200);
  // Disabling it from the page stops it.
  await p.click('#key-rows tr:has-text("from-the-page") button:has-text("Disable")');
  await p.waitForSelector('#key-rows tr:has-text("from-the-page") button:has-text("Enable")');
  const refused = await fetch(`${worker.base}/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${newKey}` }, body: JSON.stringify({ model: "test/ok", messages: [{ role: "user", content: "hi" }] }) });
  assert.equal(refused.status, 401);
  await p.screenshot({ path: path.join(ARTIFACTS, "account.png"), fullPage: true });
  assert.deepEqual(errors, []);
});

test("account page with an API key shows the key, not the management", async () => {
  const { p } = await page();
  await p.goto(`${worker.url}/account.html`);
  await p.fill("#key", account.key);
  await p.click("#key-save");
  await p.waitForSelector("#overview:not([hidden])");
  assert.match(await p.textContent("#kind"), /API key/);
  assert.equal(await p.isHidden("#keys"), true);
  await p.fill("#key", "sk-mm-v1-" + "0".repeat(64));
  await p.click("#key-save");
  await p.waitForSelector("#status.error");
  assert.match(await p.textContent("#status"), /User not found/);
});
