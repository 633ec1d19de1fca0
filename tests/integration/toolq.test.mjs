// Tool-call quality and service tiers through the running worker (issues 25 and 26):
// an endpoint whose tool calls fail half the time moves last once its calls are
// counted, `:exacto` orders by the counts, streamed calls get distinct indexes, and a
// service tier is sent upstream, reported back and billed at its own price.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startToolqMock } from "../support/mock_toolq.mjs";
import { testCatalog } from "../support/catalog.mjs";
import { eventually } from "../support/eventually.mjs";
import { exactBody, picos, priced, sum } from "../support/money.mjs";
import { collect } from "../support/sse.mjs";

let mock, worker, KEY;

const TOOLS = [{ type: "function", function: { name: "get_weather", parameters: {
  type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false } } }];
const PROVIDERS = ["toolqa", "toolqb", "toolqc", "toolqtier"];
const ep = (provider, upstream_model, prompt, completion, extra = {}) => ({ provider, upstream_model, pricing: { prompt, completion }, ...extra });
const model = (id, endpoints) => ({ id, name: id, created: 1700000000, description: id, context_length: 8192,
  input_modalities: ["text"], output_modalities: ["text"], supported_parameters: ["max_tokens", "tools", "tool_choice"], endpoints });
// Default, priority and flex prices of the tiered model (USD a token).
const TIER = { default: ["0.000001", "0.000002"], priority: ["0.000002", "0.000004"], flex: ["0.0000005", "0.000001"] };

before(async () => {
  mock = await startToolqMock();
  const catalog = testCatalog();
  catalog.providers.push(...PROVIDERS.map((slug) => ({ slug, name: slug.toUpperCase(), api: "openai", base_url: "http://toolq.invalid/v1" })));
  catalog.models.push(
    // The cheapest endpoint calls tools badly half the time.
    model("toolq/mixed", [ep("toolqa", "halfbad", "0.0000001", "0.0000001"), ep("toolqb", "good", "0.000001", "0.000001"), ep("toolqc", "good", "0.000002", "0.000002")]),
    model("toolq/dup", [ep("toolqa", "dupindex", "0.000001", "0.000001")]),
    model("toolq/tiered", [ep("toolqtier", "tier", ...TIER.default), ep("toolqtier", "tier", ...TIER.priority, { service_tier: "priority" }),
      ep("toolqtier", "tier", ...TIER.flex, { service_tier: "flex" })]),
    model("toolq/shed", [ep("toolqtier", "shed", ...TIER.default), ep("toolqtier", "shed", ...TIER.priority, { service_tier: "priority" })]),
  );
  const bindings = Object.fromEntries(PROVIDERS.flatMap((p) => [[`${p.toUpperCase()}_BASE_URL`, `${mock.url}/${p}/v1`], [`${p.toUpperCase()}_API_KEY`, `sk-toolq-${p}`]]));
  worker = await startWorker({ catalog, bindings: { ...bindings, HEALTH_CACHE_SECS: "0", HEALTH_FLUSH_MS: "0", CATALOG_CACHE_SECS: "0" } });
  KEY = (await worker.createAccount()).key;
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

const chat = (body) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ messages: [{ role: "user", content: "weather in Oslo?" }], ...body }),
  });
const endpoints = async (id) => (await (await fetch(`${worker.base}/models/${id}/endpoints`)).json()).data.endpoints;
const served = (n) => mock.requests.slice(n).map((r) => r.url.split("/")[1]);

test("an endpoint whose tool calls fail half the time goes last after traffic; :exacto and sort exacto order by the counts", async () => {
  // Traffic to each endpoint: toolqa's calls fail on every other reply.
  for (const [provider, n] of [["toolqa", 8], ["toolqb", 6], ["toolqc", 6]]) {
    for (let i = 0; i < n; i++) {
      const r = await chat({ model: "toolq/mixed", tools: TOOLS, stream: i % 2 === 1, provider: { only: [provider] } });
      assert.equal(r.status, 200);
      await r.text();
    }
  }
  const rates = await eventually(async () => {
    const eps = await endpoints("toolq/mixed");
    const rate = Object.fromEntries(eps.map((e) => [e.tag, e.tool_call_error_rate_last_1d]));
    return rate.toolqa === 50 && rate.toolqb === 0 && rate.toolqc === 0 && rate;
  }, "the tool call error rates in /endpoints");
  assert.deepEqual(rates, { toolqa: 50, toolqb: 0, toolqc: 0 });
  // Far worse than the median (100 %): never first for a request with tools, though
  // it is by far the cheapest; without tools the price-weighted order still picks it.
  const n = mock.requests.length;
  for (let i = 0; i < 12; i++) {
    const r = await chat({ model: "toolq/mixed", tools: TOOLS });
    assert.equal(r.status, 200);
    await r.text();
  }
  assert.ok(!served(n).includes("toolqa"), served(n).join());
  const m = mock.requests.length;
  for (let i = 0; i < 12; i++) await (await chat({ model: "toolq/mixed" })).text();
  assert.ok(served(m).includes("toolqa"), served(m).join());
  // :exacto: the best lower bound first (toolqb and toolqc tie at 6 of 6; the cheaper).
  const k = mock.requests.length;
  const r = await chat({ model: "toolq/mixed:exacto", tools: TOOLS });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.model, "toolq/mixed:exacto");
  assert.equal(body.provider, "TOOLQB");
  assert.deepEqual(served(k), ["toolqb"]);
  // The same by the sort, and the failing endpoint last in a plan that falls back.
  const order = await chat({ model: "toolq/mixed", provider: { sort: "exacto", only: ["toolqa", "toolqc"] } });
  assert.equal((await order.json()).provider, "TOOLQC");
});

test("streamed tool calls the upstream numbers alike come out with distinct indexes", async () => {
  const r = await chat({ model: "toolq/dup", tools: TOOLS, stream: true });
  assert.equal(r.status, 200);
  const chunks = (await collect(r.body)).filter((e) => e.data).map((e) => e.data);
  const pieces = chunks.flatMap((c) => c.choices?.[0]?.delta?.tool_calls ?? []);
  assert.deepEqual(pieces.map((p) => [p.index, p.id ?? null, p.function?.arguments ?? null]), [
    [0, "call_a", ""], [0, null, '{"city":"Oslo"}'], [1, "call_b", ""], [1, null, '{"city":"Rome"}'],
  ]);
});

/** The exact cost of a tier's reply (10 prompt and 20 completion tokens). */
const cost = ([prompt, completion]) => sum([priced(10, prompt), priced(20, completion)]);

async function generation(id) {
  return eventually(async () => {
    const g = await fetch(`${worker.base}/generation?id=${id}`, { headers: { authorization: `Bearer ${KEY}` } });
    return g.status === 200 && (await exactBody(g)).data;
  }, `the generation ${id}`);
}

test("service_tier priority: sent upstream, reported back, billed at the priority price, streamed or not", async () => {
  for (const stream of [false, true]) {
    const n = mock.requests.length;
    const r = await chat({ model: "toolq/tiered", service_tier: "priority", stream });
    assert.equal(r.status, 200);
    const id = r.headers.get("x-generation-id");
    let reply;
    if (stream) {
      const chunks = (await collect(r.body)).filter((e) => e.data).map((e) => e.data);
      reply = chunks.at(-1);
    } else {
      reply = await exactBody(r);
    }
    assert.equal(reply.service_tier, "priority");
    assert.equal(picos(reply.usage.cost), cost(TIER.priority), JSON.stringify(reply.usage));
    assert.deepEqual(mock.requests.slice(n).map((q) => q.body.service_tier), ["priority"]);
    const g = await generation(id);
    assert.equal(picos(g.total_cost), cost(TIER.priority));
  }
  // Without a tier the default endpoint serves, and nothing is sent of a tier.
  const n = mock.requests.length;
  const plain = await exactBody(await chat({ model: "toolq/tiered" }));
  assert.equal(plain.service_tier, "default");
  assert.equal(picos(plain.usage.cost), cost(TIER.default));
  assert.equal(mock.requests.at(n).body.service_tier, undefined);
});

test("a priority request the provider sheds to its default tier is billed at the default price", async () => {
  const r = await chat({ model: "toolq/shed", service_tier: "priority" });
  const reply = await exactBody(r);
  assert.equal(reply.service_tier, "default");
  assert.equal(picos(reply.usage.cost), cost(TIER.default));
  assert.equal(picos((await generation(r.headers.get("x-generation-id"))).total_cost), cost(TIER.default));
});

test(":floor chooses the flex endpoint; service_tier flex too; an unknown tier is a 400 naming the field", async () => {
  for (const body of [{ model: "toolq/tiered:floor" }, { model: "toolq/tiered", service_tier: "flex" }]) {
    const n = mock.requests.length;
    const reply = await exactBody(await chat(body));
    assert.equal(reply.service_tier, "flex");
    assert.equal(picos(reply.usage.cost), cost(TIER.flex));
    assert.deepEqual(mock.requests.slice(n).map((q) => q.body.service_tier), ["flex"]);
  }
  // The tier endpoints are listed with their tags and prices.
  const eps = await endpoints("toolq/tiered");
  assert.deepEqual(eps.map((e) => [e.tag, e.service_tier]), [["toolqtier", null], ["toolqtier/priority", "priority"], ["toolqtier/flex", "flex"]]);
  const n = mock.requests.length;
  const bad = await chat({ model: "toolq/tiered", service_tier: "turbo" });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /service_tier/);
  assert.equal(mock.requests.length, n);
});
