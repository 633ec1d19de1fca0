// The `openai` npm SDK reads the gateway's answers a program can act on: an error's
// `availability`, `metadata.error_type` and `metadata.previous_errors` are on
// `APIError.error` (and the status on `APIError.status`), on chat and Responses.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

let mock, worker, client;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: { ...mockBindings(mock.url), HEALTH_CACHE_SECS: "0" } });
  const { key } = await worker.createAccount();
  client = new OpenAI({ baseURL: worker.base, apiKey: key, maxRetries: 0 });
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

const messages = [{ role: "user", content: "hi" }];

/** The APIError a call rejects with. */
async function refused(call) {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, String(e));
    return e;
  }
  assert.fail("the call succeeded");
}

test("each availability code is on APIError.error", async () => {
  const cases = [
    [{ model: "nobody/nothing" }, OpenAI.NotFoundError, 404, "model_not_found", "not_found"],
    [{ model: "test/ok", provider: { only: ["nobody"] } }, OpenAI.NotFoundError, 404, "constraint_filtered", "not_found"],
    [{ model: "route/retainer", provider: { data_collection: "deny" } }, OpenAI.NotFoundError, 404, "privacy_restricted", "not_found"],
    [{ model: "test/ratelimited" }, OpenAI.RateLimitError, 429, "capacity_exhausted", "rate_limit_exceeded"],
    [{ model: "route/dead" }, OpenAI.InternalServerError, 502, "temporarily_unavailable", "provider_unavailable"],
  ];
  for (const [body, kind, status, code, errorType] of cases) {
    const e = await refused(() => client.chat.completions.create({ messages, ...body }));
    assert.ok(e instanceof kind, `${code}: ${e.constructor.name}`);
    assert.equal(e.status, status, code);
    assert.equal(e.error.availability.code, code);
    assert.equal(e.error.availability.retryable, code === "capacity_exhausted" || code === "temporarily_unavailable");
    assert.deepEqual(e.error.availability.requested_models, [body.model]);
    assert.equal(e.error.metadata.error_type, errorType, code);
  }
  const limited = await refused(() => client.chat.completions.create({ messages, model: "test/ratelimited" }));
  assert.equal(limited.error.availability.retry_after, 17);
  assert.equal(limited.headers.get("retry-after"), "17");
  const filtered = await refused(() => client.chat.completions.create({ messages, model: "test/ok", provider: { only: ["nobody"] } }));
  assert.deepEqual(filtered.error.availability.constraint, { field: "provider.only", detail: "provider.only leaves out every endpoint of test/ok" });
});

test("previous_errors after a fallback that failed too, on chat and Responses", async () => {
  const provider = { order: ["mockai", "mockbackup"], allow_fallbacks: false };
  const e = await refused(() => client.chat.completions.create({ messages, model: "route/gauntlet", provider }));
  assert.deepEqual(e.error.metadata.previous_errors, [{ provider: "mockai", code: "temporarily_unavailable", status: 500 }]);
  assert.equal(e.error.availability.code, "temporarily_unavailable");
  const r = await refused(() => client.responses.create({ input: "hi", model: "route/gauntlet", provider }));
  assert.deepEqual(r.error.metadata.previous_errors, e.error.metadata.previous_errors);
  assert.equal(r.error.metadata.error_type, "rate_limit_exceeded");
});
