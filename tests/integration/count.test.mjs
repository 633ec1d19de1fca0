// Token counting through the built worker: `POST /messages/count_tokens` and
// `POST /responses/input_tokens` asked of the provider where its family counts
// (Anthropic's count_tokens, Gemini's countTokens, strict mocks serving the fixture
// replies), estimated for OpenAI-compatible models and when the provider fails; a live
// key needed, bad input a 400 naming the field, nothing billed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream, refusal } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { readFileSync } from "node:fs";
import { fixtureCase } from "../support/fixtures.mjs";

let mock, worker, KEY;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: mockBindings(mock.url) });
  ({ key: KEY } = await worker.createAccount({ credits: 10 }));
});

after(async () => {
  await worker?.close();
  await mock?.close();
});

const post = (path, body, headers = { authorization: `Bearer ${KEY}` }) =>
  fetch(`${worker.base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

/** A token-count fixture case: the provider's reply, and the client's count request
 * (`messages.json`). */
function countCase(family, name) {
  const c = fixtureCase(family, name);
  const client = JSON.parse(readFileSync(new URL(`../fixtures/${family}/${name}/messages.json`, import.meta.url), "utf8"));
  return { ...c, client, counted: JSON.parse(c.reply) };
}
const ANTHROPIC = countCase("anthropic", "count_tokens");
const GEMINI = countCase("gemini", "count_tokens");
const messagesBody = (c, model) => ({ ...c.client, model });
const countRequests = () => mock.requests.filter((r) => /count_tokens|:countTokens/.test(r.url));

/** A prompt whose estimate is known: 14 + 11 bytes (4 + 3 tokens), 4 a message, +10%. */
const KNOWN = { system: "You are terse.", messages: [{ role: "user", content: "hello world" }] };
const KNOWN_ESTIMATE = 17;

test("an Anthropic model's prompt is counted by Anthropic's count_tokens, the body as sent less what it refuses", async () => {
  const before = countRequests().length;
  const r = await post("/messages/count_tokens", messagesBody(ANTHROPIC, "anthropic-mock/ok"),
    { authorization: `Bearer ${KEY}`, "anthropic-version": "2023-06-01", "anthropic-beta": "token-counting-2024-11-01" });
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(r.headers.get("x-token-count-source"), "provider");
  assert.deepEqual(await r.json(), { input_tokens: ANTHROPIC.counted.input_tokens });
  assert.equal(ANTHROPIC.counted.input_tokens, 472);
  assert.equal(countRequests().length, before + 1);
  const up = mock.last("/anthropic/v1/messages/count_tokens");
  assert.equal(up.body.model, "ok");
  // max_tokens and the gateway's own fields are not sent (Anthropic refuses them here).
  assert.deepEqual(Object.keys(up.body).sort(), ["messages", "model", "system", "tools"]);
  assert.deepEqual(up.body.messages, ANTHROPIC.client.messages);
  assert.equal(up.headers["x-api-key"], "sk-mockanthropic-secret");
  assert.equal(up.headers["anthropic-version"], "2023-06-01");
  assert.equal(up.headers["anthropic-beta"], "token-counting-2024-11-01");
});

test("a Gemini model's prompt is counted by Gemini's countTokens, as a whole generateContentRequest", async () => {
  const r = await post("/messages/count_tokens", messagesBody(GEMINI, "gemini-mock/ok"));
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(r.headers.get("x-token-count-source"), "provider");
  assert.deepEqual(await r.json(), { input_tokens: 97 });
  assert.equal(GEMINI.counted.totalTokens, 97);
  const up = mock.last("/gemini/v1beta/models/ok:countTokens");
  assert.equal(up.headers["x-goog-api-key"], "sk-mockgemini-secret");
  const g = up.body.generateContentRequest;
  assert.equal(g.model, "models/ok");
  assert.deepEqual(g.systemInstruction, { parts: [{ text: "You are a cat named Neko." }] });
  assert.equal(g.tools[0].functionDeclarations[0].name, "multiply");
  assert.deepEqual(g.contents.map((c) => c.role), ["user", "model", "user"]);
});

test("responses/input_tokens: OpenAI's shape, counted by the provider where it can", async () => {
  const body = { input: [{ role: "user", content: [{ type: "input_text", text: "Hello" }] }], instructions: "Be terse.",
    tools: [{ type: "function", name: "lookup", parameters: { type: "object" } }] };
  for (const [model, n] of [["anthropic-mock/ok", 472], ["gemini-mock/ok", 97]]) {
    const r = await post("/responses/input_tokens", { ...body, model });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(r.headers.get("x-token-count-source"), "provider", model);
    assert.deepEqual(await r.json(), { object: "response.input_tokens", input_tokens: n });
  }
  const up = mock.last("/anthropic/v1/messages/count_tokens").body;
  assert.deepEqual(Object.keys(up).sort(), ["messages", "model", "system", "tools"]);
  assert.equal(up.tools[0].name, "lookup");
});

test("an OpenAI-compatible model's prompt is estimated, within the stated margin", async () => {
  const before = countRequests().length;
  const r = await post("/messages/count_tokens", { model: "openai-mock/ok", ...KNOWN });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-token-count-source"), "estimate");
  assert.deepEqual(await r.json(), { input_tokens: KNOWN_ESTIMATE });
  // 600 bytes: 150 tokens and 4 for the message, and 10%; within [bytes/4, (bytes/4 + 4) * 1.1 + 1].
  const text = "hello ".repeat(100);
  const big = await post("/responses/input_tokens", { model: "openai-mock/ok", input: text });
  assert.equal(big.headers.get("x-token-count-source"), "estimate");
  const { object, input_tokens } = await big.json();
  assert.equal(object, "response.input_tokens");
  assert.ok(input_tokens >= text.length / 4 && input_tokens <= Math.ceil((text.length / 4 + 4) * 1.1) + 1, String(input_tokens));
  assert.equal(input_tokens, 170);
  assert.equal(countRequests().length, before, "nothing asked upstream");
});

test("a provider that fails to count: the estimate, by its family's formula", async () => {
  for (const model of ["anthropic-mock/fail500", "gemini-mock/fail500"]) {
    const before = countRequests().length;
    const r = await post("/messages/count_tokens", { model, ...KNOWN });
    assert.equal(r.status, 200, model);
    assert.equal(r.headers.get("x-token-count-source"), "estimate", model);
    assert.deepEqual(await r.json(), { input_tokens: KNOWN_ESTIMATE }, model);
    assert.equal(countRequests().length, before + 1, `${model}: asked once`);
  }
  // An image by URL (not fetched for a count): Anthropic's most for one image, 1,600.
  const r = await post("/messages/count_tokens", { model: "anthropic-mock/fail500", messages: [{ role: "user", content: [
    { type: "image", source: { type: "url", url: "https://img.test/cat.png" } }] }] });
  assert.deepEqual(await r.json(), { input_tokens: Math.ceil((4 + 1600) * 1.1) });
});

test("counting needs a key: 401 in each surface's shape", async () => {
  const m = await post("/messages/count_tokens", { model: "anthropic-mock/ok", ...KNOWN }, {});
  assert.equal(m.status, 401);
  const mb = await m.json();
  assert.equal(mb.type, "error");
  assert.equal(mb.error.type, "authentication_error");
  const r = await post("/responses/input_tokens", { model: "anthropic-mock/ok", input: "x" }, { authorization: "Bearer sk-mm-v1-" + "0".repeat(64) });
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error.code, 401);
});

test("bad input is a 400 naming the field, before any provider is asked; an unknown model a 404", async () => {
  const before = countRequests().length;
  const cases = [
    ["/messages/count_tokens", { model: "anthropic-mock/ok", messages: [{ role: "user", content: [{ type: "hologram" }] }] }, /messages\[0\]\.content\[0\]\.type/],
    ["/messages/count_tokens", { model: "anthropic-mock/ok" }, /messages: is required/],
    ["/responses/input_tokens", { model: "gemini-mock/ok", input: 5 }, /input/],
    ["/responses/input_tokens", { input: "x" }, /model: is required/],
  ];
  for (const [path, body, want] of cases) {
    const r = await post(path, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    const e = await r.json();
    assert.match(e.error.message, want);
  }
  assert.equal(countRequests().length, before);
  const unknown = await post("/messages/count_tokens", { model: "nobody/nothing", ...KNOWN });
  assert.equal(unknown.status, 404);
  assert.equal((await unknown.json()).error.type, "not_found_error");
});

test("counting is free: the account's usage does not move", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const usage = async () => (await (await fetch(`${worker.base}/credits`, { headers: { authorization: `Bearer ${acc.key}` } })).json()).data.total_usage;
  const was = await usage();
  for (const model of ["anthropic-mock/ok", "gemini-mock/ok", "openai-mock/ok"]) {
    const r = await post("/messages/count_tokens", { model, ...KNOWN }, { authorization: `Bearer ${acc.key}` });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  }
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await usage(), was);
});

test("the count fixtures pass the strict mocks, which refuse what the providers refuse", () => {
  for (const [family, name] of [["anthropic", "count_tokens"], ["anthropic", "input_tokens"], ["gemini", "count_tokens"]]) {
    const { request } = fixtureCase(family, name);
    assert.equal(refusal(request.url, request.body), null, `${family}/${name}`);
  }
  const anthropicUrl = "http://up/v1/messages/count_tokens";
  const ok = { model: "m", messages: [{ role: "user", content: "x" }] };
  assert.equal(refusal(anthropicUrl, ok), null);
  assert.match(refusal(anthropicUrl, { ...ok, max_tokens: 5 }).body.error.message, /max_tokens: Extra inputs are not permitted/);
  const geminiUrl = "http://up/v1/models/m:countTokens";
  const g = { generateContentRequest: { model: "models/m", contents: [{ role: "user", parts: [{ text: "x" }] }] } };
  assert.equal(refusal(geminiUrl, g), null);
  assert.match(refusal(geminiUrl, { ...g, model: "m" }).body.error.message, /Unknown name "model"/);
  assert.match(refusal(geminiUrl, { generateContentRequest: { ...g.generateContentRequest, model: "models/other" } }).body.error.message, /model name/);
});
