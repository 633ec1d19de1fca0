// Response healing at the end of streams (issue 25): the content deltas pass through as
// they come; a reply cut off gets one more delta that completes its JSON before the
// finish chunk, a fenced one its healed whole content in the last chunk's
// `openrouter_metadata.pipeline` stage, and a stream without the plugin is left alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startPluginsMock, JSONS } from "../support/plugins_mock.mjs";
import { testCatalog } from "../support/catalog.mjs";
import { collect } from "../support/sse.mjs";

let mock, worker, KEY;

const price = { prompt: "0.000001", completion: "0.000002" };
const model = (id, upstream_model) => ({
  id, name: `Test: ${id}`, created: 1700000000, description: `streamheal model ${id}`, input_modalities: ["text"],
  context_length: 100000, supported_parameters: ["max_tokens", "response_format", "structured_outputs"],
  endpoints: [{ provider: "mockai", upstream_model, pricing: price }],
});

before(async () => {
  mock = await startPluginsMock();
  const catalog = testCatalog();
  catalog.models.push(model("heal/fenced", "json-fenced"), model("heal/cut", "json-cut"), model("heal/good", "json-good"));
  worker = await startWorker({
    catalog,
    bindings: { MOCKAI_BASE_URL: `${mock.url}/v1`, MOCKAI_API_KEY: "sk-mockai-secret" },
  });
  KEY = (await worker.createAccount()).key;
});
after(async () => {
  await worker?.close();
  await mock?.close();
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

async function stream(body, headers = {}) {
  const r = await fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}`, ...headers },
    body: JSON.stringify({ messages: [{ role: "user", content: "a product, as JSON" }], stream: true, ...body }),
  });
  assert.equal(r.status, 200);
  const events = (await collect(r.body)).filter((e) => !e.comment);
  assert.deepEqual(events.at(-1), { done: true });
  return events.slice(0, -1).map((e) => e.data);
}

const contentOf = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
const stage = (data) => ({ type: "response_healing", name: "response-healing", data });

test("a streamed reply cut off mid-array gets the delta that closes it before its finish", async () => {
  const chunks = await stream({ model: "heal/cut", response_format: PRODUCT, plugins: HEALING });
  const [heal, finish, last] = chunks.slice(-3);
  // The upstream's deltas as they came, then the suffix.
  assert.equal(contentOf(chunks.slice(0, -3)), JSONS.cut);
  assert.deepEqual(heal.choices, [{ index: 0, delta: { content: "]}" }, finish_reason: null }]);
  assert.deepEqual(finish.choices, [{ index: 0, delta: {}, finish_reason: "stop", native_finish_reason: "stop" }]);
  assert.equal(JSON.stringify(JSON.parse(contentOf(chunks))), '{"name":"Pen","price":2,"tags":["a"]}');
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage, JSON.stringify(last));
  // Without openrouter_metadata asked for, the last chunk carries the stage alone.
  assert.deepEqual(last.openrouter_metadata, { pipeline: [stage({
    mode: "json_schema", healed: true, original_length: JSONS.cut.length, healed_length: JSONS.cut.length + 2,
    valid: true, streamed: true, repairs: [{ index: 0, repair: "suffix", appended: "]}" }],
  })] });
});

test("a streamed fenced reply comes with its healed content in the metadata's pipeline", async () => {
  const chunks = await stream(
    { model: "heal/fenced", response_format: PRODUCT, plugins: HEALING },
    { "X-OpenRouter-Metadata": "enabled" },
  );
  const [finish, last] = chunks.slice(-2);
  assert.equal(contentOf(chunks), JSONS.fenced, "the deltas pass through as they came");
  assert.equal(finish.choices[0].finish_reason, "stop");
  const healed = '{"name":"Pen","price":2,"tags":["a","b"]}';
  assert.deepEqual(last.openrouter_metadata.pipeline, [stage({
    mode: "json_schema", healed: true, original_length: JSONS.fenced.length, healed_length: healed.length,
    valid: true, streamed: true, repairs: [{ index: 0, repair: "replace", healed_content: healed }],
  })]);
  // The rest of the metadata is there as asked.
  assert.equal(typeof last.openrouter_metadata.requested, "string", JSON.stringify(last.openrouter_metadata));
});

test("valid JSON streams as it came with a valid stage; without the plugin nothing is added", async () => {
  const good = await stream({ model: "heal/good", response_format: PRODUCT, plugins: HEALING });
  assert.equal(contentOf(good), JSONS.good);
  assert.equal(good.at(-2).choices[0].finish_reason, "stop");
  assert.deepEqual(good.at(-1).openrouter_metadata, { pipeline: [stage({
    mode: "json_schema", healed: false, original_length: JSONS.good.length, healed_length: JSONS.good.length,
    valid: true, streamed: true,
  })] });
  const plain = await stream({ model: "heal/cut", response_format: PRODUCT });
  assert.equal(contentOf(plain), JSONS.cut);
  assert.equal(plain.at(-1).openrouter_metadata, undefined);
  assert.ok(!plain.some((c) => c.choices[0]?.delta?.content === "]}"));
});

// A streamed server-tool loop whose search engine is slow: the headers come at once
// and the client reads `: OPENROUTER PROCESSING` every STREAM_KEEPALIVE_MS while the
// searches and inner model calls run, before the answer's first chunk.
test("a streamed loop with a slow search sends keep-alives before its first chunk", async () => {
  const { startMockUpstream } = await import("../support/mock_upstream.mjs");
  const { mockBindings } = await import("../support/catalog.mjs");
  const { startSearchMock, searchBindings } = await import("../support/search_mock.mjs");
  const upstream = await startMockUpstream();
  const search = await startSearchMock({ delayMs: 600 });
  const catalog = testCatalog();
  const base = catalog.models.find((m) => m.id === "openai-mock/ok");
  catalog.models.push({ ...base, id: "srv/slow-searcher", name: "slow searcher",
    endpoints: [{ provider: "mockopenai", upstream_model: "searcher", pricing: { ...price, web_search: "0.01" } }] });
  const loopWorker = await startWorker({ catalog, bindings: {
    ...mockBindings(upstream.url), ...searchBindings(search.url), STREAM_KEEPALIVE_MS: "100" } });
  try {
    const { key } = await loopWorker.createAccount({ credits: 10 });
    const started = Date.now();
    const r = await fetch(`${loopWorker.base}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "srv/slow-searcher", stream: true, messages: [{ role: "user", content: "Does Rust run on Workers?" }],
        tools: [{ type: "openrouter:web_search", parameters: { engine: "exa" } }] }),
    });
    const headersMs = Date.now() - started;
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /text\/event-stream/);
    // The headers came before the first (600 ms) search could end.
    assert.ok(headersMs < 600, `headers after ${headersMs} ms`);
    const events = await collect(r.body);
    const first = events.findIndex((e) => e.data);
    const comments = events.slice(0, first);
    // Two searches of 600 ms at a keep-alive every 100 ms: at least ten before the answer.
    assert.ok(comments.length >= 10, `${comments.length} comments before the first chunk`);
    assert.deepEqual([...new Set(comments.map((e) => e.comment))], [": OPENROUTER PROCESSING"]);
    assert.equal(search.requests.length, 2);
    const chunks = events.filter((e) => e.data).map((e) => e.data);
    assert.equal(chunks.at(-1).usage.server_tool_use.web_search_requests, 2);
    assert.ok(contentOf(chunks).includes("https://www.rust-lang.org/what/wasm"), contentOf(chunks));
    assert.deepEqual(events.at(-1), { done: true });
    // An account without credits: its loop's first model call is refused after the
    // headers went out, so the stream ends with the error chunk, then [DONE].
    const { key: broke } = await loopWorker.createAccount({ credits: 0 });
    const refused = await fetch(`${loopWorker.base}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${broke}` },
      body: JSON.stringify({ model: "srv/slow-searcher", stream: true, messages: [{ role: "user", content: "x" }],
        tools: [{ type: "openrouter:web_search" }] }),
    });
    assert.equal(refused.status, 200);
    const ended = (await collect(refused.body)).filter((e) => !e.comment);
    const error = ended.find((e) => e.data?.error);
    assert.ok(error, JSON.stringify(ended));
    assert.equal(error.data.error.code, 402);
    assert.equal(error.data.choices[0].finish_reason, "error");
    assert.deepEqual(ended.at(-1), { done: true });
  } finally {
    await loopWorker.close();
    await upstream.close();
    await search.close();
  }
});
