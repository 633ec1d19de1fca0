// Routing through the running worker: provider order, fallback on every failure kind,
// `models` fallbacks, upstream quotas in a Durable Object, data policy, health.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

let mock, worker, KEY;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({
    catalog: testCatalog(),
    bindings: { ...mockBindings(mock.url), UPSTREAM_TIMEOUT_MS: "800", UPSTREAM_REPLY_TIMEOUT_MS: "800", HEALTH_CACHE_SECS: "0", HEALTH_FLUSH_MS: "0", CATALOG_CACHE_SECS: "0" },
  });
  KEY = (await worker.createAccount()).key;
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

const chat = (body, key = KEY) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], ...body }),
  });
const since = (n) => mock.requests.slice(n).map((r) => r.url.split("/")[1]);

test("falls back through 500, 429, timeout and a refused connection, in the given order", async () => {
  const n = mock.requests.length;
  const r = await chat({ model: "route/gauntlet", provider: { order: ["mockai", "mockbackup", "mockopenai", "mockdead", "mockquota"] } });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.provider, "MockQuota");
  assert.equal(body.choices[0].message.content, "Hello from the mock");
  // mockdead refuses connections, so it never shows up at the mock.
  assert.deepEqual(since(n), ["v1", "backup", "openai", "quota"]);
});

test("allow_fallbacks: false stops at the first endpoint", async () => {
  const r = await chat({ model: "route/gauntlet", provider: { order: ["mockai"], allow_fallbacks: false } });
  assert.equal(r.status, 502);
  assert.equal((await r.json()).error.metadata.provider_name, "mockai");
});

test("when every endpoint fails, each one's error is kept in metadata.provider_errors, the reported one first", async () => {
  const order = ["mockai", "mockbackup", "mockopenai", "mockdead"];
  const r = await chat({ model: "route/gauntlet", provider: { order, allow_fallbacks: false } });
  const { error } = await r.json();
  assert.equal(r.status, error.code);
  const list = error.metadata.provider_errors;
  assert.equal(list.length, 4);
  // The top-level error is the one reported, and it heads the list.
  assert.equal(list[0].provider_name, error.metadata.provider_name);
  assert.equal(list[0].message, error.message);
  assert.deepEqual(list.map((e) => e.provider_name).sort(), [...order].sort());
  for (const e of list) {
    assert.equal(e.model, "route/gauntlet");
    assert.equal(typeof e.code, "number");
    assert.ok("raw" in e);
  }
  assert.equal(list.find((e) => e.provider_name === "mockai").code, 500);
  assert.equal(list.find((e) => e.provider_name === "mockbackup").code, 429);
  assert.equal(list.find((e) => e.provider_name === "mockopenai").code, 408);
});

test("only and ignore", async () => {
  const r = await chat({ model: "route/gauntlet", provider: { only: ["mockquota"] } });
  assert.equal((await r.json()).provider, "MockQuota");
  const none = await chat({ model: "route/gauntlet", provider: { only: ["nobody"] } });
  assert.equal(none.status, 404);
  assert.match((await none.json()).error.message, /provider preferences/);
});

test("models: [...] falls back to the next model and says which served", async () => {
  const r = await chat({ model: "route/dead", models: ["test/ok"] });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.model, "test/ok");
  assert.equal(body.choices[0].message.content, "mock says: hi");
});

test("models: [...] moves on after any error of a model, a refused request too", async () => {
  const n = mock.requests.length;
  const r = await chat({ model: "openai-mock/fail400", models: ["test/ok"] });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).model, "test/ok");
  assert.equal(mock.requests.length, n + 2, "the refusing model was asked once, then the next");
  // Without a next model the refusal is the answer.
  const alone = await chat({ model: "openai-mock/fail400" });
  assert.equal(alone.status, 400);
  assert.match((await alone.json()).error.message, /mock refuses this request/);
});

test("provider preferences OpenRouter defines are honoured; an unknown one is a 400 naming it", async () => {
  const r = await chat({ model: "route/retainer", provider: { zdr: true } });
  assert.equal(r.status, 404, "both endpoints keep prompts");
  const sorted = await chat({ model: "route/gauntlet", provider: { sort: { by: "price", partition: "none" }, only: ["mockquota"] } });
  assert.equal(sorted.status, 200);
  const bad = await chat({ model: "test/ok", provider: { sorting: "price" } });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /^provider\.sorting: unknown preference/);
});

test("a part a model cannot take is a 400 naming the modality, or goes to a fallback model that takes it", async () => {
  const image = [{ role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] }];
  const r = await chat({ model: "modelmux/echo", messages: image });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /^messages: modelmux\/echo does not take image input/);
  const routed = await chat({ model: "modelmux/echo", models: ["test/ok"], messages: image });
  assert.equal(routed.status, 200);
  assert.equal((await routed.json()).model, "test/ok");
});

test("a spent upstream quota is routed around, then answered with 429 and Retry-After", async () => {
  const providers = [];
  for (let i = 0; i < 3; i++) {
    const r = await chat({ model: "route/quota-backup", provider: { order: ["mockquota", "mockbackup"] } });
    assert.equal(r.status, 200);
    providers.push((await r.json()).provider);
  }
  assert.deepEqual(providers, ["MockQuota", "MockQuota", "MockBackup"]);
  const statuses = [];
  for (let i = 0; i < 3; i++) {
    const r = await chat({ model: "route/quota" });
    statuses.push(r.status);
    if (r.status === 429) {
      assert.ok(Number(r.headers.get("retry-after")) >= 1);
      assert.match((await r.json()).error.message, /quota/);
    } else await r.arrayBuffer();
  }
  assert.deepEqual(statuses, [200, 200, 429]);
});

test("data policy: training providers need the account setting; data_collection deny", async () => {
  const r = await chat({ model: "route/trainer" });
  assert.equal(r.status, 404);
  assert.match((await r.json()).error.message, /data policy/);
  const trusting = await worker.createAccount({ allow_training: true });
  const allowed = await chat({ model: "route/trainer" }, trusting.key);
  assert.equal((await allowed.json()).provider, "MockTrain");
  const ok = await chat({ model: "route/retainer" });
  assert.equal((await ok.json()).provider, "MockRetain");
  const deny = await chat({ model: "route/retainer", provider: { data_collection: "deny" } });
  assert.equal(deny.status, 404);
  assert.match((await deny.json()).error.message, /data policy/);
});

test("context length is checked before any upstream call", async () => {
  const n = mock.requests.length;
  // An 8k endpoint compresses by default (as on OpenRouter): turned off here.
  const plugins = [{ id: "context-compression", enabled: false }];
  const r = await chat({ model: "test/ok", plugins, messages: [{ role: "user", content: "word ".repeat(10_000) }] });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /maximum context length is 8192/);
  assert.equal(mock.requests.length, n);
});

test("health: a failing endpoint shows in /endpoints and is tried last", async () => {
  // The cheap endpoint fails; each request falls back to the expensive one.
  const r1 = await chat({ model: "route/flaky" });
  assert.equal(r1.status, 200);
  let seen = null;
  for (let i = 0; i < 50 && !seen; i++) {
    const { data } = await (await fetch(`${worker.base}/models/route/flaky/endpoints`)).json();
    const ep = data.endpoints.find((e) => e.tag === "mockai");
    if (ep.uptime_last_30m !== null && ep.status === -1) seen = ep;
    else await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(seen, "health reached /endpoints");
  assert.ok(seen.uptime_last_30m < 100);
  // Once routing's snapshot has the failure, the failing endpoint is not tried first.
  let direct = false;
  for (let i = 0; i < 20 && !direct; i++) {
    const n = mock.requests.length;
    const r = await chat({ model: "route/flaky" });
    assert.equal(r.status, 200);
    direct = since(n)[0] === "backup";
  }
  assert.ok(direct, "the down endpoint went last");
});

test("a session sticks to the endpoint that served it (session_id or prompt_cache_key); usage breaks the cost down", async () => {
  for (const session of [{ session_id: "conv-7" }, { prompt_cache_key: "cache-9" }]) {
    const seen = new Set();
    for (let i = 0; i < 8; i++) {
      const r = await chat({ model: "route/twin", ...session });
      assert.equal(r.status, 200);
      seen.add((await r.json()).provider);
    }
    assert.equal(seen.size, 1, JSON.stringify(session));
  }
  // Without a session the price-weighted shuffle spreads requests over both.
  const seen = new Set();
  for (let i = 0; i < 40 && seen.size < 2; i++) seen.add((await (await chat({ model: "route/twin" })).json()).provider);
  assert.equal(seen.size, 2);
  const { usage } = await (await chat({ model: "route/twin" })).json();
  // 11 prompt tokens at $1/M, 7 completion tokens at $2/M.
  assert.deepEqual(usage.cost_details, { upstream_inference_cost: 0.000025, upstream_inference_prompt_cost: 0.000011, upstream_inference_completions_cost: 0.000014 });
});

// Last in this file: it reads the Health objects themselves.
test("health is sharded by provider: one provider's failures reach routing through its own object", async () => {
  const ns = await worker.mf.getDurableObjectNamespace("HEALTH");
  // A shard answers {key: [uptime_30m, uptime_5m, uptime_1d, latency, throughput,
  // latency percentiles, throughput percentiles, down_until_ms]}.
  const shard = async (name) => {
    const all = await (await ns.get(ns.idFromName(name)).fetch("https://health/")).json();
    return Object.fromEntries(Object.entries(all).map(([k, s]) => [k, { uptime_30m: s[0], down_until_ms: s[7] }]));
  };
  // The cheap endpoint (MockAI) fails and the request falls back to MockBackup.
  const r = await chat({ model: "route/flaky" });
  assert.equal(r.status, 200);
  let mockai = {};
  for (let i = 0; i < 50 && !mockai["mockai/fail500"]; i++) {
    mockai = await shard("provider:mockai");
    if (!mockai["mockai/fail500"]) await new Promise((res) => setTimeout(res, 100));
  }
  const failed = mockai["mockai/fail500"];
  assert.ok(failed, "the failure reached MockAI's shard");
  assert.equal(failed.uptime_30m, 0);
  assert.ok(failed.down_until_ms > Date.now(), JSON.stringify(failed));
  // Each provider's object holds its own endpoints only, and no global object is used.
  assert.ok(Object.keys(mockai).every((k) => k.startsWith("mockai/")), Object.keys(mockai).join());
  const backup = await shard("provider:mockbackup");
  assert.ok(Object.keys(backup).length > 0 && Object.keys(backup).every((k) => k.startsWith("mockbackup/")), Object.keys(backup).join());
  assert.equal(backup["mockbackup/stream"]?.uptime_30m, 1);
  assert.deepEqual(await shard("global"), {});
  // Routing reads the shards of the model's providers: the down endpoint goes last.
  let direct = false;
  for (let i = 0; i < 20 && !direct; i++) {
    const n = mock.requests.length;
    assert.equal((await chat({ model: "route/flaky" })).status, 200);
    direct = since(n)[0] === "backup";
  }
  assert.ok(direct, "the down endpoint went last");
  // So does the listing, which reads the same shards.
  const { data } = await (await fetch(`${worker.base}/models/route/flaky/endpoints`)).json();
  assert.equal(data.endpoints.find((e) => e.tag === "mockai").status, -1);
  assert.equal(data.endpoints.find((e) => e.tag === "mockbackup").uptime_last_30m, 100);
});
