// Every provider family through the running worker: OpenAI-compatible, Anthropic and
// Gemini wire formats, replies, streams, tool calls, structured output, images, usage
// and cost, and each upstream failure mode.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream, MOCK_GEMINI_SIGNATURE, VIDEO_SECONDS, HUGE_MEDIA } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings, FAMILIES } from "../support/catalog.mjs";
import { collect } from "../support/sse.mjs";

let mock, worker, KEY;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: {
    ...mockBindings(mock.url), UPSTREAM_TIMEOUT_MS: "1000", UPSTREAM_REPLY_TIMEOUT_MS: "1000",
    // The mock serves media on 127.0.0.1, which the gateway otherwise never fetches.
    MEDIA_FETCH_ALLOW_HOSTS: new URL(mock.url).host, MEDIA_MAX_BYTES: String(2 * 1024 * 1024),
  } });
  KEY = (await worker.createAccount()).key;
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

const chatAs = (key, body) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
const chat = (body) => chatAs(KEY, body);
const user = (content) => [{ role: "user", content }];
const TOOLS = [{ type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];

async function streamed(body) {
  const r = await chat({ ...body, stream: true });
  assert.equal(r.status, 200);
  const events = await collect(r.body);
  assert.deepEqual(events.at(-1), { done: true });
  return events.filter((e) => e.data).map((e) => e.data);
}
const text = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");

for (const [api, slug, name] of FAMILIES) {
  const model = (script) => `${api}-mock/${script}`;
  const upstreamPath = `/${api}/`;

  describe(`${api} wire format`, () => {
    test("a max_tokens past what the endpoint generates is lowered to its maximum, on chat and Messages", async () => {
      const asked = (sent) => sent.body.max_completion_tokens ?? sent.body.max_tokens ?? sent.body.generationConfig?.maxOutputTokens;
      const r = await chat({ model: model("short"), max_tokens: 32000, messages: user("ping") });
      assert.equal(r.status, 200, await r.clone().text());
      assert.equal((await r.json()).choices[0].message.content, "mock says: ping");
      assert.equal(asked(mock.last(upstreamPath)), 4096);
      const m = await fetch(`${worker.base}/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${KEY}`, "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model: model("short"), max_tokens: 32000, messages: user("pong"),
          ...(api === "anthropic" ? { thinking: { type: "enabled", budget_tokens: 20000 } } : {}) }),
      });
      assert.equal(m.status, 200, await m.clone().text());
      const sent = mock.last(upstreamPath);
      assert.equal(asked(sent), 4096);
      if (api === "anthropic") assert.ok(sent.body.thinking.budget_tokens < 4096, "the thinking budget stays below max_tokens");
      // Within the endpoint's limit the ask goes as sent.
      assert.equal((await chat({ model: model("short"), max_tokens: 100, messages: user("ping") })).status, 200);
      assert.equal(asked(mock.last(upstreamPath)), 100);
    });

    test("plain reply with usage and cost", async () => {
      const r = await chat({ model: model("ok"), messages: [{ role: "system", content: "be nice" }, ...user("ping")] });
      assert.equal(r.status, 200);
      const body = await r.json();
      assert.equal(body.choices[0].message.content, "mock says: ping");
      assert.equal(body.choices[0].finish_reason, "stop");
      assert.equal(body.model, model("ok"));
      assert.equal(body.provider, name);
      assert.deepEqual([body.usage.prompt_tokens, body.usage.completion_tokens, body.usage.total_tokens], [11, 7, 18]);
      assert.equal(body.usage.cost, 0.000025);
      const sent = mock.last(upstreamPath);
      if (api === "anthropic") {
        assert.equal(sent.headers["x-api-key"], "sk-mockanthropic-secret");
        assert.equal(sent.body.system[0].text, "be nice");
      } else if (api === "gemini") {
        assert.equal(sent.headers["x-goog-api-key"], "sk-mockgemini-secret");
        // Asked for one reply, the gateway streams from the upstream and gathers it.
        assert.match(sent.url, /\/models\/ok:streamGenerateContent\?alt=sse$/);
        assert.equal(sent.body.systemInstruction.parts[0].text, "be nice");
      } else {
        assert.equal(sent.headers.authorization, "Bearer sk-mockopenai-secret");
      }
    });

    test("stream: chunks, finish, usage, [DONE]", async () => {
      const chunks = await streamed({ model: model("stream"), messages: user("x") });
      assert.equal(chunks[0].choices[0].delta.role, "assistant");
      assert.equal(text(chunks), "Hello from the mock");
      assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === "stop"));
      const last = chunks.at(-1);
      assert.deepEqual(last.choices, []);
      assert.equal(last.usage.prompt_tokens, 11);
      assert.ok(last.usage.cost > 0);
      assert.ok(chunks.every((c) => c.model === model("stream") && c.id === chunks[0].id));
    });

    test("tool call, not streamed", async () => {
      const r = await chat({ model: model("tool"), messages: user("weather in Paris?"), tools: TOOLS, tool_choice: "auto" });
      const body = await r.json();
      const call = body.choices[0].message.tool_calls[0];
      assert.equal(call.type, "function");
      assert.equal(call.function.name, "get_weather");
      assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
      assert.ok(call.id);
      assert.equal(body.choices[0].finish_reason, "tool_calls");
      const sent = mock.last(upstreamPath).body;
      const declared = api === "anthropic" ? sent.tools[0].name : api === "gemini" ? sent.tools[0].functionDeclarations[0].name : sent.tools[0].function.name;
      assert.equal(declared, "get_weather");
    });

    test("tool call, streamed", async () => {
      const chunks = await streamed({ model: model("tool"), messages: user("weather?"), tools: TOOLS });
      const deltas = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
      assert.equal(deltas[0].function.name, "get_weather");
      assert.ok(deltas[0].id);
      assert.deepEqual(JSON.parse(deltas.map((d) => d.function?.arguments ?? "").join("")), { city: "Paris" });
      assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === "tool_calls"));
    });

    test("tool result round trip is translated", async () => {
      const r = await chat({
        model: model("ok"), tools: TOOLS,
        messages: [
          ...user("weather?"),
          { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
          { role: "tool", tool_call_id: "call_1", content: '{"temp":18}' },
          ...user("and tomorrow?"),
        ],
      });
      assert.equal(r.status, 200);
      const sent = mock.last(upstreamPath).body;
      if (api === "anthropic") {
        assert.deepEqual(sent.messages[1].content[0], { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } });
        assert.equal(sent.messages[2].content[0].type, "tool_result");
      } else if (api === "gemini") {
        // A call without its thought signature gets the placeholder Gemini documents.
        assert.deepEqual(sent.contents[1].parts[0], { functionCall: { name: "get_weather", args: { city: "Paris" } }, thoughtSignature: "skip_thought_signature_validator" });
        assert.deepEqual(sent.contents[2].parts[0], { functionResponse: { name: "get_weather", response: { temp: 18 } } });
      } else {
        assert.equal(sent.messages[2].tool_call_id, "call_1");
      }
    });

    test("structured output", async () => {
      const schema = { type: "object", properties: { answer: { type: "integer" } }, required: ["answer"] };
      const r = await chat({ model: model("json"), messages: user("2+2?"), response_format: { type: "json_schema", json_schema: { name: "math", schema } } });
      const body = await r.json();
      assert.deepEqual(JSON.parse(body.choices[0].message.content), { answer: 4 });
      assert.equal(body.choices[0].finish_reason, "stop");
      const sent = mock.last(upstreamPath).body;
      if (api === "anthropic") assert.deepEqual(sent.tools[0].input_schema, schema);
      else if (api === "gemini") assert.deepEqual(sent.generationConfig.responseJsonSchema, schema);
      else assert.deepEqual(sent.response_format.json_schema.schema, schema);
    });

    test("image input", async () => {
      const r = await chat({ model: model("ok"), messages: [{ role: "user", content: [
        { type: "text", text: "what is this?" },
        { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
      ] }] });
      assert.equal(r.status, 200);
      const sent = mock.last(upstreamPath).body;
      if (api === "anthropic") assert.deepEqual(sent.messages[0].content[1].source, { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" });
      else if (api === "gemini") assert.deepEqual(sent.contents[0].parts[1], { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } });
      else assert.equal(sent.messages[0].content[1].image_url.url, "data:image/png;base64,iVBORw0KGgo=");
    });

    test("upstream 500 is a 502 naming the provider", async () => {
      const r = await chat({ model: model("fail500"), messages: user("x") });
      assert.equal(r.status, 502);
      const body = await r.json();
      assert.equal(body.error.code, 502);
      assert.equal(body.error.metadata.provider_name, slug);
      assert.match(body.error.message, /internal mock failure/);
    });

    test("upstream 429 is a 429 with Retry-After", async () => {
      const r = await chat({ model: model("fail429"), messages: user("x") });
      assert.equal(r.status, 429);
      assert.equal(r.headers.get("retry-after"), "17");
      assert.match((await r.json()).error.message, /Rate limit reached/);
    });

    test("upstream 400 is the caller's 400", async () => {
      const r = await chat({ model: model("fail400"), messages: user("x") });
      assert.equal(r.status, 400);
      assert.match((await r.json()).error.message, /mock refuses/);
    });

    test("timeout is a 408", async () => {
      const r = await chat({ model: model("hang"), messages: user("x") });
      assert.equal(r.status, 408);
    });

    test("garbage is a 502", async () => {
      const r = await chat({ model: model("garbage"), messages: user("x") });
      assert.equal(r.status, 502);
      assert.match((await r.json()).error.metadata.raw, /not json/);
    });

    test("dropped and truncated streams end with an error chunk", async () => {
      for (const script of ["broken", "truncated"]) {
        const chunks = await streamed({ model: model(script), messages: user("x") });
        const err = chunks.find((c) => c.error);
        assert.ok(err, `${script}: error chunk`);
        assert.equal(err.choices[0].finish_reason, "error");
        assert.ok(text(chunks).length > 0, `${script}: content before the failure arrived`);
      }
    });
  });
}

describe("reasoning round trip: Anthropic extended thinking with tools across turns", () => {
  const ask = (messages, extra = {}) => chat({ model: "test/thinkagent", reasoning: { max_tokens: 1024 }, tools: TOOLS, messages, ...extra });
  const next = (message) => [
    ...user("Weather in Paris?"),
    { role: "assistant", content: message.content, tool_calls: message.tool_calls, reasoning_details: message.reasoning_details },
    { role: "tool", tool_call_id: message.tool_calls[0].id, content: "18C" },
  ];

  test("not streamed: the thinking comes back as reasoning_details with its signature, and goes up again", async () => {
    const first = await (await ask(user("Weather in Paris?"))).json();
    const m = first.choices[0].message;
    assert.equal(m.reasoning, "I should call the tool.");
    assert.deepEqual(m.reasoning_details.map((d) => [d.type, d.format, typeof d.signature]), [["reasoning.text", "anthropic-claude-v1", "string"]]);
    const second = await ask(next(m));
    assert.equal(second.status, 200, await second.clone().text());
    assert.equal((await second.json()).choices[0].message.content, "The tool said: 18C");
  });

  test("streamed: the pieces, joined by the caller's client or not, are enough to continue", async () => {
    const events = await collect((await ask(user("Weather in Paris?"), { stream: true })).body);
    const deltas = events.filter((e) => e.data?.choices?.length).map((e) => e.data.choices[0].delta);
    const details = deltas.flatMap((d) => d.reasoning_details ?? []);
    assert.ok(details.length > 2 && details.at(-1).signature, JSON.stringify(details));
    const calls = deltas.flatMap((d) => d.tool_calls ?? []);
    const message = {
      content: null,
      tool_calls: [{ id: calls[0].id, type: "function", function: { name: calls[0].function.name, arguments: calls.map((c) => c.function.arguments).join("") } }],
      reasoning_details: details,
    };
    const second = await ask(next(message));
    assert.equal(second.status, 200, await second.clone().text());
  });

  test("without its thinking the turn is refused, with Anthropic's own message", async () => {
    const m = (await (await ask(user("Weather in Paris?"))).json()).choices[0].message;
    const r = await ask(next({ ...m, reasoning_details: undefined }));
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /must start with a thinking block/);
  });
});

describe("reasoning round trip: Gemini thought signatures on function calls", () => {
  const ask = (messages, extra = {}) => chat({ model: "gemini-mock/agent", tools: TOOLS, messages, ...extra });
  const next = (message) => [
    ...user("Weather in Paris?"),
    { role: "assistant", content: message.content, tool_calls: message.tool_calls, reasoning_details: message.reasoning_details },
    { role: "tool", tool_call_id: message.tool_calls[0].id, content: "18C" },
  ];
  const sentCall = () => mock.last("/gemini/").body.contents[1].parts.find((p) => p.functionCall);

  test("not streamed: the signature comes back tied to its call, and goes up on it again", async () => {
    const m = (await (await ask(user("Weather in Paris?"))).json()).choices[0].message;
    assert.deepEqual(m.reasoning_details, [{ type: "reasoning.encrypted", data: MOCK_GEMINI_SIGNATURE, id: m.tool_calls[0].id, format: "google-gemini-v1", index: 0 }]);
    const second = await ask(next(m));
    assert.equal(second.status, 200, await second.clone().text());
    assert.equal((await second.json()).choices[0].message.content, 'The tool said: {"content":"18C"}');
    assert.equal(sentCall().thoughtSignature, MOCK_GEMINI_SIGNATURE);
  });

  test("streamed: the signature arrives in a delta and is enough to continue", async () => {
    const events = await collect((await ask(user("Weather in Paris?"), { stream: true })).body);
    const deltas = events.filter((e) => e.data?.choices?.length).map((e) => e.data.choices[0].delta);
    const calls = deltas.flatMap((d) => d.tool_calls ?? []);
    const message = {
      content: null,
      tool_calls: [{ id: calls[0].id, type: "function", function: { name: calls[0].function.name, arguments: calls.map((c) => c.function.arguments).join("") } }],
      reasoning_details: deltas.flatMap((d) => d.reasoning_details ?? []),
    };
    assert.equal(message.reasoning_details[0].id, calls[0].id);
    const second = await ask(next(message));
    assert.equal(second.status, 200, await second.clone().text());
    assert.equal(sentCall().thoughtSignature, MOCK_GEMINI_SIGNATURE);
  });

  test("a call another model made goes up with the documented placeholder", async () => {
    const foreign = { content: null, tool_calls: [{ id: "toolu_01", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
      reasoning_details: [{ type: "reasoning.text", text: "hm", signature: "x", format: "anthropic-claude-v1", index: 0 }] };
    const r = await ask(next(foreign));
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(sentCall().thoughtSignature, "skip_thought_signature_validator");
  });
});

describe("media to Gemini: remote URLs fetched and inlined, files, audio and video", () => {
  const ask = (content) => chat({ model: "test/gemini-media", messages: [{ role: "user", content: [...content, { type: "text", text: "describe" }] }] });
  const said = async (r) => {
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()).choices[0].message.content;
  };

  test("http(s) URLs are fetched (redirects followed), YouTube and inline data go as they are", async () => {
    const r = await ask([
      { type: "image_url", image_url: { url: `${mock.url}/media/cat.png` } },
      { type: "file", file: { filename: "paper.pdf", file_data: `${mock.url}/media/paper` } },
      { type: "image_url", image_url: { url: `${mock.url}/media/hop` } },
      { type: "input_audio", input_audio: { data: Buffer.from("RIFFwave").toString("base64"), format: "wav" } },
      { type: "video_url", video_url: { url: "https://www.youtube.com/watch?v=9hE5-98ZeCg" } },
    ]);
    assert.equal(await said(r), "inline image/png 70B, inline application/pdf 13B, inline image/png 70B, inline audio/wav 8B, file https://www.youtube.com/watch?v=9hE5-98ZeCg");
  });

  test("a video the gateway cannot size is reserved at the context; what the provider bills is charged", async () => {
    const video = [{ type: "video_url", video_url: { url: "https://www.youtube.com/watch?v=9hE5-98ZeCg" } }, { type: "text", text: "describe" }];
    const send = (key) => chatAs(key, { model: "test/gemini-media", max_tokens: 10, messages: [{ role: "user", content: video }] });
    // $0.008 covers 2,000 tokens of video, not the 8,192-token context it may fill.
    const poor = await worker.createAccount({ credits: 0.008 });
    const seen = mock.requests.length;
    const refused = await send(poor.key);
    assert.equal(refused.status, 402, await refused.clone().text());
    assert.equal(mock.requests.length, seen, "refused before any upstream call");
    const rich = await worker.createAccount({ credits: 1 });
    const r = await send(rich.key);
    assert.equal(r.status, 200, await r.clone().text());
    const { usage } = await r.json();
    assert.equal(usage.prompt_tokens, 11 + VIDEO_SECONDS * 263, "the provider's own count");
    assert.ok(Math.abs(usage.cost - (usage.prompt_tokens * 0.000001 + usage.completion_tokens * 0.000002)) < 1e-12, `${usage.cost}`);
  });

  test("media in flight share the isolate's budget: past it a request is a 503 with Retry-After, never a dead isolate", async () => {
    const small = await startWorker({ catalog: testCatalog(), bindings: {
      ...mockBindings(mock.url), MEDIA_FETCH_ALLOW_HOSTS: new URL(mock.url).host, ISOLATE_MEDIA_BYTES: "100" } });
    try {
      const key = (await small.createAccount()).key;
      const send = (url) => fetch(`${small.base}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "test/gemini-media", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url } }, { type: "text", text: "describe" }] }] }),
      });
      // Two at once: the first holds the budget while it runs, the second is told to retry.
      const [a, b] = await Promise.all([send(`${mock.url}/media/slow.png`), new Promise((r) => setTimeout(r, 100)).then(() => send(`${mock.url}/media/cat.png`))]);
      assert.equal(a.status, 200, await a.clone().text());
      assert.equal(b.status, 503, await b.clone().text());
      assert.equal(b.headers.get("retry-after"), "1");
      assert.match((await b.json()).error.message, /retry shortly/);
      // Given back when the first ended.
      assert.equal((await send(`${mock.url}/media/cat.png`)).status, 200);
      // One request whose media pass what the whole isolate may hold: a 503 too, not the caller's 400.
      const big = await send(`${mock.url}/media/big`);
      assert.equal(big.status, 503, await big.clone().text());
      assert.equal((await send(`${mock.url}/media/cat.png`)).status, 200, "nothing left held");
    } finally {
      await small.close();
    }
  });

  test("two requests with the largest media at once in one isolate: each completes or is a clean 503, and the isolate lives on", async () => {
    // The defaults: MEDIA_MAX_BYTES (20 MiB) each, ISOLATE_MEDIA_BYTES (24 MiB) for both.
    const one = await startWorker({ catalog: testCatalog(), bindings: { ...mockBindings(mock.url), MEDIA_FETCH_ALLOW_HOSTS: new URL(mock.url).host } });
    try {
      const key = (await one.createAccount({ credits: 10 })).key;
      const send = (name, stream = false) => fetch(`${one.base}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "test/gemini-media", stream, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: `${mock.url}/media/huge-${name}.png` } }, { type: "text", text: "describe" }] }] }),
      });
      const said = `inline image/png ${HUGE_MEDIA.length}B`;
      const seen = mock.requests.length;
      const both = await Promise.all([send("a"), send("b")]);
      let served = 0;
      for (const r of both) {
        if (r.status === 503) {
          assert.equal(r.headers.get("retry-after"), "1");
          assert.match((await r.json()).error.message, /retry shortly/);
          continue;
        }
        assert.equal(r.status, 200, await r.clone().text());
        assert.equal((await r.json()).choices[0].message.content, said);
        served++;
      }
      assert.ok(served >= 1, "at least one is served");
      // What went up is the media's base64, whole and in place.
      const sent = mock.requests.slice(seen).filter((q) => q.url.startsWith("/gemini/"));
      assert.equal(sent.length, served);
      const b64 = HUGE_MEDIA.toString("base64");
      for (const q of sent) assert.ok(q.body.contents[0].parts[0].inlineData.data === b64, "the base64 of the media");
      // The isolate is alive and its budget given back: again, one and then streamed.
      assert.equal((await (await send("c")).json()).choices[0].message.content, said);
      const events = await collect((await send("d", true)).body);
      assert.equal(events.filter((e) => e.data?.choices?.length).map((e) => e.data.choices[0].delta.content ?? "").join(""), said);
      assert.doesNotMatch(one.logs(), /exceeded|memory limit|out of memory|restart/i);
    } finally {
      await one.close();
    }
  });

  test("private addresses, failed fetches and oversized media are the caller's 400, naming the field", async () => {
    for (const [url, why] of [
      ["http://10.0.0.1/cat.png", /private or local address/],
      ["http://169.254.169.254/latest/meta-data/", /private or local address/],
      [`${mock.url}/media/to-private`, /private or local address/],
      [`${mock.url}/media/missing`, /HTTP 404/],
      [`${mock.url}/media/big`, /larger than/],
      ["ftp://example.com/cat.png", /http/],
    ]) {
      const r = await ask([{ type: "image_url", image_url: { url } }]);
      assert.equal(r.status, 400, url);
      const { error } = await r.json();
      assert.match(error.message, /messages\[0\]\.content\[0\]\.image_url\.url/, url);
      assert.match(error.message, why, url);
    }
  });

  test("every spelling of a loopback or inside address is refused, never fetched", async () => {
    // A server on the loopback that is not in MEDIA_FETCH_ALLOW_HOSTS: any hit fails.
    const hits = [];
    const trap = http.createServer((req, res) => { hits.push(req.url); res.writeHead(200, { "content-type": "image/png" }); res.end("x"); });
    await new Promise((r) => trap.listen(0, "127.0.0.1", r));
    const port = trap.address().port;
    try {
      for (const host of ["127.0.0.%31", "127.0.0.\t1", "127.0.0.\n1", "\u{ff11}\u{ff12}\u{ff17}.0.0.1", "127\u{ff0e}0.0.1",
        "2130706433", "0177.0.0.1", "0x7f000001", "0x7f.1", "127.1", "127.0.0.1.", "[::\t1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
        "localhost", "LocalHost.", "trap.localhost", "trap.local", "trap.internal", "trap"]) {
        const url = `http://${host}:${port}/${hits.length}.png`;
        const r = await ask([{ type: "image_url", image_url: { url } }]);
        assert.equal(r.status, 400, JSON.stringify(url));
        assert.match((await r.json()).error.message, /messages\[0\]\.content\[0\]\.image_url\.url: is a private or local address/, JSON.stringify(url));
      }
      for (const url of ["http://169.254.169.\n254/latest/meta-data/", "http://[fec0::1]/x", "http://[fd00::1]/x", "http://100.64.0.1/x"]) {
        const r = await ask([{ type: "image_url", image_url: { url } }]);
        assert.equal(r.status, 400, JSON.stringify(url));
        await r.body?.cancel();
      }
      assert.deepEqual(hits, []);
    } finally {
      trap.close();
    }
  });

  // What a name resolves to only the network knows (a public-looking name may resolve to
  // 127.0.0.1: 127.0.0.1.nip.io, or a line in /etc/hosts). Here `localhost` stands for
  // such a name: listed, it passes the gateway's check on the URL, and workerd resolves
  // it to the loopback, where the public-only network media goes out through stops it.
  test("a host name that resolves to the loopback is never fetched", async () => {
    const hits = [];
    const trap = http.createServer((req, res) => { hits.push(req.url); res.writeHead(200, { "content-type": "image/png" }); res.end("x"); });
    await new Promise((r) => trap.listen(0, "127.0.0.1", r));
    const port = trap.address().port;
    const named = await startWorker({ catalog: testCatalog(), bindings: { ...mockBindings(mock.url), MEDIA_FETCH_ALLOW_HOSTS: `localhost:${port}` } });
    try {
      const { key } = await named.createAccount();
      const r = await fetch(`${named.base}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "test/gemini-media", messages: user([{ type: "image_url", image_url: { url: `http://localhost:${port}/cat.png` } }, { type: "text", text: "describe" }]) }),
      });
      assert.equal(r.status, 400);
      assert.match((await r.json()).error.message, /messages\[0\]\.content\[0\]\.image_url\.url: could not be fetched/);
      assert.deepEqual(hits, []);
    } finally {
      await named.close();
      trap.close();
    }
  });

  test("a Gemini Files API URI (read with the operator's key) is refused unless the operator allows it", async () => {
    const file = "https://generativelanguage.googleapis.com/v1beta/files/abc-123";
    const r = await ask([{ type: "text", text: "read" }, { type: "file", file: { filename: "f.pdf", file_data: file } }]);
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /messages\[0\]\.content\[1\]\.file\.file_data: Gemini Files API/);
    // An operator who means its tenants to use its files says so.
    const allowing = await startWorker({ catalog: testCatalog(), bindings: { ...mockBindings(mock.url), MEDIA_ALLOW_GEMINI_FILES: "true" } });
    try {
      const { key } = await allowing.createAccount();
      const ok = await fetch(`${allowing.base}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "test/gemini-media", messages: user([{ type: "file", file: { filename: "f.pdf", file_data: file } }, { type: "text", text: "read" }]) }),
      });
      assert.equal(await said(ok), `file ${file}`);
    } finally {
      await allowing.close();
    }
  });
});

describe("image output", () => {
  test("Gemini images come back in message.images, priced at the image output price", async () => {
    const r = await chat({ model: "test/gemini-image", modalities: ["image", "text"], messages: user("draw a red square") });
    assert.equal(r.status, 200, await r.clone().text());
    const body = await r.json();
    const m = body.choices[0].message;
    assert.equal(m.content, "A tiny red square.");
    assert.match(m.images[0].image_url.url, /^data:image\/png;base64,iVBOR/);
    assert.equal(body.usage.completion_tokens_details.image_tokens, 1290);
    // 9 prompt tokens at $1/M, 5 text tokens at $2/M, 1290 image tokens at $30/M.
    assert.equal(body.usage.cost, 0.038719);
    assert.deepEqual(mock.last("/gemini/").body.generationConfig.responseModalities, ["IMAGE", "TEXT"]);
  });

  test("the hold prices every output token as an image for a model that draws", async () => {
    const send = (key) => chatAs(key, { model: "test/gemini-image", modalities: ["image", "text"], max_tokens: 2000, messages: user("draw") });
    // $0.03 covers 2,000 text tokens ($0.004) but not 2,000 image tokens ($0.06): the
    // mock bills $0.0387 for its one image.
    const poor = await worker.createAccount({ credits: 0.03 });
    const seen = mock.requests.length;
    const refused = await send(poor.key);
    assert.equal(refused.status, 402, await refused.clone().text());
    assert.equal(mock.requests.length, seen, "refused before any upstream call");
    const r = await send((await worker.createAccount({ credits: 1 })).key);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).usage.cost, 0.038719);
  });

  test("streamed: images arrive in delta.images", async () => {
    const chunks = await streamed({ model: "test/gemini-image", modalities: ["image", "text"], messages: user("draw") });
    const images = chunks.flatMap((c) => c.choices[0]?.delta?.images ?? []);
    assert.equal(images.length, 1);
    assert.match(images[0].image_url.url, /^data:image\/png;base64,/);
    assert.equal(chunks.at(-1).usage.cost, 0.038719);
  });

  test("a model that only writes text is a 400", async () => {
    const r = await chat({ model: "test/ok", modalities: ["image", "text"], messages: user("draw") });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /does not output images/);
  });
});

describe("documents to Anthropic", () => {
  test("file parts become document blocks the strict mock accepts", async () => {
    const r = await chat({ model: "anthropic-mock/ok", messages: [{ role: "user", content: [
      { type: "file", file: { filename: "paper.pdf", file_data: "data:application/pdf;base64,JVBERi0x" } },
      { type: "text", text: "summarise" },
    ] }] });
    assert.equal(r.status, 200, await r.clone().text());
    assert.deepEqual(mock.last("/anthropic/").body.messages[0].content[0],
      { type: "document", title: "paper.pdf", source: { type: "base64", media_type: "application/pdf", data: "JVBERi0x" } });
  });
});

test("the end user's ID goes upstream as a stable keyed hash per account, never as sent", async () => {
  const other = (await worker.createAccount()).key;
  const sentUser = async (key, path, body, api) => {
    const r = await fetch(`${worker.base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "anthropic-version": "2023-06-01" },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200, await r.clone().text());
    await r.arrayBuffer();
    const sent = mock.last(`/${api}/`).body;
    return api === "anthropic" ? sent.metadata?.user_id : sent.user;
  };
  const asChat = (api) => ({ model: `${api}-mock/ok`, user: "alice@example.com", messages: user("hi") });
  const first = await sentUser(KEY, "/chat/completions", asChat("openai"), "openai");
  assert.match(first, /^mm-user-[0-9a-f]{32}$/);
  assert.equal(await sentUser(KEY, "/chat/completions", asChat("openai"), "openai"), first, "stable");
  assert.equal(await sentUser(KEY, "/chat/completions", asChat("anthropic"), "anthropic"), first, "metadata.user_id");
  const messages = { model: "anthropic-mock/ok", max_tokens: 10, metadata: { user_id: "alice@example.com" }, messages: user("hi") };
  assert.equal(await sentUser(KEY, "/messages", messages, "anthropic"), first, "the Messages body sent as it is");
  assert.notEqual(await sentUser(other, "/chat/completions", asChat("openai"), "openai"), first, "another account's alice");
});

describe("a conversation moves between families", () => {
  test("Anthropic's thinking and cache markers do not reach a strict OpenAI endpoint", async () => {
    const r = await chat({ model: "openai-mock/ok", messages: [
      { role: "system", content: [{ type: "text", text: "be brief", cache_control: { type: "ephemeral" } }] },
      { role: "user", content: "weather?", cache_control: { type: "ephemeral" } },
      { role: "assistant", content: null, reasoning: "I should call the tool.",
        reasoning_details: [{ type: "reasoning.text", text: "I should call the tool.", signature: "sig", format: "anthropic-claude-v1", index: 0 }],
        tool_calls: [{ id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
      { role: "tool", tool_call_id: "toolu_1", content: "18C" },
      ...user("and tomorrow?"),
    ], tools: TOOLS });
    assert.equal(r.status, 200, await r.clone().text());
    const sent = mock.last("/openai/").body.messages;
    for (const m of sent) for (const k of Object.keys(m)) assert.ok(["role", "content", "tool_calls", "tool_call_id"].includes(k), k);
    assert.ok(!("reasoning_details" in sent[2]) && !("cache_control" in sent[1]) && !("cache_control" in sent[0].content[0]));
  });
});

test("a reply longer than the pieces it is written in arrives whole, on every family", async () => {
  // The client's body is written into a JavaScript array 64 KiB at a time.
  const long = Array.from({ length: 40000 }, (_, i) => `w${i}`).join(" ");
  for (const [api] of FAMILIES) {
    const r = await chat({ model: `${api}-mock/ok`, messages: user(long) });
    assert.equal(r.status, 200, api);
    const body = await r.text();
    assert.equal(Number(r.headers.get("content-length") ?? body.length), Buffer.byteLength(body), api);
    assert.equal(JSON.parse(body).choices[0].message.content, `mock says: ${long}`, api);
  }
});
