// Server tools run by the gateway for any model: a mock model that really decides to
// call the web_search function (until it has read two searches, then it answers),
// against each provider family, with Exa, Brave and Tavily mocks; the loop's bounds;
// each inner model call billed as its own generation with the searches it ran.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings, FAMILIES } from "../support/catalog.mjs";
import { startSearchMock, searchBindings } from "../support/search_mock.mjs";
import { picos, exactBody } from "../support/money.mjs";

let mock, search, worker, KEY;
const PRICE = { prompt: "0.000001", completion: "0.000002", web_search: "0.01" };
const URLS = ["https://developers.cloudflare.com/workers/languages/rust/", "https://www.rust-lang.org/what/wasm"];

function catalog() {
  const c = testCatalog();
  const base = c.models.find((m) => m.id === "openai-mock/ok");
  for (const [api, slug] of FAMILIES) {
    for (const script of ["searcher", "searchforever"]) {
      c.models.push({ ...base, id: `srv/${api}-${script}`, name: `srv ${api} ${script}`,
        endpoints: [{ provider: slug, upstream_model: script, pricing: PRICE }] });
    }
  }
  return c;
}

before(async () => {
  mock = await startMockUpstream();
  search = await startSearchMock();
  worker = await startWorker({ catalog: catalog(), bindings: { ...mockBindings(mock.url), ...searchBindings(search.url), FREE_REQUESTS_PER_MINUTE: "1000" } });
  ({ key: KEY } = await worker.createAccount({ credits: 10 }));
});

after(async () => {
  await worker?.close();
  await mock?.close();
  await search?.close();
});

const post = (body, key = KEY) =>
  fetch(`${worker.base}/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
const ask = (model, tools, extra = {}) => post({ model, messages: [{ role: "user", content: "Does Rust run on Workers?" }], tools, ...extra });

test("a model of each family searches twice, then answers with url_citation annotations", async () => {
  for (const [api] of FAMILIES) {
    const before = search.requests.length;
    const r = await ask(`srv/${api}-searcher`, [{ type: "openrouter:web_search", parameters: { engine: "exa", max_results: 3 } }]);
    assert.equal(r.status, 200, api);
    const body = await r.json();
    const m = body.choices[0].message;
    const text = "Rust runs on Workers (https://developers.cloudflare.com/workers/languages/rust/), see https://www.rust-lang.org/what/wasm";
    assert.equal(m.content, text, api);
    assert.equal(m.tool_calls, undefined, api);
    assert.deepEqual(m.annotations.map((a) => [a.type, a.url_citation.url, a.url_citation.start_index, a.url_citation.end_index]), [
      ["url_citation", URLS[1], text.indexOf(URLS[1]), text.indexOf(URLS[1]) + URLS[1].length],
      ["url_citation", URLS[0], text.indexOf(URLS[0]), text.indexOf(URLS[0]) + URLS[0].length],
    ], api);
    assert.equal(m.annotations[0].url_citation.title, "WebAssembly - Rust Programming Language");
    assert.deepEqual(body.usage.server_tool_use, { web_search_requests: 2, web_fetch_requests: 0, mcp_tool_calls: 0 }, api);
    const asked = search.requests.slice(before);
    assert.deepEqual(asked.map((q) => [q.engine, q.body.query, q.body.numResults]), [["exa", "rust wasm", 3], ["exa", "workers rust", 3]], api);
    // The third model call answered: its generation is the reply's.
    assert.match(body.id, /^gen-.+-3$/, api);
    assert.equal(r.headers.get("x-generation-id"), body.id);
  }
});

test("each model call is its own generation, the searches billed with the call after them", async () => {
  const r = await ask("srv/openai-searcher", [{ type: "openrouter:web_search" }]);
  assert.equal(r.status, 200);
  const body = await exactBody(r);
  const id = body.id.replace(/-3$/, "");
  // Settlements land in the background.
  await new Promise((res) => setTimeout(res, 300));
  const gen = async (n) => (await exactBody(await fetch(`${worker.base}/generation?id=${id}-${n}`, { headers: { authorization: `Bearer ${KEY}` } }))).data;
  const [g1, g2, g3] = [await gen(1), await gen(2), await gen(3)];
  const tokens = (g) => picos(PRICE.prompt) * BigInt(g.tokens_prompt) + picos(PRICE.completion) * BigInt(g.tokens_completion);
  assert.equal(picos(g1.total_cost), tokens(g1));
  assert.equal(picos(g2.total_cost), tokens(g2) + picos(PRICE.web_search));
  assert.equal(picos(g3.total_cost), tokens(g3) + picos(PRICE.web_search));
  assert.equal(picos(body.usage.cost), tokens(g1) + tokens(g2) + tokens(g3) + 2n * picos(PRICE.web_search));
});

test("Brave and Tavily are asked in their own shapes with their keys", async () => {
  for (const engine of ["brave", "tavily"]) {
    const before = search.requests.length;
    const r = await ask("srv/openai-searcher", [{ type: "openrouter:web_search", parameters: { engine, max_results: 4, allowed_domains: ["rust-lang.org"] } }]);
    assert.equal(r.status, 200, engine);
    const body = await r.json();
    // Only the allowed domain's results were read, so only it is cited.
    assert.deepEqual(body.choices[0].message.annotations.map((a) => a.url_citation.url), [URLS[1]], engine);
    const asked = search.requests.slice(before);
    assert.equal(asked.length, 2);
    assert.ok(asked.every((q) => q.engine === engine));
    if (engine === "brave") assert.deepEqual([asked[0].q, asked[0].count], ["rust wasm (site:rust-lang.org)", 4]);
    else assert.deepEqual([asked[0].body.max_results, asked[0].body.include_domains], [4, ["rust-lang.org"]]);
  }
});

test("the loop stops at max_tool_calls and at stop_server_tools_when.max_cost, then the model answers", async () => {
  const r = await ask("srv/openai-searchforever", [{ type: "openrouter:web_search" }], { max_tool_calls: 3 });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.choices[0].message.content, "stopped after 3 searches");
  assert.equal(body.usage.server_tool_use.web_search_requests, 3);
  const c = await ask("srv/anthropic-searchforever", [{ type: "openrouter:web_search", parameters: { max_uses: 30 } }], { stop_server_tools_when: { max_cost: 0.0000001 } });
  const cb = await c.json();
  assert.equal(cb.choices[0].message.content, "stopped after 1 searches");
  // A tool's own max_uses bounds it too (the model reads why and answers).
  const u = await ask("srv/gemini-searchforever", [{ type: "openrouter:web_search", parameters: { max_uses: 2 } }], { max_tool_calls: 5 });
  const ub = await u.json();
  assert.equal(ub.usage.server_tool_use.web_search_requests, 2);
});

test("a streamed request gets the answer streamed with its annotations and server tool use", async () => {
  const r = await ask("srv/openai-searcher", [{ type: "openrouter:web_search" }], { stream: true });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /text\/event-stream/);
  const events = (await r.text()).split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
  assert.equal(events.at(-1), "[DONE]");
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("").includes(URLS[0]), true);
  assert.equal(chunks[0].choices[0].delta.annotations.length, 2);
  assert.equal(chunks.at(-1).usage.server_tool_use.web_search_requests, 2);
});

test(":online and the web plugin mean web search; bad parameters are 400s naming the field", async () => {
  const r = await post({ model: "srv/openai-searcher:online", messages: [{ role: "user", content: "x" }] });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).usage.server_tool_use.web_search_requests, 2);
  const p = await post({ model: "srv/openai-searcher", messages: [{ role: "user", content: "x" }], plugins: [{ id: "web", engine: "tavily" }] });
  assert.equal((await p.json()).usage.server_tool_use.web_search_requests, 2);
  const bad = await ask("srv/openai-searcher", [{ type: "openrouter:web_search", parameters: { max_results: 0 } }]);
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.message, "tools[0].parameters.max_results: must be between 1 and 25, not 0");
  const mcp = await ask("srv/openai-searcher", [{ type: "mcp", server_label: "d", server_url: "https://m.example/mcp", require_approval: "always" }]);
  assert.equal(mcp.status, 400);
  assert.match((await mcp.json()).error.message, /^tools\[0\]\.require_approval: only "never"/);
});

test("the datetime tool answers without I/O", async () => {
  // The searcher model calls web_search only; with datetime alone it answers at once.
  const r = await ask("srv/openai-searcher", [{ type: "openrouter:datetime", parameters: { timezone: "Europe/Paris" } }]);
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.choices[0].message.content, "no web_search offered");
  assert.equal(body.usage.server_tool_use, undefined);
});
