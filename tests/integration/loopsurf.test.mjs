// The server-tool loop on the Responses surface, through the official `openai` SDK:
// OpenAI's `web_search` tool run by the gateway for a model with no search of its own
// (a mock that searches twice, then answers), the loop's searches written back as
// `web_search_call` output items (and their stream events) before the message, whose
// `output_text` carries the `url_citation` annotations.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { startSearchMock, searchBindings } from "../support/search_mock.mjs";
import { startMcpServer, MCP_TOOLS } from "../support/mcp_mock.mjs";

let mock, search, mcp, worker, client;
const MCP_AUTH = "Bearer mcp-secret-0123456789";
const PRICE = { prompt: "0.000001", completion: "0.000002", web_search: "0.01" };
const TEXT = "Rust runs on Workers (https://developers.cloudflare.com/workers/languages/rust/), see https://www.rust-lang.org/what/wasm";
const CITED = [
  ["https://www.rust-lang.org/what/wasm", "WebAssembly - Rust Programming Language"],
  ["https://developers.cloudflare.com/workers/languages/rust/", "Rust · Cloudflare Workers docs"],
];

function catalog() {
  const c = testCatalog();
  const base = c.models.find((m) => m.id === "openai-mock/ok");
  c.models.push({ ...base, id: "loopsurf/searcher", name: "loopsurf searcher",
    endpoints: [{ provider: "mockopenai", upstream_model: "searcher", pricing: PRICE }] });
  c.models.push({ ...base, id: "loopsurf/servercall", name: "loopsurf servercall",
    endpoints: [{ provider: "mockai", upstream_model: "servercall", pricing: PRICE }] });
  return c;
}

before(async () => {
  mock = await startMockUpstream();
  search = await startSearchMock();
  mcp = await startMcpServer({ auth: MCP_AUTH });
  worker = await startWorker({ catalog: catalog(), bindings: {
    ...mockBindings(mock.url), ...searchBindings(search.url), FREE_REQUESTS_PER_MINUTE: "1000",
    // The MCP mock is on 127.0.0.1: listed, as an operator lists its own.
    MEDIA_FETCH_ALLOW_HOSTS: mcp.host,
  } });
  const { key } = await worker.createAccount({ credits: 10 });
  client = new OpenAI({ baseURL: worker.base, apiKey: key, maxRetries: 0 });
});

after(async () => {
  await worker?.close();
  await mock?.close();
  await search?.close();
  await mcp?.close();
});

/// The output a response with id `id` has after the two searches.
function expectedOutput(id) {
  return [
    { type: "web_search_call", id: `ws_${id}_0`, status: "completed", action: { type: "search", query: "rust wasm" } },
    { type: "web_search_call", id: `ws_${id}_1`, status: "completed", action: { type: "search", query: "workers rust" } },
    { type: "message", id: `msg_${id}`, status: "completed", role: "assistant", content: [{
      type: "output_text", text: TEXT,
      annotations: CITED.map(([url, title]) => ({ type: "url_citation", url, title, start_index: TEXT.indexOf(url), end_index: TEXT.indexOf(url) + url.length })),
    }] },
  ];
}

const ask = (extra = {}) => client.responses.create({
  model: "loopsurf/searcher", input: "Does Rust run on Workers?",
  tools: [{ type: "web_search", search_context_size: "low", filters: { allowed_domains: ["rust-lang.org", "cloudflare.com"] } }],
  ...extra,
});

test("responses.create with web_search: web_search_call items, then the annotated message", async () => {
  const before = search.requests.length;
  const r = await ask();
  assert.equal(r.status, "completed");
  assert.match(r.id, /^gen-.+-3$/);
  assert.deepEqual(r.output, expectedOutput(r.id));
  assert.equal(r.output_text, TEXT);
  // The gateway ran the searches (Exa, the deployment's engine), with the tool's domains.
  const asked = search.requests.slice(before);
  assert.deepEqual(asked.map((q) => [q.engine, q.body.query, q.body.includeDomains]), [
    ["exa", "rust wasm", ["rust-lang.org", "cloudflare.com"]],
    ["exa", "workers rust", ["rust-lang.org", "cloudflare.com"]],
  ]);
});

test("streamed: the web_search_call events come before the text, the annotations with it", async () => {
  const stream = await ask({ stream: true });
  const events = [];
  for await (const e of stream) events.push(e);
  const kinds = events.map((e) => e.type);
  const searchEvents = ["response.output_item.added", "response.web_search_call.in_progress", "response.web_search_call.searching", "response.web_search_call.completed", "response.output_item.done"];
  assert.deepEqual(kinds, [
    "response.created", "response.in_progress", ...searchEvents, ...searchEvents,
    "response.output_item.added", "response.content_part.added", "response.output_text.delta",
    "response.output_text.annotation.added", "response.output_text.annotation.added",
    "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
  ]);
  const done = events.at(-1).response;
  const want = expectedOutput(done.id);
  assert.deepEqual(done.output, want);
  assert.deepEqual([events[3].item_id, events[3].output_index], [want[0].id, 0]);
  assert.deepEqual(events[2].item, { ...want[0], status: "in_progress" });
  assert.deepEqual(events.filter((e) => e.type === "response.output_text.annotation.added").map((e) => [e.annotation_index, e.annotation]),
    want[2].content[0].annotations.map((a, i) => [i, a]));
});

test("a web_search field this gateway does not know is a 400 naming it", async () => {
  await assert.rejects(
    client.responses.create({ model: "loopsurf/searcher", input: "x", tools: [{ type: "web_search", filters: { blocked_domains: ["x.com"] } }] }),
    (e) => e.status === 400 && e.error?.message === "tools[0].filters.blocked_domains: is not a parameter of this tool",
  );
});

test("the reply's output sent back as the next turn's input (web_search_call items included) is read", async () => {
  const first = await ask();
  const input = [{ role: "user", content: "Does Rust run on Workers?" }, ...first.output, { role: "user", content: "And on Pages?" }];
  const r = await ask({ input });
  assert.equal(r.status, "completed");
  assert.deepEqual(r.output.map((o) => o.type), ["web_search_call", "web_search_call", "message"]);
  assert.equal(r.output_text, TEXT);
});

// ------------------------------------------------------------------ the mcp tool

const calc = { type: "mcp", server_label: "calc", server_url: "", headers: { Authorization: MCP_AUTH }, require_approval: "never", allowed_tools: ["add", "fail"] };
const askMcp = (input, extra = {}) => client.responses.create({
  model: "loopsurf/servercall", input, tools: [{ ...calc, server_url: mcp.url }], ...extra,
});
const listed = (id) => ({ type: "mcp_list_tools", id: `mcpl_${id}_0`, server_label: "calc",
  tools: MCP_TOOLS.filter((t) => ["add", "fail"].includes(t.name)).map((t) => ({ name: t.name, description: t.description, input_schema: t.inputSchema, annotations: t.annotations ?? null })) });

test("responses.create with an mcp tool: mcp_list_tools, mcp_call, then the message", async () => {
  const r = await askMcp('CALL mcp__calc__add {"a":2,"b":3}');
  assert.equal(r.status, "completed");
  assert.deepEqual(r.output, [
    listed(r.id),
    { type: "mcp_call", id: `mcp_${r.id}_0`, server_label: "calc", name: "add", arguments: '{"a":2,"b":3}', output: "5", error: null, status: "completed" },
    { type: "message", id: `msg_${r.id}`, status: "completed", role: "assistant", content: [{ type: "output_text", text: "The tool said: 5", annotations: [] }] },
  ]);
  assert.equal(r.output_text, "The tool said: 5");
});

test("an MCP tool's error is the mcp_call's error, the call failed", async () => {
  const r = await askMcp("CALL mcp__calc__fail {}");
  assert.deepEqual(r.output[1], { type: "mcp_call", id: `mcp_${r.id}_0`, server_label: "calc", name: "fail", arguments: "{}", output: null, error: "Error: the tool broke", status: "failed" });
  assert.equal(r.output_text, "The tool said: Error: the tool broke");
});

test("streamed: the mcp_list_tools and mcp_call events come before the text", async () => {
  const stream = await askMcp('CALL mcp__calc__add {"a":2,"b":3}', { stream: true });
  const events = [];
  for await (const e of stream) events.push(e);
  assert.deepEqual(events.map((e) => e.type), [
    "response.created", "response.in_progress",
    "response.output_item.added", "response.mcp_list_tools.in_progress", "response.mcp_list_tools.completed", "response.output_item.done",
    "response.output_item.added", "response.mcp_call.in_progress", "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done", "response.mcp_call.completed", "response.output_item.done",
    "response.output_item.added", "response.content_part.added", "response.output_text.delta",
    "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
  ]);
  const done = events.at(-1).response;
  const call = { type: "mcp_call", id: `mcp_${done.id}_0`, server_label: "calc", name: "add", arguments: '{"a":2,"b":3}', output: "5", error: null, status: "completed" };
  assert.deepEqual(done.output.slice(0, 2), [listed(done.id), call]);
  assert.deepEqual(events[2].item, { ...listed(done.id), tools: [] });
  assert.deepEqual(events[6].item, { ...call, arguments: "", output: null, status: "in_progress" });
  assert.deepEqual([events[8].delta, events[9].arguments, events[9].item_id, events[9].output_index], ['{"a":2,"b":3}', '{"a":2,"b":3}', call.id, 1]);
  // The reply sent back as the next turn's input (its mcp items included) is read.
  const next = await askMcp([{ role: "user", content: 'CALL mcp__calc__add {"a":2,"b":3}' }, ...done.output, { role: "user", content: 'CALL mcp__calc__add {"a":1,"b":1}' }]);
  assert.equal(next.output_text, "The tool said: 2");
});
