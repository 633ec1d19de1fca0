// Billing integrity through the built worker: settles that fail are retried until they
// land, holds outlive long requests, empty replies cost nothing (and are the operator's
// loss), garbage before a fallback is recorded, reservations cover n and images, and a
// thousand concurrent requests with disconnects and faults leave the ledger exact.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/eventually.mjs";
import { sseEvents } from "../support/sse.mjs";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// test/* models: 1 µ$ per prompt token, 2 µ$ per completion token; the mock reports 11
// prompt and 7 completion tokens: 25 µ$ a request.
const COST = 0.000025;
let mock, worker;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({
    catalog: testCatalog(),
    bindings: { ...mockBindings(mock.url), TEST_FAIL_SETTLES: "2", RESERVATION_TTL_MS: "1500", STREAM_IDLE_TIMEOUT_MS: "20000", STREAM_KEEPALIVE_MS: "100", FREE_REQUESTS_PER_MINUTE: "100000" },
  });
});

after(async () => {
  await worker?.close();
  await mock?.close();
});

const chat = (key, body, { signal } = {}) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "test/ok", messages: [{ role: "user", content: "hi" }], max_tokens: 10, ...body }),
    signal,
  });
/** One `test/ok` request to worker `w` with `key`, which must succeed. */
const okOn = async (w, key) => {
  const r = await fetch(`${w.base}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "test/ok", messages: [{ role: "user", content: "hi" }], max_tokens: 10 }),
  });
  assert.equal(r.status, 200);
  await r.text();
};
/** The usage of a `test/*` reply, plain or streamed (the last chunk that carries it). */
const usageOf = async (key, { model, stream }) => {
  const r = await chat(key, { model, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) });
  assert.equal(r.status, 200);
  const text = await r.text();
  return stream
    ? text.split("\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6))).findLast((c) => c.usage)?.usage
    : JSON.parse(text).usage;
};
const account = async (id) => (await worker.admin("GET", `/accounts/${id}`)).data;
const ledger = async (id) => (await worker.admin("GET", `/accounts/${id}/ledger`)).data;
const picos = (usd) => Math.round(usd * 1e12);


test("a settle that fails is retried until it lands, exactly once", async () => {
  // The account object refuses its first two settles (TEST_FAIL_SETTLES=2).
  const acc = await worker.createAccount({ credits: 1 });
  const r = await chat(acc.key);
  assert.equal(r.status, 200);
  const id = r.headers.get("x-generation-id");
  await r.text();
  await eventually(async () => (await account(acc.id)).total_usage === COST, "the retried settle");
  const a = await account(acc.id);
  assert.equal(a.reserved, 0);
  const g = await (await fetch(`${worker.base}/generation?id=${id}`, { headers: { authorization: `Bearer ${acc.key}` } })).json();
  assert.equal(picos(g.data.total_cost), picos(COST));
  assert.equal(g.data.usage_source, "provider");
});

test("a settlement that fails more often than any fixed schedule still lands by its own timer, and the books balance", { timeout: 60_000 }, async () => {
  // Each account's object refuses its first 24 settlements: the first request's batch
  // (before the fix, put back after 5 attempts with no timer, never sent again) and
  // the lease-admitted ones after it all fail several times (enough that one of them
  // fails more than five times however the batches, renewals and returns share them).
  const w = await startWorker({
    catalog: testCatalog(),
    bindings: { ...mockBindings(mock.url), TEST_FAIL_SETTLES: "24", SETTLE_RETRY_MS: "20", KEY_CACHE_MS: "1000", LEASE_IDLE_MS: "600", SETTLE_FLUSH_MS: "20" },
  });
  try {
    const acc = await w.createAccount({ credits: 10 });
    const send = () => okOn(w, acc.key);
    await send();
    await eventually(async () => (await w.admin("GET", `/accounts/${acc.id}`)).data.leased > 0, "a lease");
    for (let i = 0; i < 3; i++) await send();
    const a = await eventually(async () => {
      const a = (await w.admin("GET", `/accounts/${acc.id}`)).data;
      return a.leased === 0 && a.reserved === 0 && picos(a.total_usage) === 4 * picos(COST) && a;
    }, "every settlement landed and the lease returned", 40_000);
    // credits = usage + holds + what is free, to the picodollar.
    assert.equal(picos(a.total_credits), picos(10));
    assert.equal(picos(a.balance), picos(10) - 4 * picos(COST));
    assert.equal(a.expired_holds, 0);
    assert.match(w.logs(), /attempt [6-9]/, "it failed past the old five attempts");
  } finally {
    await w.close();
  }
});

test("a storage error in the middle of a settlement leaves nothing half done: the retry charges once and releases the hold once", async () => {
  // Each account's object fails to write its first settlement's record, after the hold
  // was released and the lease charged: without a transaction that release stays.
  const w = await startWorker({
    catalog: testCatalog(),
    bindings: { ...mockBindings(mock.url), TEST_FAIL_SETTLE_RECORDS: "1", KEY_CACHE_MS: "1000", LEASE_IDLE_MS: "600", SETTLE_FLUSH_MS: "20" },
  });
  try {
    const acc = await w.createAccount({ credits: 10 });
    const send = () => okOn(w, acc.key);
    // The first holds its own reservation; the next ones go by the lease it brought.
    await send();
    await eventually(async () => (await w.admin("GET", `/accounts/${acc.id}`)).data.total_usage === COST, "the retried settlement");
    for (let i = 0; i < 3; i++) await send();
    const a = await eventually(async () => {
      const a = (await w.admin("GET", `/accounts/${acc.id}`)).data;
      return a.leased === 0 && picos(a.total_usage) === 4 * picos(COST) && a;
    }, "all settled and the lease returned");
    assert.equal(a.reserved, 0, "no hold left behind");
    assert.equal(picos(a.balance), picos(10) - 4 * picos(COST));
  } finally {
    await w.close();
  }
});

test("a hold outlives its TTL while the stream runs, and settles once it ends", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const r = await chat(acc.key, { model: "test/gated", stream: true });
  assert.equal(r.status, 200);
  const reader = r.body.getReader();
  await reader.read();
  assert.ok(await mock.waitFor("gated", "first-sent"));
  await sleep(3500); // more than twice RESERVATION_TTL_MS=1500
  const mid = await account(acc.id);
  assert.ok(mid.reserved > 0, "the hold was renewed, not expired");
  assert.equal(mid.expired_holds, 0);
  mock.release("gated");
  while (!(await reader.read()).done);
  await eventually(async () => (await account(acc.id)).reserved === 0 && (await account(acc.id)).total_usage > 0, "settlement");
  const done = await account(acc.id);
  assert.equal(done.expired_holds, 0);
  assert.ok(!(await ledger(acc.id)).some((e) => e.kind === "expired_hold"));
});

const generation = (key, id) =>
  eventually(async () => {
    const g = await fetch(`${worker.base}/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } });
    return g.status === 200 && (await g.json()).data;
  }, `the record of ${id}`);

// A client that leaves once the content has ended still owes what the provider bills:
// the gateway reads the upstream on for its final usage (reasoning tokens included).
// It learns that the client left when a write fails: keep-alives go out every 100 ms
// here while the upstream is silent.
for (const [model, prompt, completion] of [["test/lateusage", 12, 34], ["test/lateusage-anthropic", 11, 7]]) {
  test(`a client that leaves after the content is billed the provider's final usage (${model})`, async () => {
    const acc = await worker.createAccount({ credits: 1 });
    const ctl = new AbortController();
    const r = await chat(acc.key, { model, stream: true }, { signal: ctl.signal });
    const id = r.headers.get("x-generation-id");
    for await (const ev of sseEvents(r.body)) {
      assert.equal(ev.data?.usage, undefined, "the usage comes after the client left");
      if (ev.data?.choices?.[0]?.finish_reason) break;
    }
    ctl.abort();
    const g = await generation(acc.key, id);
    assert.equal(g.cancelled, true);
    assert.equal(g.usage_source, "provider");
    assert.equal(g.tokens_prompt, prompt);
    assert.equal(g.tokens_completion, completion);
    const cost = (prompt * 1 + completion * 2) / 1e6;
    assert.equal(picos(g.total_cost), picos(cost));
    await eventually(async () => picos((await account(acc.id)).total_usage) === picos(cost), "charged");
    assert.equal((await account(acc.id)).reserved, 0);
  });
}

// test/lateusage reports 12 prompt and 34 completion tokens for a request that reserved
// 10 (80 µ$ billed, 31 µ$ held): the provider bills past the hold.
test("a provider that bills past the hold: charged up to the key's limit and the balance, the rest recorded with the generation", async () => {
  const lateCost = picos(0.00008);
  const run = async (key) => {
    const r = await chat(key, { model: "test/lateusage", stream: true });
    assert.equal(r.status, 200);
    const id = r.headers.get("x-generation-id");
    await r.text();
    return id;
  };
  const lossOf = async (accId, id) =>
    (await ledger(accId)).filter((e) => e.kind === "operator_loss" && e.generation_id === id).reduce((s, e) => s + picos(e.amount), 0);

  // A key limited to 40 µ$ on an account that has plenty.
  const acc = await worker.createAccount({ credits: 1 });
  const made = await (await fetch(`${worker.base}/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${acc.provisioningKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "capped", limit: 0.00004 }),
  })).json();
  const id = await run(made.key);
  const a = await eventually(async () => {
    const a = await account(acc.id);
    return a.total_usage > 0 && a.reserved === 0 && a;
  }, "settled");
  assert.equal(picos(a.total_usage), picos(0.00004), "charged up to the key's limit, not past it");
  const k = (await (await fetch(`${worker.base}/keys/${made.data.hash}`, { headers: { authorization: `Bearer ${acc.provisioningKey}` } })).json()).data;
  assert.equal(picos(k.usage), picos(0.00004));
  assert.equal(picos(a.operator_loss), lateCost - picos(0.00004), "the rest is recorded");
  assert.equal(await lossOf(acc.id, id), lateCost - picos(0.00004), "with the generation's ID");

  // An account with 50 µ$ and a key without a limit.
  const poor = await worker.createAccount({ credits: 0.00005 });
  const id2 = await run(poor.key);
  const b = await eventually(async () => {
    const b = await account(poor.id);
    return b.total_usage > 0 && b.reserved === 0 && b;
  }, "settled");
  assert.equal(picos(b.total_usage), picos(0.00005), "charged up to the balance");
  assert.equal(b.balance, 0);
  assert.equal(picos(b.operator_loss), lateCost - picos(0.00005));
  assert.equal(await lossOf(poor.id, id2), lateCost - picos(0.00005));
});

test("a client that leaves mid-generation stops the upstream and pays what the provider said so far", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const ctl = new AbortController();
  const r = await chat(acc.key, { model: "test/endless-anthropic", stream: true }, { signal: ctl.signal });
  const id = r.headers.get("x-generation-id");
  const it = sseEvents(r.body);
  for (let i = 0; i < 5; i++) await it.next();
  const closedBefore = mock.events("endless").filter((e) => e.event === "closed").length;
  ctl.abort();
  const g = await generation(acc.key, id);
  assert.equal(g.cancelled, true);
  // message_start's prompt count, the output counted from what streamed.
  assert.equal(g.usage_source, "partial");
  assert.equal(g.tokens_prompt, 11);
  assert.ok(g.tokens_completion > 0);
  await eventually(async () => mock.events("endless").filter((e) => e.event === "closed").length > closedBefore, "the upstream aborted");
});

// A model that hides its reasoning sends its usage only in the last chunk: a client that
// leaves after the first content is billed the reasoning its silence stands for, at the
// endpoint's throughput (the catalogue's 100 tokens a second here), marked an estimate.
test("a client that leaves a hidden-reasoning stream after its first content pays for the reasoning, estimated", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const ctl = new AbortController();
  const r = await chat(acc.key, { model: "test/hiddenthink", stream: true, max_tokens: 1000 }, { signal: ctl.signal });
  const id = r.headers.get("x-generation-id");
  for await (const ev of sseEvents(r.body)) if (ev.data?.choices?.[0]?.delta?.content) break;
  ctl.abort();
  const g = await generation(acc.key, id);
  assert.equal(g.cancelled, true);
  assert.equal(g.usage_source, "estimate");
  assert.equal(g.reasoning_estimated, true);
  // 800 ms of silence at 100 tokens a second, give or take the harness's timing.
  assert.ok(g.native_tokens_reasoning >= 75 && g.native_tokens_reasoning <= 200, `reasoning ${g.native_tokens_reasoning}`);
  assert.ok(g.tokens_completion > g.native_tokens_reasoning, "plus what streamed");
  const cost = (g.tokens_prompt * 1 + g.tokens_completion * 2) / 1e6;
  assert.equal(picos(g.total_cost), picos(cost));
  await eventually(async () => picos((await account(acc.id)).total_usage) === picos(cost), "charged");
  assert.equal((await account(acc.id)).reserved, 0);
  await eventually(async () => mock.events("hiddenthink").some((e) => e.event === "closed"), "the upstream aborted");
});

// Insurance is for a provider's empty or failed reply, not for a client that leaves: one
// that cuts a hidden-reasoning stream before any content still pays for the reasoning the
// provider billed (estimated from the silence), or anyone could have free work at will.
test("a client that leaves a hidden-reasoning stream before any content pays for the reasoning, not insured", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const ctl = new AbortController();
  const r = await chat(acc.key, { model: "test/hiddenthink", stream: true, max_tokens: 1000 }, { signal: ctl.signal });
  const id = r.headers.get("x-generation-id");
  const it = sseEvents(r.body);
  await it.next(); // the role chunk, no content yet
  await sleep(400);
  ctl.abort();
  const g = await generation(acc.key, id);
  assert.equal(g.cancelled, true);
  assert.equal(g.reasoning_estimated, true);
  assert.ok(g.native_tokens_reasoning > 0, `reasoning ${g.native_tokens_reasoning}`);
  assert.ok(picos(g.total_cost) > 0, "charged");
  const cost = (g.tokens_prompt * 1 + g.tokens_completion * 2) / 1e6;
  assert.equal(picos(g.total_cost), picos(cost));
  await eventually(async () => picos((await account(acc.id)).total_usage) === picos(cost), "charged");
  const a = await account(acc.id);
  assert.equal(a.reserved, 0);
  assert.equal(a.operator_loss, 0, "no insurance");
});

test("a client that leaves during a non-streamed call is billed the reply the provider finished", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const ctl = new AbortController();
  const pending = chat(acc.key, { model: "test/slowreply" }, { signal: ctl.signal }).catch((e) => e);
  await sleep(200);
  ctl.abort();
  assert.equal((await pending).name, "AbortError");
  assert.ok(await mock.waitFor("slowreply", "replied"));
  await eventually(async () => picos((await account(acc.id)).total_usage) === picos(COST), "charged for the finished reply");
  assert.equal((await account(acc.id)).reserved, 0);
});

test("empty replies cost the caller nothing and are recorded as the operator's loss", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  for (const stream of [false, true]) {
    const usage = await usageOf(acc.key, { model: "test/empty", stream });
    // The reply's cost is what the caller is charged: nothing.
    assert.equal(usage.cost, 0, `${stream ? "streamed" : "plain"}: ${JSON.stringify(usage)}`);
  }
  await eventually(async () => (await account(acc.id)).operator_loss > 0 && (await account(acc.id)).reserved === 0, "settlements");
  await sleep(200);
  const a = await account(acc.id);
  assert.equal(a.total_usage, 0);
  const losses = (await ledger(acc.id)).filter((e) => e.kind === "operator_loss");
  assert.equal(losses.length, 2);
  assert.match(losses[0].note, /zero-completion insurance/);
});

test("an empty reply that stopped normally is charged: insurance needs a blank or error finish", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  for (const stream of [false, true]) {
    const usage = await usageOf(acc.key, { model: "test/emptystop", stream });
    // The prompt (11 tokens at $1/M), nothing for the empty output.
    assert.equal(picos(usage.cost), picos(0.000011), `${stream ? "streamed" : "plain"}: ${JSON.stringify(usage)}`);
  }
  await eventually(async () => picos((await account(acc.id)).total_usage) === picos(0.000022) && (await account(acc.id)).reserved === 0, "settlements");
  const a = await account(acc.id);
  assert.equal(a.operator_loss, 0);
});

test("a garbage reply before the fallback that served is recorded, not charged", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const r = await chat(acc.key, { model: "test/garbage-fallback", provider: { order: ["mockai", "mockbackup"] } });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).provider, "MockBackup");
  await eventually(async () => (await account(acc.id)).total_usage === COST, "settlement");
  const a = await account(acc.id);
  assert.ok(a.operator_loss > 0);
  assert.ok((await ledger(acc.id)).some((e) => e.kind === "operator_loss" && /invalid reply/.test(e.note)));
});

test("a prompt past a price tier is charged the tier's prices for every token, streamed or not", async () => {
  // The mock reports 11 prompt tokens, past the tier at 10: 11 × 3 µ$ + 7 × 5 µ$.
  const tiered = picos((11 * 3 + 7 * 5) / 1e6);
  for (const stream of [false, true]) {
    const acc = await worker.createAccount({ credits: 1 });
    const usage = await usageOf(acc.key, { model: "test/tiered", stream });
    assert.equal(picos(usage.cost), tiered, `stream: ${stream}`);
    await eventually(async () => picos((await account(acc.id)).total_usage) === tiered, "charged at the tier");
    assert.equal((await account(acc.id)).reserved, 0);
  }
});

test("a non-streamed call whose upstream breaks mid-reply falls back; the broken attempt is the operator's loss", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const r = await chat(acc.key, { model: "test/broken-fallback", provider: { order: ["mockai", "mockbackup"] } });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.provider, "MockBackup");
  assert.equal(picos(body.usage.cost), picos(COST));
  const a = await eventually(async () => {
    const a = await account(acc.id);
    return a.total_usage > 0 && a.reserved === 0 && a;
  }, "settled");
  assert.equal(picos(a.total_usage), picos(COST), "the caller pays for the reply it got");
  assert.ok(a.operator_loss > 0, "what the broken attempt generated is recorded");
  assert.ok((await ledger(acc.id)).some((e) => e.kind === "operator_loss" && e.generation_id === body.id));
});

test("an upstream that answers one JSON reply to the stream it was asked for is read whole and charged its usage", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const r = await chat(acc.key, { model: "test/jsonanyway" });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.choices[0].message.content, "whole anyway");
  const g = await generation(acc.key, body.id);
  assert.equal(g.usage_source, "provider");
  assert.equal(picos(g.total_cost), picos(COST));
  await eventually(async () => picos((await account(acc.id)).total_usage) === picos(COST), "charged");
});

test("a reply without usage is charged from what it returned, marked an estimate", async () => {
  for (const stream of [false, true]) {
    const acc = await worker.createAccount({ credits: 1 });
    const r = await chat(acc.key, { model: "test/nousage", stream });
    assert.equal(r.status, 200);
    const id = r.headers.get("x-generation-id");
    await r.text();
    const g = await generation(acc.key, id);
    assert.equal(g.usage_source, "estimate", `stream: ${stream}`);
    // "twelve bytes": a token per four bytes.
    assert.equal(g.tokens_completion, 3);
    assert.equal(g.reasoning_estimated, false);
    const cost = (g.tokens_prompt * 1 + 3 * 2) / 1e6;
    assert.equal(picos(g.total_cost), picos(cost));
    await eventually(async () => picos((await account(acc.id)).total_usage) === picos(cost), "charged the estimate");
  }
});

test("1-hour cache writes are charged at twice the prompt price, streamed or not", async () => {
  // 11 fresh prompt tokens and 100 written for an hour (2 µ$ each), 7 completion tokens.
  const cost = picos((11 + 100 * 2 + 7 * 2) / 1e6);
  for (const stream of [false, true]) {
    const acc = await worker.createAccount({ credits: 1 });
    const r = await chat(acc.key, { model: "anthropic-mock/ok", stream, messages: [{ role: "user", content: [
      { type: "text", text: "a long document", cache_control: { type: "ephemeral", ttl: "1h" } }, { type: "text", text: "summarize" }] }] });
    assert.equal(r.status, 200);
    const id = r.headers.get("x-generation-id");
    await r.text();
    const g = await generation(acc.key, id);
    assert.equal(picos(g.total_cost), cost, `stream: ${stream}`);
    await eventually(async () => picos((await account(acc.id)).total_usage) === cost, "charged the hour's writes");
  }
});

test("service_tier is not forwarded: a priority tier the catalogue's price does not cover is never bought", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const r = await chat(acc.key, { model: "test/ok", service_tier: "priority" });
  assert.equal(r.status, 200);
  await r.text();
  const sent = mock.last("/v1/chat/completions").body;
  assert.equal(sent.model, "ok");
  assert.equal("service_tier" in sent, false);
});

test("reservations cover n choices and every image", async () => {
  // $0.0005 covers one choice of 10 tokens (31 µ$) but not 16 of 10 000 tokens each.
  const acc = await worker.createAccount({ credits: 0.0005 });
  const one = await chat(acc.key, { max_tokens: 100 });
  assert.equal(one.status, 200);
  await one.text();
  const many = await chat(acc.key, { max_tokens: 100, n: 16 });
  assert.equal(many.status, 402);
  await many.text();
  const image = { type: "image_url", image_url: { url: "https://example.com/a.png" } };
  const images = await chat(acc.key, { messages: [{ role: "user", content: [{ type: "text", text: "what?" }, image, image, image] }] });
  assert.equal(images.status, 402, "three images reserve 6,000 tokens: $0.006");
  await images.text();
});

test("1000 requests across keys with disconnects and upstream faults leave the ledger exact", { timeout: 120_000 }, async () => {
  const acc = await worker.createAccount({ credits: 0.02 });
  const limits = [0.004, 0.006, null];
  const keys = [];
  for (const [i, limit] of limits.entries()) {
    const r = await fetch(`${worker.base}/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${acc.provisioningKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: `k${i}`, limit }),
    });
    keys.push((await r.json()).key);
  }
  const models = ["test/ok", "test/stream", "test/fallback", "test/garbage", "test/broken", "test/empty", "test/garbage-fallback", "modelmux/echo"];
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const statuses = {};
  let aborted = 0;
  const one = async () => {
    const key = keys[Math.floor(rand() * keys.length)];
    const model = models[Math.floor(rand() * models.length)];
    const stream = rand() < 0.5;
    const ctl = new AbortController();
    const abortAfter = rand() < 0.15 ? Math.floor(rand() * 20) : null;
    if (abortAfter !== null) setTimeout(() => ctl.abort(), abortAfter);
    try {
      const r = await chat(key, { model, stream }, { signal: ctl.signal });
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      await r.text();
    } catch {
      aborted++;
    }
  };
  for (let batch = 0; batch < 20; batch++) {
    await Promise.all(Array.from({ length: 50 }, one));
    if (process.env.DEBUG_BILLING) console.log("batch", batch, JSON.stringify(statuses), aborted);
  }
  // Every admitted request settles exactly once: nothing stays held.
  await eventually(async () => (await account(acc.id)).reserved === 0, "all holds released", 60_000);
  await sleep(1500);
  const a = await account(acc.id);
  assert.equal(a.reserved, 0);
  assert.ok(a.total_usage <= a.total_credits + 1e-12, "never more than the balance");
  // Three independent aggregates agree to the picodollar: the account total, the sum
  // of its keys' totals, and the per-day activity.
  const listed = (await (await fetch(`${worker.base}/keys`, { headers: { authorization: `Bearer ${acc.provisioningKey}` } })).json()).data;
  const mine = listed.filter((k) => k.name.startsWith("k"));
  const keySum = mine.reduce((s, k) => s + picos(k.usage), 0) + picos(listed.find((k) => k.name === "default")?.usage ?? 0);
  assert.equal(keySum, picos(a.total_usage));
  const activity = (await (await fetch(`${worker.base}/activity`, { headers: { authorization: `Bearer ${acc.provisioningKey}` } })).json()).data;
  assert.equal(activity.reduce((s, r) => s + picos(r.usage), 0), picos(a.total_usage));
  // No key passed its own limit.
  for (const [i, limit] of limits.entries()) {
    if (limit !== null) assert.ok(mine.find((k) => k.name === `k${i}`).usage <= limit + 1e-12, `key k${i}`);
  }
  console.log(`1000 requests: ${JSON.stringify(statuses)}, ${aborted} aborted by the client; charged $${a.total_usage}, operator loss $${a.operator_loss}, expired holds $${a.expired_holds} (${(await ledger(acc.id)).filter((e) => e.kind === "expired_hold").length})`);
});

test("web searches a server tool runs are reserved at max_uses and charged as the provider counts them", async () => {
  const messages = (key, max_uses) => fetch(`${worker.base}/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "anthropic-version": "2023-06-01" },
    body: JSON.stringify({ model: "test/search-anthropic", max_tokens: 10, messages: [{ role: "user", content: "news?" }],
      tools: [{ type: "web_search_20250305", name: "web_search", ...(max_uses ? { max_uses } : {}) }] }),
  });
  // Ten searches at $0.01 do not fit in $0.05; nor do the ten a tool without max_uses gets.
  const poor = await worker.createAccount({ credits: 0.05 });
  const seen = mock.requests.length;
  for (const max of [10, undefined]) {
    const r = await messages(poor.key, max);
    assert.equal(r.status, 402, await r.clone().text());
  }
  assert.equal(mock.requests.length, seen, "refused before any upstream call");
  // Three fit; the mock runs two: 25 µ$ of tokens and $0.02 of searches.
  const acc = await worker.createAccount({ credits: 1 });
  const r = await messages(acc.key, 3);
  assert.equal(r.status, 200, await r.clone().text());
  await r.text();
  assert.equal(mock.last("/anthropic/").body.tools[0].max_uses, 3);
  await eventually(async () => picos((await account(acc.id)).total_usage) === picos(COST + 0.02), "charged the searches");
});

test("test hooks act only with TEST_HOOKS set: a deployment that sets one ignores it", async () => {
  // Every hook asked for, TEST_HOOKS off: no delay on account object calls, no refused settles.
  const w = await startWorker({
    catalog: testCatalog(),
    bindings: { ...mockBindings(mock.url), TEST_ACCOUNT_DELAY_MS: "5000", TEST_FAIL_SETTLES: "1000", TEST_FAIL_SETTLE_RECORDS: "1000", TEST_HOOKS: "" },
  });
  try {
    const t0 = Date.now();
    const acc = await w.createAccount({ credits: 1 });
    await okOn(w, acc.key);
    assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms: the delay hook acted`);
    await eventually(async () => (await w.admin("GET", `/accounts/${acc.id}`)).data.total_usage === COST, "the first settle");
  } finally {
    await w.close();
  }
});
