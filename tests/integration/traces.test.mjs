// Trace export's batches and span attributes (README "Trace export") through the built
// worker: generations settled together go in one OTLP request per destination (a
// collector that fails once gets the whole batch again); the span says how many
// endpoints were tried before the one that served, whether the response cache
// answered, and the completion's text unless the destination is in privacy mode.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startWorker } from "../support/worker.mjs";
import { startCollector, attributes } from "../support/otlp_collector.mjs";
import { eventually } from "../support/eventually.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

let mock, worker, queued;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: mockBindings(mock.url) });
  // The same build with the trace queue bound (and consumed by itself).
  queued = await startWorker({ catalog: testCatalog(), bindings: mockBindings(mock.url), traceQueue: true, assets: false });
});
after(async () => {
  await worker?.close();
  await queued?.close();
  await mock?.close();
});

const rawAt = (w) => (key, method, path, body, headers = {}) => fetch(`${w.base}${path}`, {
  method,
  headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
  body: body === undefined ? undefined : JSON.stringify(body),
});
const raw = (...args) => rawAt(worker)(...args);

/** A new account (at worker `w`) with its destinations (`bodies`) made by its
 * provisioning key. */
async function account(name, bodies, w = worker) {
  const acct = await w.createAccount({ name });
  for (const b of bodies) {
    const r = await rawAt(w)(acct.provisioningKey, "POST", "/observability/destinations", b);
    assert.equal(r.status, 201);
  }
  return acct;
}

const attr = (span, key) => attributes(span)[key];

/** Five generations at once at worker `w` to a collector that fails once: one OTLP
 * request refused, then the same five spans in one request again. */
async function batchOfFive(w, name) {
  const col = await startCollector({ failFirst: 1 });
  const acct = await account(name, [{ type: "otlp", endpoint: `${col.url}/batch/v1/traces` }], w);
  const client = new OpenAI({ baseURL: w.base, apiKey: acct.key, maxRetries: 0 });
  const asks = [1, 2, 3, 4, 5].map((n) => client.chat.completions.create({
    model: "openai-mock/ok", messages: [{ role: "user", content: `batch ${n}` }],
  }));
  const replies = await Promise.all(asks);
  const spans = await eventually(() => col.spans("/batch/").length >= 5 && col.spans("/batch/"), "the batch");
  // One request refused, the same five spans again: two requests in all.
  await new Promise((res) => setTimeout(res, 500));
  const posts = col.received.filter((x) => x.url === "/batch/v1/traces");
  assert.deepEqual(posts.map((x) => x.status), [503, 200]);
  assert.equal(posts[0].text, posts[1].text);
  assert.equal(posts[1].body.resourceSpans.length, 1);
  assert.equal(posts[1].body.resourceSpans[0].scopeSpans[0].spans.length, 5);
  const ids = spans.map((s) => attr(s, "gen_ai.response.id").stringValue).sort();
  assert.deepEqual(ids, replies.map((r) => r.id).sort());
  const texts = spans.map((s) => attr(s, "gen_ai.output.messages").stringValue).sort();
  assert.deepEqual(texts, [1, 2, 3, 4, 5].map((n) => `mock says: batch ${n}`));
  await col.close();
}

test("traces: generations settled together go in one OTLP request, sent again whole after a failure", async () => {
  await batchOfFive(worker, "batcher");
});

test("traces: through the trace queue, one OTLP request per delivered batch, retried by the queue", async () => {
  await batchOfFive(queued, "queuer");
});

test("traces: through the trace queue, a destination that always fails is tried 1 + max_retries times", async () => {
  const col = await startCollector({ failFirst: 100 });
  const acct = await account("deadletter", [{ type: "webhook", endpoint: `${col.url}/down` }], queued);
  const r = await rawAt(queued)(acct.key, "POST", "/chat/completions", { model: "openai-mock/ok", messages: [{ role: "user", content: "lost" }] });
  assert.equal(r.status, 200);
  await eventually(() => col.received.length >= 3, "three deliveries");
  await new Promise((res) => setTimeout(res, 2_500));
  // Then it is the dead-letter queue's: no fourth try.
  assert.deepEqual(col.received.map((x) => x.status), [503, 503, 503]);
  await col.close();
});

test("traces: fallback attempts, the response cache and the completion text (none in privacy mode)", async () => {
  const col = await startCollector();
  const acct = await account("attrs", [
    { type: "otlp", endpoint: `${col.url}/full/v1/traces` },
    { type: "webhook", endpoint: `${col.url}/hook`, privacy_mode: true },
  ]);
  // The first endpoint answers 500, the second serves: one attempt before it.
  const fell = await raw(acct.key, "POST", "/chat/completions", {
    model: "test/fallback", messages: [{ role: "user", content: "fall over" }], provider: { order: ["mockai", "mockbackup"] },
  });
  assert.equal(fell.status, 200);
  const fellBody = await fell.json();
  assert.equal(fellBody.provider, "MockBackup");
  const [span] = await eventually(() => col.spans("/full/").length && col.spans("/full/"), "the fallback's span");
  assert.deepEqual(attr(span, "modelmux.fallback_attempts"), { intValue: "1" });
  assert.deepEqual(attr(span, "gen_ai.provider.name"), { stringValue: "MockBackup" });
  assert.equal(attr(span, "modelmux.cache_hit"), undefined, "the request did not ask the cache");
  assert.deepEqual(attr(span, "gen_ai.output.messages"), { stringValue: fellBody.choices[0].message.content });
  const [priv] = await eventually(() => col.spans("/hook").length && col.spans("/hook"), "the private span");
  assert.deepEqual(attr(priv, "modelmux.fallback_attempts"), { intValue: "1" });
  assert.equal(attr(priv, "gen_ai.output.messages"), undefined);
  assert.equal(attr(priv, "gen_ai.input.messages"), undefined);

  // A miss, then a hit of the same request: both spans, the hit's marked and free.
  const ask = { model: "openai-mock/ok", messages: [{ role: "user", content: "cache me (traces)" }] };
  const cache = { "X-OpenRouter-Cache": "true" };
  const miss = await raw(acct.key, "POST", "/chat/completions", ask, cache);
  assert.equal(miss.headers.get("X-OpenRouter-Cache-Status"), "MISS");
  const missId = (await miss.json()).id;
  await eventually(() => col.spans("/full/").length >= 2, "the miss's span");
  const hit = await raw(acct.key, "POST", "/chat/completions", ask, cache);
  assert.equal(hit.headers.get("X-OpenRouter-Cache-Status"), "HIT");
  const hitId = (await hit.json()).id;
  const byId = (id) => col.spans("/full/").find((s) => attr(s, "gen_ai.response.id").stringValue === id);
  const hitSpan = await eventually(() => byId(hitId), "the hit's span");
  const missSpan = byId(missId);
  assert.deepEqual(attr(missSpan, "modelmux.cache_hit"), { boolValue: false });
  assert.deepEqual(attr(missSpan, "modelmux.fallback_attempts"), { intValue: "0" });
  assert.deepEqual(attr(hitSpan, "modelmux.cache_hit"), { boolValue: true });
  assert.deepEqual(attr(hitSpan, "modelmux.cost.picodollars"), { intValue: "0" });
  assert.deepEqual(attr(hitSpan, "gen_ai.output.messages"), { stringValue: "mock says: cache me (traces)" });
  assert.deepEqual(attr(missSpan, "gen_ai.output.messages"), { stringValue: "mock says: cache me (traces)" });
  const privHit = await eventually(
    () => col.spans("/hook").find((s) => attr(s, "gen_ai.response.id").stringValue === hitId), "the hit's private span");
  assert.deepEqual(attr(privHit, "modelmux.cache_hit"), { boolValue: true });
  assert.equal(attr(privHit, "gen_ai.output.messages"), undefined);
  await col.close();
});

test("traces: a streamed reply's span carries its text", async () => {
  const col = await startCollector();
  const acct = await account("streamer", [{ type: "otlp", endpoint: `${col.url}/s/v1/traces` }]);
  const client = new OpenAI({ baseURL: worker.base, apiKey: acct.key, maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model: "openai-mock/ok", stream: true, messages: [{ role: "user", content: "stream me" }],
  });
  let text = "";
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
  assert.equal(text, "mock says: stream me");
  const [span] = await eventually(() => col.spans("/s/").length && col.spans("/s/"), "the stream's span");
  assert.deepEqual(attr(span, "gen_ai.output.messages"), { stringValue: "mock says: stream me" });
  assert.deepEqual(attr(span, "modelmux.streamed"), { boolValue: true });
  await col.close();
});
