// Plugins (issue 25): `response-healing` repairing a broken JSON reply and retrying at
// the next endpoint when the JSON still fails the schema, `context-compression`
// fitting a prompt twice an endpoint's context (which the mock refuses past it, as
// OpenAI does) while keeping every tool call with its result, and `plugins` never
// reaching an upstream (the mock refuses fields OpenAI does not define).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startPluginsMock, JSONS, promptTokens } from "../support/plugins_mock.mjs";
import { testCatalog } from "../support/catalog.mjs";

let mock, worker, KEY;

const price = { prompt: "0.000001", completion: "0.000002" };
const model = (id, endpoints, context_length = 100000) => ({
  id, name: `Test: ${id}`, created: 1700000000, description: `plugins model ${id}`, input_modalities: ["text"],
  context_length, supported_parameters: ["max_tokens", "tools", "tool_choice", "response_format", "structured_outputs"],
  endpoints: endpoints.map(([provider, upstream_model]) => ({ provider, upstream_model, pricing: price })),
});

function catalog() {
  const c = testCatalog();
  c.models.push(
    model("plugins/fenced", [["mockai", "json-fenced"]]),
    model("plugins/cut", [["mockai", "json-cut"]]),
    model("plugins/retry", [["mockai", "json-noprice"], ["mockbackup", "json-good"]]),
    model("plugins/small", [["mockai", "ctx-1000"]], 1000),
    model("plugins/large", [["mockai", "ctx-20000"]], 20000),
    // A large endpoint that is down, then a small one (each endpoint its own context).
    { ...model("plugins/mixed", [], 100000), endpoints: [
      { provider: "mockai", upstream_model: "down", pricing: price },
      { provider: "mockbackup", upstream_model: "ctx-1000", pricing: price, context_length: 1000 },
    ] },
  );
  return c;
}

before(async () => {
  mock = await startPluginsMock();
  worker = await startWorker({
    catalog: catalog(),
    bindings: {
      MOCKAI_BASE_URL: `${mock.url}/v1`, MOCKAI_API_KEY: "sk-mockai-secret",
      MOCKBACKUP_BASE_URL: `${mock.url}/backup/v1`, MOCKBACKUP_API_KEY: "sk-mockbackup-secret",
      HEALTH_CACHE_SECS: "0", HEALTH_FLUSH_MS: "0",
    },
  });
  KEY = (await worker.createAccount()).key;
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

const chat = (body, headers = {}) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}`, "X-OpenRouter-Metadata": "enabled", ...headers },
    body: JSON.stringify({ messages: [{ role: "user", content: "a product, as JSON" }], ...body }),
  });

const PRODUCT = {
  type: "json_schema",
  json_schema: {
    name: "product", strict: true,
    schema: {
      type: "object", additionalProperties: false, required: ["name", "price"],
      properties: { name: { type: "string" }, price: { type: "number", minimum: 0 }, tags: { type: "array", items: { type: "string" } } },
    },
  },
};
const HEALING = [{ id: "response-healing" }];

test("a fenced reply with prose, single quotes, unquoted keys and trailing commas comes back as JSON", async () => {
  const n = mock.requests.length;
  const r = await chat({ model: "plugins/fenced", response_format: PRODUCT, plugins: HEALING });
  assert.equal(r.status, 200);
  const body = await r.json();
  const content = body.choices[0].message.content;
  assert.equal(content, '{"name":"Pen","price":2,"tags":["a","b"]}');
  assert.deepEqual(body.openrouter_metadata.pipeline, [{
    type: "response_healing", name: "response-healing",
    data: { mode: "json_schema", healed: true, original_length: JSONS.fenced.length, healed_length: content.length, valid: true },
  }]);
  // The gateway's own fields never go upstream (the mock refuses what OpenAI does not define).
  const sent = mock.requests.slice(n);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].body.plugins, undefined);
  assert.deepEqual(sent[0].body.response_format, PRODUCT);
});

test("a reply cut off mid-array is closed; without the plugin the reply is left as it came", async () => {
  const cut = await chat({ model: "plugins/cut", response_format: { type: "json_object" }, plugins: HEALING });
  assert.equal(cut.status, 200);
  const body = await cut.json();
  assert.equal(body.choices[0].message.content, '{"name":"Pen","price":2,"tags":["a"]}');
  assert.equal(body.openrouter_metadata.pipeline[0].data.mode, "json_object");
  const plain = await chat({ model: "plugins/fenced", response_format: PRODUCT });
  const untouched = await plain.json();
  assert.equal(untouched.choices[0].message.content, JSONS.fenced);
  assert.deepEqual(untouched.openrouter_metadata.pipeline, []);
  // Healing off (`enabled: false`) is the same.
  const off = await chat({ model: "plugins/fenced", response_format: PRODUCT, plugins: [{ id: "response-healing", enabled: false }] });
  assert.equal((await off.json()).choices[0].message.content, JSONS.fenced);
});

test("JSON that still fails the schema is retried once at the next endpoint with retry: true", async () => {
  const order = { order: ["mockai", "mockbackup"], allow_fallbacks: true };
  const n = mock.requests.length;
  const r = await chat({ model: "plugins/retry", provider: order, response_format: PRODUCT, plugins: [{ id: "response-healing", retry: true }] });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.provider, "MockBackup");
  assert.equal(body.choices[0].message.content, JSONS.good);
  assert.deepEqual(mock.requests.slice(n).map((q) => q.url), ["/v1/chat/completions", "/backup/v1/chat/completions"]);
  assert.deepEqual(body.openrouter_metadata.attempts.map((a) => [a.provider, a.status]), [["MockAI", 502], ["MockBackup", 200]]);
  assert.deepEqual(body.openrouter_metadata.pipeline[0].data, {
    mode: "json_schema", healed: false, original_length: JSONS.good.length, healed_length: JSONS.good.length, valid: true,
  });
  // Without retry the first endpoint's answer stands, reported as not valid.
  const once = await chat({ model: "plugins/retry", provider: order, response_format: PRODUCT, plugins: HEALING });
  const first = await once.json();
  assert.equal(first.provider, "MockAI");
  assert.equal(first.choices[0].message.content, JSONS.noprice);
  assert.equal(first.openrouter_metadata.pipeline[0].data.valid, false);
});

/** A conversation (2,612 tokens for 5 rounds): a system message, a first question, then
 * rounds of a tool call, its result and a follow-up, ending in a tool loop under way. */
function conversation(rounds) {
  const filler = (c, i) => `${c}${i} `.repeat(300);
  const messages = [
    { role: "system", content: "You answer from the tool results." },
    { role: "user", content: `first question: ${filler("q", 0)}` },
  ];
  for (let i = 1; i <= rounds; i++) {
    messages.push(
      { role: "assistant", tool_calls: [{ id: `call_${i}`, type: "function", function: { name: "lookup", arguments: `{"page":${i}}` } }] },
      { role: "tool", tool_call_id: `call_${i}`, content: filler("r", i) },
      { role: "user", content: `follow-up ${i}: ${filler("u", i)}` },
    );
  }
  messages.push(
    { role: "assistant", tool_calls: [{ id: "call_now", type: "function", function: { name: "lookup", arguments: '{"page":0}' } }] },
    { role: "tool", tool_call_id: "call_now", content: "the answer is 42" },
  );
  return messages;
}
const TOOLS = [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: { page: { type: "integer" } } } } }];

test("a prompt twice a small endpoint's context fits after compression, every tool pair whole", async () => {
  const messages = conversation(5);
  assert.ok(promptTokens(messages) > 2000, `${promptTokens(messages)}`);
  const n = mock.requests.length;
  // An endpoint of 8k context or less compresses by default, as on OpenRouter.
  const r = await chat({ model: "plugins/small", messages, tools: TOOLS });
  assert.equal(r.status, 200, await r.clone().text());
  const [sent] = mock.requests.slice(n).map((q) => q.body.messages);
  const dropped = messages.length - sent.length;
  assert.equal(r.headers.get("x-context-compressed"), String(dropped));
  const body = await r.json();
  assert.equal(body.choices[0].message.content, `got ${sent.length} messages, ${promptTokens(sent)} tokens`);
  assert.ok(promptTokens(sent) <= 1000, `${promptTokens(sent)}`);
  // Kept: the system message, the first question, the last follow-up and the loop under way.
  assert.deepEqual(sent.slice(0, 2), messages.slice(0, 2));
  assert.deepEqual(sent.slice(-3), messages.slice(-3));
  // Dropped from the middle, whole rounds of call and result (the mock refuses a result
  // without its call); the earliest and latest rounds stay.
  const calls = sent.filter((m) => m.tool_calls).map((m) => m.tool_calls[0].id);
  const results = sent.filter((m) => m.role === "tool").map((m) => m.tool_call_id);
  assert.deepEqual(calls, results);
  assert.deepEqual(calls, ["call_1", "call_5", "call_now"]);
  assert.equal(dropped, 10);
  assert.deepEqual(body.openrouter_metadata.pipeline, [{
    type: "context_compression", name: "context-compression",
    data: { engine: "middle-out", input_type: "messages", original_count: messages.length, compressed_count: sent.length, truncated_messages: 0 },
  }]);
});

test("each fallback endpoint gets the prompt fitted to its own context", async () => {
  const messages = conversation(5);
  const n = mock.requests.length;
  const r = await chat({ model: "plugins/mixed", messages, tools: TOOLS, provider: { order: ["mockai", "mockbackup"] } });
  assert.equal(r.status, 200);
  const [big, small] = mock.requests.slice(n);
  assert.equal(big.url, "/v1/chat/completions");
  assert.deepEqual(big.body.messages, messages, "the large endpoint gets the prompt whole");
  assert.equal(small.url, "/backup/v1/chat/completions");
  assert.equal(small.body.messages.length, 9);
  assert.equal(r.headers.get("x-context-compressed"), "10");
  const body = await r.json();
  assert.equal(body.provider, "MockBackup");
  assert.deepEqual(body.openrouter_metadata.attempts.map((a) => [a.provider, a.status]), [["MockAI", 502], ["MockBackup", 200]]);
  assert.equal(body.openrouter_metadata.pipeline[0].data.compressed_count, 9);
});

test("compression turned off leaves the prompt refused; a large endpoint compresses only when asked", async () => {
  const messages = conversation(5);
  const n = mock.requests.length;
  const off = await chat({ model: "plugins/small", messages, tools: TOOLS, plugins: [{ id: "context-compression", enabled: false }] });
  assert.equal(off.status, 400);
  assert.match((await off.json()).error.message, /maximum context length is 1000/);
  assert.equal(mock.requests.length, n, "refused before any upstream call");
  // 20k of context, a prompt that fits: nothing to compress, no header.
  const fits = await chat({ model: "plugins/large", messages, tools: TOOLS, transforms: ["middle-out"] });
  assert.equal(fits.status, 200);
  assert.equal(fits.headers.get("x-context-compressed"), null);
  assert.equal((await fits.json()).choices[0].message.content, `got ${messages.length} messages, ${promptTokens(messages)} tokens`);
});

test("an unknown plugin id is a 400 naming it, before any upstream call", async () => {
  const n = mock.requests.length;
  const r = await chat({ model: "plugins/fenced", plugins: [{ id: "response-healing" }, { id: "teleport" }] });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.message,
    'plugins[1].id: must be one of web, response-healing, context-compression, file-parser, auto-router, not "teleport"');
  const t = await chat({ model: "plugins/fenced", transforms: ["squash"] });
  assert.equal(t.status, 400);
  assert.equal((await t.json()).error.message, 'transforms[0]: must be "middle-out", not "squash"');
  assert.equal(mock.requests.length, n);
});
