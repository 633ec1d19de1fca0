// Answers a program can act on (issue 24, item 3): `error.availability` for each code
// OpenRouter defines that the gateway can meet, the typed `error.metadata.error_type`
// (upstream failures mapped onto it), `metadata.previous_errors` after fallbacks, on
// every surface and in errors that come after a stream started.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings, FAMILIES } from "../support/catalog.mjs";
import { collect } from "../support/sse.mjs";

let mock, worker, KEY;

const DOCS = "https://openrouter.ai/docs/api_reference/errors-and-debugging#";
const price = { prompt: "0.000001", completion: "0.000002" };
const model = (id, endpoints) => ({
  id, name: `Test: ${id}`, created: 1700000000, description: id, input_modalities: ["text"], output_modalities: ["text"],
  context_length: 8192, supported_parameters: ["max_tokens", "temperature"],
  endpoints: endpoints.map(([provider, upstream_model]) => ({ provider, upstream_model, pricing: price })),
});

before(async () => {
  mock = await startMockUpstream();
  const catalog = testCatalog();
  catalog.models.push(
    model("ans/capacity", [["mockai", "fail429"], ["mockbackup", "fail429"]]),
    model("ans/failing", [["mockai", "fail500"], ["mockbackup", "failoverloaded"]]),
    model("ans/busy", [["mockai", "fail500"], ["mockbackup", "failbusy"]]),
    model("ans/private", [["mocktrain", "ok"], ["mockretain", "ok"]]),
    model("ans/nokey", [["nokey", "ok"]]),
    // Each family refusing a prompt over its context, and failing mid-stream.
    ...FAMILIES.flatMap(([api, slug]) => ["failcontext", "midstreamerror"].map((script) => model(`${api}-mock/${script}`, [[slug, script]]))),
  );
  worker = await startWorker({
    catalog,
    bindings: { ...mockBindings(mock.url), HEALTH_CACHE_SECS: "0", HEALTH_FLUSH_MS: "0", CATALOG_CACHE_SECS: "0" },
  });
  KEY = (await worker.createAccount()).key;
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

const post = (path, body) =>
  fetch(`${worker.base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
const user = [{ role: "user", content: "hi" }];
const chat = (body) => post("/chat/completions", { messages: user, ...body });
const ordered = (...order) => ({ order });

test("an unknown model: model_not_found, on every surface", async () => {
  const availability = { code: "model_not_found", retryable: false, requested_models: ["nobody/nothing", "nobody/else"], docs_url: `${DOCS}model_not_found` };
  const message = "nobody/nothing, nobody/else is not a valid model ID";
  const openrouter = { error: { code: 404, message, availability, metadata: { error_type: "not_found" } } };
  const models = { model: "nobody/nothing", models: ["nobody/else"] };
  for (const [path, body] of [
    ["/chat/completions", { ...models, messages: user }],
    ["/completions", { ...models, prompt: "hi" }],
    ["/responses", { ...models, input: "hi" }],
    ["/embeddings", { ...models, input: "hi" }],
  ]) {
    const r = await post(path, body);
    assert.equal(r.status, 404, path);
    assert.deepEqual(await r.json(), openrouter, path);
  }
  // Anthropic's shape, its `type` kept, OpenRouter's fields inside its `error`.
  const r = await post("/messages", { ...models, max_tokens: 5, messages: user });
  assert.equal(r.status, 404);
  assert.deepEqual(await r.json(), { type: "error", error: { type: "not_found_error", message, error_type: "not_found", availability } });
});

test("provider.only leaving no endpoint: constraint_filtered naming the field", async () => {
  const r = await chat({ model: "test/ok", provider: { only: ["nobody"] } });
  assert.equal(r.status, 404);
  assert.deepEqual(await r.json(), { error: {
    code: 404, message: "No endpoints found that match your provider preferences.",
    availability: { code: "constraint_filtered", retryable: false, requested_models: ["test/ok"], affected_providers: ["mockai"],
      excluded_by: ["allowed_providers"], constraint: { field: "provider.only", detail: "provider.only leaves out every endpoint of test/ok" },
      docs_url: `${DOCS}constraint_filtered` },
    metadata: { error_type: "not_found" },
  } });
  const priced = await (await chat({ model: "test/ok", provider: { max_price: { prompt: 0.5 } } })).json();
  assert.deepEqual(priced.error.availability.constraint, { field: "provider.max_price", detail: "provider.max_price leaves out every endpoint of test/ok" });
  assert.deepEqual(priced.error.availability.excluded_by, ["max_price"]);
});

test("data_collection: deny and zdr excluding every endpoint: privacy_restricted", async () => {
  for (const [provider, excluded_by] of [[{ data_collection: "deny" }, ["data_policy:training"]], [{ zdr: true }, ["data_policy:zdr"]]]) {
    const r = await chat({ model: "ans/private", provider });
    assert.equal(r.status, 404);
    const body = await r.json();
    const field = provider.zdr ? "`provider.zdr: true`" : '`provider.data_collection: "deny"`';
    assert.equal(body.error.message, `No endpoints found matching your data policy: ${field} leaves out every endpoint of ans/private.`);
    assert.deepEqual(body, { error: {
      code: 404, message: body.error.message,
      availability: { code: "privacy_restricted", retryable: false, requested_models: ["ans/private"],
        affected_providers: ["mocktrain", "mockretain"], excluded_by, docs_url: `${DOCS}privacy_restricted` },
      metadata: { error_type: "not_found" },
    } }, JSON.stringify(provider));
  }
});

test("every endpoint answering 429: capacity_exhausted, retry_after, previous_errors", async () => {
  const r = await chat({ model: "ans/capacity", provider: ordered("mockai", "mockbackup") });
  assert.equal(r.status, 429);
  assert.equal(r.headers.get("retry-after"), "17");
  const raw = JSON.stringify({ error: { message: "Rate limit reached for requests", type: "requests" } });
  const said = (p) => `Provider ${p} is rate limited: Rate limit reached for requests`;
  assert.deepEqual(await r.json(), { error: {
    code: 429, message: said("mockbackup"),
    availability: { code: "capacity_exhausted", retryable: true, retry_after: 17, requested_models: ["ans/capacity"],
      affected_providers: ["mockai", "mockbackup"], docs_url: `${DOCS}capacity_exhausted` },
    metadata: {
      error_type: "rate_limit_exceeded",
      previous_errors: [{ provider: "mockai", code: "capacity_exhausted", status: 429 }],
      provider_errors: [
        { code: 429, message: said("mockbackup"), model: "ans/capacity", provider_name: "mockbackup", raw },
        { code: 429, message: said("mockai"), model: "ans/capacity", provider_name: "mockai", raw },
      ],
      provider_name: "mockbackup", raw,
    },
  } });
});

test("every endpoint failing: temporarily_unavailable, the overloaded one typed provider_overloaded", async () => {
  // Twice: the second time the endpoints' health circuit is open (they go last, and
  // are still tried), and the answer is the same.
  for (const round of [1, 2]) {
    const r = await chat({ model: "ans/failing", provider: ordered("mockai", "mockbackup") });
    assert.equal(r.status, 502, `round ${round}`);
    const body = await r.json();
    assert.deepEqual(body.error.availability, { code: "temporarily_unavailable", retryable: true, requested_models: ["ans/failing"],
      affected_providers: ["mockai", "mockbackup"], docs_url: `${DOCS}temporarily_unavailable` });
    assert.equal(body.error.message, "Provider returned error: Overloaded");
    assert.equal(body.error.metadata.error_type, "provider_overloaded");
    assert.deepEqual(body.error.metadata.previous_errors, [{ provider: "mockai", code: "temporarily_unavailable", status: 500 }]);
    assert.deepEqual(body.error.metadata.provider_errors.map((e) => [e.provider_name, e.code]), [["mockbackup", 503], ["mockai", 500]]);
  }
  // Anthropic's clients get the same, in their shape (no raw upstream bodies).
  const r = await post("/messages", { model: "ans/failing", max_tokens: 5, messages: user, provider: ordered("mockai", "mockbackup") });
  assert.equal(r.status, 502);
  assert.deepEqual(await r.json(), { type: "error", error: {
    type: "api_error", message: "Provider returned error: Overloaded", error_type: "provider_overloaded",
    availability: { code: "temporarily_unavailable", retryable: true, requested_models: ["ans/failing"],
      affected_providers: ["mockai", "mockbackup"], docs_url: `${DOCS}temporarily_unavailable` },
    metadata: { previous_errors: [{ provider: "mockai", code: "temporarily_unavailable", status: 500 }] },
  } });
});

test("every endpoint failing, an overloaded one saying when to come back: its wait in retry_after and Retry-After", async () => {
  const r = await chat({ model: "ans/busy", provider: ordered("mockbackup", "mockai") });
  assert.equal(r.status, 502);
  // The error reported is the last endpoint's (a 500 that named no wait); the wait is
  // the overloaded one's.
  assert.equal(r.headers.get("retry-after"), "23");
  const body = await r.json();
  assert.deepEqual(body.error.availability, { code: "temporarily_unavailable", retryable: true, retry_after: 23,
    requested_models: ["ans/busy"], affected_providers: ["mockbackup", "mockai"], docs_url: `${DOCS}temporarily_unavailable` });
  const m = await post("/messages", { model: "ans/busy", max_tokens: 5, messages: user, provider: ordered("mockbackup", "mockai") });
  assert.equal(m.status, 502);
  assert.equal(m.headers.get("retry-after"), "23");
  assert.equal((await m.json()).error.availability.retry_after, 23);
});

test("a provider without a key on this gateway: no_endpoints", async () => {
  const r = await chat({ model: "ans/nokey" });
  assert.equal(r.status, 503);
  const { error } = await r.json();
  assert.deepEqual(error.availability, { code: "no_endpoints", retryable: false, requested_models: ["ans/nokey"],
    affected_providers: ["nokey"], docs_url: `${DOCS}no_endpoints` });
  assert.equal(error.metadata.error_type, "provider_unavailable");
});

test("a provider's context-length refusal is context_length_exceeded in every family", async () => {
  for (const family of ["openai", "anthropic", "gemini"]) {
    const r = await chat({ model: `${family}-mock/failcontext` });
    assert.equal(r.status, 400, family);
    const { error } = await r.json();
    assert.equal(error.metadata.error_type, "context_length_exceeded", family);
    assert.equal(error.metadata.provider_name, `mock${family}`);
    assert.equal(error.availability, undefined, "a refusal of the request is no availability answer");
  }
  // Routing's own refusal of a prompt longer than every context is typed the same.
  const long = await chat({
    model: "test/ok",
    plugins: [{ id: "context-compression", enabled: false }],
    messages: [{ role: "user", content: "word ".repeat(40000) }],
  });
  assert.equal(long.status, 400);
  assert.equal((await long.json()).error.metadata.error_type, "context_length_exceeded");
  const m = await post("/messages", { model: "anthropic-mock/failcontext", max_tokens: 5, messages: user });
  assert.equal(m.status, 400);
  const body = await m.json();
  assert.deepEqual([body.error.type, body.error.error_type], ["invalid_request_error", "context_length_exceeded"]);
});

test("an error after the stream started is typed in each surface's stream", async () => {
  const raw = { anthropic: '{"message":"Overloaded","type":"overloaded_error"}' };
  const said = {
    openai: ["Provider returned error: Provider disconnected unexpectedly", "provider_unavailable"],
    anthropic: ["Provider returned error: Overloaded", "provider_overloaded"],
    gemini: ["Provider returned error: The model is overloaded. Please try again later.", "provider_overloaded"],
  };
  for (const family of ["openai", "anthropic", "gemini"]) {
    const r = await chat({ model: `${family}-mock/midstreamerror`, stream: true });
    assert.equal(r.status, 200);
    const events = (await collect(r.body)).filter((e) => e.data);
    const failed = events.find((e) => e.data.error).data;
    const [message, error_type] = said[family];
    assert.equal(failed.error.code, 502);
    assert.equal(failed.error.message, message);
    assert.equal(failed.error.metadata.error_type, error_type, family);
    assert.equal(failed.error.metadata.provider_name, `mock${family}`);
    if (raw[family]) assert.equal(failed.error.metadata.raw, raw[family]);
    assert.deepEqual(failed.choices, [{ index: 0, delta: { content: "" }, finish_reason: "error" }]);
  }
  // Responses: `response.failed`, OpenAI's code and OpenRouter's `error_type` beside it.
  const resp = await post("/responses", { model: "openai-mock/midstreamerror", input: "hi", stream: true });
  const failed = (await collect(resp.body)).map((e) => e.data).find((d) => d?.type === "response.failed");
  assert.deepEqual(failed.response.error, { code: "server_error", message: "Provider returned error: Provider disconnected unexpectedly" });
  assert.equal(failed.response.error_type, "provider_unavailable");
  // Messages from another family: Anthropic's `error` event with the type inside.
  const msgs = await post("/messages", { model: "gemini-mock/midstreamerror", max_tokens: 50, messages: user, stream: true });
  const error = (await collect(msgs.body)).map((e) => e.data).find((d) => d?.type === "error");
  assert.deepEqual(error, { type: "error", error: { type: "api_error", message: said.gemini[0], error_type: "provider_overloaded" } });
});

test("errors before any endpoint is tried are typed too", async () => {
  const anon = await fetch(`${worker.base}/chat/completions`, { method: "POST", body: "{}" });
  assert.equal(anon.status, 401);
  assert.equal((await anon.json()).error.metadata.error_type, "authentication");
  const bad = await chat({ model: "test/ok", temperature: "hot" });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.metadata.error_type, "invalid_request");
  const msgs = await post("/messages", { model: "test/ok", messages: user });
  assert.equal(msgs.status, 400);
  const body = await msgs.json();
  assert.deepEqual([body.error.type, body.error.error_type], ["invalid_request_error", "invalid_request"]);
});
