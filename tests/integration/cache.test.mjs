// The response cache (OpenRouter's `X-OpenRouter-Cache` protocol) through the built
// worker, with the official `openai` npm SDK unchanged where it fits: a miss then a
// hit (one upstream call), replayed whole and streamed, free and attributed to its
// source, cleared, expired, kept per key, never under ZDR, and identical requests in
// flight together served by one upstream call.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startWorker, caller, sha256 } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { eventually } from "../support/eventually.mjs";
import { exactBody, picos } from "../support/money.mjs";

let mock, worker, acc, client, call;
const CACHE = { "X-OpenRouter-Cache": "true" };

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: mockBindings(mock.url) });
  acc = await worker.createAccount({ credits: 10 });
  client = new OpenAI({ baseURL: worker.base, apiKey: acc.key, maxRetries: 0 });
  call = caller(() => worker);
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

/** Upstream calls whose body names `tag`. */
const upstreamCalls = (tag) => mock.requests.filter((r) => JSON.stringify(r.body ?? "").includes(tag)).length;
const ask = (tag, extra = {}) => ({ model: "test/ok", messages: [{ role: "user", content: tag }], ...extra });
/** A chat completion through the SDK, with its reply headers. */
const chat = (body, headers = CACHE, c = client) => c.chat.completions.create(body, { headers }).withResponse();
const cacheHeaders = (r) => Object.fromEntries(["status", "age", "ttl", "source-id"].map((h) => [h, r.headers.get(`x-openrouter-cache-${h}`)]));

/** The record of generation `id`, once it has landed. */
const record = (id, key = acc.key) => eventually(async () => {
  const g = await call("GET", `/generation?id=${id}`, key);
  return g.status === 200 && (await g.json()).data;
}, `generation ${id}`);

test("a miss then a hit: one upstream call, the same reply under a new ID, free", async () => {
  const tag = "cache-whole-1";
  const miss = await chat(ask(tag));
  assert.deepEqual(cacheHeaders(miss.response), { status: "MISS", age: null, ttl: "300", "source-id": null });
  assert.equal(miss.data.choices[0].message.content, `mock says: ${tag}`);
  assert.equal(miss.data.usage.prompt_tokens, 11);
  const hit = await chat(ask(tag));
  const h = cacheHeaders(hit.response);
  assert.equal(h.status, "HIT");
  assert.equal(h["source-id"], miss.data.id);
  assert.ok(Number(h.age) >= 0 && Number(h.age) <= 5, `age ${h.age}`);
  assert.ok(Number(h.ttl) >= 295 && Number(h.ttl) <= 300, `ttl ${h.ttl}`);
  assert.equal(upstreamCalls(tag), 1);
  assert.notEqual(hit.data.id, miss.data.id);
  assert.equal(hit.response.headers.get("x-generation-id"), hit.data.id);
  assert.deepEqual(hit.data.choices, miss.data.choices);
  assert.equal(hit.data.model, "test/ok");
  assert.deepEqual(hit.data.usage, { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: 0 });
  // Key order and spacing do not make another request.
  const reordered = await call("POST", "/chat/completions", acc.key, { messages: [{ content: tag, role: "user" }], model: "test/ok" }, CACHE);
  assert.equal(reordered.headers.get("x-openrouter-cache-status"), "HIT");
  assert.equal(upstreamCalls(tag), 1);
  // A browser client may read the cache's headers.
  const cors = await fetch(`${worker.base}/chat/completions`, { method: "OPTIONS", headers: { origin: "https://a.example", "access-control-request-method": "POST" } });
  const exposed = cors.headers.get("access-control-expose-headers").split(/,\s*/);
  for (const h of ["Status", "Age", "TTL", "Source-Id"]) assert.ok(exposed.includes(`X-OpenRouter-Cache-${h}`), h);
});

test("a streamed request is kept from its stream and replayed as a stream", async () => {
  const tag = "cache-stream-1";
  const read = async (r) => {
    let text = "", ids = new Set(), usage = null;
    for await (const chunk of r.data) {
      text += chunk.choices[0]?.delta?.content ?? "";
      ids.add(chunk.id);
      if (chunk.usage) usage = chunk.usage;
    }
    return { text, ids: [...ids], usage };
  };
  const body = ask(tag, { model: "test/stream", stream: true });
  const miss = await chat(body);
  assert.equal(miss.response.headers.get("x-openrouter-cache-status"), "MISS");
  const first = await read(miss);
  assert.equal(first.text, "Hello from the mock");
  assert.ok(first.usage.cost > 0);
  const hit = await eventually(async () => {
    const r = await chat(body);
    return r.response.headers.get("x-openrouter-cache-status") === "HIT" ? r : (await read(r), false);
  }, "the stream's entry");
  assert.match(hit.response.headers.get("content-type"), /^text\/event-stream/);
  const second = await read(hit);
  assert.equal(second.text, "Hello from the mock");
  assert.deepEqual(second.ids, [hit.response.headers.get("x-generation-id")]);
  assert.equal(second.usage.cost, 0);
  assert.equal(second.usage.total_tokens, 0);
  assert.equal(upstreamCalls(tag), 1);
  // The stream flag is part of the key: the same body whole is another entry.
  const whole = await chat({ ...body, stream: false });
  assert.equal(whole.response.headers.get("x-openrouter-cache-status"), "MISS");
  assert.equal(upstreamCalls(tag), 2);
});

test("a hit costs nothing and its record names its source", async () => {
  const tag = "cache-free-1";
  const miss = await chat(ask(tag));
  const source = await record(miss.data.id);
  assert.ok(picos(source.total_cost) > 0n);
  assert.equal(source.response_cache_source_id, null);
  const before = await exactBody(await call("GET", "/credits", acc.key));
  const hit = await chat(ask(tag));
  assert.equal(hit.response.headers.get("x-openrouter-cache-status"), "HIT");
  const g = await record(hit.data.id);
  assert.equal(g.response_cache_source_id, miss.data.id);
  assert.equal(g.total_cost, 0);
  assert.equal(g.tokens_prompt, 0);
  assert.equal(g.tokens_completion, 0);
  assert.equal(g.usage_source, "cache");
  assert.equal(g.model, "test/ok");
  assert.equal(g.finish_reason, "stop");
  const after = await exactBody(await call("GET", "/credits", acc.key));
  assert.equal(picos(after.data.total_usage), picos(before.data.total_usage));
  assert.equal(picos(after.data.total_credits), picos(10));
});

test("Clear refetches and replaces the entry; a short TTL expires", async () => {
  const tag = "cache-clear-1";
  const first = await chat(ask(tag));
  const cleared = await chat(ask(tag), { ...CACHE, "X-OpenRouter-Cache-Clear": "true" });
  assert.equal(cleared.response.headers.get("x-openrouter-cache-status"), "MISS");
  assert.equal(upstreamCalls(tag), 2);
  const hit = await chat(ask(tag));
  assert.equal(hit.response.headers.get("x-openrouter-cache-source-id"), cleared.data.id);
  assert.notEqual(cleared.data.id, first.data.id);
  assert.equal(upstreamCalls(tag), 2);

  const short = "cache-ttl-1";
  const ttl = { ...CACHE, "X-OpenRouter-Cache-TTL": "1" };
  const m = await chat(ask(short), ttl);
  assert.equal(m.response.headers.get("x-openrouter-cache-ttl"), "1");
  assert.equal((await chat(ask(short), ttl)).response.headers.get("x-openrouter-cache-status"), "HIT");
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await chat(ask(short), ttl)).response.headers.get("x-openrouter-cache-status"), "MISS");
  assert.equal(upstreamCalls(short), 2);
});

test("without the header, with another key, or under ZDR nothing is shared", async () => {
  const tag = "cache-scope-1";
  const plain = await chat(ask(tag), {});
  assert.equal(plain.response.headers.get("x-openrouter-cache-status"), null);
  await chat(ask(tag));
  assert.equal((await chat(ask(tag))).response.headers.get("x-openrouter-cache-status"), "HIT");
  const other = await worker.createAccount({ credits: 10 });
  const theirs = new OpenAI({ baseURL: worker.base, apiKey: other.key, maxRetries: 0 });
  assert.equal((await chat(ask(tag), CACHE, theirs)).response.headers.get("x-openrouter-cache-status"), "MISS");
  assert.equal(upstreamCalls(tag), 3);

  const zdr = "cache-zdr-1";
  for (let i = 0; i < 2; i++) {
    const r = await chat(ask(zdr, { provider: { zdr: true } }));
    assert.equal(r.response.headers.get("x-openrouter-cache-status"), null);
  }
  assert.equal(upstreamCalls(zdr), 2);
});

test("errors are not kept; bad cache headers are refused before any upstream call", async () => {
  const tag = "cache-error-1";
  for (let i = 0; i < 2; i++) {
    const r = await call("POST", "/chat/completions", acc.key, ask(tag, { model: "test/ratelimited" }), CACHE);
    assert.equal(r.status, 429);
    assert.equal(r.headers.get("x-openrouter-cache-status"), null);
  }
  assert.equal(upstreamCalls(tag), 2);
  const bad = "cache-bad-1";
  for (const [h, v, msg] of [
    ["X-OpenRouter-Cache-TTL", "0", "X-OpenRouter-Cache-TTL: must be a whole number of seconds from 1 to 86400"],
    ["X-OpenRouter-Cache-TTL", "86401", "X-OpenRouter-Cache-TTL: must be a whole number of seconds from 1 to 86400"],
    ["X-OpenRouter-Cache", "maybe", "X-OpenRouter-Cache: must be true or false"],
  ]) {
    const r = await call("POST", "/chat/completions", acc.key, ask(bad), { ...CACHE, [h]: v });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.message, msg);
  }
  assert.equal(upstreamCalls(bad), 0);
});

test("a disabled key gets no hit", async () => {
  const tag = "cache-disabled-1";
  const own = await worker.createAccount({ credits: 10 });
  const c = new OpenAI({ baseURL: worker.base, apiKey: own.key, maxRetries: 0 });
  await chat(ask(tag), CACHE, c);
  assert.equal((await chat(ask(tag), CACHE, c)).response.headers.get("x-openrouter-cache-status"), "HIT");
  const patched = await call("PATCH", `/keys/${sha256(own.key)}`, own.provisioningKey, { disabled: true });
  assert.equal(patched.status, 200);
  await eventually(async () => {
    const r = await call("POST", "/chat/completions", own.key, ask(tag), CACHE);
    return r.status === 401;
  }, "the disabled key refused");
});

test("identical requests in flight together: one upstream call, the others wait for it", async () => {
  const tag = "cache-flight-1";
  const body = ask(tag, { model: "test/slowreply" });
  const replies = await Promise.all([0, 1, 2].map(() => chat(body)));
  const statuses = replies.map((r) => r.response.headers.get("x-openrouter-cache-status")).sort();
  assert.deepEqual(statuses, ["HIT", "HIT", "MISS"]);
  assert.equal(upstreamCalls(tag), 1);
  const source = replies.find((r) => r.response.headers.get("x-openrouter-cache-status") === "MISS").data.id;
  for (const r of replies) assert.equal(r.data.choices[0].message.content, "worth the wait");
  for (const r of replies.filter((r) => r.data.id !== source)) {
    assert.equal(r.response.headers.get("x-openrouter-cache-source-id"), source);
  }
});

test("Responses, Messages and embeddings are kept in their own shapes", async () => {
  const tag = "cache-surfaces-1";
  const resp = async () => client.responses.create({ model: "test/ok", input: tag }, { headers: CACHE }).withResponse();
  const r1 = await resp();
  const r2 = await resp();
  assert.equal(r2.response.headers.get("x-openrouter-cache-status"), "HIT");
  assert.equal(r2.data.output_text, `mock says: ${tag}`);
  assert.equal(r2.data.output_text, r1.data.output_text);
  assert.equal(r2.data.usage.total_tokens, 0);

  const mtag = "cache-messages-1";
  const msg = { model: "anthropic-mock/ok", max_tokens: 50, messages: [{ role: "user", content: mtag }] };
  const m1 = await call("POST", "/messages", acc.key, msg, CACHE);
  assert.equal(m1.headers.get("x-openrouter-cache-status"), "MISS");
  const a = await m1.json();
  const m2 = await call("POST", "/messages", acc.key, msg, CACHE);
  assert.equal(m2.headers.get("x-openrouter-cache-status"), "HIT");
  const b = await m2.json();
  assert.equal(b.type, "message");
  assert.deepEqual(b.content, a.content);
  assert.equal(b.usage.input_tokens, 0);
  assert.equal(b.usage.output_tokens, 0);
  // Streamed, as Anthropic's events.
  const s1 = await call("POST", "/messages", acc.key, { ...msg, stream: true }, CACHE);
  await s1.text();
  const s2 = await eventually(async () => {
    const r = await call("POST", "/messages", acc.key, { ...msg, stream: true }, CACHE);
    return r.headers.get("x-openrouter-cache-status") === "HIT" ? r : (await r.text(), false);
  }, "the Messages stream's entry");
  const events = await s2.text();
  assert.match(events, /^event: message_start/m);
  assert.match(events, /event: content_block_delta\ndata: .*mock says: cache-messages-1/);
  assert.match(events, /event: message_stop/);
  assert.equal(upstreamCalls(mtag), 2);

  const etag = "cache-embed-1";
  const emb = () => client.embeddings.create({ model: "test/embed-openai", input: [etag, "two"] }, { headers: CACHE }).withResponse();
  const e1 = await emb();
  const e2 = await emb();
  assert.equal(e2.response.headers.get("x-openrouter-cache-status"), "HIT");
  assert.deepEqual(e2.data.data, e1.data.data);
  assert.equal(e2.data.data.length, 2);
  assert.equal(e2.data.usage.prompt_tokens, 0);
  assert.notEqual(e2.data.id, e1.data.id);
  assert.equal(upstreamCalls(etag), 1);
});

test("with RESPONSE_CACHE bound, entries are kept in KV too, for every location", async () => {
  const w = await startWorker({ catalog: testCatalog(), bindings: mockBindings(mock.url), kv: ["RESPONSE_CACHE"] });
  try {
    const own = await w.createAccount({ credits: 10 });
    const c = new OpenAI({ baseURL: w.base, apiKey: own.key, maxRetries: 0 });
    const tag = "cache-kv-1";
    const miss = await chat(ask(tag), { ...CACHE, "X-OpenRouter-Cache-TTL": "120" }, c);
    const kv = await w.mf.getKVNamespace("RESPONSE_CACHE");
    const { keys } = await eventually(async () => {
      const l = await kv.list();
      return l.keys.length > 0 && l;
    }, "the KV entry");
    assert.equal(keys.length, 1);
    assert.match(keys[0].name, /^[0-9a-f]{64}$/);
    // KV keeps it for its TTL (at least the minute KV allows).
    assert.ok(keys[0].expiration - Date.now() / 1000 > 100, `expires ${keys[0].expiration}`);
    const entry = JSON.parse(await kv.get(keys[0].name));
    assert.equal(entry.source_id, miss.data.id);
    assert.equal(entry.ttl_secs, 120);
    assert.equal(entry.reply.chat.choices[0].message.content, `mock says: ${tag}`);
    const hit = await chat(ask(tag), CACHE, c);
    assert.equal(hit.response.headers.get("x-openrouter-cache-source-id"), miss.data.id);
    assert.equal(upstreamCalls(tag), 1);
    // Cleared: gone from KV too, then replaced.
    const cleared = await chat(ask(tag), { ...CACHE, "X-OpenRouter-Cache-Clear": "true" }, c);
    await eventually(async () => {
      const v = await kv.get(keys[0].name);
      return v && JSON.parse(v).source_id === cleared.data.id;
    }, "the replaced KV entry");
  } finally {
    await w.close();
  }
});

test("a preset's new version is a miss: the cached reply was made with the old one", async () => {
  const tag = "cache-preset-1";
  const made = await call("POST", "/presets", acc.provisioningKey, { slug: "cached-terse", system_prompt: "Be terse.", config: { temperature: 0.2 } });
  assert.equal(made.status, 201);
  const body = { model: "test/ok@preset/cached-terse", messages: [{ role: "user", content: tag }] };
  assert.equal(cacheHeaders((await chat(body)).response).status, "MISS");
  assert.equal(cacheHeaders((await chat(body)).response).status, "HIT");
  assert.equal(upstreamCalls(tag), 1);
  const patched = await call("PATCH", "/presets/cached-terse", acc.provisioningKey, { system_prompt: "Be verbose." });
  assert.equal(patched.status, 200);
  const after = await chat(body);
  assert.equal(cacheHeaders(after.response).status, "MISS");
  assert.equal(upstreamCalls(tag), 2);
  const sent = mock.requests.filter((r) => JSON.stringify(r.body ?? "").includes(tag)).at(-1).body;
  assert.deepEqual(sent.messages[0], { role: "system", content: "Be verbose." });
  assert.equal(sent.temperature, 0.2);
  assert.equal(cacheHeaders((await chat(body)).response).status, "HIT");
});
