// Server tools that reach out for the model: a remote MCP server (Streamable HTTP,
// tests/support/mcp_mock.mjs) and openrouter:web_fetch (pages of
// tests/support/web_pages.mjs). The mock model (`servercall`) calls the function its
// prompt names, then answers with what the tool returned.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { startMcpServer, MCP_VERSION } from "../support/mcp_mock.mjs";
import { startWebPages, ARTICLE_TEXT } from "../support/web_pages.mjs";

const MCP_AUTH = "Bearer mcp-secret-0123456789";
const MODEL = "test/servercall";
let mock, worker, mcp, pages, KEY;

before(async () => {
  mock = await startMockUpstream();
  mcp = await startMcpServer({ auth: MCP_AUTH });
  pages = await startWebPages();
  const catalog = testCatalog();
  catalog.models.push({
    id: MODEL, name: "Test: servercall", created: 1700000000, description: "calls the server tool its prompt names",
    input_modalities: ["text"], context_length: 65536, supported_parameters: ["max_tokens", "tools", "tool_choice"],
    endpoints: [{ provider: "mockai", upstream_model: "servercall", pricing: { prompt: "0.000001", completion: "0.000002" } }],
  });
  worker = await startWorker({
    catalog,
    bindings: {
      ...mockBindings(mock.url),
      FREE_REQUESTS_PER_MINUTE: "1000",
      // The tests' servers are on 127.0.0.1: listed, as an operator lists its own.
      MEDIA_FETCH_ALLOW_HOSTS: `${mcp.host},${pages.host}`,
      MEDIA_FETCH_TIMEOUT_MS: "3000",
    },
  });
  KEY = (await worker.createAccount({ credits: 10 })).key;
});

after(async () => {
  await worker?.close();
  await mock?.close();
  await mcp?.close();
  await pages?.close();
});

const chat = (body) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, ...body }),
  });
const ask = (call) => [{ role: "user", content: `CALL ${call}` }];
const calc = (extra = {}) => ({ type: "mcp", server_label: "calc", server_url: mcp.url, headers: { Authorization: MCP_AUTH }, require_approval: "never", ...extra });
/** The model calls the mock saw, newest last. */
const modelCalls = () => mock.requests.filter((r) => r.body?.model === "servercall");

// ------------------------------------------------------------------ MCP

test("a model calls an MCP tool, then answers from its result", async () => {
  mcp.reset();
  const before = modelCalls().length;
  const r = await chat({ messages: ask('mcp__calc__add {"a":2,"b":3}'), tools: [calc()] });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  assert.equal(body.choices[0].message.content, "The tool said: 5");
  assert.equal(body.usage.server_tool_use.mcp_tool_calls, 1);

  // The server saw the protocol: initialize first (without a session), then every
  // message with the session it gave and the negotiated version, and the caller's
  // Authorization on each.
  const posts = mcp.seen.filter((s) => s.method === "POST");
  const init = mcp.rpc("initialize");
  assert.equal(init.length, 2, "one session to list, one to call");
  for (const i of init) {
    assert.equal(i.headers["mcp-session-id"], undefined);
    assert.equal(i.body.params.protocolVersion, MCP_VERSION);
    assert.equal(i.body.params.clientInfo.name, "modelmux");
    assert.match(i.headers.accept, /application\/json/);
    assert.match(i.headers.accept, /text\/event-stream/);
  }
  for (const p of posts.filter((p) => p.body?.method !== "initialize")) {
    assert.match(p.headers["mcp-session-id"] ?? "", /^[0-9a-f-]{36}$/, `${p.body?.method} carried the session`);
    assert.equal(p.headers["mcp-protocol-version"], MCP_VERSION);
  }
  for (const s of mcp.seen) assert.equal(s.headers.authorization, MCP_AUTH);
  assert.equal(mcp.rpc("notifications/initialized").length, 2);
  // tools/list was paged (two tools a page) to the end.
  assert.deepEqual(mcp.rpc("tools/list").map((l) => l.body.params?.cursor ?? null), [null, "page-2", "page-4"]);
  const [call] = mcp.rpc("tools/call");
  assert.deepEqual(call.body.params, { name: "add", arguments: { a: 2, b: 3 } });
  // Each session ended with a DELETE.
  assert.equal(mcp.seen.filter((s) => s.method === "DELETE").length, 2);

  // The model was offered every tool as a function, with its schema.
  const [first, second] = modelCalls().slice(before);
  const offered = first.body.tools.map((t) => t.function.name);
  assert.deepEqual(offered, ["mcp__calc__add", "mcp__calc__echo", "mcp__calc__report", "mcp__calc__fail", "mcp__calc__secret"]);
  assert.deepEqual(first.body.tools[0].function.parameters, { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] });
  assert.equal(second.body.messages.at(-1).role, "tool");
  assert.equal(second.body.messages.at(-1).content, "5");

  // The server's credential went nowhere else: not to the model, the reply or the logs.
  const secret = MCP_AUTH.split(" ")[1];
  for (const c of modelCalls().slice(before)) assert.ok(!JSON.stringify(c).includes(secret));
  assert.ok(!JSON.stringify(body).includes(secret));
  assert.ok(!worker.logs().includes(secret));
});

test("allowed_tools limits what the model sees and may call", async () => {
  mcp.reset();
  const before = modelCalls().length;
  const r = await chat({ messages: ask("mcp__calc__secret {}"), tools: [calc({ allowed_tools: ["echo"] })] });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  assert.equal(body.choices[0].message.content, "No tool mcp__calc__secret among: mcp__calc__echo");
  assert.deepEqual(modelCalls().at(before).body.tools.map((t) => t.function.name), ["mcp__calc__echo"]);
  assert.equal(mcp.rpc("tools/call").length, 0);
});

test("a result carried by an SSE stream, and a tool error, reach the model", async () => {
  const r = await chat({ messages: ask('mcp__calc__report {"topic":"tides"}'), tools: [calc()] });
  assert.equal((await r.json()).choices[0].message.content, "The tool said: Report on tides: all good.");
  const e = await chat({ messages: ask("mcp__calc__fail {}"), tools: [calc()] });
  assert.equal((await e.json()).choices[0].message.content, "The tool said: Error: the tool broke");
});

test("require_approval other than never, and a private server_url, are 400s naming the field", async () => {
  const before = mock.requests.length;
  for (const [tool, field] of [
    [calc({ require_approval: "always" }), "tools[0].require_approval"],
    [calc({ require_approval: { never: { tool_names: ["add"] } } }), "tools[0].require_approval"],
  ]) {
    const r = await chat({ messages: ask("mcp__calc__add {}"), tools: [tool] });
    const body = await r.json();
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.ok(body.error.message.startsWith(field), body.error.message);
  }
  assert.equal(mock.requests.length, before, "no model was called");
  // A server the gateway may not reach (a private address, not listed).
  const r = await chat({ messages: ask("mcp__calc__add {}"), tools: [calc({ server_url: "http://10.1.2.3/mcp" })] });
  const body = await r.json();
  assert.equal(r.status, 400, JSON.stringify(body));
  assert.equal(body.error.message, "tools: MCP server calc: server_url is a private or local address");
});

test("the official openai SDK's Responses mcp tool runs as it does on OpenAI", async () => {
  mcp.reset();
  const client = new OpenAI({ baseURL: worker.base, apiKey: KEY, maxRetries: 0 });
  const r = await client.responses.create({
    model: MODEL,
    input: 'CALL mcp__calc__add {"a":40,"b":2}',
    tools: [{ type: "mcp", server_label: "calc", server_url: mcp.url, authorization: MCP_AUTH.split(" ")[1], allowed_tools: ["add"], require_approval: "never" }],
  });
  assert.equal(r.output_text, "The tool said: 42");
  // `authorization` is sent as a bearer token.
  for (const s of mcp.seen) assert.equal(s.headers.authorization, MCP_AUTH);
});

// ------------------------------------------------------------------ web_fetch

/** The web_fetch result the model read, from its answer. */
const fetched = (body) => JSON.parse(body.choices[0].message.content.replace(/^The tool said: /, ""));

test("web_fetch follows a redirect and reads the page as text without its noise", async () => {
  const r = await chat({ messages: ask(`web_fetch {"url":"${pages.url}/moved"}`), tools: [{ type: "openrouter:web_fetch" }] });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  const got = fetched(body);
  assert.equal(got.status, "completed");
  assert.equal(got.url, `${pages.url}/article`);
  assert.equal(got.title, "Tide Tables & Moons");
  assert.equal(got.content, ARTICLE_TEXT(pages.url));
  assert.match(got.retrieved_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  for (const noise of ["SCRIPT", "STYLE", "NAV", "COOKIE", "ASIDE", "FOOTER"]) assert.ok(!got.content.includes(`${noise}-NOISE`), noise);
  assert.equal(body.usage.server_tool_use.web_fetch_requests, 1);
  const [a] = body.choices[0].message.annotations;
  assert.equal(a.type, "url_citation");
  assert.equal(a.url_citation.url, `${pages.url}/article`);
  assert.equal(a.url_citation.title, "Tide Tables & Moons");
  assert.equal(a.url_citation.content, ARTICLE_TEXT(pages.url).slice(0, 300));
});

test("web_fetch refuses blocked domains, huge pages, loops and types it cannot read, as results the model reads", async () => {
  const one = async (url, parameters = {}) => {
    const r = await chat({ messages: ask(`web_fetch {"url":"${url}"}`), tools: [{ type: "openrouter:web_fetch", parameters }] });
    assert.equal(r.status, 200);
    return fetched(await r.json());
  };
  const seen = pages.seen.length;
  const blocked = await one(`${pages.url}/article`, { blocked_domains: ["127.0.0.1"] });
  assert.deepEqual(blocked, { url: `${pages.url}/article`, status: "failed", error: "the URL is on a domain this tool's allowed_domains or blocked_domains refuse (127.0.0.1)" });
  const outside = await one(`${pages.url}/article`, { allowed_domains: ["example.com"] });
  assert.equal(outside.status, "failed");
  assert.equal(pages.seen.length, seen, "nothing was fetched from a refused domain");
  assert.deepEqual(await one(`${pages.url}/huge`), { url: `${pages.url}/huge`, status: "failed", error: "the page is larger than 5242880 bytes" });
  assert.deepEqual(await one(`${pages.url}/loop`), { url: `${pages.url}/loop`, status: "failed", error: "the page redirected more than 3 times" });
  assert.equal((await one(`${pages.url}/paper.pdf`)).error, "unsupported content type application/pdf: this gateway does not extract text from PDFs fetched by web_fetch");
  assert.equal((await one(`${pages.url}/cat.png`)).error, "unsupported content type image/png: web_fetch reads HTML and text");
  assert.deepEqual(await one(`${pages.url}/gone`), { url: `${pages.url}/gone`, status: "failed", error: "the page could not be fetched (HTTP 404)" });
  assert.deepEqual(await one("http://10.0.0.1/x"), { url: "http://10.0.0.1/x", status: "failed", error: "the URL is a private or local address" });
  const slow = await one(`${pages.url}/hang`);
  assert.equal(slow.error, "not fetched within 3000 ms");
  // Cut to max_content_tokens (4 bytes a token).
  const cut = await one(`${pages.url}/notes.txt`, { max_content_tokens: 2 });
  assert.deepEqual(cut.content, "plain no");
  assert.equal(cut.truncated, true);
});
