// Mid-stream failover with continuation (`provider.stream_failover: "continue"`):
// streams cut at several points on each family (an error event, a reset, an end before
// the terminal event, an unreadable event, silence past STREAM_IDLE_TIMEOUT_MS) go on
// from the next endpoint, which gets the text so far as the assistant's turn and
// repeats some of it (the mock repeats the last 4 characters, as models do). The client
// sees the reply once, whole, with one terminal event, the same generation ID, summed
// usage and each attempt, and tool calls only whole; `terminate` (the default) ends
// with an error chunk as before.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/eventually.mjs";
import { startWorker, ADMIN_KEY } from "../support/worker.mjs";
import { startMockUpstream, FAILOVER_TEXT, FAILOVER_TOOL, CONTINUED_USAGE } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { exactJson, exactBody, picos, sum } from "../support/money.mjs";

let mock, worker, key, accountId;

const price = { prompt: "0.000001", completion: "0.000002" };
const SLUG = { openai: "mockopenai", anthropic: "mockanthropic", gemini: "mockgemini" };
const NAME = { openai: "MockOpenAI", anthropic: "MockAnthropic", gemini: "MockGemini" };
/** The family each family's cut stream continues on. */
const NEXT = { openai: "anthropic", anthropic: "gemini", gemini: "openai" };
/** What each family's continuation bills (the mock's figures). */
const CONTINUED = {
  openai: [CONTINUED_USAGE.prompt, CONTINUED_USAGE.completion],
  anthropic: [11, 7],
  gemini: [CONTINUED_USAGE.prompt, 7],
};

/** Each test model's providers in the order its endpoints are to be tried (given as
 * `provider.order`: without it, equal prices are load-balanced). */
const ORDER = {};
const model = (id, endpoints) => (ORDER[id] = endpoints.map(([slug]) => slug), {
  id, name: `Test: ${id}`, created: 1700000000, description: `failover model ${id}`, input_modalities: ["text"],
  context_length: 8192, supported_parameters: ["max_tokens", "tools", "tool_choice"],
  endpoints: endpoints.map(([provider, upstream_model]) => ({ provider, upstream_model, pricing: price })),
});

/** The cuts each family is tested with: how, and after how many characters. */
const CUTS = {
  openai: [["fail", 10], ["reset", 37], ["eof", 61], ["garbage", 0], ["stall", 20]],
  anthropic: [["fail", 37], ["reset", 10], ["eof", 61], ["garbage", 20]],
  gemini: [["fail", 20], ["reset", 61], ["eof", 37], ["garbage", 10]],
};

function catalog() {
  const c = testCatalog();
  for (const [family, cuts] of Object.entries(CUTS)) {
    for (const [how, at] of cuts) {
      c.models.push(model(`fo/${family}-${how}-${at}`, [[SLUG[family], `cut-${how}-${at}`], [SLUG[NEXT[family]], "cont-4"]]));
    }
  }
  c.models.push(model("fo/openai-tool", [["mockopenai", "cut-fail-20-tool"], ["mockanthropic", "cont-4-tool"]]));
  c.models.push(model("fo/anthropic-tool", [["mockanthropic", "cut-reset-37-tool"], ["mockopenai", "cont-4-tool"]]));
  // Two cuts, then a continuation.
  c.models.push(model("fo/chain", [["mockopenai", "cut-fail-10"], ["mockanthropic", "cut-reset-37"], ["mockgemini", "cont-4"]]));
  return c;
}

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: catalog(), bindings: { ...mockBindings(mock.url), STREAM_IDLE_TIMEOUT_MS: "400", STREAM_KEEPALIVE_MS: "100" } });
  const acc = await worker.createAccount({ credits: 1 });
  key = acc.key;
  accountId = acc.id;
});

after(async () => {
  await worker?.close();
  await mock?.close();
});

let nonce = 0;
/** Every stream's generation ID, to add up what the account was charged. */
const generations = [];
/** A streamed request through `path`, with a nonce in its prompt to find its upstream
 * requests by; its events (data parsed exactly too), and those requests. */
async function stream(path, body) {
  const tag = `nonce-${++nonce}`;
  const r = await fetch(`${worker.base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body(tag)),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  const events = text.split("\n\n").filter((b) => b.trim()).map((block) => {
    if (block.startsWith(":")) return { comment: block };
    const name = block.split("\n").find((l) => l.startsWith("event:"))?.slice(6).trim();
    const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
    if (data === "[DONE]") return { done: true };
    return { name, data: JSON.parse(data), exact: exactJson(data) };
  });
  const upstream = mock.requests.filter((q) => JSON.stringify(q.body ?? {}).includes(tag));
  generations.push(r.headers.get("x-generation-id"));
  return { r, events, upstream, id: r.headers.get("x-generation-id") };
}

const CONTINUE = { stream_failover: "continue" };
const chatBody = (m, provider = CONTINUE, extra = {}) => (tag) => ({
  model: m, stream: true, max_tokens: 200, provider: { order: ORDER[m], ...provider },
  messages: [{ role: "user", content: `tell me (${tag})` }], ...extra,
});
/** The text of a message's content (a string, or text blocks / parts). */
const said = (content) => (typeof content === "string" ? content : content?.map((p) => p.text).join(""));

const chunks = (events) => events.filter((e) => e.data);
const textOf = (events) => chunks(events).map((e) => e.data.choices?.[0]?.delta?.content ?? "").join("");

/** The usage of the stream's last chunk, exactly, and its checks against the attempts:
 * tokens and cost summed, each attempt listed. */
function summedUsage(events) {
  const u = chunks(events).findLast((e) => e.data.usage)?.exact.usage;
  assert.ok(u, "a final usage");
  const attempts = u.cost_details.attempts;
  assert.equal(Number(u.prompt_tokens), attempts.reduce((n, a) => n + Number(a.prompt_tokens), 0));
  assert.equal(Number(u.completion_tokens), attempts.reduce((n, a) => n + Number(a.completion_tokens), 0));
  assert.equal(picos(u.cost), sum(attempts.map((a) => picos(a.cost))));
  return { u, attempts };
}

/** The generation's record says what the final usage said: settled once, the sum. */
async function settledAs(id, u) {
  const g = await eventually(async () => {
    const r = await fetch(`${worker.base}/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } });
    return r.status === 200 && (await exactBody(r)).data;
  }, "generation record");
  assert.equal(picos(g.total_cost), picos(u.cost));
  assert.equal(g.tokens_prompt, u.prompt_tokens);
  assert.equal(g.tokens_completion, u.completion_tokens);
  return g;
}

for (const [family, cuts] of Object.entries(CUTS)) {
  for (const [how, at] of cuts) {
    const id = `fo/${family}-${how}-${at}`;
    test(`chat: ${family} stream cut by ${how} after ${at} characters continues on ${NEXT[family]}`, async () => {
      const { events, upstream, id: gen } = await stream("/chat/completions", chatBody(id));
      // The reply once, whole, and one end.
      assert.equal(textOf(events), FAILOVER_TEXT);
      assert.equal(events.filter((e) => e.done).length, 1);
      assert.ok(events.at(-1).done, "[DONE] last");
      assert.ok(!chunks(events).some((e) => e.data.error), "no error chunk");
      assert.deepEqual(chunks(events).map((e) => e.data.choices?.[0]?.finish_reason).filter(Boolean), ["stop"]);
      // The switch marked, and the chunks after it stamped with the new endpoint.
      const next = NEXT[family];
      const mark = events.findIndex((e) => e.comment?.startsWith(": failover"));
      assert.equal(events[mark].comment, `: failover to ${NAME[next]}/${id}`);
      assert.ok(chunks(events.slice(0, mark)).every((e) => e.data.provider === NAME[family]));
      assert.ok(chunks(events.slice(mark)).every((e) => e.data.provider === NAME[next] && e.data.model === id));
      assert.ok(chunks(events).every((e) => e.data.id === gen), "one generation ID");
      // The next endpoint was given the text the client had.
      assert.equal(upstream.length, 2);
      const sent = FAILOVER_TEXT.slice(0, at);
      const turns = upstream[1].body.messages ?? upstream[1].body.contents;
      const given = next === "openai" ? said(turns.at(-2).content) : said(turns.at(-1).content ?? turns.at(-1).parts);
      // Nothing sent yet: the request as it was; else the text so far (a prefilled
      // turn without its trailing space, which Anthropic refuses).
      if (at === 0) assert.equal(turns.length, 1);
      else assert.equal(given, next === "openai" ? sent : sent.trimEnd());
      if (at > 0 && next === "openai") assert.match(said(turns.at(-1).content), /cut off\. Continue it exactly where it stopped/);
      // Summed usage, each attempt billed its own, settled as the sum.
      const { u, attempts } = summedUsage(events);
      assert.deepEqual(attempts.map((a) => a.provider), [NAME[family], NAME[next]]);
      assert.deepEqual(attempts.map((a) => a.model), [id, id]);
      assert.equal(attempts[1].outcome, "completed");
      assert.notEqual(attempts[0].outcome, "completed");
      assert.equal(Number(attempts[0].completion_tokens), Math.ceil(at / 4));
      assert.deepEqual([Number(attempts[1].prompt_tokens), Number(attempts[1].completion_tokens)], CONTINUED[next]);
      await settledAs(gen, u);
    });
  }
}

for (const [id, first, next] of [["fo/openai-tool", "openai", "anthropic"], ["fo/anthropic-tool", "anthropic", "openai"]]) {
  test(`chat: a tool call cut mid-arguments on ${first} is never half-sent; ${next}'s goes out whole`, async () => {
    const tools = [{ type: "function", function: { name: FAILOVER_TOOL.name, parameters: { type: "object", properties: { city: { type: "string" } } } } }];
    const { events } = await stream("/chat/completions", chatBody(id, { stream_failover: "continue" }, { tools }));
    assert.equal(textOf(events), FAILOVER_TEXT);
    const calls = chunks(events).flatMap((e) => e.data.choices?.[0]?.delta?.tool_calls ?? []);
    assert.equal(calls.length, 1, JSON.stringify(calls));
    assert.equal(calls[0].function.name, FAILOVER_TOOL.name);
    assert.deepEqual(JSON.parse(calls[0].function.arguments), FAILOVER_TOOL.args);
    assert.ok(calls[0].id, "the call's ID");
    assert.deepEqual(chunks(events).map((e) => e.data.choices?.[0]?.finish_reason).filter(Boolean), ["tool_calls"]);
    assert.equal(events.filter((e) => e.done).length, 1);
  });
}

test("chat: two failovers when the request allows them; one (the default) ends with the second cut", async () => {
  const two = await stream("/chat/completions", chatBody("fo/chain", { stream_failover: "continue", max_stream_failovers: 2 }));
  assert.equal(textOf(two.events), FAILOVER_TEXT);
  assert.equal(two.events.filter((e) => e.comment?.startsWith(": failover")).length, 2);
  const { u, attempts } = summedUsage(two.events);
  assert.deepEqual(attempts.map((a) => a.provider), ["MockOpenAI", "MockAnthropic", "MockGemini"]);
  await settledAs(two.id, u);
  // One failover: the second cut ends the stream with its error, after what it sent.
  const one = await stream("/chat/completions", chatBody("fo/chain"));
  assert.equal(textOf(one.events), FAILOVER_TEXT.slice(0, 37));
  const last = chunks(one.events).find((e) => e.data.error);
  assert.equal(last.data.choices[0].finish_reason, "error");
  assert.equal(one.upstream.length, 2);
  const ended = summedUsage(one.events);
  assert.equal(ended.attempts.length, 2);
  assert.notEqual(ended.attempts[1].outcome, "completed");
  assert.ok(one.events.at(-1).done);
});

test("chat: terminate (the default) ends with an error chunk, as before, and tries no other endpoint", async () => {
  for (const provider of [{}, { stream_failover: "terminate" }]) {
    const { events, upstream } = await stream("/chat/completions", chatBody("fo/openai-fail-10", provider));
    assert.equal(textOf(events), FAILOVER_TEXT.slice(0, 10));
    const err = chunks(events).find((e) => e.data.error);
    assert.equal(err.data.choices[0].finish_reason, "error");
    assert.ok(!events.some((e) => e.comment?.startsWith(": failover")));
    assert.equal(upstream.length, 1);
    const u = chunks(events).findLast((e) => e.data.usage).data.usage;
    assert.equal(u.cost_details.attempts, undefined);
    assert.ok(events.at(-1).done);
  }
});

test("a bad failover control is a 400 naming the field, before any upstream is called", async () => {
  for (const [provider, field] of [[{ stream_failover: "continue", max_stream_failovers: 4 }, "provider.max_stream_failovers"], [{ stream_failover: "resume" }, "provider.stream_failover"]]) {
    const before = mock.requests.length;
    const r = await fetch(`${worker.base}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(chatBody("fo/openai-fail-10", provider)("x")),
    });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, new RegExp(`^${field.replace(".", "\\.")}: `));
    assert.equal(mock.requests.length, before);
  }
});

test("messages: the same text block goes on after the switch, one message_stop", async () => {
  const { events } = await stream("/messages", (tag) => ({
    model: "fo/openai-fail-10", stream: true, max_tokens: 200, provider: { order: ORDER["fo/openai-fail-10"], ...CONTINUE },
    messages: [{ role: "user", content: `tell me (${tag})` }],
  }));
  const named = (n) => events.filter((e) => e.name === n);
  assert.equal(named("message_start").length, 1);
  assert.deepEqual(named("content_block_start").map((e) => [e.data.index, e.data.content_block.type]), [[0, "text"]]);
  assert.ok(named("content_block_delta").every((e) => e.data.index === 0));
  assert.equal(named("content_block_delta").map((e) => e.data.delta.text).join(""), FAILOVER_TEXT);
  assert.equal(named("message_stop").length, 1);
  assert.equal(named("error").length, 0);
  assert.equal(events.filter((e) => e.comment?.startsWith(": failover")).length, 1);
  assert.equal(named("message_delta")[0].data.delta.stop_reason, "end_turn");
});

test("responses: the same output item goes on after the switch, one response.completed", async () => {
  const { events } = await stream("/responses", (tag) => ({
    model: "fo/gemini-fail-20", stream: true, max_output_tokens: 200, provider: { order: ORDER["fo/gemini-fail-20"], ...CONTINUE }, input: `tell me (${tag})`,
  }));
  const deltas = events.filter((e) => e.data?.type === "response.output_text.delta");
  assert.equal(deltas.map((e) => e.data.delta).join(""), FAILOVER_TEXT);
  assert.equal(new Set(deltas.map((e) => e.data.item_id)).size, 1);
  assert.equal(events.filter((e) => e.data?.type === "response.output_item.added").length, 1);
  const completed = events.filter((e) => e.data?.type === "response.completed");
  assert.equal(completed.length, 1);
  assert.equal(events.filter((e) => e.data?.type === "response.failed").length, 0);
  assert.equal(completed[0].data.response.output[0].content[0].text, FAILOVER_TEXT);
});

test("the account is charged every stream exactly once: the sum of their records", async () => {
  let total = 0n;
  for (const id of generations) {
    const g = await eventually(async () => {
      const r = await fetch(`${worker.base}/generation?id=${id}`, { headers: { authorization: `Bearer ${key}` } });
      return r.status === 200 && (await exactBody(r)).data;
    }, "generation record");
    total += picos(g.total_cost);
  }
  assert.ok(total > 0n);
  // Every settlement landed, each once: the account's usage is their sum, exactly.
  const usage = async () => {
    const r = await fetch(`${worker.url}/admin/v1/accounts/${accountId}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    return picos((await exactBody(r)).data.total_usage);
  };
  await eventually(async () => (await usage()) === total, "the account's usage to be the records' sum");
});
