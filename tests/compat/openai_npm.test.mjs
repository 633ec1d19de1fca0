// The official `openai` npm SDK against modelmux: only the base URL and key change.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

const KEY = "sk-mm-v1-" + "d".repeat(64);
let mock, worker, client;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), keys: [KEY], bindings: mockBindings(mock.url) });
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
