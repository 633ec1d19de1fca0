// The server-tool loop on the Messages surface: Anthropic's `web_search_20250305` tool
// run by the gateway for a model served by an OpenAI-compatible endpoint (a mock that
// searches twice, then answers), the loop's searches written back as Anthropic writes
// its own: `server_tool_use` and `web_search_tool_result` blocks before the text, the
// text's `web_search_result_location` citations, `usage.server_tool_use`; streamed as
// the same blocks' events. The reply's content sent back as the next turn's assistant
// message is read. A model only Anthropic serves gets the tool as it was sent.
//
// The requests are the official `anthropic` SDK's (`x-api-key`, `anthropic-version`,
// its JSON); the npm SDK itself is not a dependency of this repository, so the wire is
// written out here and read back as the SDK reads it (SSE `event:`/`data:` pairs). The
// official Python SDK runs the same exchanges in tests/compat/test_msgsurf_python.py.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { startSearchMock, searchBindings } from "../support/search_mock.mjs";
import { startWebPages, ARTICLE_TEXT } from "../support/web_pages.mjs";

let mock, search, pages, worker, KEY;
const PRICE = { prompt: "0.000001", completion: "0.000002", web_search: "0.01" };
const TEXT = "Rust runs on Workers (https://developers.cloudflare.com/workers/languages/rust/), see https://www.rust-lang.org/what/wasm";
// The Exa fixture's results, as every search gets them.
const RESULTS = [
  ["https://www.rust-lang.org/what/wasm", "WebAssembly - Rust Programming Language",
    "Rust and WebAssembly: surgical JS speedups, and code that runs on the edge."],
  ["https://developers.cloudflare.com/workers/languages/rust/", "Rust · Cloudflare Workers docs",
    "Cloudflare Workers provides support for Rust through workers-rs, compiled to WebAssembly."],
];
const b64 = (s) => Buffer.from(s, "utf8").toString("base64url");

function catalog() {
  const c = testCatalog();
  const base = c.models.find((m) => m.id === "openai-mock/ok");
  c.models.push({ ...base, id: "msgsurf/searcher", name: "msgsurf searcher",
    endpoints: [{ provider: "mockopenai", upstream_model: "searcher", pricing: PRICE }] });
  c.models.push({ ...base, id: "msgsurf/fetcher", name: "msgsurf fetcher",
    endpoints: [{ provider: "mockai", upstream_model: "servercall", pricing: PRICE }] });
  c.models.push({ ...base, id: "msgsurf/claude", name: "msgsurf claude",
    endpoints: [{ provider: "mockanthropic", upstream_model: "ok", pricing: PRICE }] });
  return c;
}

before(async () => {
  mock = await startMockUpstream();
  search = await startSearchMock();
  pages = await startWebPages();
  worker = await startWorker({ catalog: catalog(), bindings: { ...mockBindings(mock.url), ...searchBindings(search.url),
    FREE_REQUESTS_PER_MINUTE: "1000", MEDIA_FETCH_ALLOW_HOSTS: pages.host, MEDIA_FETCH_TIMEOUT_MS: "3000" } });
  ({ key: KEY } = await worker.createAccount({ credits: 10 }));
});

after(async () => {
  await worker?.close();
  await mock?.close();
  await search?.close();
  await pages?.close();
});

const TOOL = { type: "web_search_20250305", name: "web_search", max_uses: 5, allowed_domains: ["rust-lang.org", "cloudflare.com"],
  user_location: { type: "approximate", city: "London", country: "GB", timezone: "Europe/London" } };

const post = (body) => fetch(`${worker.base}/messages`, {
  method: "POST",
  headers: { "x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
  body: JSON.stringify(body),
});
const ask = (extra = {}) => post({ model: "msgsurf/searcher", max_tokens: 1024,
  messages: [{ role: "user", content: "Does Rust run on Workers?" }], tools: [TOOL], ...extra });

/// The content of a message whose id is `msg_<gen>` after the two searches.
function expectedContent(gen) {
  const blocks = [];
  for (const [n, query] of ["rust wasm", "workers rust"].entries()) {
    const id = `srvtoolu_${gen}_${n}`;
    blocks.push({ type: "server_tool_use", id, name: "web_search", input: { query } });
    blocks.push({ type: "web_search_tool_result", tool_use_id: id, content: RESULTS.map(([url, title, text]) => (
      { type: "web_search_result", url, title, encrypted_content: b64(text), page_age: null })) });
  }
  blocks.push({ type: "text", text: TEXT, citations: RESULTS.map(([url, title, text]) => (
    { type: "web_search_result_location", url, title, encrypted_index: b64(url), cited_text: text })) });
  return blocks;
}

function sse(text) {
  return text.split("\n\n").filter((e) => e.trim()).map((e) => {
    const lines = e.split("\n");
    const name = lines.find((l) => l.startsWith("event: "))?.slice(7);
    const data = JSON.parse(lines.find((l) => l.startsWith("data: ")).slice(6));
    return [name, data];
  });
}

/// The message an Anthropic SDK's stream accumulates from its events.
function accumulate(events) {
  let message;
  for (const [, e] of events) {
    if (e.type === "message_start") message = { ...e.message, content: [] };
    else if (e.type === "content_block_start") message.content[e.index] = { ...e.content_block, _json: "" };
    else if (e.type === "content_block_delta") {
      const b = message.content[e.index];
      if (e.delta.type === "text_delta") b.text += e.delta.text;
      else if (e.delta.type === "input_json_delta") b._json += e.delta.partial_json;
      else if (e.delta.type === "citations_delta") (b.citations ??= []).push(e.delta.citation);
    } else if (e.type === "content_block_stop") {
      const b = message.content[e.index];
      if (b._json) b.input = JSON.parse(b._json);
      delete b._json;
    } else if (e.type === "message_delta") {
      message.stop_reason = e.delta.stop_reason;
      message.usage = { ...message.usage, ...e.usage };
    }
  }
  return message;
}

test("web_search on a translated route: server_tool_use and result blocks, then the cited text", async () => {
  const before = search.requests.length;
  const r = await ask();
  assert.equal(r.status, 200, await r.clone().text());
  const m = await r.json();
  const gen = m.id.replace(/^msg_/, "");
  assert.match(gen, /^gen-.+-3$/);
  assert.deepEqual(m.content, expectedContent(gen));
  assert.equal(m.stop_reason, "end_turn");
  assert.deepEqual(m.usage.server_tool_use, { web_search_requests: 2, web_fetch_requests: 0 });
  // The gateway ran the searches, with the tool's domains.
  const asked = search.requests.slice(before);
  assert.deepEqual(asked.map((q) => [q.engine, q.body.query, q.body.includeDomains]), [
    ["exa", "rust wasm", ["rust-lang.org", "cloudflare.com"]],
    ["exa", "workers rust", ["rust-lang.org", "cloudflare.com"]],
  ]);
  // The model was offered the gateway's function, not Anthropic's tool.
  const upstream = mock.last("/openai/").body;
  assert.deepEqual(upstream.tools.map((t) => t.function.name), ["web_search"]);
});

test("streamed: the same blocks as events in Anthropic's order, the input as input_json_delta", async () => {
  const r = await ask({ stream: true });
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /text\/event-stream/);
  const events = sse(await r.text());
  for (const [name, data] of events) assert.equal(data.type, name);
  const toolEvents = ["content_block_start", "content_block_delta", "content_block_stop"];
  const resultEvents = ["content_block_start", "content_block_stop"];
  assert.deepEqual(events.map(([n]) => n), [
    "message_start", ...toolEvents, ...resultEvents, ...toolEvents, ...resultEvents,
    "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop",
    "message_delta", "message_stop",
  ]);
  assert.deepEqual(events[1][1].content_block, { type: "server_tool_use", id: events[1][1].content_block.id, name: "web_search", input: {} });
  assert.deepEqual(events[2][1].delta, { type: "input_json_delta", partial_json: '{"query":"rust wasm"}' });
  const m = accumulate(events);
  const gen = m.id.replace(/^msg_/, "");
  assert.deepEqual(m.content, expectedContent(gen));
  assert.equal(m.stop_reason, "end_turn");
  assert.deepEqual(m.usage.server_tool_use, { web_search_requests: 2, web_fetch_requests: 0 });
});

test("the reply's blocks sent back in the next turn are read, never a 400", async () => {
  const first = await (await ask()).json();
  const messages = [
    { role: "user", content: "Does Rust run on Workers?" },
    { role: "assistant", content: first.content },
    { role: "user", content: "And on Pages?" },
  ];
  const r = await ask({ messages });
  assert.equal(r.status, 200, await r.clone().text());
  const m = await r.json();
  assert.deepEqual(m.content.map((b) => b.type), ["server_tool_use", "web_search_tool_result", "server_tool_use", "web_search_tool_result", "text"]);
  // The model read the earlier results as text (the page text this gateway sealed).
  const sent = mock.requests.filter((q) => q.url.includes("/openai/")).at(-3).body.messages;
  assert.deepEqual(sent.map((x) => x.role), ["user", "assistant", "user"]);
  const parts = sent[1].content.map((p) => p.text);
  assert.equal(parts.length, 3);
  assert.equal(parts[0], `Web search results:\n- ${RESULTS[0][1]} (${RESULTS[0][0]}): ${RESULTS[0][2]}\n- ${RESULTS[1][1]} (${RESULTS[1][0]}): ${RESULTS[1][2]}`);
  assert.equal(parts[2], TEXT);
});

test("allowed_domains with blocked_domains is a 400 naming the field, in Anthropic's shape", async () => {
  const seen = mock.requests.length;
  const r = await ask({ tools: [{ ...TOOL, blocked_domains: ["example.com"] }] });
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.type, "error");
  assert.equal(body.error.type, "invalid_request_error");
  assert.equal(body.error.message, "tools[0].blocked_domains: cannot be given with allowed_domains");
  assert.equal(mock.requests.length, seen, "refused before any upstream call");
});

test("a model only Anthropic serves gets the tool as it was sent (Anthropic runs it)", async () => {
  const searches = search.requests.length;
  const r = await post({ model: "msgsurf/claude", max_tokens: 100, messages: [{ role: "user", content: "news?" }], tools: [TOOL] });
  assert.equal(r.status, 200, await r.clone().text());
  const m = await r.json();
  assert.deepEqual(m.usage.server_tool_use, { web_search_requests: 2 });
  assert.deepEqual(mock.last("/anthropic/").body.tools, [TOOL]);
  assert.equal(search.requests.length, searches, "the gateway ran no search");
});

test("web_fetch on a translated route: server_tool_use and web_fetch_tool_result blocks, then the text", async () => {
  const url = `${pages.url}/article`;
  const r = await post({ model: "msgsurf/fetcher", max_tokens: 100,
    messages: [{ role: "user", content: `CALL web_fetch {"url":"${url}"}` }],
    tools: [{ type: "web_fetch_20250910", name: "web_fetch", max_uses: 2, citations: { enabled: true } }] });
  assert.equal(r.status, 200, await r.clone().text());
  const m = await r.json();
  const gen = m.id.replace(/^msg_/, "");
  const [use, result, text] = m.content;
  assert.equal(m.content.length, 3);
  assert.deepEqual(use, { type: "server_tool_use", id: `srvtoolu_${gen}_0`, name: "web_fetch", input: { url } });
  assert.match(result.content.retrieved_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(result, { type: "web_fetch_tool_result", tool_use_id: `srvtoolu_${gen}_0`, content: {
    type: "web_fetch_result", url, retrieved_at: result.content.retrieved_at,
    content: { type: "document", title: "Tide Tables & Moons", source: { type: "text", media_type: "text/plain", data: ARTICLE_TEXT(pages.url) } } } });
  assert.equal(text.type, "text");
  assert.match(text.text, /^The tool said: \{"url":/);
  assert.equal(text.citations, undefined);
  assert.deepEqual(m.usage.server_tool_use, { web_search_requests: 0, web_fetch_requests: 1 });
});
