// The Vercel AI SDK (npm `ai` with `@openrouter/ai-sdk-provider`), unchanged but for the
// base URL and key: a refusal is an APICallError whose status and retryability follow the
// gateway's answer and whose body carries `availability` and `metadata.error_type`; a
// served reply's headers say what the account and the key have left.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateText, APICallError } from "ai";
import { createOpenRouter } from "@openrouter/ai-sdk-provider";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

let mock, worker, openrouter;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: { ...mockBindings(mock.url), HEALTH_CACHE_SECS: "0" } });
  const { key } = await worker.createAccount({ credits: 10 });
  openrouter = createOpenRouter({ baseURL: worker.base, apiKey: key });
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

async function refused(model) {
  try {
    await generateText({ model: openrouter(model), prompt: "hi", maxRetries: 0 });
  } catch (e) {
    assert.ok(APICallError.isInstance(e), `${model}: ${e}`);
    return e;
  }
  assert.fail(`${model}: the call succeeded`);
}

test("availability codes reach the AI SDK's APICallError", async () => {
  const cases = [
    ["nobody/nothing", 404, "model_not_found", false],
    ["test/ratelimited", 429, "capacity_exhausted", true],
    ["route/dead", 502, "temporarily_unavailable", true],
  ];
  for (const [model, status, code, retryable] of cases) {
    const e = await refused(model);
    assert.equal(e.statusCode, status, model);
    assert.equal(e.isRetryable, retryable, model);
    const body = JSON.parse(e.responseBody);
    assert.equal(body.error.availability.code, code);
    assert.equal(body.error.availability.retryable, retryable);
    assert.deepEqual(body.error.availability.requested_models, [model]);
    assert.equal(typeof body.error.metadata.error_type, "string");
  }
});

test("a served reply's headers reach the AI SDK's response", async () => {
  const r = await generateText({ model: openrouter("test/ok"), prompt: "hi", maxRetries: 0 });
  assert.match(r.text, /mock says/);
  const h = r.response.headers;
  assert.match(h["x-generation-id"], /^gen-/);
  assert.match(h["x-credits-remaining"], /^\d+\.\d+$/);
  assert.ok(Number(h["x-credits-remaining"]) < 10, h["x-credits-remaining"]);
  assert.match(h["server-timing"], /gateway;dur=\d+/);
});
