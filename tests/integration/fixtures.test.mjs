// The provider fixture cases (tests/fixtures/<family>/<case>/) on the JavaScript side:
// the mock's strict request checks take every case's upstream request and refuse it
// with a field the provider does not define; and the built worker, sent a case's
// client request, sends the case's upstream request to the mock (which answers with
// the case's files) and answers the client what the Rust tests expect of the case.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream, refusal } from "../support/mock_upstream.mjs";
import { testCatalog, fixtureModels, mockBindings } from "../support/catalog.mjs";
import { FIXTURE_FAMILIES, fixtureCases, fixtureCase } from "../support/fixtures.mjs";
import { collect } from "../support/sse.mjs";

const CASES = FIXTURE_FAMILIES.flatMap((family) => fixtureCases(family).map((name) => fixtureCase(family, name)));

/** The case's upstream request body with a top-level field no provider defines. */
const withUnknownField = (c) => ({ ...structuredClone(c.request.body), modelmux_unknown: 1 });

describe("the mock's strict checks and the fixtures agree", () => {
  test("every family has its cases", () => {
    for (const family of FIXTURE_FAMILIES) assert.ok(fixtureCases(family).length >= 6, family);
  });
  for (const c of CASES) {
    test(`${c.family}/${c.name}: the case's upstream request is taken, and refused with an unknown field`, () => {
      assert.equal(refusal(c.request.url, c.request.body), null, JSON.stringify(refusal(c.request.url, c.request.body)));
      const refused = refusal(c.request.url, withUnknownField(c));
      assert.equal(refused?.status, 400, `${c.family}/${c.name} took an unknown field`);
      assert.match(JSON.stringify(refused.body), /modelmux_unknown/);
    });
  }
  test("an unknown field inside a message or part is refused too", () => {
    const openai = fixtureCase("openai", "text").request;
    const m = structuredClone(openai.body);
    m.messages[0].modelmux_unknown = 1;
    assert.equal(refusal(openai.url, m)?.status, 400);
    const anthropic = fixtureCase("anthropic", "text").request;
    const a = structuredClone(anthropic.body);
    a.messages[0].content[0].modelmux_unknown = 1;
    assert.equal(refusal(anthropic.url, a)?.status, 400);
    const gemini = fixtureCase("gemini", "text").request;
    const g = structuredClone(gemini.body);
    g.contents[0].parts[0].modelmux_unknown = 1;
    assert.equal(refusal(gemini.url, g)?.status, 400);
    const embed = fixtureCase("gemini", "embed").request;
    const e = structuredClone(embed.body);
    e.requests[0].modelmux_unknown = 1;
    assert.equal(refusal(embed.url, e)?.status, 400);
  });
});

/** What a client reads from chat chunks: text, reasoning, tool calls, finish, usage
 * (and its cost: the fixture models have the shipped models' prices), error. */
function gist(chunks) {
  const calls = [];
  let finish = null;
  let usage = null;
  let error = null;
  for (const c of chunks) {
    const choice = c.choices?.[0];
    for (const t of choice?.delta?.tool_calls ?? []) {
      const call = (calls[t.index] ??= { id: "", name: "", arguments: "" });
      call.id += t.id ?? "";
      call.name += t.function?.name ?? "";
      call.arguments += t.function?.arguments ?? "";
    }
    finish = choice?.finish_reason ?? finish;
    if (c.usage) usage = { prompt: c.usage.prompt_tokens, completion: c.usage.completion_tokens, cached: c.usage.prompt_tokens_details?.cached_tokens ?? 0, cost: c.usage.cost };
    if (c.error) error = c.error.message;
  }
  const text = (field) => chunks.map((c) => c.choices?.[0]?.delta?.[field] ?? "").join("");
  const images = chunks.flatMap((c) => c.choices?.[0]?.delta?.images ?? []).map((i) => i.image_url.url);
  return { content: text("content"), reasoning: text("reasoning"), calls, images, finish, usage, error };
}

/** The same of one chat completion. */
function replyGist(reply) {
  const [choice] = reply.choices;
  const m = choice.message;
  const u = reply.usage;
  return {
    content: m.content ?? "",
    reasoning: m.reasoning ?? "",
    calls: (m.tool_calls ?? []).map((t) => ({ id: t.id, name: t.function.name, arguments: t.function.arguments })),
    images: (m.images ?? []).map((i) => i.image_url.url),
    finish: choice.finish_reason,
    usage: u && { prompt: u.prompt_tokens, completion: u.completion_tokens, cached: u.prompt_tokens_details?.cached_tokens ?? 0, cost: u.cost },
    error: null,
  };
}

/** The case's upstream request as the worker sends it to the mock, where the upstream
 * model is the fixture's (`fixture-<case>`) rather than the shipped catalogue's. */
function upstreamBody(c) {
  const model = c.request.url.match(/models\/([^/:]+):/)?.[1] ?? c.request.body.model;
  return JSON.parse(JSON.stringify(c.request.body).split(`"${model}"`).join(`"fixture-${c.name}"`).split(`"models/${model}"`).join(`"models/fixture-${c.name}"`));
}

describe("the worker against the fixtures", () => {
  let mock, worker, key;
  before(async () => {
    mock = await startMockUpstream();
    const catalog = testCatalog();
    worker = await startWorker({ catalog: { ...catalog, models: [...catalog.models, ...fixtureModels()] }, bindings: mockBindings(mock.url) });
    key = (await worker.createAccount({ credits: 100 })).key;
  });
  after(async () => {
    await worker?.close();
    await mock?.close();
  });
  const post = (path, body) => fetch(`${worker.base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  // What the mock was sent for case `c` last (the upstream model names the case).
  const sent = (c) => mock.requests.filter((r) => r.url.includes(`/fixture-${c.name}:`)
    || [`"fixture-${c.name}"`, `"models/fixture-${c.name}"`].some((m) => JSON.stringify(r.body ?? {}).includes(m))).at(-1);
  // Gemini gives calls no IDs: the gateway's are made from its generation's ID, which
  // differs between the Rust tests and the worker; only their form is the same.
  const comparable = (c, g) => {
    if (c.family !== "gemini") return g;
    for (const call of g.calls) assert.match(call.id, /^call_[A-Za-z0-9]+_\d+$/);
    return { ...g, calls: g.calls.map(({ id: _, ...rest }) => rest) };
  };

  for (const c of CASES.filter((c) => c.stream)) {
    test(`${c.family}/${c.name}: streamed, and gathered into one reply`, async () => {
      const model = `fixture/${c.family}-${c.name}`;
      const r = await post("/chat/completions", { ...c.client, model });
      assert.equal(r.status, 200, await r.clone().text());
      const events = await collect(r.body);
      assert.deepEqual(events.at(-1), { done: true });
      const got = comparable(c, gist(events.filter((e) => e.data).map((e) => e.data)));
      const want = comparable(c, gist(c.expected));
      // A stream that failed before the provider counted anything is billed an
      // estimate of its prompt, which the Rust tests fix at 10 tokens (testutil):
      // the worker estimates the real prompt; the rest must be the same.
      if (want.error && want.usage?.prompt === 10) got.usage = want.usage = null;
      assert.deepEqual(got, want);
      assert.deepEqual(sent(c).body, upstreamBody(c), "the worker sent the case's upstream request");
      // The same request for one reply: gathered from the same stream.
      const whole = await post("/chat/completions", { ...c.client, model, stream: false });
      if (want.error) {
        // Content went out before the error: the reply says what was generated.
        assert.ok([200, 502].includes(whole.status), String(whole.status));
        return;
      }
      assert.equal(whole.status, 200, await whole.clone().text());
      assert.deepEqual(comparable(c, replyGist(await whole.json())), want);
    });
  }

  for (const c of CASES.filter((c) => c.error)) {
    test(`${c.family}/${c.name}: the provider's error reaches the client with its status and message`, async () => {
      const r = await post("/chat/completions", { ...c.client, model: `fixture/${c.family}-${c.name}` });
      const body = await r.json();
      assert.equal(r.status, c.expected.status, JSON.stringify(body));
      // The same message, naming the provider that served it (the mock here).
      const unnamed = (m) => m.replace(/^Provider \S+ /, "Provider _ ");
      assert.equal(unnamed(body.error.message), unnamed(c.expected.body.error.message));
    });
  }

  for (const c of CASES.filter((c) => c.client.input)) {
    test(`${c.family}/${c.name}: embeddings as the provider sent them`, async () => {
      const r = await post("/embeddings", { ...c.client, model: `fixture/${c.family}-${c.name}` });
      assert.equal(r.status, 200, await r.clone().text());
      const body = await r.json();
      assert.deepEqual(body.data, c.expected.reply.data);
      assert.equal(body.usage.prompt_tokens, c.expected.usage.prompt_tokens);
      assert.deepEqual(sent(c).body, upstreamBody(c), "the worker sent the case's upstream request");
    });
  }
});
