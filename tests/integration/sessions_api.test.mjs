// The sessions API through the built worker (issue 24): a session read and listed,
// its limits changed by PATCH (by whom, and what a bad value says), the generation list
// of one session, keys' `session_limits_default` and `require_session_id`, and
// `usage.session` in the Messages pass-through stream's `message_delta`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/eventually.mjs";
import { startWorker, caller } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { pricedCatalog, mockBindings } from "../support/catalog.mjs";
import { exactBody, exactJson, picos, sum } from "../support/money.mjs";

let mock, worker;

// test/pricey: test/ok's reply (11 prompt, 7 completion tokens) at 100 and 1000 µ$ a
// token: $0.0081 a request, 18 tokens.
const COST = "0.0081";

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: pricedCatalog(), bindings: { ...mockBindings(mock.url), SETTLE_FLUSH_MS: "20" } });
});

after(async () => {
  await worker?.close();
  await mock?.close();
});

const call = caller(() => worker);
const chat = (key, body = {}, headers = {}) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "test/pricey", messages: [{ role: "user", content: "hi" }], max_tokens: 10, ...body }),
  });
const served = async (r) => {
  assert.equal(r.status, 200, await r.clone().text());
  await r.text();
};
const account = async (id) => (await worker.admin("GET", `/accounts/${id}`)).data;
const settled = (id) => eventually(async () => {
  const a = await account(id);
  return a.reserved === 0 && a;
}, "every hold settled");
const session = async (key, id) => {
  const r = await call("GET", `/sessions/${encodeURIComponent(id)}`, key);
  assert.equal(r.status, 200, id);
  return (await exactBody(r)).data;
};
const generations = async (key, query) => {
  const r = await call("GET", `/generations?${query}`, key);
  assert.equal(r.status, 200);
  return (await exactBody(r)).data;
};
const newKey = async (acc, body) => {
  const r = await call("POST", "/keys", acc.provisioningKey, { name: "k", ...body });
  assert.equal(r.status, 201, await r.clone().text());
  return r.json();
};
const refusal = async (r, status) => {
  assert.equal(r.status, status);
  return (await r.json()).error;
};

test("a session is read by ID, listed most recent first, and its generations listed alone", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const id = "agent/7 x+y";
  await served(await chat(acc.key, { session_id: id, session_limits: { max_cost: "1.00", max_requests: 5 } }));
  await served(await chat(acc.key, { session_id: id }));
  await settled(acc.id);
  await served(await chat(acc.key, {}, { "x-session-id": "other-1" }));
  await served(await chat(acc.key));
  await settled(acc.id);

  const s = await session(acc.key, id);
  const cost = 2n * picos(COST);
  assert.deepEqual(
    { ...s, cost: picos(s.cost), remaining_cost: picos(s.remaining_cost), created_at: undefined, last_used_at: undefined },
    {
      id, key_hash: s.key_hash, cost, requests: "2", tokens: "36", reserved: "0",
      remaining_cost: picos("1") - cost, remaining_requests: "3",
      limits: { max_cost: "1", max_requests: "5", max_tokens: null, max_duration_s: null },
      created_at: undefined, last_used_at: undefined,
    },
  );
  assert.match(s.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(s.last_used_at >= s.created_at);
  const other = await session(acc.key, "other-1");
  assert.deepEqual([other.requests, other.remaining_cost, other.remaining_requests, other.limits.max_cost], ["1", null, null, null]);
  assert.equal(picos(other.cost), picos(COST));

  const list = async (key, q) => (await exactBody(await call("GET", `/sessions${q}`, key))).data.map((x) => x.id);
  assert.deepEqual(await list(acc.key, ""), ["other-1", id]);
  assert.deepEqual(await list(acc.key, "?limit=1"), ["other-1"]);
  assert.deepEqual(await list(acc.provisioningKey, "?limit=10"), ["other-1", id]);
  for (const bad of ["0", "201", "x"]) {
    const e = await refusal(await call("GET", `/sessions?limit=${bad}`, acc.key), 400);
    assert.match(e.message, /^limit: /);
  }
  // Another API key of the account reads a session by ID (it may use it) but lists
  // only those it made.
  const b = await newKey(acc, {});
  assert.equal((await session(b.key, id)).requests, "2");
  assert.deepEqual(await list(b.key, ""), []);
  const gone = await refusal(await call("GET", "/sessions/nothing-here", acc.key), 404);
  assert.match(gone.message, /Session nothing-here not found/);
  await refusal(await call("GET", `/sessions/${"x".repeat(257)}`, acc.key), 400);
  await refusal(await call("DELETE", `/sessions/${encodeURIComponent(id)}`, acc.key), 405);
  // Another account's key does not see it.
  const stranger = await worker.createAccount({ credits: 1 });
  await refusal(await call("GET", `/sessions/${encodeURIComponent(id)}`, stranger.key), 404);

  // The generations of one session: its records only, each naming it.
  await eventually(async () => (await generations(acc.key, "limit=50")).length === 4, "every record landed");
  const mine = await generations(acc.key, `session_id=${encodeURIComponent(id)}`);
  assert.deepEqual(mine.map((g) => g.session_id), [id, id]);
  assert.equal(sum(mine.map((g) => picos(g.total_cost))), cost);
  assert.deepEqual((await generations(acc.provisioningKey, "session_id=other-1&limit=5")).map((g) => g.session_id), ["other-1"]);
  assert.deepEqual(await generations(acc.key, "session_id=none-such"), []);
  assert.deepEqual(await generations(b.key, `session_id=${encodeURIComponent(id)}`), [], "an API key sees its own records");
  const one = await exactBody(await call("GET", `/generation?id=${mine[0].id}`, acc.key));
  assert.equal(one.data.session_id, id);
  const e = await refusal(await call("GET", `/generations?session_id=${"y".repeat(300)}`, acc.key), 400);
  assert.match(e.message, /^session_id: at most 256 bytes/);
});

test("PATCH /sessions/{id} raises, lowers and removes limits, by the key that made it or a provisioning key", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const b = await newKey(acc, {});
  await served(await chat(acc.key, { session_id: "p-1" }, { "x-session-limits": "max_requests=1" }));
  const over = await refusal(await chat(acc.key, { session_id: "p-1" }), 403);
  assert.equal(over.metadata.limit, "max_requests");
  await settled(acc.id);

  const patch = (key, id, body) => call("PATCH", `/sessions/${encodeURIComponent(id)}`, key, body);
  const forbidden = await refusal(await patch(b.key, "p-1", { session_limits: { max_requests: 9 } }), 403);
  assert.match(forbidden.message, /provisioning key .* or the key that made the session/);
  await refusal(await patch(acc.key, "nothing-here", { session_limits: { max_requests: 9 } }), 404);
  const bad = [
    [{ session_limits: { max_requests: -1 } }, "session_limits.max_requests"],
    [{ session_limits: { max_cost: "lots" } }, "session_limits.max_cost"],
    [{ session_limits: { max_wishes: 3 } }, "session_limits.max_wishes"],
    [{ session_limits: 5 }, "session_limits"],
    [{}, "session_limits: is required"],
  ];
  for (const [body, field] of bad) {
    const e = await refusal(await patch(acc.key, "p-1", body), 400);
    assert.ok(e.message.startsWith(field), `${field}: ${e.message}`);
  }
  // Raised by the key that made it: the next request is served.
  const up = await patch(acc.key, "p-1", { session_limits: { max_requests: 3, max_tokens: 1000 } });
  assert.equal(up.status, 200);
  const raised = (await exactBody(up)).data;
  assert.deepEqual(raised.limits, { max_cost: null, max_requests: "3", max_tokens: "1000", max_duration_s: null });
  assert.equal(raised.remaining_requests, "2");
  const again = await chat(acc.key, { session_id: "p-1" });
  assert.equal(again.headers.get("x-session-requests"), "2");
  await served(again);
  await settled(acc.id);
  // A provisioning key removes max_requests and sets a max_cost under the next
  // request's worst case: refused for max_cost.
  const low = await patch(acc.provisioningKey, "p-1", { session_limits: { max_requests: null, max_cost: "0.02" } });
  assert.equal(low.status, 200);
  const lowered = (await exactBody(low)).data;
  assert.deepEqual(lowered.limits, { max_cost: "0.02", max_requests: null, max_tokens: "1000", max_duration_s: null });
  assert.equal(picos(lowered.remaining_cost), picos("0.02") - 2n * picos(COST));
  assert.equal(lowered.remaining_requests, null);
  const capped = await refusal(await chat(acc.key, { session_id: "p-1" }), 403);
  assert.equal(capped.metadata.limit, "max_cost");
  // Refusals reserved nothing, and the session was charged what its requests were.
  const a = await settled(acc.id);
  assert.equal(picos(String(a.total_usage)), 2n * picos(COST));
  assert.equal(picos((await session(acc.key, "p-1")).cost), 2n * picos(COST));
});

test("a key's session_limits_default and require_session_id, set, shown and changed", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  for (const [body, field] of [
    [{ session_limits_default: { max_requests: "x" } }, "session_limits_default.max_requests"],
    [{ session_limits_default: [] }, "session_limits_default"],
    [{ require_session_id: "yes" }, "require_session_id"],
  ]) {
    const e = await refusal(await call("POST", "/keys", acc.provisioningKey, { name: "bad", ...body }), 400);
    assert.ok(e.message.startsWith(field), `${field}: ${e.message}`);
  }
  const { data, key } = await newKey(acc, { session_limits_default: { max_requests: 1, max_cost: "0.50" }, require_session_id: true });
  const limits = { max_cost: 0.5, max_requests: 1, max_tokens: null, max_duration_s: null };
  assert.deepEqual([data.session_limits_default, data.require_session_id], [limits, true]);
  const listed = (await (await call("GET", "/keys", acc.provisioningKey)).json()).data.find((k) => k.hash === data.hash);
  assert.deepEqual([listed.session_limits_default, listed.require_session_id], [limits, true]);
  const plain = (await (await call("GET", "/keys", acc.provisioningKey)).json()).data.find((k) => k.hash !== data.hash);
  assert.deepEqual([plain.session_limits_default, plain.require_session_id], [null, false]);

  // Without a session: a 400 naming session_id, before anything is reserved.
  const e = await refusal(await chat(key), 400);
  assert.ok(e.message.startsWith("session_id: this key requires a session"), e.message);
  const m = await call("POST", "/messages", key, { model: "test/pricey", max_tokens: 10, messages: [{ role: "user", content: "hi" }] });
  assert.equal(m.status, 400);
  assert.equal((await m.json()).error.type, "invalid_request_error");
  let a = await account(acc.id);
  assert.equal(a.reserved + a.total_usage, 0);
  // A session without limits of its own gets the key's default; one with limits keeps them.
  await served(await chat(key, { session_id: "d-1" }));
  assert.deepEqual((await session(key, "d-1")).limits, { max_cost: "0.5", max_requests: "1", max_tokens: null, max_duration_s: null });
  assert.equal((await refusal(await chat(key, { session_id: "d-1" }), 403)).metadata.limit, "max_requests");
  await served(await chat(key, { session_id: "d-2" }, { "x-session-limits": "max_tokens=500" }));
  assert.deepEqual((await session(key, "d-2")).limits, { max_cost: null, max_requests: null, max_tokens: "500", max_duration_s: null });

  // Changed by PATCH /keys/{hash}: null removes the default (and `limit: null` a limit).
  const p = await call("PATCH", `/keys/${data.hash}`, acc.provisioningKey, { require_session_id: false, session_limits_default: null, limit: 5 });
  assert.equal(p.status, 200);
  const changed = (await p.json()).data;
  assert.deepEqual([changed.session_limits_default, changed.require_session_id, changed.limit], [null, false, 5]);
  await served(await chat(key));
  const unlimited = (await (await call("PATCH", `/keys/${data.hash}`, acc.provisioningKey, { limit: null })).json()).data;
  assert.equal(unlimited.limit, null);
  await served(await chat(key, { session_id: "d-3" }));
  assert.deepEqual((await session(key, "d-3")).limits, { max_cost: null, max_requests: null, max_tokens: null, max_duration_s: null });
  // Turned on while this isolate holds a lease for the key: its next request without a
  // session is refused all the same.
  await served(await chat(key));
  await served(await chat(key));
  const on = await call("PATCH", `/keys/${data.hash}`, acc.provisioningKey, { require_session_id: true });
  assert.equal((await on.json()).data.require_session_id, true);
  assert.match((await refusal(await chat(key), 400)).message, /^session_id: /);
  a = await settled(acc.id);
  assert.equal(picos(String(a.total_usage)), 6n * picos(COST));
});

// The events of an SSE body: [{event, data}] with data read exactly (amounts as text).
const events = (text) => text.split("\n\n").filter((e) => e.trim()).map((e) => {
  const lines = e.split("\n");
  const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
  const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
  return { event, data: data ? exactJson(data) : data };
});

test("the Messages pass-through stream carries usage.session in its message_delta, its events otherwise as Anthropic sent them", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const body = { model: "anthropic-mock/stream", stream: true, max_tokens: 100, messages: [{ role: "user", content: "hi" }] };
  const plain = await call("POST", "/messages", acc.key, body);
  assert.equal(plain.status, 200);
  const want = events(await plain.text());
  const withSession = { ...body, metadata: { session_id: "native-1" }, session_limits: { max_cost: "1.00", max_requests: 4 } };
  for (const n of [1, 2]) {
    const r = await call("POST", "/messages", acc.key, withSession);
    assert.equal(r.status, 200);
    const before = picos(r.headers.get("x-session-cost"));
    const got = events(await r.text());
    assert.deepEqual(got.map((e) => e.event), want.map((e) => e.event));
    const deltas = got.filter((e) => e.event === "message_delta");
    assert.equal(deltas.length, 1, "one message_delta");
    const { session: s, ...usage } = deltas[0].data.usage;
    // Everything but usage.session is what Anthropic sent.
    assert.deepEqual(
      got.map((e) => (e.event === "message_delta" ? { ...e.data, usage } : e.data)).map((d) => ({ ...d, message: d.message && { ...d.message, id: undefined } })),
      want.map((e) => e.data).map((d) => ({ ...d, message: d.message && { ...d.message, id: undefined } })),
    );
    await settled(acc.id);
    const g = (await exactBody(await call("GET", `/generation?id=${r.headers.get("x-generation-id")}`, acc.key))).data;
    assert.deepEqual([s.id, s.requests, s.remaining_requests], ["native-1", String(n), String(4 - n)]);
    assert.equal(picos(s.cost), before + picos(g.total_cost));
    assert.equal(picos(s.remaining_cost), picos("1") - picos(s.cost));
    assert.equal(picos((await session(acc.key, "native-1")).cost), picos(s.cost));
  }
});
