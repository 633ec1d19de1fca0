// Presets, aliases and the routers through the built worker (issue 26), with the
// official `openai` npm SDK unchanged: a preset made and used three ways, its fields
// overridden by the request's (asserted on the body the mock upstream received), its
// versions listed, written only by a provisioning key and unknown to another account;
// a `~author/family-latest` alias; `openrouter/auto` choosing a vision model for an
// image and a tool model for tools, sticky per session, reported in
// `openrouter_metadata`; and `openrouter/free`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startWorker, caller } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

let mock, worker, acc, client;

const model = (id, extra = {}) => ({
  id, name: `Test: ${id}`, created: 1700000000, description: id, context_length: 8192,
  input_modalities: ["text"], supported_parameters: ["max_tokens", "temperature"],
  endpoints: [{ provider: "mockai", upstream_model: "ok", pricing: { prompt: "0.0000001", completion: "0.0000001" } }],
  ...extra,
});
// What the preset sets goes upstream only where the endpoint takes it.
const SAMPLING = ["max_tokens", "temperature", "top_p", "seed", "tools", "tool_choice"];
const priced = (price) => [{ provider: "mockai", upstream_model: "ok", pricing: { prompt: price, completion: price } }];

function catalog() {
  const c = testCatalog();
  c.models.push(
    // A family of two: the alias names the newer.
    model("fam/alpha-1", { family: "fam/alpha", created: 1700000000, supported_parameters: SAMPLING }),
    model("fam/alpha-2", { family: "fam/alpha", created: 1710000000, supported_parameters: SAMPLING }),
    // What the auto router chooses among (allowed_models: ["auto/*"]), cheapest first.
    model("auto/text", { endpoints: priced("0.0000001") }),
    model("auto/vision", { input_modalities: ["text", "image"], endpoints: priced("0.0000002") }),
    model("auto/tools", { supported_parameters: ["max_tokens", "tools", "tool_choice"], endpoints: priced("0.0000003") }),
    // Free: only openrouter/free takes it; a priced model whose name says free is not.
    model("auto/free:free", { endpoints: priced("0") }),
    model("auto/freebie", { endpoints: priced("0.0000004") }),
  );
  return c;
}

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: catalog(), bindings: mockBindings(mock.url) });
  acc = await worker.createAccount({ credits: 10 });
  client = new OpenAI({ baseURL: worker.base, apiKey: acc.key, maxRetries: 0 });
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

const call = caller(() => worker);
const upstream = () => mock.last("/v1/chat/completions").body;
// Every upstream call is streamed (a whole reply is gathered by the gateway).
const STREAMED = { stream: true, stream_options: { include_usage: true } };
const lookup = { type: "function", function: { name: "lookup", description: "preset's lookup", parameters: { type: "object" } } };
const calc = { type: "function", function: { name: "calc", description: "adds", parameters: { type: "object" } } };

const PRESET = {
  slug: "terse-writer",
  name: "Terse writer",
  description: "short answers",
  system_prompt: "Answer in five words.",
  config: { model: "fam/alpha-1", temperature: 0.2, top_p: 0.5, max_tokens: 50, seed: 7, provider: { only: ["mockai"] }, tools: [lookup] },
};

test("a preset is made by a provisioning key, read by any key of the account, and no one else's", async () => {
  const denied = await call("POST", "/presets", acc.key, { ...PRESET, slug: "by-api-key" });
  assert.equal(denied.status, 403);
  assert.equal((await denied.json()).error.message, "Only a provisioning key can do this.");

  const made = await call("POST", "/presets", acc.provisioningKey, PRESET);
  assert.equal(made.status, 201, await made.clone().text());
  const { data } = await made.json();
  assert.match(data.id, /^pre_[0-9a-f]{32}$/);
  assert.deepEqual({ ...data, id: undefined, created_at: undefined, updated_at: undefined, designated_version: undefined }, {
    id: undefined, name: "Terse writer", slug: "terse-writer", description: "short answers", status: "active",
    status_updated_at: null, creator_user_id: null, workspace_id: null, designated_version_id: `${data.id}-v1`,
    created_at: undefined, updated_at: undefined, designated_version: undefined,
  });
  assert.equal(data.designated_version.version, 1);
  assert.equal(data.designated_version.system_prompt, "Answer in five words.");
  assert.deepEqual(data.designated_version.config, PRESET.config);

  const read = await call("GET", "/presets/terse-writer", acc.key);
  assert.equal(read.status, 200);
  assert.deepEqual((await read.json()).data, data);
  const list = await (await call("GET", "/presets", acc.key)).json();
  assert.deepEqual(list.data.map((p) => [p.slug, p.designated_version_id]), [["terse-writer", `${data.id}-v1`]]);

  // Another account has no such preset: to read, or to use.
  const other = await worker.createAccount({ credits: 1 });
  assert.equal((await call("GET", "/presets/terse-writer", other.key)).status, 404);
  const otherClient = new OpenAI({ baseURL: worker.base, apiKey: other.key, maxRetries: 0 });
  await assert.rejects(
    otherClient.chat.completions.create({ model: "@preset/terse-writer", messages: [{ role: "user", content: "hi" }] }),
    (e) => e.status === 404 && e.message.includes("Preset terse-writer not found"),
  );
  // Bounds and shapes are checked before anything is kept.
  for (const [body, message] of [
    [{ slug: "Bad Slug" }, "slug: must be 1 to 64 lowercase letters, digits, '-' or '_'"],
    [{ slug: "x", config: { messages: [] } }, "config.messages: a preset holds a request's setup, not its messages"],
    [{ slug: "x", config: { temperature: 5 } }, "config.temperature: must be between 0 and 2, not 5"],
    [{ slug: "x", system_prompt: 5 }, "system_prompt: must be a string or null"],
  ]) {
    const r = await call("POST", "/presets", acc.provisioningKey, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal((await r.json()).error.message, message);
  }
});

test("a preset used three ways, the request's fields winning field by field", async () => {
  const hi = [{ role: "user", content: "hello there" }];
  // 1. As the model: everything from the preset; its system prompt first.
  const r1 = await client.chat.completions.create({ model: "@preset/terse-writer", messages: hi });
  assert.equal(r1.model, "fam/alpha-1");
  assert.equal(r1.choices[0].message.content, "mock says: hello there");
  assert.deepEqual(upstream(), {
    model: "ok", ...STREAMED,
    messages: [{ role: "system", content: "Answer in five words." }, { role: "user", content: "hello there" }],
    max_tokens: 50, temperature: 0.2, top_p: 0.5, tools: [lookup], seed: 7,
  });
  // 2. The `preset` field beside a model (the SDK passes unknown fields as they are):
  // the model and the fields sent win; tools are joined, the request's after.
  const r2 = await client.chat.completions.create({
    model: "fam/alpha-2", preset: "terse-writer", temperature: 0.9, seed: 1, tools: [calc],
    messages: [{ role: "system", content: "Mine." }, ...hi],
  });
  assert.equal(r2.model, "fam/alpha-2");
  assert.deepEqual(upstream(), {
    model: "ok", ...STREAMED,
    messages: [{ role: "system", content: "Answer in five words." }, { role: "system", content: "Mine." }, { role: "user", content: "hello there" }],
    max_tokens: 50, temperature: 0.9, top_p: 0.5, tools: [lookup, calc], seed: 1,
  });
  // 3. `model@preset/slug` (a model without `top_p` or `seed`: not sent), streamed, a
  // completion budget of its own and a tool of the preset's name replaced.
  const mine = { type: "function", function: { name: "lookup", description: "my lookup" } };
  const stream = await client.chat.completions.create({
    model: "test/ok@preset/terse-writer", stream: true, max_completion_tokens: 20, tools: [mine], messages: hi,
  });
  let text = "", seen = "";
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    seen = chunk.model;
  }
  assert.equal(text, "mock says: hello there");
  assert.equal(seen, "test/ok");
  assert.deepEqual(upstream(), {
    model: "ok", ...STREAMED,
    messages: [{ role: "system", content: "Answer in five words." }, { role: "user", content: "hello there" }],
    max_completion_tokens: 20, temperature: 0.2, tools: [mine],
  });
});

test("versions: a PATCH makes a new one, the newest is used, all are listed newest first", async () => {
  const patched = await call("PATCH", "/presets/terse-writer", acc.provisioningKey, { system_prompt: null, config: { model: "fam/alpha-2", temperature: 1 } });
  assert.equal(patched.status, 200, await patched.clone().text());
  const { data } = await patched.json();
  assert.equal(data.designated_version.version, 2);
  assert.equal(data.designated_version.system_prompt, null);
  assert.equal((await call("PATCH", "/presets/terse-writer", acc.key, { config: {} })).status, 403);
  assert.equal((await call("PATCH", "/presets/nope", acc.provisioningKey, { config: {} })).status, 404);

  const r = await client.chat.completions.create({ model: "@preset/terse-writer", messages: [{ role: "user", content: "v2?" }] });
  assert.equal(r.model, "fam/alpha-2");
  assert.deepEqual(upstream(), { model: "ok", ...STREAMED, messages: [{ role: "user", content: "v2?" }], temperature: 1 });

  const versions = await (await call("GET", "/presets/terse-writer/versions", acc.key)).json();
  assert.deepEqual(versions.data.map((v) => [v.id, v.version, v.system_prompt, v.config.model]), [
    [`${data.id}-v2`, 2, null, "fam/alpha-2"],
    [`${data.id}-v1`, 1, "Answer in five words.", "fam/alpha-1"],
  ]);
  // Made from a chat completions body (OpenRouter's way): messages dropped, the system
  // message kept as the system prompt.
  const fromChat = await call("POST", "/presets/from-chat/chat/completions", acc.provisioningKey, {
    model: "test/ok", temperature: 0.3, messages: [{ role: "system", content: "Be kind." }, { role: "user", content: "x" }], stream: true,
  });
  assert.equal(fromChat.status, 201, await fromChat.clone().text());
  const fc = (await fromChat.json()).data.designated_version;
  assert.deepEqual([fc.system_prompt, fc.config], ["Be kind.", { model: "test/ok", temperature: 0.3 }]);
  // Deleted: gone for requests too.
  assert.equal((await call("DELETE", "/presets/from-chat", acc.key)).status, 403);
  const del = await call("DELETE", "/presets/from-chat", acc.provisioningKey);
  assert.deepEqual([del.status, await del.json()], [200, { data: { deleted: true } }]);
  await assert.rejects(
    client.chat.completions.create({ model: "@preset/from-chat", messages: [{ role: "user", content: "x" }] }),
    (e) => e.status === 404,
  );
});

test("an alias names the newest model of its family, and the reply the concrete one", async () => {
  const r = await client.chat.completions.create({ model: "~fam/alpha-latest", messages: [{ role: "user", content: "who?" }] });
  assert.equal(r.model, "fam/alpha-2");
  assert.equal(r.choices[0].message.content, "mock says: who?");
  await assert.rejects(
    client.chat.completions.create({ model: "~fam/beta-latest", messages: [{ role: "user", content: "x" }] }),
    (e) => e.status === 404,
  );
});

const IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const AUTO = { id: "auto-router", allowed_models: ["auto/*"] };

test("openrouter/auto chooses a vision model for an image, a tool model for tools, sticky per session", async () => {
  const raw = (body, headers = {}) => call("POST", "/chat/completions", acc.key, { model: "openrouter/auto", plugins: [AUTO], ...body }, headers);
  const text = await client.chat.completions.create({ model: "openrouter/auto", plugins: [AUTO], messages: [{ role: "user", content: "plain" }] });
  assert.equal(text.model, "auto/text");

  const image = [{ role: "user", content: [{ type: "text", text: "what is it?" }, { type: "image_url", image_url: { url: IMAGE } }] }];
  const r = await raw({ messages: image, session_id: "chat-1" }, { "X-OpenRouter-Metadata": "enabled" });
  assert.equal(r.status, 200, await r.clone().text());
  const body = await r.json();
  assert.equal(body.model, "auto/vision");
  const meta = body.openrouter_metadata;
  assert.equal(meta.requested, "openrouter/auto");
  assert.deepEqual(meta.pipeline, [{ name: "auto-router", data: {
    selected: "auto/vision", fallbacks: null, cost_tier: "low", needs: ["image"], eligible: 1, sticky: false } }]);

  const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }];
  const t = await client.chat.completions.create({ model: "openrouter/auto", plugins: [AUTO], tools, messages: [{ role: "user", content: "weather?" }] });
  assert.equal(t.model, "auto/tools");
  assert.deepEqual(upstream().tools, tools);
  assert.equal(upstream().plugins, undefined);

  // The session stays on its model while it takes the request; another session does not.
  const next = await client.chat.completions.create({ model: "openrouter/auto", plugins: [AUTO], session_id: "chat-1", messages: [{ role: "user", content: "and now?" }] });
  assert.equal(next.model, "auto/vision");
  const fresh = await client.chat.completions.create({ model: "openrouter/auto", plugins: [AUTO], session_id: "chat-2", messages: [{ role: "user", content: "and now?" }] });
  assert.equal(fresh.model, "auto/text");
  // The dearest band, and nothing that takes the request.
  const max = await client.chat.completions.create({ model: "openrouter/auto", plugins: [{ ...AUTO, allowed_models: ["auto/text", "auto/vision", "auto/tools"], cost_tier: "max" }], messages: [{ role: "user", content: "best" }] });
  assert.equal(max.model, "auto/tools");
  const none = await raw({ plugins: [{ ...AUTO, allowed_models: ["auto/text"] }], messages: image });
  assert.equal(none.status, 400);
  assert.equal((await none.json()).error.message,
    "model: openrouter/auto found no model that takes what this request needs (image) among the models allowed");
});

test("openrouter/free chooses among the free models only, and openrouter/auto never does", async () => {
  const free = await client.chat.completions.create({ model: "openrouter/free", plugins: [AUTO], messages: [{ role: "user", content: "hi" }] });
  assert.equal(free.model, "auto/free:free");
  assert.equal(free.choices[0].message.content, "mock says: hi");
  const auto = await client.chat.completions.create({ model: "openrouter/auto", plugins: [{ ...AUTO, allowed_models: ["*free*"] }], messages: [{ role: "user", content: "hi" }] });
  assert.equal(auto.model, "auto/freebie");
});
