// The server-tool loop's reserve: each model call's hold adds, at the endpoint's
// pricing.web_search, the searches the loop may still run, so an account that cannot
// pay for a web_search tool's max_uses is refused (402) before any model call or
// search, and one that can is billed exactly what ran.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { startSearchMock, searchBindings } from "../support/search_mock.mjs";
import { picos, exactBody } from "../support/money.mjs";

let mock, search, worker, KEY;
const PRICE = { prompt: "0.000001", completion: "0.000002", web_search: "0.1" };

function catalog() {
  const c = testCatalog();
  const base = c.models.find((m) => m.id === "openai-mock/ok");
  const slug = base.endpoints[0].provider;
  c.models.push({ ...base, id: "ns/searcher", name: "ns searcher", endpoints: [{ provider: slug, upstream_model: "searcher", pricing: PRICE }] });
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
