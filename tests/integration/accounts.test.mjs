// Accounts through the running worker: keys and provisioning keys, credits, the
// reservation/settlement ledger under concurrency, free-model limits, usage history.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/eventually.mjs";
import { startWorker, ADMIN_KEY, sha256, caller } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { sseEvents } from "../support/sse.mjs";

let mock, worker;
// test/ok costs 11 prompt tokens at $1/M + 7 completion tokens at $2/M = $0.000025.
const COST = 0.000025;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: { ...mockBindings(mock.url), FREE_REQUESTS_PER_DAY: "5", FREE_REQUESTS_PER_MINUTE: "1000" } });
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

const call = caller(() => worker);
const chat = (key, body = {}) => call("POST", "/chat/completions", key, { model: "test/ok", messages: [{ role: "user", content: "hi" }], max_tokens: 10, ...body });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const credits = async (key) => (await (await call("GET", "/credits", key)).json()).data;

test("admin API: needs the admin key", async () => {
  const r = await fetch(`${worker.url}/admin/v1/accounts`, { method: "POST", headers: { authorization: "Bearer nope" }, body: "{}" });
  assert.equal(r.status, 401);
  const g = await fetch(`${worker.url}/admin/v1/accounts/0123456789abcdef`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(g.status, 401);
  const acc = await worker.createAccount({ credits: 3 });
  const shown = await worker.admin("GET", `/accounts/${acc.id}`);
  assert.equal(shown.data.total_credits, 3);
  const granted = await worker.admin("POST", `/accounts/${acc.id}/credits`, { amount: 2.5, note: "top-up" });
  assert.equal(granted.data.total_credits, 5.5);
  assert.match(acc.key, /^sk-mm-v1-[0-9a-f]{64}$/);
});

test("key lifecycle with a provisioning key; disabled and deleted keys stop at once", async () => {
  const acc = await worker.createAccount();
  const created = await call("POST", "/keys", acc.provisioningKey, { name: "ci", limit: 1, limit_reset: "daily" });
  assert.equal(created.status, 201);
  const { data, key } = await created.json();
  assert.match(key, /^sk-mm-v1-[0-9a-f]{64}$/);
  assert.equal(data.name, "ci");
  assert.equal(data.limit, 1);
  assert.equal(data.limit_reset, "daily");
  assert.equal(data.disabled, false);
  assert.ok(!JSON.stringify(data).includes(key), "the key itself is shown once, outside data");
  const list = (await (await call("GET", "/keys", acc.provisioningKey)).json()).data;
  assert.ok(list.some((k) => k.hash === data.hash));
  assert.equal((await chat(key)).status, 200);
  const got = await eventually(async () => {
    const k = (await (await call("GET", `/keys/${data.hash}`, acc.provisioningKey)).json()).data;
    return k.usage > 0 && k;
  }, "key usage");
  assert.equal(got.usage, COST);
  assert.equal(got.usage_daily, COST);
  assert.equal(got.limit_remaining, 1 - COST);

  const off = await call("PATCH", `/keys/${data.hash}`, acc.provisioningKey, { disabled: true });
  assert.equal((await off.json()).data.disabled, true);
  const refused = await chat(key);
  assert.equal(refused.status, 401);
  assert.match((await refused.json()).error.message, /disabled/);
  await call("PATCH", `/keys/${data.hash}`, acc.provisioningKey, { disabled: false, name: "renamed", limit: null });
  assert.equal((await chat(key)).status, 200);
  const del = await call("DELETE", `/keys/${data.hash}`, acc.provisioningKey);
  assert.deepEqual(await del.json(), { deleted: true });
  assert.equal((await chat(key)).status, 401);
  assert.equal((await call("GET", `/keys/${data.hash}`, acc.provisioningKey)).status, 404);
});

test("count_tokens needs a live key: a disabled or deleted key is refused", async () => {
  const acc = await worker.createAccount();
  const { data, key } = await (await call("POST", "/keys", acc.provisioningKey, { name: "counter" })).json();
  const count = () => call("POST", "/messages/count_tokens", key, { model: "test/ok", messages: [{ role: "user", content: "hello" }] });
  const ok = await count();
  assert.equal(ok.status, 200);
  assert.ok((await ok.json()).input_tokens > 0);
  await (await call("PATCH", `/keys/${data.hash}`, acc.provisioningKey, { disabled: true })).arrayBuffer();
  const off = await count();
  assert.equal(off.status, 401);
  assert.match((await off.json()).error.message, /disabled/);
  await (await call("DELETE", `/keys/${data.hash}`, acc.provisioningKey)).arrayBuffer();
  const gone = await count();
  assert.equal(gone.status, 401);
  await gone.arrayBuffer();
});

test("every key can be revoked: a provisioning key disables and deletes another, never itself; the operator lists, disables and deletes any key", async () => {
  const acc = await worker.createAccount();
  const second = await worker.admin("POST", `/accounts/${acc.id}/keys`, { kind: "provisioning", name: "second" });
  const [prov1, prov2] = [sha256(acc.provisioningKey), sha256(second.key)];
  assert.equal((await call("GET", "/keys", second.key)).status, 200);
  // The first disables the second, which stops at once.
  const off = await call("PATCH", `/keys/${prov2}`, acc.provisioningKey, { disabled: true });
  assert.equal(off.status, 200);
  const shown = (await off.json()).data;
  assert.equal(shown.disabled, true);
  assert.equal(shown.is_provisioning_key, true);
  assert.equal((await call("GET", "/keys", second.key)).status, 401);
  // Never itself: the account keeps a key that manages it.
  assert.equal((await call("PATCH", `/keys/${prov1}`, acc.provisioningKey, { disabled: true })).status, 403);
  assert.equal((await call("DELETE", `/keys/${prov1}`, acc.provisioningKey)).status, 403);
  assert.equal((await call("GET", "/keys", acc.provisioningKey)).status, 200);
  const del = await call("DELETE", `/keys/${prov2}`, acc.provisioningKey);
  assert.deepEqual(await del.json(), { deleted: true });
  // The operator sees every key of the account, provisioning keys included.
  const listed = (await worker.admin("GET", `/accounts/${acc.id}/keys`)).data;
  assert.deepEqual(listed.map((k) => k.hash).sort(), [prov1, sha256(acc.key)].sort());
  assert.equal(listed.find((k) => k.hash === prov1).is_provisioning_key, true);
  // ... and disables or deletes any of them.
  const adminOff = await worker.admin("PATCH", `/accounts/${acc.id}/keys/${prov1}`, { disabled: true });
  assert.equal(adminOff.data.disabled, true);
  assert.equal((await call("GET", "/keys", acc.provisioningKey)).status, 401);
  assert.equal((await chat(acc.key)).status, 200);
  assert.deepEqual(await worker.admin("DELETE", `/accounts/${acc.id}/keys/${sha256(acc.key)}`), { deleted: true });
  assert.equal((await chat(acc.key)).status, 401);
  const gone = await fetch(`${worker.url}/admin/v1/accounts/${acc.id}/keys/${sha256(acc.key)}`, { method: "DELETE", headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(gone.status, 404);
  const noAdmin = await fetch(`${worker.url}/admin/v1/accounts/${acc.id}/keys`, { headers: { authorization: `Bearer ${acc.provisioningKey}` } });
  assert.equal(noAdmin.status, 401);
});

test("403: provisioning keys cannot call models, API keys cannot manage keys", async () => {
  const acc = await worker.createAccount();
  const r = await chat(acc.provisioningKey);
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.code, 403);
  assert.equal((await call("GET", "/keys", acc.key)).status, 403);
  assert.equal((await call("POST", "/keys", acc.key, { name: "x" })).status, 403);
  assert.equal((await call("GET", "/activity", acc.key)).status, 403);
});

test("GET /key describes the calling key", async () => {
  const acc = await worker.createAccount({ credits: 0 });
  const { data } = await (await call("GET", "/key", acc.key)).json();
  assert.equal(data.is_provisioning_key, false);
  assert.equal(data.is_free_tier, true);
  assert.equal(data.limit, null);
  assert.equal(data.usage, 0);
  assert.equal(data.free_model_daily_requests.limit, 5);
  assert.match(data.label, /^sk-mm-v1-.{3}\.\.\..{4}$/);
  const prov = (await (await call("GET", "/key", acc.provisioningKey)).json()).data;
  assert.equal(prov.is_provisioning_key, true);
});

test("402 when the balance cannot cover the request, saying what it can afford", async () => {
  const acc = await worker.createAccount({ credits: 0.00002 });
  const r = await chat(acc.key, { max_tokens: 100 });
  assert.equal(r.status, 402);
  const body = await r.json();
  assert.equal(body.error.code, 402);
  // The prompt is reserved as 11 tokens ("user" + "hi" at a token per two bytes, plus
  // eight for the message) at 1 µ$: 9 µ$ left at 2 µ$ per completion token.
  assert.match(body.error.message, /You requested up to 100 tokens, but can only afford 4\b/);
  // The free demo model needs no credits.
  assert.equal((await chat(acc.key, { model: "modelmux/echo" })).status, 200);
});

test("403 when a key's own limit would be passed", async () => {
  const acc = await worker.createAccount();
  // A request reserves 31 µ$ (11 prompt tokens, 10 completion) and costs 25 µ$.
  const { key } = await (await call("POST", "/keys", acc.provisioningKey, { name: "capped", limit: 0.00004 })).json();
  assert.equal((await chat(key)).status, 200);
  await eventually(async () => (await credits(acc.key)).total_usage > 0, "settlement");
  const r = await chat(key);
  assert.equal(r.status, 403);
  assert.match((await r.json()).error.message, /Key limit exceeded/);
});

test("500 concurrent requests on one key leave the ledger exact", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const results = await Promise.all(Array.from({ length: 500 }, () => chat(acc.key)));
  assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
  await Promise.all(results.map((r) => r.arrayBuffer()));
  const want = 500 * COST;
  await eventually(async () => (await credits(acc.key)).total_usage === want, "500 settlements", 20_000);
  await sleep(300);
  const after = await credits(acc.key);
  assert.equal(after.total_usage, want, "nothing charged twice");
  assert.equal(after.total_credits, 1);
  const activity = (await (await call("GET", "/activity", acc.provisioningKey)).json()).data;
  const row = activity.find((a) => a.model === "test/ok");
  assert.equal(row.requests, 500);
  assert.equal(row.usage, want);
  assert.equal(row.prompt_tokens, 500 * 11);
});

test("concurrent requests never spend more than the balance", async () => {
  // With max_tokens 7 each request reserves exactly what it will cost (11 prompt and
  // 7 completion tokens: 25 µ$), so exactly 20 fit in $0.0005.
  const acc = await worker.createAccount({ credits: 0.0005 });
  const results = await Promise.all(Array.from({ length: 50 }, () => chat(acc.key, { max_tokens: 7 })));
  const statuses = results.map((r) => r.status);
  await Promise.all(results.map((r) => r.arrayBuffer()));
  assert.equal(statuses.filter((s) => s === 200).length, 20, JSON.stringify(statuses));
  assert.equal(statuses.filter((s) => s === 402).length, 30);
  await eventually(async () => (await credits(acc.key)).total_usage === 0.0005, "settlements");
});

test("free-model limits are exact at the boundary", async () => {
  const acc = await worker.createAccount({ credits: 0 });
  const statuses = [];
  for (let i = 0; i < 7; i++) {
    const r = await chat(acc.key, { model: "modelmux/echo" });
    statuses.push(r.status);
    if (i === 4) assert.equal(r.headers.get("x-ratelimit-remaining"), "0");
    if (r.status === 429) {
      assert.ok(Number(r.headers.get("retry-after")) > 0);
      assert.equal(r.headers.get("x-ratelimit-limit"), "5");
    }
    await r.arrayBuffer();
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
  const { data } = await (await call("GET", "/key", acc.key)).json();
  assert.deepEqual(data.free_model_daily_requests, { limit: 5, remaining: 0, used: 5 });
});

test("a free request refused for money counts against no free-model limit, nor twice", async () => {
  // The demo model is free; its paid fallback's worst case is what $0 cannot cover.
  const acc = await worker.createAccount({ credits: 0 });
  for (let i = 0; i < 3; i++) {
    const r = await chat(acc.key, { model: "modelmux/echo", models: ["test/ok"] });
    assert.equal(r.status, 402, await r.clone().text());
    await r.arrayBuffer();
  }
  const used = async () => (await (await call("GET", "/key", acc.key)).json()).data.free_model_daily_requests.used;
  assert.equal(await used(), 0);
  assert.equal((await chat(acc.key, { model: "modelmux/echo" })).status, 200);
  assert.equal(await used(), 1);
});

test("usage history: /generation in OpenRouter's shape", async () => {
  const acc = await worker.createAccount();
  const r = await chat(acc.key, { max_tokens: 10 });
  const id = r.headers.get("x-generation-id");
  assert.equal((await r.json()).id, id);
  const gen = await eventually(async () => {
    const g = await call("GET", `/generation?id=${id}`, acc.key);
    return g.status === 200 && (await g.json()).data;
  }, "generation record");
  assert.equal(gen.id, id);
  assert.equal(gen.model, "test/ok");
  assert.equal(gen.provider_name, "MockAI");
  assert.equal(gen.tokens_prompt, 11);
  assert.equal(gen.tokens_completion, 7);
  assert.equal(gen.total_cost, COST);
  assert.equal(gen.streamed, false);
  assert.equal(gen.cancelled, false);
  assert.equal(gen.finish_reason, "stop");
  assert.ok(gen.latency >= 0);
  assert.equal((await call("GET", "/generation?id=gen-nope", acc.key)).status, 404);
  const other = await worker.createAccount();
  assert.equal((await call("GET", `/generation?id=${id}`, other.key)).status, 404, "other accounts cannot see it");
});

test("/generation: an API key reads only its own records, as /generations", async () => {
  const acc = await worker.createAccount();
  const { key: other } = await (await call("POST", "/keys", acc.provisioningKey, { name: "other" })).json();
  const r = await chat(acc.key);
  const id = r.headers.get("x-generation-id");
  await r.arrayBuffer();
  await eventually(async () => (await call("GET", `/generation?id=${id}`, acc.key)).status === 200, "generation record");
  const peek = await call("GET", `/generation?id=${id}`, other);
  assert.equal(peek.status, 404, "another key of the same account");
  await peek.arrayBuffer();
  const mine = await (await call("GET", "/generations", other)).json();
  assert.ok(!mine.data.some((g) => g.id === id));
  const prov = await call("GET", `/generation?id=${id}`, acc.provisioningKey);
  assert.equal(prov.status, 200, "the provisioning key sees the account's records");
  assert.equal((await prov.json()).data.id, id);
});

test("a client that disconnects mid-stream is billed for what was streamed", async () => {
  const acc = await worker.createAccount();
  const ctl = new AbortController();
  const r = await fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${acc.key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "test/endless", stream: true, max_tokens: 1000, messages: [{ role: "user", content: "go" }] }),
    signal: ctl.signal,
  });
  const id = r.headers.get("x-generation-id");
  const it = sseEvents(r.body);
  for (let i = 0; i < 6; i++) await it.next();
  ctl.abort();
  const gen = await eventually(async () => {
    const g = await call("GET", `/generation?id=${id}`, acc.key);
    return g.status === 200 && (await g.json()).data;
  }, "cancelled generation");
  assert.equal(gen.cancelled, true);
  assert.equal(gen.streamed, true);
  assert.ok(gen.tokens_completion > 0);
  assert.ok(gen.total_cost > 0);
  const c = await credits(acc.key);
  assert.equal(c.total_usage, gen.total_cost);
});

test("large amounts stay exact: $10,000 accounts and grants past 2^53 picodollars", async () => {
  const r = await worker.admin("POST", "/accounts", { name: "big", credits: 10000 });
  assert.equal(r.data.total_credits, 10000);
  const id = r.data.id;
  for (let i = 0; i < 3; i++) await worker.admin("POST", `/accounts/${id}/credits`, { amount: 1000000, note: `top-up ${i}` });
  const acc = await worker.admin("GET", `/accounts/${id}`);
  assert.equal(acc.data.total_credits, 3010000);
  const tooMuch = await fetch(`${worker.url}/admin/v1/accounts/${id}/credits`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ amount: 1000000.5 }),
  });
  assert.equal(tooMuch.status, 400);
  const k = await chat(r.api_key);
  assert.equal(k.status, 200);
  await k.arrayBuffer();
  // Amounts are printed as exact decimals, also past what a float holds (16+ digits):
  // read as text, since JSON.parse itself rounds them.
  const raw = (await fetch(`${worker.url}/admin/v1/accounts/${id}/credits`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
    body: '{"amount": "0.000000000001", "note": "one picodollar"}',
  }).then((x) => x.text()));
  assert.match(raw, /"total_credits":3010000\.000000000001[,}]/);
  const credits = await fetch(`${worker.base}/credits`, { headers: { authorization: `Bearer ${r.api_key}` } }).then((x) => x.text());
  assert.match(credits, /"total_credits":3010000\.000000000001[,}]/);
  // The chat's settlement lands in the background.
  const key = await eventually(async () => {
    const t = await fetch(`${worker.base}/key`, { headers: { authorization: `Bearer ${r.api_key}` } }).then((x) => x.text());
    return !t.includes('"usage":0,') && t;
  }, "the chat's usage");
  assert.match(key, /"usage":0\.0000\d*[1-9][,}]/, "a small amount prints in full, not as 2.5e-5");
});

test("GET /generations lists the latest requests: an API key its own, a provisioning key the account's", async () => {
  const acc = await worker.createAccount();
  const [a, b] = [await chat(acc.key, { messages: [{ role: "user", content: "first" }] }), await chat(acc.key, { model: "modelmux/echo" })];
  const ids = [a.headers.get("x-generation-id"), b.headers.get("x-generation-id")];
  await Promise.all([a.arrayBuffer(), b.arrayBuffer()]);
  const list = async (key, q = "") => call("GET", `/generations${q}`, key);
  const mine = await eventually(async () => {
    const r = await (await list(acc.key)).json();
    return r.data?.length === 2 && r.data;
  }, "both records");
  assert.deepEqual(mine.map((g) => g.id).sort(), [...ids].sort());
  assert.ok(mine[0].created_at >= mine[1].created_at, "newest first");
  assert.ok(mine.every((g) => g.api_type === "chat" && "total_cost" in g && "tokens_prompt" in g), JSON.stringify(mine[0]));
  const all = await (await list(acc.provisioningKey, "?limit=1")).json();
  assert.equal(all.data.length, 1);
  // Another account's key sees none of them.
  const other = await worker.createAccount();
  assert.deepEqual((await (await list(other.key)).json()).data, []);
  for (const bad of ["?limit=0", "?limit=201", "?limit=x"]) {
    const r = await list(acc.key, bad);
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /^limit: /);
  }
});

test("GET/PATCH /account: the privacy setting, changed only with a provisioning key", async () => {
  const acc = await worker.createAccount();
  const get = async (key) => (await (await call("GET", "/account", key)).json()).data;
  assert.deepEqual(await get(acc.key), { allow_training: false });
  const refused = await call("PATCH", "/account", acc.key, { allow_training: true });
  assert.equal(refused.status, 403);
  const bad = await call("PATCH", "/account", acc.provisioningKey, { allow_training: "yes" });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /^allow_training: /);
  const ok = await call("PATCH", "/account", acc.provisioningKey, { allow_training: true });
  assert.equal(ok.status, 200);
  assert.deepEqual(await get(acc.key), { allow_training: true });
  assert.equal((await worker.admin("GET", `/accounts/${acc.id}`)).data.allow_training, true);
});

test("/models/count and /models/user: the same filters; only what the account's privacy setting allows", async () => {
  const count = await (await fetch(`${worker.base}/models/count?q=mock`)).json();
  const listed = await (await fetch(`${worker.base}/models?q=mock`)).json();
  assert.equal(count.data.count, listed.data.length);
  assert.ok(count.data.count > 0);
  const acc = await worker.createAccount();
  const mine = async () => (await (await call("GET", "/models/user?q=route/", acc.key)).json()).data.map((m) => m.id);
  // route/trainer is served only by a provider that trains on prompts.
  assert.ok(!(await mine()).includes("route/trainer"));
  await call("PATCH", "/account", acc.provisioningKey, { allow_training: true });
  assert.ok((await mine()).includes("route/trainer"));
  assert.equal((await fetch(`${worker.base}/models/user`)).status, 401, "a key is needed");
});
