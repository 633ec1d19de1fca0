// Stored Responses (README "Stored Responses"): `store: true`, `previous_response_id`,
// GET/DELETE /responses/{id} and /responses/{id}/input_items through the official
// `openai` SDK, records in the worker's local R2 bucket.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startWorker, sha256 } from "../support/worker.mjs";
import { startCollector, attributes } from "../support/otlp_collector.mjs";
import { eventually } from "../support/eventually.mjs";
import { startMockUpstream, MOCK_SIGNATURE } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

let mock, worker, a, b, alice, bob;

const tools = [{ type: "function", name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } }];
const think = { model: "test/thinkagent", reasoning: { effort: "low" }, tools };

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: mockBindings(mock.url) });
  alice = await worker.createAccount({ name: "alice" });
  bob = await worker.createAccount({ name: "bob" });
  a = new OpenAI({ baseURL: worker.base, apiKey: alice.key, maxRetries: 0 });
  b = new OpenAI({ baseURL: worker.base, apiKey: bob.key, maxRetries: 0 });
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

const raw = (key, method, path, body) => fetch(`${worker.base}${path}`, {
  method,
  headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
  body: body === undefined ? undefined : JSON.stringify(body),
});

/** Three turns: Anthropic thinks and calls a tool; OpenAI (streamed) reads the tool's
 * output; Anthropic again, which gets its own signed thinking back. */
async function conversation(client) {
  const r1 = await client.responses.create({ ...think, input: "Weather in Paris?", store: true });
  assert.deepEqual(r1.output.map((o) => o.type), ["reasoning", "function_call"]);
  const call = r1.output[1];
  const stream = await client.responses.create({
    model: "openai-mock/agent", tools, store: true, stream: true, previous_response_id: r1.id,
    input: [{ type: "function_call_output", call_id: call.call_id, output: "18C" }],
  });
  let r2 = null;
  for await (const ev of stream) if (ev.type === "response.completed") r2 = ev.response;
  assert.equal(r2.output_text, "The tool said: 18C");
  const sent2 = mock.last("/openai/").body.messages;
  assert.deepEqual(sent2.map((m) => m.role), ["user", "assistant", "tool"]);
  assert.equal(sent2[0].content[0].text, "Weather in Paris?");
  assert.equal(sent2[1].tool_calls[0].id, call.call_id);
  assert.equal(sent2[1].reasoning_details, undefined, "Anthropic's thinking does not go to OpenAI");
  assert.deepEqual(sent2[2], { role: "tool", tool_call_id: call.call_id, content: "18C" });
  const r3 = await client.responses.create({ ...think, input: "Thanks. And tomorrow?", store: true, previous_response_id: r2.id });
  const sent3 = mock.last("/anthropic/").body.messages;
  assert.deepEqual(sent3.map((m) => m.role), ["user", "assistant", "user", "assistant", "user"]);
  assert.deepEqual(sent3[1].content.map((c) => c.type), ["thinking", "tool_use"]);
  assert.equal(sent3[1].content[0].signature, MOCK_SIGNATURE);
  assert.equal(sent3[2].content[0].type, "tool_result");
  assert.deepEqual(sent3[3].content, [{ type: "text", text: "The tool said: 18C" }]);
  assert.equal(JSON.stringify(sent3[4].content).includes("Thanks. And tomorrow?"), true);
  assert.equal(r3.output_text, "The tool said: 18C");
  return { r1, r2, r3, call };
}

test("stored: three turns with a model switch, each rebuilt from the stored items", async () => {
  const { r1, r2, r3, call } = await conversation(a);
  // GET: the response as it was replied, marked stored, with its predecessor.
  const got = await a.responses.retrieve(r1.id);
  assert.equal(got.id, r1.id);
  assert.deepEqual(got.output, r1.output);
  assert.equal(got.store, true);
  assert.equal(got.previous_response_id, null);
  const got2 = await a.responses.retrieve(r2.id);
  assert.equal(got2.previous_response_id, r1.id);
  assert.equal(got2.output_text, "The tool said: 18C");
  // input_items: everything the third turn's model saw, newest first.
  const page = await a.responses.inputItems.list(r3.id);
  assert.deepEqual(page.data.map((i) => i.type), ["message", "message", "function_call_output", "function_call", "reasoning", "message"]);
  assert.deepEqual(page.data[0].content, [{ type: "input_text", text: "Thanks. And tomorrow?" }]);
  assert.equal(page.data[0].id, `msg_${r3.id}_0`);
  assert.equal(page.data[3].call_id, call.call_id);
  assert.equal(page.data[4].encrypted_content, r1.output[0].encrypted_content);
  const asc = await (await raw(alice.key, "GET", `/responses/${r3.id}/input_items?order=asc&limit=2`)).json();
  assert.deepEqual(asc.data.map((i) => i.type), ["message", "reasoning"]);
  assert.equal(asc.has_more, true);
  assert.equal(asc.first_id, page.data[5].id);
  assert.equal(asc.last_id, page.data[4].id);
});

test("stored: another account's key, and another key of the same account, get 404", async () => {
  const r = await a.responses.create({ model: "openai-mock/ok", input: "secret plans", store: true });
  await assert.rejects(b.responses.retrieve(r.id), OpenAI.NotFoundError);
  await assert.rejects(b.responses.inputItems.list(r.id), OpenAI.NotFoundError);
  const del = await raw(bob.key, "DELETE", `/responses/${r.id}`);
  assert.equal(del.status, 404);
  assert.equal((await del.json()).error.message, `No response found with id '${r.id}'.`);
  const cont = await raw(bob.key, "POST", "/responses", { model: "openai-mock/ok", input: "go on", previous_response_id: r.id });
  assert.equal(cont.status, 400);
  assert.equal((await cont.json()).error.message, `previous_response_id: previous response with id '${r.id}' not found`);
  const made = await (await raw(alice.provisioningKey, "POST", "/keys", { name: "second" })).json();
  const res = await raw(made.key, "GET", `/responses/${r.id}`);
  assert.equal(res.status, 404);
  // Still there for its own key.
  assert.equal((await a.responses.retrieve(r.id)).output_text, "mock says: secret plans");
});

test("stored: DELETE removes it, and it cannot be continued", async () => {
  const r = await a.responses.create({ model: "openai-mock/ok", input: "forget me", store: true });
  const del = await raw(alice.key, "DELETE", `/responses/${r.id}`);
  assert.equal(del.status, 200);
  assert.deepEqual(await del.json(), { id: r.id, object: "response", deleted: true });
  await assert.rejects(a.responses.retrieve(r.id), OpenAI.NotFoundError);
  await assert.rejects(a.responses.create({ model: "openai-mock/ok", input: "x", previous_response_id: r.id }), OpenAI.BadRequestError);
  assert.equal((await raw(alice.key, "DELETE", `/responses/${r.id}`)).status, 404);
});

test("stored: not stored unless asked, refused under ZDR, bad fields named", async () => {
  const plain = await a.responses.create({ model: "openai-mock/ok", input: "ephemeral" });
  await assert.rejects(a.responses.retrieve(plain.id), OpenAI.NotFoundError);
  const before = mock.requests.length;
  const zdr = await raw(alice.key, "POST", "/responses", { model: "openai-mock/ok", input: "x", store: true, provider: { zdr: true } });
  assert.equal(zdr.status, 400);
  assert.equal((await zdr.json()).error.message, "store: responses cannot be stored under zero data retention (provider.zdr)");
  const bad = await raw(alice.key, "POST", "/responses", { model: "openai-mock/ok", input: "x", store: "yes" });
  assert.equal((await bad.json()).error.message, "store: must be a boolean, not a string");
  const badId = await raw(alice.key, "POST", "/responses", { model: "openai-mock/ok", input: "x", previous_response_id: "../etc" });
  assert.equal((await badId.json()).error.message, "previous_response_id: is not a response ID");
  assert.equal(mock.requests.length, before, "nothing went upstream");
  // The new input's own refusal names its own index, not the stored items'.
  const r = await a.responses.create({ model: "openai-mock/ok", input: "one", store: true });
  const next = await raw(alice.key, "POST", "/responses", { model: "openai-mock/ok", previous_response_id: r.id, input: [{ role: "wizard", content: "x" }] });
  assert.equal(next.status, 400);
  assert.match((await next.json()).error.message, /^input\[0\]\.role: unknown role "wizard"/);
  const items = await (await raw(alice.key, "GET", `/responses/${r.id}/input_items?limit=0`)).json();
  assert.equal(items.error.message, "limit: must be an integer from 1 to 100");
});

test("stored: the end user's ID goes upstream hashed", async () => {
  await a.responses.create({ model: "openai-mock/ok", input: "hi", store: true, user: "alice@example.com" });
  const sent = mock.last("/openai/").body.user;
  assert.match(sent, /^mm-user-[0-9a-f]{32}$/);
  assert.notEqual(sent, "alice@example.com");
  assert.equal(JSON.stringify(mock.last("/openai/").body).includes("alice@example.com"), false);
});

// ------------------------------------------------------------------ trace export

test("traces: destinations are the provisioning key's, shown without their secrets", async () => {
  const body = { type: "otlp", name: "tempo", endpoint: "http://127.0.0.1:1/v1/traces", headers: { Authorization: "Bearer col-secret" } };
  const refused = await raw(alice.key, "POST", "/observability/destinations", body);
  assert.equal(refused.status, 403);
  const made = await raw(bob.provisioningKey, "POST", "/observability/destinations", body);
  assert.equal(made.status, 201);
  const { data } = await made.json();
  assert.match(data.id, /^dst_[0-9a-f]{16}$/);
  assert.deepEqual([data.type, data.sampling_rate, data.privacy_mode, data.enabled, data.header_names], ["otlp", 1, false, true, ["Authorization"]]);
  const patched = await (await raw(bob.provisioningKey, "PATCH", `/observability/destinations/${data.id}`, { sampling_rate: 0.5, privacy_mode: true })).json();
  assert.deepEqual([patched.data.sampling_rate, patched.data.privacy_mode], [0.5, true]);
  const listed = await (await raw(bob.provisioningKey, "GET", "/observability/destinations")).text();
  assert.equal(listed.includes("col-secret"), false);
  assert.equal(JSON.parse(listed).data.length, 1);
  // Another account's provisioning key sees none of them.
  assert.equal((await raw(alice.provisioningKey, "GET", `/observability/destinations/${data.id}`)).status, 404);
  const bad = await raw(bob.provisioningKey, "POST", "/observability/destinations", { type: "otlp", endpoint: "http://x/v1/traces", sampling_rate: 2 });
  assert.equal((await bad.json()).error.message, "sampling_rate: must be from 0 to 1");
  const del = await raw(bob.provisioningKey, "DELETE", `/observability/destinations/${data.id}`);
  assert.deepEqual(await del.json(), { id: data.id, deleted: true });
  assert.equal((await (await raw(bob.provisioningKey, "GET", "/observability/destinations")).json()).data.length, 0);
});

test("traces: one GenAI span per generation to OTLP (retried), none at sampling 0, no text in privacy mode", async () => {
  const col = await startCollector({ failFirst: 1 });
  const acct = await worker.createAccount({ name: "tracer" });
  const pk = acct.provisioningKey;
  const make = async (b) => (await (await raw(pk, "POST", "/observability/destinations", b)).json()).data;
  const otlp = await make({ type: "otlp", endpoint: `${col.url}/full/v1/traces`, headers: { Authorization: "Bearer col-secret" } });
  await make({ type: "webhook", endpoint: `${col.url}/hook`, privacy_mode: true });
  await make({ type: "otlp", endpoint: `${col.url}/zero/v1/traces`, sampling_rate: 0 });
  const client = new OpenAI({ baseURL: worker.base, apiKey: acct.key, maxRetries: 0 });
  const trace = { trace_id: "run-1", trace_name: "nightly", generation_name: "greet", parent_span_id: "00f067aa0ba902b7", team: "infra" };
  const r = await client.chat.completions.create({
    model: "openai-mock/ok", messages: [{ role: "user", content: "trace me" }], user: "alice@example.com", session_id: "s-1", trace,
  });
  assert.equal(r.choices[0].message.content, "mock says: trace me");
  const [span] = await eventually(() => col.spans("/full/").length && col.spans("/full/"), "the OTLP span");
  const [priv] = await eventually(() => col.spans("/hook").length && col.spans("/hook"), "the webhook span");
  const a = attributes(span);
  assert.deepEqual(a["gen_ai.request.model"], { stringValue: "openai-mock/ok" });
  assert.deepEqual(a["gen_ai.response.model"], { stringValue: "openai-mock/ok" });
  assert.deepEqual(a["gen_ai.provider.name"], { stringValue: "MockOpenAI" });
  assert.deepEqual(a["gen_ai.response.id"], { stringValue: r.id });
  assert.deepEqual(a["gen_ai.usage.input_tokens"], { intValue: "11" });
  assert.deepEqual(a["gen_ai.usage.output_tokens"], { intValue: "7" });
  assert.deepEqual(a["gen_ai.conversation.id"], { stringValue: "s-1" });
  assert.deepEqual(a["gen_ai.input.messages"], { stringValue: "user: trace me" });
  assert.deepEqual(a["modelmux.trace.name"], { stringValue: "nightly" });
  assert.deepEqual(a["modelmux.trace.metadata.team"], { stringValue: "infra" });
  assert.match(a["modelmux.cost.usd"].stringValue, /^0\.\d+$/);
  assert.ok(Number(a["modelmux.time_to_first_token_ms"].intValue) >= 0);
  // The end user as hashed upstream, the same pseudonym in the trace.
  const upstreamUser = mock.last("/openai/").body.user;
  assert.match(upstreamUser, /^mm-user-[0-9a-f]{32}$/);
  assert.deepEqual(a["user.id"], { stringValue: upstreamUser });
  assert.equal(span.name, "greet");
  assert.equal(span.kind, 3);
  assert.equal(span.parentSpanId, "00f067aa0ba902b7");
  assert.equal(span.traceId, sha256("run-1").slice(0, 32));
  assert.equal(JSON.stringify(col.received).includes("alice@example.com"), false);
  // Retried once after the collector's 503, with the destination's headers.
  const tries = col.received.filter((x) => x.url === "/full/v1/traces");
  assert.deepEqual(tries.map((x) => x.status), [503, 200]);
  assert.equal(tries[1].headers.authorization, "Bearer col-secret");
  // Privacy mode: the same figures, no text.
  const p = col.received.find((x) => x.url === "/hook" && x.status === 200);
  assert.equal(p.text.includes("trace me"), false);
  assert.deepEqual(attributes(priv)["modelmux.privacy_mode"], { boolValue: true });
  assert.deepEqual(attributes(priv)["gen_ai.usage.output_tokens"], { intValue: "7" });
  // Sampling 0: nothing, even after the others landed.
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(col.received.filter((x) => x.url.startsWith("/zero/")).length, 0);
  // A bad `trace` is a 400 naming its field, before anything goes upstream.
  const before = mock.requests.length;
  const bad = await raw(acct.key, "POST", "/chat/completions", { model: "openai-mock/ok", messages: [{ role: "user", content: "x" }], trace: { trace_name: 5 } });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.message, "trace.trace_name: must be a string, not a number");
  assert.equal(mock.requests.length, before);
  // A key filter that names another key: that destination gets nothing more (the
  // change reaches this isolate's copy of the list at once).
  await raw(pk, "PATCH", `/observability/destinations/${otlp.id}`, { api_key_hashes: ["not-this-key"] });
  const seen = col.spans("/full/").length;
  await client.chat.completions.create({ model: "openai-mock/ok", messages: [{ role: "user", content: "again" }] });
  await eventually(() => col.spans("/hook").length >= 2, "the second webhook span");
  assert.equal(col.spans("/full/").length, seen);
  await col.close();
});
