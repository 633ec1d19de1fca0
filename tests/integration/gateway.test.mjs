// End-to-end tests of the built worker in workerd (miniflare), with real local KV and
// SQLite Durable Objects, against scripted mock upstreams on 127.0.0.1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { sseEvents, collect } from "../support/sse.mjs";

let mock, worker, KEY, COUNTER_KEY;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({
    catalog: testCatalog(),
    bindings: {
      ...mockBindings(mock.url),
      UPSTREAM_TIMEOUT_MS: "1500",
      UPSTREAM_REPLY_TIMEOUT_MS: "2500",
      STREAM_KEEPALIVE_MS: "100",
      STREAM_IDLE_TIMEOUT_MS: "1000",
      MAX_BODY_BYTES: "65536",
      FREE_REQUESTS_PER_MINUTE: "100000",
      FREE_REQUESTS_PER_DAY: "150",
      CATALOG_CACHE_SECS: "0",
    },
  });
  KEY = (await worker.createAccount()).key;
  COUNTER_KEY = (await worker.createAccount()).key;
});

after(async () => {
  await worker?.close();
  await mock?.close();
});

const chat = (body, { key = KEY, headers = {}, signal } = {}) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}`, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
const msg = (content) => [{ role: "user", content }];

async function assertError(resp, status, pattern) {
  assert.equal(resp.status, status);
  assert.match(resp.headers.get("content-type"), /application\/json/);
  const body = await resp.json();
  assert.equal(body.error.code, status);
  assert.match(body.error.message, pattern);
  return body;
}

test("GET /models lists the catalogue from KV in OpenRouter's shape", async () => {
  const r = await fetch(`${worker.base}/models`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("cache-control"), /max-age=\d+/);
  const { data } = await r.json();
  // Embedding models are listed at /embeddings/models (or with output_modalities=all).
  const generating = testCatalog().models.filter((m) => !(m.output_modalities ?? []).includes("embeddings"));
  assert.deepEqual(data.map((m) => m.id), generating.map((m) => m.id));
  const echo = data.find((m) => m.id === "modelmux/echo");
  assert.equal(echo.pricing.prompt, "0");
  assert.equal(echo.links.details, "/api/v1/models/modelmux/echo/endpoints");
  for (const k of ["architecture", "canonical_slug", "top_provider", "per_request_limits", "supported_parameters"]) {
    assert.ok(k in echo, k);
  }
  const tools = await (await fetch(`${worker.base}/models?supported_parameters=tools`)).json();
  assert.ok(tools.data.length > 0 && tools.data.every((m) => m.supported_parameters.includes("tools")));
  assert.ok(!tools.data.some((m) => m.id === "modelmux/echo"));
});

test("catalogue changes in KV are picked up", async () => {
  const cat = testCatalog();
  cat.models.push({ ...cat.models[1], id: "test/added" });
  await worker.kv.put("catalog", JSON.stringify(cat));
  try {
    const { data } = await (await fetch(`${worker.base}/models`)).json();
    assert.ok(data.some((m) => m.id === "test/added"));
  } finally {
    await worker.kv.put("catalog", JSON.stringify(testCatalog()));
  }
});

test("GET /models/{id}/endpoints and /providers", async () => {
  const r = await fetch(`${worker.base}/models/test/fallback/endpoints`);
  assert.equal(r.status, 200);
  const { data } = await r.json();
  assert.equal(data.id, "test/fallback");
  assert.deepEqual(data.endpoints.map((e) => e.tag), ["mockai", "mockbackup"]);
  await assertError(await fetch(`${worker.base}/models/no/such/endpoints`), 404, /not found/);
  const p = await (await fetch(`${worker.base}/providers`)).json();
  assert.ok(p.data.some((x) => x.slug === "mockai" && "privacy_policy_url" in x));
});

test("auth: missing and unknown keys get 401 in OpenRouter's error shape", async () => {
  await assertError(await chat({ model: "modelmux/echo", messages: msg("x") }, { key: "" }), 401, /.+/);
  for (const bad of ["sk-mm-v1-wrong", "sk-mm-v1-" + "0".repeat(64), KEY.slice(0, -1) + (KEY.endsWith("0") ? "1" : "0")]) {
    const r = await chat({ model: "modelmux/echo", messages: msg("x") }, { key: bad });
    const body = await assertError(r, 401, /User not found/);
    assert.ok(!JSON.stringify(body).includes(bad), "the key is never echoed");
  }
});

test("bad input gets a clear 4xx", async () => {
  await assertError(await chat("{not json"), 400, /Invalid JSON/);
  await assertError(await chat({ model: "modelmux/echo", messages: [] }), 400, /messages/);
  await assertError(await chat({ model: "no/such-model", messages: msg("x") }), 404, /not a valid model/);
  await assertError(await chat({ model: "modelmux/echo", messages: msg("x".repeat(70_000)) }), 413, /larger than 65536/);
  const get = await fetch(`${worker.base}/chat/completions`);
  await assertError(get, 405, /Method not allowed/);
  await assertError(await fetch(`${worker.base}/nope`), 404, /No route/);
});

test("demo model answers without any provider key", async () => {
  const r = await chat({ model: "modelmux/echo", messages: msg("hello   brave new world") });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.match(body.id, /^gen-\d+-[A-Za-z0-9]{20}$/);
  assert.equal(body.object, "chat.completion");
  assert.equal(body.model, "modelmux/echo");
  assert.equal(body.system_fingerprint, null);
  // The echo keeps the prompt's whitespace (so Markdown comes back as Markdown).
  assert.equal(body.choices[0].message.content, "hello   brave new world");
  assert.equal(body.choices[0].finish_reason, "stop");
  assert.equal(body.usage.completion_tokens, 4);
  assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + 4);
});

test("demo model streams word by word, then usage, then [DONE]", async () => {
  const r = await chat({ model: "modelmux/echo", stream: true, messages: msg("one two three") });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /text\/event-stream/);
  const events = await collect(r.body);
  assert.deepEqual(events.at(-1), { done: true });
  const chunks = events.filter((e) => e.data).map((e) => e.data);
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  assert.equal(text, "one two three");
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id));
  assert.equal(chunks.at(-2).choices[0].finish_reason, "stop");
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.equal(chunks.at(-1).usage.completion_tokens, 3);
});

test("proxies to an OpenAI-compatible upstream with the provider key", async () => {
  const before = mock.requests.length;
  const r = await chat({ model: "test/ok", messages: msg("ping"), temperature: 0.5, seed: 3, top_k: 4, session_id: "s1", provider: { sort: "price" } });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.choices[0].message.content, "mock says: ping");
  assert.equal(body.model, "test/ok");
  assert.equal(body.provider, "MockAI");
  assert.match(body.id, /^gen-/);
  assert.equal(body.usage.total_tokens, 18);
  assert.equal(body.usage.cost, 0.000025, "11 prompt tokens at $1/M + 7 completion tokens at $2/M");
  const sent = mock.requests.slice(before).at(-1);
  assert.equal(sent.url, "/v1/chat/completions");
  assert.equal(sent.headers.authorization, "Bearer sk-mockai-secret");
  assert.equal(sent.body.model, "ok");
  // The mock refuses what OpenAI does not know, as OpenAI does: only what the endpoint
  // takes went (test/ok lists temperature, not seed or top_k).
  assert.equal(sent.body.temperature, 0.5);
  assert.equal(sent.body.seed, undefined);
  assert.equal(sent.body.top_k, undefined);
  assert.equal(sent.body.session_id, undefined);
  assert.equal(sent.body.provider, undefined, "routing preferences stay at the gateway");
});

test("a streamed reply flows through chunk by chunk, before the upstream finishes", async () => {
  const r = await chat({ model: "test/gated", stream: true, messages: msg("go") });
  assert.equal(r.status, 200);
  const it = sseEvents(r.body);
  let first = "";
  while (!first) first = (await it.next()).value.data.choices[0].delta.content;
  assert.equal(first, "first");
  assert.ok(mock.events("gated").some((e) => e.event === "first-sent"));
  assert.ok(!mock.events("gated").some((e) => e.event === "finished"), "upstream is still open");
  mock.release("gated");
  const rest = [];
  for await (const ev of it) rest.push(ev);
  assert.equal(rest.filter((e) => e.data).map((e) => e.data.choices[0]?.delta?.content ?? "").join(""), " second");
  assert.deepEqual(rest.at(-1), { done: true });
  assert.ok(rest.filter((e) => e.data).every((e) => e.data.model === "test/gated"));
});

test("falls back to the next endpoint when one fails", async () => {
  const before = mock.requests.length;
  const r = await chat({ model: "test/fallback", messages: msg("hi"), provider: { order: ["mockai", "mockbackup"] } });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.provider, "MockBackup");
  const urls = mock.requests.slice(before).map((q) => q.url);
  assert.deepEqual(urls, ["/v1/chat/completions", "/backup/v1/chat/completions"]);
});

test("upstream failures map to OpenRouter's codes", async () => {
  const limited = await chat({ model: "test/ratelimited", messages: msg("x") });
  assert.equal(limited.headers.get("retry-after"), "17");
  const body = await assertError(limited, 429, /rate limited/);
  assert.equal(body.error.metadata.provider_name, "mockai");
  const garbage = await assertError(await chat({ model: "test/garbage", messages: msg("x") }), 502, /invalid response/);
  assert.match(garbage.error.metadata.raw, /not json/);
  const t0 = Date.now();
  await assertError(await chat({ model: "test/hang", messages: msg("x") }), 408, /timed out/);
  assert.ok(Date.now() - t0 < 10_000);
  assert.ok(await mock.waitFor("hang", "closed"), "the timed-out upstream request was aborted");
  await assertError(await chat({ model: "test/nokey", messages: msg("x") }), 503, /NOKEY_API_KEY/);
});

test("a stream that breaks or is cut short ends with an error chunk and [DONE]", async () => {
  for (const model of ["test/broken", "test/truncated"]) {
    const r = await chat({ model, stream: true, messages: msg("x") });
    assert.equal(r.status, 200);
    const events = await collect(r.body);
    assert.deepEqual(events.at(-1), { done: true }, model);
    const chunks = events.filter((e) => e.data).map((e) => e.data);
    const errChunk = chunks.find((c) => c.error);
    assert.ok(errChunk, `${model} has an error chunk`);
    assert.equal(errChunk.choices[0].finish_reason, "error");
    assert.equal(errChunk.error.code, 502);
  }
});

test("keep-alive comments flow while an upstream stream is silent", async () => {
  const r = await chat({ model: "test/slow", stream: true, messages: msg("x") });
  const events = await collect(r.body);
  const comments = events.filter((e) => e.comment);
  assert.ok(comments.length >= 2, `${comments.length} keep-alives during a 450 ms pause`);
  assert.ok(comments.every((c) => c.comment === ": OPENROUTER PROCESSING"));
  const text = events.filter((e) => e.data).map((e) => e.data.choices[0]?.delta?.content ?? "").join("");
  assert.equal(text, "before after");
  assert.deepEqual(events.at(-1), { done: true });
});

test("a stream silent past the idle timeout ends with an error chunk and aborts the upstream", async () => {
  const t0 = Date.now();
  const r = await chat({ model: "test/stall", stream: true, messages: msg("x") });
  const events = await collect(r.body);
  assert.ok(Date.now() - t0 < 5000);
  const err = events.find((e) => e.data?.error);
  assert.equal(err.data.error.code, 408);
  assert.equal(err.data.choices[0].finish_reason, "error");
  assert.deepEqual(events.at(-1), { done: true });
  assert.ok(await mock.waitFor("stall", "closed"), "the stalled upstream was aborted");
});

test("a client that disconnects cancels the upstream request", async () => {
  const ctl = new AbortController();
  const r = await chat({ model: "test/endless", stream: true, messages: msg("x") }, { signal: ctl.signal });
  const it = sseEvents(r.body);
  await it.next();
  await it.next();
  ctl.abort();
  assert.ok(await mock.waitFor("endless", "closed", 5000), "upstream connection was closed");
});

test("free-model limits are counted exactly in a Durable Object under 200 concurrent requests", async () => {
  const results = await Promise.all(
    Array.from({ length: 200 }, () => chat({ model: "modelmux/echo", messages: msg("count me") }, { key: COUNTER_KEY })),
  );
  const statuses = results.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 200).length, 150);
  assert.equal(statuses.filter((s) => s === 429).length, 50);
  const refused = results.find((r) => r.status === 429);
  assert.ok(Number(refused.headers.get("retry-after")) > 0);
  assert.equal(refused.headers.get("x-ratelimit-remaining"), "0");
  const body = await refused.json();
  assert.match(body.error.message, /free-models-per-day/);
  const remaining = results.filter((r) => r.status === 200).map((r) => Number(r.headers.get("x-ratelimit-remaining")));
  assert.deepEqual(remaining.sort((a, b) => a - b), Array.from({ length: 150 }, (_, i) => i));
  await Promise.all(results.filter((r) => !r.bodyUsed).map((r) => r.body?.cancel()));
});

test("CORS preflight and headers for browser callers", async () => {
  const r = await fetch(`${worker.base}/chat/completions`, {
    method: "OPTIONS",
    headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,x-stainless-os" },
  });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
  assert.match(r.headers.get("access-control-allow-headers"), /x-stainless-os/);
});
