// The served service tier in the Responses and Messages replies (README "Service
// tiers"): Responses' top-level `service_tier` as the chat reply says it, Messages'
// `usage.service_tier` in Anthropic's words (`standard` | `priority`).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startToolqMock } from "../support/mock_toolq.mjs";
import { testCatalog } from "../support/catalog.mjs";
import { exactBody } from "../support/money.mjs";
import { collect } from "../support/sse.mjs";

let mock, worker, KEY;

const ep = (upstream_model, extra = {}) => ({ provider: "tiersurf", upstream_model, pricing: { prompt: "0.000001", completion: "0.000002" }, ...extra });
const model = (id, endpoints) => ({ id, name: id, created: 1700000000, description: id, context_length: 8192,
  input_modalities: ["text"], output_modalities: ["text"], supported_parameters: ["max_tokens"], endpoints });

before(async () => {
  mock = await startToolqMock();
  const catalog = testCatalog();
  catalog.providers.push({ slug: "tiersurf", name: "TIERSURF", api: "openai", base_url: "http://tiersurf.invalid/v1" });
  catalog.models.push(
    model("tiersurf/tiered", [ep("tier"), ep("tier", { service_tier: "priority" }), ep("tier", { service_tier: "flex" })]),
    model("tiersurf/shed", [ep("shed"), ep("shed", { service_tier: "priority" })]),
  );
  worker = await startWorker({ catalog, bindings: { TIERSURF_BASE_URL: `${mock.url}/tiersurf/v1`, TIERSURF_API_KEY: "sk-toolq-tiersurf", CATALOG_CACHE_SECS: "0" } });
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
const responses = (body) => post("/responses", { input: "weather in Oslo?", ...body });
const messages = (body) => post("/messages", { max_tokens: 50, messages: [{ role: "user", content: "weather in Oslo?" }], ...body });

test("Responses: the response object says the tier that served", async () => {
  // The tier's endpoint named by its tag (`provider.only`), as the Responses request has it.
  for (const [only, said] of [["tiersurf/priority", "priority"], ["tiersurf/flex", "flex"], ["tiersurf", "default"]]) {
    const n = mock.requests.length;
    const r = await exactBody(await responses({ model: "tiersurf/tiered", provider: { only: [only] } }));
    assert.equal(r.object, "response");
    assert.equal(r.service_tier, said, JSON.stringify(r));
    assert.deepEqual(mock.requests.slice(n).map((q) => q.body.service_tier), [said === "default" ? undefined : said]);
  }
  // A priority request the provider shed to its default tier says so.
  const shed = await exactBody(await responses({ model: "tiersurf/shed", provider: { only: ["tiersurf/priority"] } }));
  assert.equal(shed.service_tier, "default");
});

test("Messages: usage.service_tier in Anthropic's words", async () => {
  for (const [only, said] of [["tiersurf/priority", "priority"], ["tiersurf/flex", "standard"], ["tiersurf", "standard"]]) {
    const m = await exactBody(await messages({ model: "tiersurf/tiered", provider: { only: [only] } }));
    assert.equal(m.type, "message");
    assert.equal(m.usage.service_tier, said, JSON.stringify(m));
  }
  assert.equal((await exactBody(await messages({ model: "tiersurf/shed", provider: { only: ["tiersurf/priority"] } }))).usage.service_tier, "standard");
});

test("streamed, the closing event says the tier; a Responses request's own service_tier routes it", async () => {
  // `service_tier: "flex"` on Responses (as on chat): flex endpoints only.
  const r = await responses({ model: "tiersurf/tiered", service_tier: "flex", stream: true });
  assert.equal(r.status, 200);
  const done = (await collect(r.body)).map((e) => e.data).find((d) => d?.type === "response.completed");
  assert.equal(done.response.service_tier, "flex", JSON.stringify(done));
  const m = await messages({ model: "tiersurf/tiered", provider: { only: ["tiersurf/priority"] }, stream: true });
  assert.equal(m.status, 200);
  const delta = (await collect(m.body)).map((e) => e.data).find((d) => d?.type === "message_delta");
  assert.equal(delta.usage.service_tier, "priority", JSON.stringify(delta));
  // A bad one is refused by name before anything is reserved.
  const bad = await responses({ model: "tiersurf/tiered", service_tier: "cheap" });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.message, "service_tier: must be one of auto, default, flex, priority, fast");
});
