// The server-tool loop's reserve: each model call's hold adds, at the endpoint's
// pricing.web_search, the searches the loop may still run, so an account that cannot
// pay for a web_search tool's max_uses is refused (402) before any model call or
// search, and one that can is billed exactly what ran. And native search: an endpoint
// that searches itself (Anthropic, Gemini mocks as strict as the real tools) gets its
// provider's tool instead of the gateway's engine, its searches billed from its reply.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream, NATIVE_ANSWER, NATIVE_URL } from "../support/mock_upstream.mjs";
import { collect } from "../support/sse.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { startSearchMock, searchBindings } from "../support/search_mock.mjs";
import { picos, exactBody } from "../support/money.mjs";

let mock, search, worker, KEY;
const PRICE = { prompt: "0.000001", completion: "0.000002", web_search: "0.1" };
// Anthropic's $10 and Gemini 3's $14 per 1,000 searches.
const NATIVE_PRICE = {
  anthropic: { prompt: "0.000003", completion: "0.000015", web_search: "0.01" },
  gemini: { prompt: "0.000002", completion: "0.000012", web_search: "0.014" },
};

function catalog() {
  const c = testCatalog();
  const base = c.models.find((m) => m.id === "openai-mock/ok");
  const slug = base.endpoints[0].provider;
  c.models.push({ ...base, id: "ns/searcher", name: "ns searcher", endpoints: [{ provider: slug, upstream_model: "searcher", pricing: PRICE }] });
  for (const [family, provider] of [["anthropic", "mockanthropic"], ["gemini", "mockgemini"]]) {
    c.models.push({ ...base, id: `ns/native-${family}`, name: `ns native ${family}`,
      endpoints: [{ provider, upstream_model: "nativesearch", pricing: NATIVE_PRICE[family], native_web_search: true }] });
  }
  return c;
}

before(async () => {
  mock = await startMockUpstream();
  search = await startSearchMock();
  worker = await startWorker({ catalog: catalog(), bindings: { ...mockBindings(mock.url), ...searchBindings(search.url), FREE_REQUESTS_PER_MINUTE: "1000" } });
  // $1: two searches at $0.10 and the calls' tokens fit, thirty searches do not.
  ({ key: KEY } = await worker.createAccount({ credits: 1 }));
});

after(async () => {
  await worker?.close();
  await mock?.close();
  await search?.close();
});

const ask = (maxUses, extra = {}) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: "ns/searcher", max_tokens: 50, messages: [{ role: "user", content: "Does Rust run on Workers?" }], tools: [{ type: "openrouter:web_search", parameters: { engine: "exa", max_uses: maxUses } }], ...extra }),
  });

test("a balance that cannot cover the tool's max_uses searches is refused 402 before anything runs", async () => {
  const searches = search.requests.length;
  const r = await ask(30);
  assert.equal(r.status, 402);
  const body = await r.json();
  assert.equal(body.error.code, 402);
  assert.equal(search.requests.length, searches, "no search ran");
});

test("a balance that covers them runs the loop, each search billed at pricing.web_search to the picodollar", async () => {
  const r = await ask(2);
  assert.equal(r.status, 200);
  const body = await exactBody(r);
  assert.deepEqual(body.usage.server_tool_use, { web_search_requests: "2", web_fetch_requests: "0", mcp_tool_calls: "0" });
  await new Promise((res) => setTimeout(res, 300));
  const id = body.id.replace(/-3$/, "");
  const gen = async (n) => (await exactBody(await fetch(`${worker.base}/generation?id=${id}-${n}`, { headers: { authorization: `Bearer ${KEY}` } }))).data;
  const gs = [await gen(1), await gen(2), await gen(3)];
  const tokens = (g) => picos(PRICE.prompt) * BigInt(g.tokens_prompt) + picos(PRICE.completion) * BigInt(g.tokens_completion);
  assert.equal(picos(gs[0].total_cost), tokens(gs[0]));
  assert.equal(picos(gs[1].total_cost), tokens(gs[1]) + picos(PRICE.web_search));
  assert.equal(picos(gs[2].total_cost), tokens(gs[2]) + picos(PRICE.web_search));
  assert.equal(picos(body.usage.cost), gs.reduce((a, g) => a + tokens(g), 0n) + 2n * picos(PRICE.web_search));
});

test("provider.max_price.web_search below the endpoint's search price leaves it out (404 naming the field)", async () => {
  const searches = search.requests.length;
  const r = await ask(2, { provider: { max_price: { web_search: 0.05 } } });
  assert.equal(r.status, 404);
  const body = await r.json();
  assert.deepEqual(body.error.availability.constraint, { field: "provider.max_price", detail: "provider.max_price leaves out every endpoint of ns/searcher" });
  assert.deepEqual(body.error.availability.excluded_by, ["max_price"]);
  assert.equal(search.requests.length, searches, "no search ran");
  // At the price itself it is served.
  assert.equal((await ask(1, { provider: { max_price: { web_search: 0.1 } } })).status, 200);
});

const chat = (body) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ max_tokens: 50, messages: [{ role: "user", content: "Who won Euro 2024?" }], ...body }),
  });
const generation = async (id) => {
  await new Promise((res) => setTimeout(res, 300));
  return (await exactBody(await fetch(`${worker.base}/generation?id=${id}`, { headers: { authorization: `Bearer ${KEY}` } }))).data;
};

test("an endpoint with native search gets its provider's tool, billed per search from its reply", async () => {
  for (const family of ["anthropic", "gemini"]) {
    const searches = search.requests.length;
    const seen = mock.events("nativesearch").length;
    const r = await chat({ model: `ns/native-${family}`, tools: [{ type: "openrouter:web_search", parameters: { max_uses: 3 } }] });
    assert.equal(r.status, 200, family);
    const body = await exactBody(r);
    const m = body.choices[0].message;
    assert.equal(m.content, NATIVE_ANSWER, family);
    assert.equal(m.tool_calls, undefined, family);
    assert.deepEqual(m.annotations.map((a) => [a.type, a.url_citation.url]), [["url_citation", NATIVE_URL]], family);
    assert.deepEqual(body.usage.server_tool_use, { web_search_requests: "2", web_fetch_requests: "0", mcp_tool_calls: "0" }, family);
    assert.equal(search.requests.length, searches, `${family}: no gateway search ran`);
    // What the provider was sent: its own tool, bounded by max_uses, and not the
    // gateway's web_search function beside it.
    const sent = mock.events("nativesearch").slice(seen).map((e) => e.event.tools);
    assert.equal(sent.length, 1, family);
    assert.deepEqual(sent[0], family === "anthropic" ? [{ type: "web_search_20250305", name: "web_search", max_uses: 3 }] : [{ googleSearch: {} }], family);
    // The generation: its tokens and both searches at the endpoint's price, to the picodollar.
    const p = NATIVE_PRICE[family];
    const g = await generation(body.id);
    const tokens = picos(p.prompt) * BigInt(g.tokens_prompt) + picos(p.completion) * BigInt(g.tokens_completion);
    assert.equal(picos(g.total_cost), tokens + 2n * picos(p.web_search), family);
    assert.equal(picos(body.usage.cost), picos(g.total_cost), family);
  }
});

test("a streamed request gets the native answer, its annotations and search count", async () => {
  const r = await chat({ model: "ns/native-anthropic", stream: true, tools: [{ type: "openrouter:web_search" }] });
  assert.equal(r.status, 200);
  const chunks = (await collect(r.body)).filter((e) => e.data).map((e) => e.data);
  const text = chunks.map((c) => c.choices?.[0]?.delta?.content ?? "").join("");
  assert.equal(text, NATIVE_ANSWER);
  const annotations = chunks.flatMap((c) => c.choices?.[0]?.delta?.annotations ?? []);
  assert.deepEqual(annotations.map((a) => a.url_citation.url), [NATIVE_URL]);
  const usage = chunks.findLast((c) => c.usage)?.usage;
  assert.equal(usage.server_tool_use.web_search_requests, 2);
});

test("engine exa keeps the gateway's engine on an endpoint with native search", async () => {
  const r = await chat({ model: "ns/native-anthropic", tools: [{ type: "openrouter:web_search", parameters: { engine: "exa" } }] });
  assert.equal(r.status, 200);
  const body = await r.json();
  // The mock model saw the gateway's web_search function, not Anthropic's tool.
  assert.match(body.choices[0].message.content, /^no native search offered: .*"name":"web_search"/);
  assert.doesNotMatch(body.choices[0].message.content, /web_search_20250305/);
});

test("under zdr a web search goes only to an endpoint that searches itself", async () => {
  const searches = search.requests.length;
  const refused = await chat({ model: "ns/searcher", provider: { zdr: true }, tools: [{ type: "openrouter:web_search" }] });
  assert.equal(refused.status, 404);
  const e = (await refused.json()).error;
  assert.match(e.message, /provider\.zdr: true/);
  assert.deepEqual(e.availability.excluded_by, ["data_policy:zdr"]);
  assert.equal(search.requests.length, searches, "no search ran");
  const served = await chat({ model: "ns/native-gemini", provider: { zdr: true }, tools: [{ type: "openrouter:web_search" }] });
  assert.equal(served.status, 200);
  assert.equal((await served.json()).choices[0].message.content, NATIVE_ANSWER);
});

test("on Responses an endpoint's own searches are web_search_call items with the queries it ran", async () => {
  const r = await fetch(`${worker.base}/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: "ns/native-anthropic", input: "Who won Euro 2024?", tools: [{ type: "web_search" }] }),
  });
  assert.equal(r.status, 200);
  const body = await r.json();
  const id = body.id;
  assert.deepEqual(body.output.filter((o) => o.type === "web_search_call"), [
    { type: "web_search_call", id: `ws_${id}_0`, status: "completed", action: { type: "search", query: "euro 2024 0" } },
    { type: "web_search_call", id: `ws_${id}_1`, status: "completed", action: { type: "search", query: "euro 2024 1" } },
  ]);
  const message = body.output.find((o) => o.type === "message");
  assert.equal(message.content[0].text, NATIVE_ANSWER);
  assert.deepEqual(message.content[0].annotations.map((a) => [a.type, a.url]), [["url_citation", NATIVE_URL]]);
  assert.doesNotMatch(JSON.stringify(body), /modelmux_web_search_query/);
});
