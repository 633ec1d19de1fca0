// What every reply says of how it was served (issue 24, item 3), through the built
// worker: the request limit that counted it (`X-RateLimit-*-Requests`), what the
// account and key have left (`X-Credits-Remaining`, `X-Key-Limit-Remaining`), where the
// time went (`Server-Timing`), OpenRouter's `openrouter_metadata` when asked for, and
// the body sent upstream as a stream's first chunk (`debug.echo_upstream_body`).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/eventually.mjs";
import { startWorker, caller } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { collect } from "../support/sse.mjs";
import { picos } from "../support/money.mjs";

let mock, worker;

// test/freebie: test/ok's endpoint at no price (its `:free` variant is free).
function catalog() {
  const c = testCatalog();
  const ok = c.models.find((m) => m.id === "test/ok");
  c.models.push({ ...ok, id: "test/freebie", name: "Test: freebie",
    endpoints: ok.endpoints.map((e) => ({ ...e, pricing: { prompt: "0", completion: "0" } })) });
  // Copies of test/fallback (its first endpoint answers 500, its second serves), each
  // failing at a provider of its own: the health a failure reports reorders the next plan
  // (and requests name the order: equal prices are balanced at random).
  const fallback = c.models.find((m) => m.id === "test/fallback");
  for (const [id, first] of [["test/fallback-whole", "mockai"], ["test/fallback-stream", "mockopenai"]]) {
    c.models.push({ ...fallback, id, name: id, endpoints: fallback.endpoints.map((e, i) => (i === 0 ? { ...e, provider: first } : e)) });
  }
  return c;
}

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: catalog(), bindings: { ...mockBindings(mock.url), SETTLE_FLUSH_MS: "20",
    FREE_REQUESTS_PER_MINUTE: "1000", FREE_REQUESTS_PER_DAY: "50" } });
});

after(async () => {
  await worker?.close();
  await mock?.close();
});

const call = caller(() => worker);
const post = (path, key, body, headers) => call("POST", path, key, body, headers);
// test/ok answers 11 prompt and 7 completion tokens at 1 and 2 µ$: 25 µ$, and with
// max_tokens 7 that is also the request's hold.
const COST = picos("0.000025");
const chat = (key, body = {}, headers = {}) =>
  post("/chat/completions", key, { model: "test/ok", messages: [{ role: "user", content: "hi" }], max_tokens: 7, ...body }, headers);
const usd = (p) => {
  const s = (p / 10n ** 12n).toString() + "." + (p % 10n ** 12n).toString().padStart(12, "0");
  return s.replace(/0+$/, "").replace(/\.$/, "");
};
const usage = async (key) => {
  const r = await fetch(`${worker.base}/credits`, { headers: { authorization: `Bearer ${key}` } });
  return picos((await r.json()).data.total_usage);
};
const settledTo = (key, want) => eventually(async () => (await usage(key)) === want, `usage settled to ${want}`);
/** `Server-Timing` as {name: {desc, dur}}. */
function serverTiming(h) {
  const out = {};
  for (const part of h.split(",")) {
    const [name, ...params] = part.trim().split(";");
    out[name] = Object.fromEntries(params.map((p) => p.split("=")));
  }
  return out;
}

test("a paid reply says what the account has left after its hold, and the key's limit", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const started = Date.now();
  const r = await chat(acc.key);
  const wall = Date.now() - started;
  assert.equal(r.status, 200);
  await r.json();
  assert.equal(r.headers.get("x-credits-remaining"), usd(picos("10") - COST));
  assert.equal(r.headers.get("x-key-limit-remaining"), null, "the key has no limit");
  // A paid model on a key without a request rate: no request limit counted it.
  for (const h of ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"]) {
    assert.equal(r.headers.get(h), null, h);
  }
  const t = serverTiming(r.headers.get("server-timing"));
  assert.deepEqual(Object.keys(t), ["admission", "gateway", "upstream"]);
  assert.equal(t.admission.desc, "exact");
  const [gateway, upstream] = [t.gateway.dur, t.upstream.dur].map(Number);
  assert.ok(Number.isInteger(gateway) && Number.isInteger(upstream), r.headers.get("server-timing"));
  assert.ok(gateway + upstream <= wall + 2, `${gateway} + ${upstream} within the ${wall} ms the client waited`);
  // Once it settled, the next reply has its cost off too (and its own hold).
  await settledTo(acc.key, COST);
  const next = await chat(acc.key);
  await next.json();
  assert.equal(next.headers.get("x-credits-remaining"), usd(picos("10") - 2n * COST));

  // A key with a $1 limit: what is left of it, the same way.
  await settledTo(acc.key, 2n * COST);
  const made = await (await post("/keys", acc.provisioningKey, { name: "capped", limit: 1 })).json();
  const capped = await chat(made.key);
  await capped.json();
  assert.equal(capped.headers.get("x-key-limit-remaining"), usd(picos("1") - COST));
  assert.equal(capped.headers.get("x-credits-remaining"), usd(picos("10") - 3n * COST));
  await settledTo(acc.key, 3n * COST);
  const again = await chat(made.key, { stream: true });
  assert.equal(again.headers.get("x-key-limit-remaining"), usd(picos("1") - 2n * COST), "a stream's headers too");
  await again.text();
});

test("a free request says its request limit: the tightest window, going down by one", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const seen = [];
  for (let i = 0; i < 2; i++) {
    const r = await chat(acc.key, { model: "test/freebie:free" });
    assert.equal(r.status, 200);
    await r.json();
    const h = (n) => r.headers.get(n);
    // 50 a day is tighter than 1000 a minute.
    assert.equal(h("x-ratelimit-limit-requests"), "50");
    assert.equal(h("x-ratelimit-limit"), "50");
    assert.equal(h("x-ratelimit-remaining"), h("x-ratelimit-remaining-requests"));
    seen.push(h("x-ratelimit-remaining-requests"));
    // The day window ends at midnight UTC: the wait, as OpenAI writes it.
    const reset = Number(h("x-ratelimit-reset"));
    assert.equal(reset % 86_400_000, 0);
    const m = /^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$/.exec(h("x-ratelimit-reset-requests"));
    assert.ok(m, h("x-ratelimit-reset-requests"));
    const wait = (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3])) * 1000;
    assert.ok(Math.abs(reset - Date.now() - wait) < 2000, `${wait} ms to ${reset}`);
    assert.equal(h("x-credits-remaining"), "10", "nothing held for a free model");
  }
  assert.deepEqual(seen, ["49", "48"]);
  const cors = await fetch(`${worker.base}/chat/completions`, { method: "OPTIONS", headers: { origin: "https://a.example", "access-control-request-method": "POST" } });
  const exposed = cors.headers.get("access-control-expose-headers").split(/,\s*/);
  for (const h of ["X-RateLimit-Limit-Requests", "X-RateLimit-Remaining-Requests", "X-RateLimit-Reset-Requests", "X-Credits-Remaining", "X-Key-Limit-Remaining", "Server-Timing"]) {
    assert.ok(exposed.includes(h), h);
  }
});

/** `openrouter_metadata` of a copy of test/fallback served by its second endpoint (the
 * first answered 500: a 502 here). */
const fallbackMeta = (model, first) => ({
  requested: model, strategy: "direct", region: null, summary: "available=2, selected=MockBackup",
  attempt: 2, is_byok: false,
  endpoints: { total: 2, available: [
    { provider: first, model, selected: false },
    { provider: "MockBackup", model, selected: true },
  ] },
  attempts: [
    { provider: first, model, status: 502 },
    { provider: "MockBackup", model, status: 200 },
  ],
  pipeline: [],
});
const META = { "x-openrouter-metadata": "enabled" };

test("openrouter_metadata: asked for, in the reply and a stream's last chunk, attempts after a fallback", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const whole = await (await chat(acc.key, { model: "test/fallback-whole", provider: { order: ["mockai", "mockbackup"] } }, META)).json();
  assert.deepEqual(whole.openrouter_metadata, fallbackMeta("test/fallback-whole", "MockAI"));
  const plain = await (await chat(acc.key, { model: "test/fallback" })).json();
  assert.equal(plain.openrouter_metadata, undefined, "only when asked for");
  const other = await (await chat(acc.key, { model: "test/fallback" }, { "x-openrouter-metadata": "disabled" })).json();
  assert.equal(other.openrouter_metadata, undefined);

  const streamed = await collect((await chat(acc.key, { model: "test/fallback-stream", stream: true, provider: { order: ["mockopenai", "mockbackup"] } }, META)).body);
  const data = streamed.filter((e) => e.data).map((e) => e.data);
  assert.ok(streamed.at(-1).done);
  assert.deepEqual(data.at(-1).openrouter_metadata, fallbackMeta("test/fallback-stream", "MockOpenAI"), "on the final chunk");
  assert.ok(data.at(-1).usage, "the usage chunk");
  assert.equal(data.slice(0, -1).filter((d) => d.openrouter_metadata).length, 0, "only there");

  // One model, one endpoint, on the other surfaces.
  const direct = {
    requested: "test/ok", strategy: "direct", region: null, summary: "available=1, selected=MockAI", attempt: 1, is_byok: false,
    endpoints: { total: 1, available: [{ provider: "MockAI", model: "test/ok", selected: true }] },
    attempts: [{ provider: "MockAI", model: "test/ok", status: 200 }], pipeline: [],
  };
  const messages = { model: "test/ok", max_tokens: 7, messages: [{ role: "user", content: "hi" }] };
  const m = await (await post("/messages", acc.key, messages, META)).json();
  assert.equal(m.type, "message");
  assert.deepEqual(m.openrouter_metadata, direct);
  const mEvents = await collect((await post("/messages", acc.key, { ...messages, stream: true }, META)).body);
  const stop = mEvents.at(-1).data;
  assert.equal(stop.type, "message_stop");
  assert.deepEqual(stop.openrouter_metadata, direct);
  const responses = { model: "test/ok", max_output_tokens: 7, input: "hi" };
  const resp = await (await post("/responses", acc.key, responses, META)).json();
  assert.equal(resp.object, "response");
  assert.deepEqual(resp.openrouter_metadata, direct);
  const rEvents = (await collect((await post("/responses", acc.key, { ...responses, stream: true }, META)).body)).filter((e) => e.data);
  const completed = rEvents.at(-1).data;
  assert.equal(completed.type, "response.completed");
  assert.deepEqual(completed.response.openrouter_metadata, direct);
  assert.equal(rEvents.slice(0, -1).filter((e) => e.data.response?.openrouter_metadata).length, 0);
});

test("debug.echo_upstream_body: a chat stream's first chunk is the body sent upstream, without secrets", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const r = await chat(acc.key, { model: "test/stream", stream: true, debug: { echo_upstream_body: true } });
  assert.equal(r.status, 200);
  const text = await r.text();
  const sent = mock.last("/v1/chat/completions");
  const events = await collect(new Response(text).body);
  const first = events[0].data;
  assert.deepEqual(first.choices, []);
  assert.equal(first.object, "chat.completion.chunk");
  assert.equal(first.id, r.headers.get("x-generation-id"));
  assert.deepEqual(first.debug.echo_upstream_body, sent.body, "what the provider got");
  assert.equal(sent.body.debug, undefined, "the gateway's own field does not go upstream");
  for (const secret of ["sk-mockai-secret", "Bearer", acc.key]) assert.ok(!text.includes(secret), secret);
  assert.equal(events.filter((e) => e.data?.debug).length, 1, "once");
  assert.equal(events.slice(1).filter((e) => e.data).map((e) => e.data.choices[0]?.delta?.content ?? "").join(""), "Hello from the mock");

  // Not streamed: ignored, as on OpenRouter.
  const whole = await (await chat(acc.key, { model: "test/stream", debug: { echo_upstream_body: true } })).json();
  assert.equal(whole.debug, undefined);
  assert.equal(whole.choices[0].message.content, "Hello from the mock");
  // A `debug` of another shape is refused, naming the field.
  const bad = await chat(acc.key, { debug: { echo_upstream_body: "yes" } });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.message, "debug.echo_upstream_body: must be a boolean, not a string");
});
