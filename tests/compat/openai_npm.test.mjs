// The official `openai` npm SDK against modelmux: only the base URL and key change.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

let mock, worker, KEY, client;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: mockBindings(mock.url) });
  KEY = (await worker.createAccount()).key;
  client = new OpenAI({ baseURL: worker.base, apiKey: KEY, maxRetries: 0 });
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

test("chat with the demo model", async () => {
  const r = await client.chat.completions.create({ model: "modelmux/echo", messages: [{ role: "user", content: "hello from npm" }] });
  assert.equal(r.choices[0].message.content, "hello from npm");
});

test("stream with the demo model and an upstream", async () => {
  for (const [model, want] of [["modelmux/echo", "a b c"], ["test/stream", "Hello from the mock"]]) {
    const stream = await client.chat.completions.create({ model, stream: true, messages: [{ role: "user", content: "a b c" }] });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(text, want);
  }
});

for (const family of ["openai", "anthropic", "gemini"]) {
  test(`${family}: chat, stream and a tool-call round trip`, async () => {
    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
    const r = await client.chat.completions.create({ model: `${family}-mock/ok`, messages: [{ role: "user", content: "yo" }] });
    assert.equal(r.choices[0].message.content, "mock says: yo");
    const messages = [{ role: "user", content: "weather?" }];
    const t = await client.chat.completions.create({ model: `${family}-mock/tool`, messages, tools });
    const call = t.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, "get_weather");
    messages.push(t.choices[0].message, { role: "tool", tool_call_id: call.id, content: "sunny" });
    const after = await client.chat.completions.create({ model: `${family}-mock/ok`, messages, tools });
    assert.equal(after.choices[0].finish_reason, "stop");
    const stream = await client.chat.completions.create({ model: `${family}-mock/tool`, messages: messages.slice(0, 1), tools, stream: true });
    let args = "";
    for await (const chunk of stream) for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) args += tc.function?.arguments ?? "";
    assert.deepEqual(JSON.parse(args), { city: "Paris" });
  });
}

test("errors are typed", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "no/such", messages: [{ role: "user", content: "x" }] }),
    OpenAI.NotFoundError,
  );
  await assert.rejects(
    client.chat.completions.create({ model: "test/ratelimited", messages: [{ role: "user", content: "x" }] }),
    OpenAI.RateLimitError,
  );
});

test("responses: created, streamed, and a tool round trip", async () => {
  const r = await client.responses.create({ model: "gemini-mock/ok", input: "hello responses" });
  assert.equal(r.output_text, "mock says: hello responses");
  const stream = await client.responses.create({ model: "anthropic-mock/stream", input: "hi", stream: true });
  let text = "", completed = null;
  for await (const ev of stream) {
    if (ev.type === "response.output_text.delta") text += ev.delta;
    if (ev.type === "response.completed") completed = ev.response;
  }
  assert.equal(text, "Hello from the mock");
  assert.equal(completed.status, "completed");
  const tools = [{ type: "function", name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } }];
  const first = await client.responses.create({ model: "openai-mock/agent", input: "weather?", tools });
  const call = first.output.find((o) => o.type === "function_call");
  assert.deepEqual(JSON.parse(call.arguments), { city: "Paris" });
  const second = await client.responses.create({
    model: "openai-mock/agent",
    tools,
    input: [{ role: "user", content: "weather?" }, call, { type: "function_call_output", call_id: call.call_id, output: "rainy" }],
  });
  assert.match(second.output_text, /rainy/);
});

test("legacy completions", async () => {
  const r = await client.completions.create({ model: "anthropic-mock/ok", prompt: "Once", max_tokens: 10 });
  assert.equal(r.choices[0].text, "mock says: Once");
});

test("embeddings (the npm SDK asks for base64 and decodes it)", async () => {
  for (const model of ["test/embed-openai", "test/embed-gemini"]) {
    const r = await client.embeddings.create({ model, input: ["hello", "world"] });
    assert.equal(r.data.length, 2);
    assert.equal(r.data[0].embedding.length, 4, model);
    assert.ok(r.data[0].embedding.every((x) => typeof x === "number"));
  }
});
