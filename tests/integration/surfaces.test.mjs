// The other doors into the one pipeline: legacy completions, the Responses API and the
// Anthropic Messages API, each against mock upstreams of all three provider families,
// streamed and not, with their own reply, event and error shapes, and billed like chat.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream, MOCK_SIGNATURE, MOCK_GEMINI_SIGNATURE } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings, FAMILIES } from "../support/catalog.mjs";

let mock, worker, KEY, ACCOUNT;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: { ...mockBindings(mock.url), FREE_REQUESTS_PER_MINUTE: "1000" } });
  ({ key: KEY, id: ACCOUNT } = await worker.createAccount({ credits: 10 }));
});

after(async () => {
  await worker?.close();
  await mock?.close();
});

const post = (path, body, headers = { authorization: `Bearer ${KEY}` }) =>
  fetch(`${worker.base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

/** Named SSE events of a stream body: [{event, data}]. */
function events(text) {
  return text
    .split("\n\n")
    .filter((e) => e.includes("data: "))
    .map((e) => {
      const event = e.split("\n").find((l) => l.startsWith("event: "))?.slice(7);
      const data = e.split("\n").find((l) => l.startsWith("data: ")).slice(6);
      return { event, data: data === "[DONE]" ? data : JSON.parse(data) };
    });
}

// ------------------------------------------------------------------ completions

test("legacy completions: a prompt in, text_completion out, streamed or not, every family", async () => {
  for (const [api] of FAMILIES) {
    const r = await post("/completions", { model: `${api}-mock/ok`, prompt: "Say hi", max_tokens: 20 });
    assert.equal(r.status, 200, api);
    const body = await r.json();
    assert.equal(body.object, "text_completion");
    assert.equal(body.choices[0].text, "mock says: Say hi", api);
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.ok(body.usage.total_tokens > 0 && body.usage.cost > 0, api);
    const s = await post("/completions", { model: `${api}-mock/stream`, prompt: "x", stream: true });
    assert.equal(s.status, 200);
    const evs = events(await s.text());
    assert.equal(evs.at(-1).data, "[DONE]");
    const text = evs.filter((e) => e.data !== "[DONE]").map((e) => e.data.choices[0]?.text ?? "").join("");
    assert.equal(text, "Hello from the mock", api);
    assert.ok(evs.at(-2).data.usage.completion_tokens > 0);
    assert.ok(evs.filter((e) => e.data !== "[DONE]").every((e) => e.data.object === "text_completion"));
  }
  const bad = await post("/completions", { model: "test/ok", prompt: ["a", "b"] });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /prompt: one prompt per request/);
});

// ------------------------------------------------------------------ responses

test("responses: input items in, a response object out, for every family", async () => {
  for (const [api] of FAMILIES) {
    const r = await post("/responses", {
      model: `${api}-mock/ok`,
      instructions: "be brief",
      input: [{ role: "user", content: [{ type: "input_text", text: "weather in Paris?" }] }],
      max_output_tokens: 100,
      temperature: 0.3,
    });
    assert.equal(r.status, 200, api);
    const body = await r.json();
    assert.equal(body.object, "response");
    assert.equal(body.status, "completed");
    assert.match(body.id, /^gen-/);
    const msg = body.output.find((o) => o.type === "message");
    assert.equal(msg.content[0].type, "output_text");
    assert.equal(msg.content[0].text, "mock says: weather in Paris?", api);
    assert.equal(body.output_text, "mock says: weather in Paris?");
    assert.ok(body.usage.input_tokens > 0 && body.usage.output_tokens > 0);
    assert.equal(body.temperature, 0.3);
    assert.equal(body.max_output_tokens, 100);
  }
});

test("responses: a function call and its output round trip", async () => {
  const tools = [{ type: "function", name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } }];
  for (const [api] of FAMILIES) {
    const r = await post("/responses", { model: `${api}-mock/tool`, input: "weather?", tools });
    assert.equal(r.status, 200, api);
    const body = await r.json();
    const call = body.output.find((o) => o.type === "function_call");
    assert.ok(call, api);
    assert.equal(call.name, "get_weather");
    assert.deepEqual(JSON.parse(call.arguments), { city: "Paris" });
    const next = await post("/responses", {
      model: `${api}-mock/ok`,
      tools,
      input: [
        { role: "user", content: "weather?" },
        { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: "function_call_output", call_id: call.call_id, output: "sunny" },
      ],
    });
    assert.equal(next.status, 200, api);
    const sent = mock.requests.at(-1).body;
    const text = JSON.stringify(sent);
    assert.match(text, /sunny/, api);
  }
});

test("responses: reasoning items carry thinking signatures across turns (Anthropic extended thinking with tools)", async () => {
  const tools = [{ type: "function", name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } }];
  const ask = (input, stream = false) => post("/responses", { model: "test/thinkagent", reasoning: { effort: "low" }, tools, input, stream });
  for (const stream of [false, true]) {
    const r = await ask("Weather in Paris?", stream);
    assert.equal(r.status, 200);
    const output = stream ? events(await r.text()).at(-1).data.response.output : (await r.json()).output;
    assert.deepEqual(output.map((o) => o.type), ["reasoning", "function_call"], `stream: ${stream}`);
    assert.match(output[0].encrypted_content, /^mmx1\./);
    const call = output[1];
    // The next turn sends the output items back, as the Agents SDK and Codex do.
    const next = await ask([{ role: "user", content: "Weather in Paris?" }, ...output, { type: "function_call_output", call_id: call.call_id, output: "18C" }]);
    assert.equal(next.status, 200, await next.clone().text());
    assert.equal((await next.json()).output_text, "The tool said: 18C");
    const sent = mock.last("/anthropic/").body.messages[1].content;
    assert.deepEqual(sent.map((b) => b.type), ["thinking", "tool_use"]);
    assert.equal(sent[0].signature, MOCK_SIGNATURE);
  }
  // Without the reasoning item, the provider refuses the turn, as it would directly.
  const first = (await (await ask("Weather in Paris?")).json()).output;
  const call = first.find((o) => o.type === "function_call");
  const bare = await ask([{ role: "user", content: "Weather in Paris?" }, call, { type: "function_call_output", call_id: call.call_id, output: "18C" }]);
  assert.equal(bare.status, 400);
});

test("responses: streamed as the Responses event sequence, numbered", async () => {
  for (const [api] of FAMILIES) {
    const r = await post("/responses", { model: `${api}-mock/stream`, input: "hi", stream: true });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /text\/event-stream/);
    const evs = events(await r.text());
    const types = evs.map((e) => e.data.type);
    assert.deepEqual(types.slice(0, 4), ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"], api);
    assert.equal(types.at(-1), "response.completed", api);
    evs.forEach((e, i) => {
      assert.equal(e.data.sequence_number, i);
      assert.equal(e.event, e.data.type);
    });
    const text = evs.filter((e) => e.data.type === "response.output_text.delta").map((e) => e.data.delta).join("");
    assert.equal(text, "Hello from the mock", api);
    const done = evs.at(-1).data.response;
    assert.equal(done.status, "completed");
    assert.equal(done.output[0].content[0].text, "Hello from the mock");
    assert.ok(done.usage.output_tokens > 0);
  }
  const t = await post("/responses", { model: "openai-mock/tool", input: "x", stream: true, tools: [{ type: "function", name: "get_weather", parameters: { type: "object" } }] });
  const evs = events(await t.text());
  const args = evs.filter((e) => e.data.type === "response.function_call_arguments.delta").map((e) => e.data.delta).join("");
  assert.deepEqual(JSON.parse(args), { city: "Paris" });
  assert.ok(evs.some((e) => e.data.type === "response.function_call_arguments.done"));
  const broken = await post("/responses", { model: "openai-mock/broken", input: "x", stream: true });
  const bevs = events(await broken.text());
  assert.equal(bevs.at(-1).data.type, "response.failed");
});

test("responses: invalid or unsupported input is a 400 naming the field", async () => {
  for (const [body, pattern] of [
    [{ model: "test/ok" }, /input: is required/],
    [{ model: "test/ok", input: "x", previous_response_id: "resp_1" }, /previous_response_id/],
    [{ model: "test/ok", input: "x", tools: [{ type: "file_search", vector_store_ids: ["vs_1"] }] }, /tools\[0\]\.type: only function tools/],
    [{ model: "test/ok", input: [{ type: "function_call_output", call_id: "nope", output: "x" }] }, /answers no tool call/],
  ]) {
    const r = await post("/responses", body);
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, pattern);
  }
});

// ------------------------------------------------------------------ messages

const anthropicHeaders = () => ({ "x-api-key": KEY, "anthropic-version": "2023-06-01" });

test("messages: Anthropic endpoints get the caller's own body (cache_control, thinking signatures, betas)", async () => {
  const body = {
    model: "anthropic-mock/ok",
    max_tokens: 300,
    system: [{ type: "text", text: "You are Claude Code.", cache_control: { type: "ephemeral" } }],
    messages: [
      { role: "user", content: "read a.txt" },
      { role: "assistant", content: [{ type: "thinking", thinking: "let me look", signature: MOCK_SIGNATURE }, { type: "tool_use", id: "toolu_1", name: "Read", input: { path: "a.txt" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "hello" }, { type: "text", text: "summarize" }] },
    ],
    tools: [{ name: "Read", description: "read", input_schema: { type: "object", properties: { path: { type: "string" } } } }],
    thinking: { type: "enabled", budget_tokens: 1024 },
    context_management: { edits: [] },
  };
  const r = await post("/messages", body, { ...anthropicHeaders(), "anthropic-beta": "context-management-2025-06-27" });
  assert.equal(r.status, 200);
  const reply = await r.json();
  assert.equal(reply.type, "message");
  assert.equal(reply.model, "anthropic-mock/ok");
  assert.equal(reply.content[0].text, "mock says: summarize");
  const sent = mock.last("/anthropic/v1/messages");
  assert.equal(sent.headers["anthropic-beta"], "context-management-2025-06-27");
  assert.equal(sent.body.model, "ok");
  assert.deepEqual(sent.body.system, body.system);
  assert.deepEqual(sent.body.messages, body.messages);
  assert.deepEqual(sent.body.context_management, body.context_management);
  assert.equal(sent.headers["x-api-key"], "sk-mockanthropic-secret");
});

test("messages: a non-streamed call to an Anthropic endpoint is gathered from its stream into the message it would have sent whole", async () => {
  const r = await post("/messages", { model: "anthropic-mock/ok", max_tokens: 100, messages: [{ role: "user", content: "hi there" }] }, anthropicHeaders());
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), {
    id: "msg_mock", type: "message", role: "assistant", model: "anthropic-mock/ok",
    content: [{ type: "text", text: "mock says: hi there" }],
    stop_reason: "end_turn", stop_sequence: null,
    usage: { input_tokens: 11, output_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  });
  assert.equal(mock.last("/anthropic/v1/messages").body.stream, true, "asked for a stream");
  const tool = await post("/messages", {
    model: "anthropic-mock/tool", max_tokens: 100, messages: [{ role: "user", content: "weather?" }],
    tools: [{ name: "get_weather", input_schema: { type: "object" } }],
  }, anthropicHeaders());
  const t = await tool.json();
  assert.deepEqual(t.content.find((b) => b.type === "tool_use"), { type: "tool_use", id: "toolu_mock1", name: "get_weather", input: { city: "Paris" } });
  assert.equal(t.stop_reason, "tool_use");
});

test("messages: other families are translated, replies and errors in Anthropic's shape", async () => {
  for (const [api] of FAMILIES) {
    const r = await post("/messages", { model: `${api}-mock/ok`, max_tokens: 100, messages: [{ role: "user", content: "hi there" }] }, anthropicHeaders());
    assert.equal(r.status, 200, api);
    const m = await r.json();
    assert.equal(m.type, "message");
    assert.equal(m.role, "assistant");
    assert.equal(m.content[0].type, "text");
    assert.equal(m.content[0].text, "mock says: hi there", api);
    assert.equal(m.stop_reason, "end_turn");
    assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
  }
  const tool = await post("/messages", {
    model: "openai-mock/tool", max_tokens: 100, messages: [{ role: "user", content: "weather?" }],
    tools: [{ name: "get_weather", input_schema: { type: "object" } }],
  }, anthropicHeaders());
  const t = await tool.json();
  const use = t.content.find((b) => b.type === "tool_use");
  assert.deepEqual(use.input, { city: "Paris" });
  assert.equal(t.stop_reason, "tool_use");
  const sent = mock.last("/openai/v1/chat/completions").body;
  assert.equal(sent.tools[0].function.name, "get_weather");
  for (const [headers, status, type] of [
    [{}, 401, "authentication_error"],
    [{ "x-api-key": "sk-mm-v1-" + "0".repeat(64) }, 401, "authentication_error"],
  ]) {
    const r = await post("/messages", { model: "test/ok", max_tokens: 5, messages: [{ role: "user", content: "x" }] }, headers);
    assert.equal(r.status, status);
    const e = await r.json();
    assert.equal(e.type, "error");
    assert.equal(e.error.type, type);
  }
  const bad = await post("/messages", { model: "test/ok", messages: [{ role: "user", content: "x" }] }, anthropicHeaders());
  assert.equal(bad.status, 400);
  const e = await bad.json();
  assert.deepEqual(Object.keys(e).sort(), ["error", "type"]);
  assert.equal(e.error.type, "invalid_request_error");
  assert.match(e.error.message, /max_tokens: is required/);
  const unknown = await post("/messages", { model: "nobody/nothing", max_tokens: 5, messages: [{ role: "user", content: "x" }] }, anthropicHeaders());
  assert.equal(unknown.status, 404);
  assert.equal((await unknown.json()).error.type, "not_found_error");
});

test("messages: streamed as Anthropic's events, natively or translated", async () => {
  for (const [api] of FAMILIES) {
    const r = await post("/messages", { model: `${api}-mock/stream`, max_tokens: 100, stream: true, messages: [{ role: "user", content: "hi" }] }, anthropicHeaders());
    assert.equal(r.status, 200, api);
    const evs = events(await r.text());
    const types = evs.map((e) => e.event);
    assert.equal(types[0], "message_start", api);
    assert.equal(types.at(-1), "message_stop", api);
    assert.ok(types.includes("message_delta"), api);
    const text = evs.filter((e) => e.data.type === "content_block_delta").map((e) => e.data.delta.text).join("");
    assert.equal(text, "Hello from the mock", api);
    const delta = evs.find((e) => e.event === "message_delta").data;
    assert.equal(delta.delta.stop_reason, "end_turn");
    assert.ok(delta.usage.output_tokens > 0);
  }
  const t = await post("/messages", { model: "gemini-mock/tool", max_tokens: 100, stream: true, messages: [{ role: "user", content: "weather?" }], tools: [{ name: "get_weather", input_schema: { type: "object" } }] }, anthropicHeaders());
  const evs = events(await t.text());
  const start = evs.find((e) => e.event === "content_block_start" && e.data.content_block.type === "tool_use");
  assert.equal(start.data.content_block.name, "get_weather");
  const json = evs.filter((e) => e.data.delta?.type === "input_json_delta").map((e) => e.data.delta.partial_json).join("");
  assert.deepEqual(JSON.parse(json), { city: "Paris" });
  const broken = await post("/messages", { model: "openai-mock/broken", max_tokens: 100, stream: true, messages: [{ role: "user", content: "hi" }] }, anthropicHeaders());
  const bevs = events(await broken.text());
  assert.equal(bevs.at(-1).event, "error");
  assert.equal(bevs.at(-1).data.type, "error");
});

test("messages: another provider's reasoning rides in the thinking signature and comes back (Gemini thought signatures through Claude Code's API)", async () => {
  const tools = [{ name: "get_weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }];
  for (const stream of [false, true]) {
    const r = await post("/messages", { model: "gemini-mock/agent", max_tokens: 100, stream, tools, messages: [{ role: "user", content: "weather?" }] }, anthropicHeaders());
    assert.equal(r.status, 200);
    let content;
    if (stream) {
      // Rebuild the message as the anthropic SDK does: blocks by index, deltas applied.
      content = [];
      for (const { data } of events(await r.text())) {
        if (data.type === "content_block_start") content[data.index] = { ...data.content_block };
        if (data.type !== "content_block_delta") continue;
        const b = content[data.index];
        if (data.delta.type === "signature_delta") b.signature = data.delta.signature;
        if (data.delta.type === "input_json_delta") b.json = (b.json ?? "") + data.delta.partial_json;
      }
      for (const b of content) if (b.type === "tool_use") { b.input = JSON.parse(b.json); delete b.json; }
    } else {
      content = (await r.json()).content;
    }
    assert.deepEqual(content.map((b) => b.type), ["thinking", "tool_use"], `stream: ${stream}`);
    assert.match(content[0].signature, /^mmx1\./);
    const use = content[1];
    const next = await post("/messages", { model: "gemini-mock/agent", max_tokens: 100, tools, messages: [
      { role: "user", content: "weather?" },
      { role: "assistant", content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18C" }] },
    ] }, anthropicHeaders());
    assert.equal(next.status, 200, await next.clone().text());
    const call = mock.last("/gemini/").body.contents[1].parts.find((p) => p.functionCall);
    assert.equal(call.thoughtSignature, MOCK_GEMINI_SIGNATURE, `stream: ${stream}`);
  }
});

test("messages: count_tokens estimates the prompt", async () => {
  const r = await post("/messages/count_tokens", { model: "test/ok", messages: [{ role: "user", content: "hello ".repeat(100) }] }, anthropicHeaders());
  assert.equal(r.status, 200);
  const { input_tokens } = await r.json();
  assert.ok(input_tokens >= 100 && input_tokens < 400, String(input_tokens));
});

test("every surface is billed and recorded with the API it came through", async () => {
  const before = (await worker.admin("GET", `/accounts/${ACCOUNT}`)).data.total_usage;
  const ids = [];
  for (const [path, body, headers] of [
    ["/completions", { model: "test/ok", prompt: "x" }],
    ["/responses", { model: "test/ok", input: "x" }],
    ["/messages", { model: "test/ok", max_tokens: 10, messages: [{ role: "user", content: "x" }] }, anthropicHeaders()],
  ]) {
    const r = await post(path, body, headers);
    assert.equal(r.status, 200, path);
    ids.push([path, r.headers.get("x-generation-id")]);
    await r.text();
  }
  await new Promise((r) => setTimeout(r, 300));
  for (const [path, id] of ids) {
    const g = await (await fetch(`${worker.base}/generation?id=${id}`, { headers: { authorization: `Bearer ${KEY}` } })).json();
    assert.equal(g.data.api_type, path.slice(1), path);
    assert.ok(g.data.total_cost > 0, path);
  }
  const afterUsage = (await worker.admin("GET", `/accounts/${ACCOUNT}`)).data.total_usage;
  assert.ok(afterUsage > before);
});

// ------------------------------------------------------------------ embeddings

test("embeddings: OpenAI-compatible and Gemini upstreams, floats and base64, billed", async () => {
  for (const model of ["test/embed-openai", "test/embed-gemini"]) {
    const r = await post("/embeddings", { model, input: ["hello", "world!"], dimensions: 8 });
    assert.equal(r.status, 200, model);
    const body = await r.json();
    assert.equal(body.object, "list");
    assert.equal(body.data.length, 2);
    assert.deepEqual(body.data.map((d) => d.index), [0, 1]);
    assert.equal(body.data[0].embedding.length, 8, model);
    assert.ok(body.usage.prompt_tokens > 0 && body.usage.cost > 0, model);
    assert.equal(body.model, model);
    const b = await post("/embeddings", { model, input: "hello", encoding_format: "base64" });
    const b64 = (await b.json()).data[0].embedding;
    const buf = Buffer.from(b64, "base64");
    const floats = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    assert.equal(floats.length, 4, model);
    assert.ok(Math.abs(floats[0] - (5 % 7) / 7 + 0.5) < 1e-6, model);
  }
  // Fallback past a failing endpoint, as for chat.
  const f = await post("/embeddings", { model: "test/embed-fallback", input: "x" });
  assert.equal(f.status, 200);
  assert.equal((await f.json()).provider, "MockBackup");
  const id = f.headers.get("x-generation-id");
  await new Promise((r) => setTimeout(r, 300));
  const g = await (await fetch(`${worker.base}/generation?id=${id}`, { headers: { authorization: `Bearer ${KEY}` } })).json();
  assert.equal(g.data.api_type, "embeddings");
  assert.ok(g.data.tokens_prompt > 0);
});

test("embeddings: the models, and what is refused", async () => {
  const list = await (await fetch(`${worker.base}/embeddings/models`)).json();
  assert.deepEqual(list.data.map((m) => m.id).sort(), ["test/embed-fallback", "test/embed-gemini", "test/embed-openai"]);
  for (const [body, status, pattern] of [
    [{ model: "test/embed-openai" }, 400, /input: is required/],
    [{ model: "test/embed-openai", input: [] }, 400, /input: must not be empty/],
    [{ model: "test/embed-openai", input: "x", encoding_format: "hex" }, 400, /encoding_format/],
    [{ model: "test/ok", input: "x" }, 400, /not an embedding model/],
    [{ model: "test/embed-gemini", input: [1, 2, 3] }, 400, /token arrays need an OpenAI-compatible endpoint/],
  ]) {
    const r = await post("/embeddings", body);
    assert.equal(r.status, status, JSON.stringify(body));
    assert.match((await r.json()).error.message, pattern);
  }
  const chat = await post("/chat/completions", { model: "test/embed-openai", messages: [{ role: "user", content: "x" }] });
  assert.equal(chat.status, 400);
  assert.match((await chat.json()).error.message, /is an embedding model/);
});
