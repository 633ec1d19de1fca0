// Exact session budgets through the built worker (issue 24): a session's requests are
// admitted by the account's object against what its `max_cost` leaves after every hold
// of its requests under way, so concurrent streams never settle past it; limits can
// only be lowered by a request; past a limit the answer is a 403 that names it; every
// reply says where the session stands.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/eventually.mjs";
import { startWorker, caller } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { pricedCatalog, mockBindings } from "../support/catalog.mjs";
import { exactBody, exactJson, picos, sum } from "../support/money.mjs";

let mock, worker;

// test/pricey: test/ok's reply (11 prompt, 7 completion tokens) at 100 and 1000 µ$ a
// token: $0.0081 a request, and a worst case of a few cents with max_tokens 10.

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: pricedCatalog(), bindings: { ...mockBindings(mock.url), SETTLE_FLUSH_MS: "20" } });
});

after(async () => {
  await worker?.close();
  await mock?.close();
});

const call = caller(() => worker);
const post = (path, key, body, headers) => call("POST", path, key, body, headers);
const chat = (key, body = {}, headers = {}) =>
  post("/chat/completions", key, { model: "test/pricey", messages: [{ role: "user", content: "hi" }], max_tokens: 10, ...body }, headers);
const account = async (id) => (await worker.admin("GET", `/accounts/${id}`)).data;
const settled = (id) => eventually(async () => {
  const a = await account(id);
  return a.reserved === 0 && a;
}, "every hold settled");

test("64 concurrent streams against a $0.10 session settle at most $0.10, to the picodollar", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const limits = { session_id: "burst-1", session_limits: { max_cost: "0.10" } };
  const replies = await Promise.all(Array.from({ length: 64 }, () => chat(acc.key, { ...limits, stream: true })));
  const served = [];
  const refused = [];
  await Promise.all(replies.map(async (r) => {
    if (r.status === 200) {
      served.push(r.headers.get("x-generation-id"));
      assert.ok(r.headers.get("x-session-requests"), "the reply says where the session stands");
      await r.text();
    } else {
      assert.equal(r.status, 403);
      const b = await r.json();
      assert.equal(b.error.metadata.error_type, "session_limit_reached");
      assert.equal(b.error.metadata.limit, "max_cost");
      refused.push(b);
    }
  }));
  assert.ok(served.length > 0 && refused.length > 0, `${served.length} served, ${refused.length} refused`);
  const a = await settled(acc.id);
  // What the account was charged is what the session's requests were, at most its budget.
  const charged = picos((await exactBody(await fetch(`${worker.base}/credits`, { headers: { authorization: `Bearer ${acc.provisioningKey}` } }))).data.total_usage);
  assert.ok(charged <= picos("0.10"), `settled ${charged} past $0.10`);
  assert.equal(charged, BigInt(served.length) * picos("0.0081"));
  assert.equal(a.total_usage, Number(charged) / 1e12);
  const gens = await eventually(async () => {
    const r = await fetch(`${worker.base}/generations?limit=200`, { headers: { authorization: `Bearer ${acc.provisioningKey}` } });
    const list = (await exactBody(r)).data;
    return list.length === served.length && list;
  }, "a record per served request");
  assert.equal(sum(gens.map((g) => picos(g.total_cost))), charged);
  // The next request sees the session's settled cost.
  const next = await chat(acc.key, { session_id: "burst-1", max_tokens: 1 });
  if (next.status === 200) {
    assert.equal(picos(next.headers.get("x-session-cost")), charged);
    await next.text();
  } else {
    assert.equal(next.status, 403);
  }
});

test("limits set by the first request are only lowered by later ones; max_requests and the headers", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const first = await chat(acc.key, { session_id: "low-1" }, { "x-session-limits": "max_cost=1.00,max_requests=3" });
  assert.equal(first.status, 200);
  assert.equal(first.headers.get("x-session-requests"), "1");
  assert.equal(first.headers.get("x-session-cost"), "0");
  const body = await exactBody(first);
  assert.equal(body.usage.session.id, "low-1");
  assert.equal(picos(body.usage.session.cost), picos("0.0081"));
  assert.equal(body.usage.session.requests, "1");
  assert.equal(body.usage.session.remaining_requests, "2");
  assert.equal(picos(body.usage.session.remaining_cost), picos("1") - picos("0.0081"));
  await settled(acc.id);
  // A later request asking for more gets no more: max_requests stays 3.
  const second = await chat(acc.key, { session_id: "low-1", session_limits: { max_requests: 50 } });
  assert.equal(second.status, 200);
  assert.equal(second.headers.get("x-session-requests"), "2");
  assert.equal(picos(second.headers.get("x-session-cost")), picos("0.0081"));
  await second.text();
  await settled(acc.id);
  // Lowered mid-session under what it has spent: refused, and the lower limit stays.
  const lowered = await chat(acc.key, { session_id: "low-1", session_limits: { max_cost: "0.01" } });
  assert.equal(lowered.status, 403);
  const e = await lowered.json();
  assert.equal(e.error.code, 403);
  assert.equal(e.error.metadata.error_type, "session_limit_reached");
  assert.equal(e.error.metadata.limit, "max_cost");
  const plain = await chat(acc.key, { session_id: "low-1" });
  assert.equal(plain.status, 403, "the lowered limit was kept");
  await plain.text();
  // max_requests, on a session of its own, and through the Messages API.
  const h = { "x-session-id": "count-1", "x-session-limits": "max_requests=1" };
  assert.equal((await chat(acc.key, {}, h)).status, 200);
  const over = await chat(acc.key, {}, { "x-session-id": "count-1" });
  assert.equal(over.status, 403);
  assert.equal((await over.json()).error.metadata.limit, "max_requests");
  const m = await post("/messages", acc.key, { model: "test/pricey", max_tokens: 10, metadata: { session_id: "count-1" }, messages: [{ role: "user", content: "hi" }] });
  assert.equal(m.status, 403);
  const mb = await m.json();
  assert.equal(mb.type, "error");
  assert.equal(mb.error.type, "permission_error");
  // A request without a session is not touched by any of it.
  const free = await chat(acc.key);
  assert.equal(free.status, 200);
  assert.equal(free.headers.get("x-session-cost"), null);
  await free.text();
});

test("bad session values are a 400 naming the field, before anything is reserved", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const cases = [
    [{ session_id: "s", session_limits: { max_cost: "a lot" } }, {}, "session_limits.max_cost"],
    [{ session_id: "s", session_limits: { max_requests: -1 } }, {}, "session_limits.max_requests"],
    [{ session_id: "x".repeat(257) }, {}, "session_id"],
    [{}, { "x-session-id": "s", "x-session-limits": "max_cost" }, "X-Session-Limits"],
    [{ session_limits: { max_cost: "1" } }, {}, "session_limits"],
  ];
  for (const [body, headers, field] of cases) {
    const r = await chat(acc.key, body, headers);
    assert.equal(r.status, 400, field);
    const b = await r.json();
    assert.ok(b.error.message.startsWith(field), `${field}: ${b.error.message}`);
  }
  const a = await account(acc.id);
  assert.equal(a.reserved + a.total_usage, 0);
});

// The events of an SSE body: [{event, data}] with data read exactly (amounts as text).
const events = (text) => text.split("\n\n").filter((e) => e.trim()).map((e) => {
  const lines = e.split("\n");
  const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
  const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
  return { event, data: data && data !== "[DONE]" ? exactJson(data) : data };
});

test("the final usage chunk of a stream says where the session stands, on every surface", async () => {
  const acc = await worker.createAccount({ credits: 10 });
  const session = { session_id: "streamed-1", session_limits: { max_cost: "1.00", max_requests: 10 } };
  const input = [{ role: "user", content: "hi" }];
  const surfaces = [
    ["/chat/completions", { messages: input, max_tokens: 10 }, (es) => es.filter((e) => e.data?.usage).at(-1)?.data.usage],
    ["/completions", { prompt: "hi", max_tokens: 10 }, (es) => es.filter((e) => e.data?.usage).at(-1)?.data.usage],
    ["/responses", { input: "hi", max_output_tokens: 16 }, (es) => es.find((e) => e.event === "response.completed")?.data.response.usage],
    ["/messages", { messages: input, max_tokens: 10 }, (es) => es.find((e) => e.event === "message_delta")?.data.usage],
  ];
  let n = 0;
  for (const [path, body, usageOf] of surfaces) {
    const r = await post(path, acc.key, { model: "test/pricey", stream: true, ...session, ...body });
    assert.equal(r.status, 200, path);
    const before = picos(r.headers.get("x-session-cost"));
    const usage = usageOf(events(await r.text()));
    n += 1;
    assert.ok(usage?.session, `${path}: usage.session in the final chunk`);
    const s = usage.session;
    assert.equal(s.id, "streamed-1");
    assert.equal(String(s.requests), String(n));
    assert.equal(String(s.remaining_requests), String(10 - n));
    assert.equal(picos(s.cost), before + picos(usage.cost ?? "0.0081"), path);
    assert.ok(picos(s.remaining_cost) <= picos("1") - picos(s.cost), path);
    await settled(acc.id);
  }
});
