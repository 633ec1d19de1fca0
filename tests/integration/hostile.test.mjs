// Hostile input through the built worker: malformed JSON of every kind, wrong types and
// invalid values for every field, forged and malformed keys, odd paths and methods,
// oversized and deeply nested bodies. Each must get the right 4xx with OpenRouter's
// error body, none may reach an upstream or reserve money, and afterwards the worker
// must still serve, with no secret in any reply or log line.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startWorker, ADMIN_KEY, KEY_SECRET } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

const MAX_BODY = 65536;
let mock, worker, KEY, PROV, ACCOUNT;
const replies = [];

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({
    catalog: testCatalog(),
    bindings: { ...mockBindings(mock.url), MAX_BODY_BYTES: String(MAX_BODY), UPSTREAM_TIMEOUT_MS: "1500", UPSTREAM_REPLY_TIMEOUT_MS: "1500" },
  });
  const acc = await worker.createAccount({ credits: 10 });
  ({ key: KEY, provisioningKey: PROV, id: ACCOUNT } = acc);
});

after(async () => {
  await worker?.close();
  await mock?.close();
});

const msg = [{ role: "user", content: "hi" }];
const ok = { model: "test/ok", messages: msg };
/** `ok` with `field` set to `value`. */
const w = (field, value) => ({ ...ok, [field]: value });
const user = (content) => w("messages", [{ role: "user", content }]);

/** One request on its own connection (node:http, no agent): what is tested is each
 * answer, not whether a pooled connection survives the refusal before it. */
async function send({ method = "POST", path = "/api/v1/chat/completions", key = KEY, headers = {}, body }) {
  const h = { ...headers };
  if (key !== null && !("authorization" in h)) h.authorization = `Bearer ${key}`;
  if (body !== undefined && !("content-type" in h)) h["content-type"] = "application/json";
  const data = body === undefined ? undefined : typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
  const url = new URL(`${worker.url}${path}`);
  const { status, headers: got, text } = await new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: h, agent: false }, (res) => {
      const parts = [];
      res.on("data", (d) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(parts).toString() }));
      res.on("error", reject);
    });
    req.on("error", (e) => reject(new Error(`${method} ${path}: ${e.message}`)));
    req.end(data);
  });
  replies.push(text);
  const hs = new Headers();
  for (const [k, v] of Object.entries(got)) hs.set(k, Array.isArray(v) ? v.join(", ") : String(v));
  return { status, headers: hs, text };
}

function assertShape(r, status, pattern, name) {
  assert.equal(r.status, status, `${name}: ${r.text.slice(0, 300)}`);
  assert.match(r.headers.get("content-type") ?? "", /application\/json/, name);
  const body = JSON.parse(r.text);
  assert.equal(body.error.code, status, name);
  assert.equal(typeof body.error.message, "string", name);
  if (pattern) assert.match(body.error.message, pattern, `${name}: ${body.error.message}`);
}

// [name, request, status, message pattern]
const CASES = [];
const add = (name, req, status, pattern) => CASES.push([name, req, status, pattern]);

// --- malformed JSON of every kind
for (const [name, body] of [
  ["empty body", ""],
  ["lone brace", "{"],
  ["lone bracket", "["],
  ["null", "null"],
  ["number", "123"],
  ["string", '"chat"'],
  ["array", "[]"],
  ["truncated object", '{"model":"test/ok","messages":[{"role":"user","content":"hi"'],
  ["single quotes", "{'model': 'test/ok'}"],
  ["trailing comma", '{"model":"test/ok","messages":[],}'],
  ["trailing garbage", JSON.stringify(ok) + "xyz"],
  ["NaN literal", '{"model":"test/ok","messages":[{"role":"user","content":"hi"}],"temperature":NaN}'],
  ["comment", '{"model":"test/ok" /* hi */}'],
  ["invalid utf-8", new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
  ["lone surrogate escape", '{"model":"test/ok","messages":[{"role":"user","content":"\\ud800"}]}'],
  ["deep nesting", '{"model":"test/ok","messages":[{"role":"user","content":"hi"}],"metadata":' + "[".repeat(200) + "]".repeat(200) + "}"],
  ["duplicate-free garbage bytes", new Uint8Array([0, 1, 2, 3, 255])],
]) add(`malformed: ${name}`, { body }, 400);

// --- wrong types for every field
for (const [field, value, pattern] of [
  ["model", 5, /model: must be a string/],
  ["model", ["test/ok"], /model: must be a string/],
  ["messages", {}, /messages: must be an array/],
  ["messages", "hi", /messages: must be an array/],
  ["messages", [1], /messages\[0\]: must be an object/],
  ["messages", [{ role: 5, content: "x" }], /messages\[0\]\.role: must be a string/],
  ["messages", [{ role: "user", content: 5 }], /messages\[0\]\.content: must be a string or an array/],
  ["messages", [{ role: "user", content: { text: "x" } }], /messages\[0\]\.content/],
  ["temperature", "hot", /temperature: must be a number/],
  ["top_p", [], /top_p: must be a number/],
  ["max_tokens", "100", /max_tokens: must be a whole number/],
  ["max_tokens", 1.5, /max_tokens: must be a whole number/],
  ["n", "2", /n: must be a whole number/],
  ["stream", "yes", /stream: must be a boolean/],
  ["tools", {}, /tools: must be an array/],
  ["tools", [1], /tools\[0\]: must be an object/],
  ["tool_choice", 5, /tool_choice: must be a string or an object/],
  ["stop", 5, /stop: must be a string or an array/],
  ["stop", [1], /stop\[0\]: must be a string/],
  ["response_format", "json", /response_format: must be an object/],
  ["provider", [], /provider/],
  ["provider", { order: "openai" }, /provider\.order/],
  ["provider", { allow_fallbacks: "no" }, /provider\.allow_fallbacks/],
  ["reasoning", "high", /reasoning: must be an object/],
  ["seed", "42", /seed: must be an integer/],
  ["logit_bias", [], /logit_bias: must be an object/],
  ["models", "test/ok", /models: must be an array/],
  ["models", [5], /models\[0\]: must be a string/],
  ["stream_options", 5, /stream_options: must be an object/],
  ["user", 5, /user: must be a string/],
  ["metadata", "x", /metadata: must be an object/],
  ["parallel_tool_calls", "x", /parallel_tool_calls: must be a boolean/],
  ["logprobs", 1, /logprobs: must be a boolean/],
]) add(`type: ${field} = ${JSON.stringify(value)}`, { body: w(field, value) }, 400, pattern);

// --- invalid values of known fields
const tool = (name) => ({ type: "function", function: { name, parameters: { type: "object", properties: {} } } });
for (const [name, body, pattern] of [
  ["unknown role", w("messages", [...msg, msg[0], { role: "wizard", content: "x" }]), /messages\[2\]\.role: unknown role "wizard"/],
  ["function role", w("messages", [{ role: "function", name: "f", content: "x" }]), /unknown role "function"/],
  ["unknown part type", user([{ type: "hologram" }]), /content\[0\]\.type: unknown content part type "hologram"/],
  ["image_url without url", user([{ type: "image_url", image_url: {} }]), /image_url\.url: is required/],
  ["image_url without object", user([{ type: "image_url" }]), /image_url: is required/],
  ["file:// image", user([{ type: "image_url", image_url: { url: "file:///etc/passwd" } }]), /must be an http\(s\) URL or a data: URL/],
  ["image detail", user([{ type: "image_url", image_url: { url: "https://x/y.png", detail: "ultra" } }]), /detail/],
  ["text part without text", user([{ type: "text" }]), /content\[0\]\.text: is required/],
  ["image in system", w("messages", [{ role: "system", content: [{ type: "image_url", image_url: { url: "https://x" } }] }]), /system messages cannot carry/],
  ["missing content", w("messages", [{ role: "user" }]), /messages\[0\]\.content: is required/],
  ["empty messages", w("messages", []), /messages: must not be empty/],
  ["no model", { messages: msg }, /model: is required/],
  ["empty model", w("model", ""), /model: must not be empty/],
  ["long model", w("model", "a/" + "b".repeat(300)), /model: must be at most/],
  ["tool msg without id", w("messages", [...msg, { role: "tool", content: "x" }]), /tool_call_id: is required/],
  ["tool msg with unknown id", w("messages", [...msg, { role: "tool", tool_call_id: "call_nope", content: "x" }]), /answers no tool call/],
  ["tool_calls on user", w("messages", [{ role: "user", content: "x", tool_calls: [] }]), /only assistant messages carry tool calls/],
  ["tool call without id", w("messages", [{ role: "assistant", content: null, tool_calls: [{ type: "function", function: { name: "f" } }] }]), /tool_calls\[0\]\.id: is required/],
  ["tool_choice names no tool", { ...ok, tools: [tool("get_weather")], tool_choice: { type: "function", function: { name: "launch" } } }, /"launch" is not one of the tools/],
  ["tool_choice required without tools", w("tool_choice", "required"), /needs at least one tool/],
  ["tool_choice unknown", w("tool_choice", "sometimes"), /tool_choice: must be/],
  ["bad tool name", w("tools", [tool("get weather!")]), /tools\[0\]\.function\.name/],
  ["duplicate tool", w("tools", [tool("f"), tool("f")]), /defined twice/],
  ["tool type", w("tools", [{ type: "retrieval" }]), /tools\[0\]\.type: must be "function"/],
  ["tool parameters not object", w("tools", [{ type: "function", function: { name: "f", parameters: { type: "array" } } }]), /parameters\.type/],
  ["response_format yaml", w("response_format", { type: "yaml" }), /response_format\.type: must be one of/],
  ["json_schema missing", w("response_format", { type: "json_schema" }), /response_format\.json_schema: is required/],
  ["temperature 3", w("temperature", 3), /temperature: must be between 0 and 2/],
  ["temperature -1", w("temperature", -1), /temperature: must be between 0 and 2/],
  ["top_p 2", w("top_p", 2), /top_p: must be between 0 and 1/],
  ["frequency_penalty 5", w("frequency_penalty", 5), /frequency_penalty/],
  ["presence_penalty -9", w("presence_penalty", -9), /presence_penalty/],
  ["top_logprobs 50", w("top_logprobs", 50), /top_logprobs/],
  ["n 0", w("n", 0), /n: must be a whole number from 1 to 16/],
  ["n 100000", w("n", 100000), /n: must be a whole number from 1 to 16, not 100000/],
  ["max_tokens 0", w("max_tokens", 0), /max_tokens/],
  ["max_tokens absurd", w("max_tokens", 1e15), /max_tokens: must be a whole number from 1 to 10000000/],
  ["max_completion_tokens negative", w("max_completion_tokens", -5), /max_completion_tokens/],
  ["nine fallback models", w("models", Array(9).fill("test/ok")), /models: at most 8 models/],
  ["seventeen stops", w("stop", Array(17).fill("x")), /stop: at most 16/],
  ["huge stop", w("stop", "x".repeat(2000)), /stop: must be at most 1024 bytes/],
  ["logit_bias out of range", w("logit_bias", { 50256: 500 }), /logit_bias\.50256/],
  ["reasoning effort", w("reasoning", { effort: "max" }), /reasoning\.effort: must be one of/],
  ["reasoning_effort", w("reasoning_effort", "ultra"), /reasoning_effort: must be one of/],
  ["provider data_collection", w("provider", { data_collection: "maybe" }), /provider\.data_collection/],
  ["provider sort", w("provider", { sort: "fastest" }), /provider\.sort/],
  ["modalities", w("modalities", ["smell"]), /modalities\[0\]/],
]) add(`value: ${name}`, { body }, 400, pattern);
add("value: unknown model", { body: w("model", "nobody/nothing") }, 404, /not a valid model ID/);

// --- forged and malformed keys: refused before the body is read
const hex = (n) => Array.from({ length: n }, (_, i) => "0123456789abcdef"[(i * 7 + 3) % 16]).join("");
for (const [name, headers] of [
  ["no authorization", {}],
  ["basic auth", { authorization: "Basic dXNlcjpwYXNz" }],
  ["empty bearer", { authorization: "Bearer " }],
  ["short key", { authorization: "Bearer sk-mm-v1-abc" }],
  ["forged well-formed key", { authorization: `Bearer sk-mm-v1-${hex(64)}` }],
  ["other gateway's key", { authorization: `Bearer sk-or-v1-${hex(64)}` }],
  ["forged x-api-key", { "x-api-key": `sk-mm-v1-${hex(64)}` }],
  ["unicode key", { authorization: "Bearer sk-mm-v1-ééé" }],
  ["very long key", { authorization: `Bearer sk-mm-v1-${"a".repeat(6000)}` }],
]) add(`key: ${name}`, { key: null, headers, body: ok }, 401);
add("key: tag flipped", { key: "FLIP_TAG", body: ok }, 401, /User not found/);
add("key: account changed", { key: "FLIP_ACCOUNT", body: ok }, 401, /User not found/);
add("key: uppercased", { key: "UPPER", body: ok }, 401);
add("key: forged key with an oversized body", { key: null, headers: { authorization: `Bearer sk-mm-v1-${hex(64)}` }, body: "x".repeat(MAX_BODY * 2) }, 401);
add("key: provisioning key calling a model", { key: "PROV", body: ok }, 403);

// --- odd paths and methods on every route
for (const [method, path, status] of [
  ["GET", "/api/v1/models/endpoints", 404],
  ["GET", "/api/v1/models//endpoints", 404],
  ["GET", "/api/v1/models/a/endpoints", 404],
  ["GET", "/api/v1/models/%ZZ/%/endpoints", 404],
  ["GET", "/api/v1/models/%C3%A9/endpoints", 404],
  ["GET", "/api/v1/models/nobody/nothing/endpoints", 404],
  ["GET", "/api/v1/models/endpoints/endpoints/endpoints", 404],
  ["GET", "/api/v1", 404],
  ["GET", "/api/v1/", 404],
  ["GET", "/api/v2/models", 404],
  ["GET", "/api/v1models", 404],
  ["GET", "/api/v1/" + "x".repeat(3000), 404],
  ["GET", "/api/v1/chat/completions", 405],
  ["PUT", "/api/v1/models", 405],
  ["DELETE", "/api/v1/chat/completions", 405],
  ["POST", "/api/v1/providers", 405],
  ["POST", "/api/v1/key", 405],
  ["PUT", "/api/v1/keys", 405],
  ["POST", "/api/v1/keys/abc", 405],
  ["GET", "/api/v1/keys/a/b", 404],
  ["POST", "/admin/v1/accounts", 401],
  ["GET", "/api/v1/keys/../models", 200],
  ["GET", "/admin/v1/../api/v1/models", 404],
]) add(`path: ${method} ${path.slice(0, 60)}`, { method, path, body: method === "GET" || method === "DELETE" ? undefined : {} }, status);
add("path: generation without id", { method: "GET", path: "/api/v1/generation" }, 400, /id: is required/);
add("path: generation unknown", { method: "GET", path: "/api/v1/generation?id=gen-nope" }, 404);
add("path: activity bad date", { method: "GET", path: "/api/v1/activity?date=yesterday", key: "PROV" }, 400, /date/);
// Years that overflow the calendar arithmetic, and days no month has: a 400 naming the field.
for (const date of ["9223372036854775807-01-01", "-9223372036854775808-01-01", "99999999999-12-31", "2026-02-30", "2026-13-01", "2026-1-1"]) {
  add(`path: activity date ${date}`, { method: "GET", path: `/api/v1/activity?date=${date}`, key: "PROV" }, 400, /^date: /);
}
add("path: key update not JSON", { method: "PATCH", path: "/api/v1/keys/abc", key: "PROV", body: "not json" }, 400);
add("path: key update bad limit", { method: "PATCH", path: "/api/v1/keys/abc", key: "PROV", body: { limit: "lots" } }, 400, /limit/);
add("path: key create without name", { method: "POST", path: "/api/v1/keys", key: "PROV", body: {} }, 400, /name: is required/);
add("path: key create nested", { method: "POST", path: "/api/v1/keys", key: "PROV", body: "[".repeat(100) + "]".repeat(100) }, 400);
const adminAuth = { authorization: `Bearer ${ADMIN_KEY}` };
add("admin: negative credits", { method: "POST", path: "/admin/v1/accounts", key: null, headers: adminAuth, body: { credits: -1 } }, 400, /credits/);
add("admin: text credits", { method: "POST", path: "/admin/v1/accounts", key: null, headers: adminAuth, body: { credits: "lots" } }, 400, /credits/);
add("admin: absurd credits", { method: "POST", path: "/admin/v1/accounts", key: null, headers: adminAuth, body: { credits: 1e7 } }, 400, /credits/);
add("admin: bad account id", { method: "GET", path: "/admin/v1/accounts/zz", key: null, headers: adminAuth }, 404);
add("admin: wrong admin key", { method: "GET", path: "/admin/v1/accounts/0123456789abcdef", key: null, headers: { authorization: "Bearer nope" } }, 401);

// --- oversized bodies
add("size: declared over the cap", { body: w("messages", [{ role: "user", content: "x".repeat(MAX_BODY) }]) }, 413);

function resolveKey(k) {
  if (k === "FLIP_TAG") return KEY.slice(0, -1) + (KEY.endsWith("0") ? "1" : "0");
  if (k === "FLIP_ACCOUNT") return KEY.slice(0, 9) + (KEY[9] === "0" ? "1" : "0") + KEY.slice(10);
  if (k === "UPPER") return KEY.toUpperCase();
  if (k === "PROV") return PROV;
  return k;
}

test(`${CASES.length} hostile requests each get the right 4xx in OpenRouter's shape`, async () => {
  assert.ok(CASES.length >= 80, `only ${CASES.length} cases`);
  const before = mock.requests.length;
  const failures = [];
  for (const [name, req, status, pattern] of CASES) {
    const key = req.key === undefined ? KEY : resolveKey(req.key);
    const r = await send({ ...req, key });
    try {
      if (status === 200) assert.equal(r.status, 200, name);
      else assertShape(r, status, pattern, name);
    } catch (e) {
      failures.push(e.message.split("\n")[0]);
    }
  }
  assert.deepEqual(failures, []);
  assert.equal(mock.requests.length, before, "a hostile request reached an upstream");
  // Nothing was reserved or charged: the account is untouched.
  const acc = await worker.admin("GET", `/accounts/${ACCOUNT}`);
  assert.equal(acc.data.reserved, 0);
  assert.equal(acc.data.total_usage, 0);
});

test("a chunked body without Content-Length is cut off at the cap with 413", async () => {
  // On its own connection (node:http, no agent): the gateway stops reading at the cap
  // and answers, and the connection of a client still sending is not reused.
  const url = new URL(`${worker.base}/chat/completions`);
  let answered = false;
  const { status, headers, text } = await new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: "POST", agent: false,
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", "transfer-encoding": "chunked" } },
      (res) => {
        answered = true;
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, headers: new Headers(res.headers), text: body }));
      },
    );
    // Writing into a connection the gateway has answered and closed may fail: fine.
    req.on("error", (e) => (answered ? undefined : reject(e)));
    const chunk = "x".repeat(16384);
    let sent = 0;
    const pump = () => {
      while (sent < MAX_BODY * 4) {
        sent += chunk.length;
        if (!req.write(chunk)) return req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
  replies.push(text);
  assertShape({ status, headers, text }, 413, /larger than 65536 bytes/, "chunked");
});

test("an upstream that refuses our own provider key is a 503 without its reply", async () => {
  const r = await send({ body: w("model", "test/badkey") });
  assertShape(r, 503, /misconfigured/, "badkey");
  assert.doesNotMatch(r.text, /Incorrect API key|sk-mockai-secret/);
});

test("Google's 400 for our bad API key is the endpoint failing: 503, and the next endpoint serves", async () => {
  const r = await send({ body: w("model", "test/googlebadkey") });
  assertShape(r, 503, /misconfigured/, "googlebadkey");
  assert.doesNotMatch(r.text, /API key not valid/);
  const f = await send({ body: w("model", "test/googlebadkey-fallback") });
  assert.equal(f.status, 200, f.text);
  assert.equal(JSON.parse(f.text).provider, "MockBackup");
});

test("CORS preflight and JSON errors on every route", async () => {
  const r = await fetch(`${worker.base}/chat/completions`, { method: "OPTIONS", headers: { origin: "https://example.com", "access-control-request-method": "POST" } });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
});

test("the static pages carry a Content-Security-Policy that forbids framing", async () => {
  for (const page of ["/", "/account.html"]) {
    const r = await fetch(`${worker.url}${page}`);
    assert.equal(r.status, 200, page);
    const csp = r.headers.get("content-security-policy") ?? "";
    assert.match(csp, /frame-ancestors 'none'/, page);
    assert.match(csp, /default-src 'self'/, page);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff", page);
    await r.text();
  }
});

test("after all of it the worker still serves, and no secret is in any reply or log", async () => {
  const r = await send({ body: { model: "test/ok", messages: msg } });
  assert.equal(r.status, 200, r.text);
  const s = await send({ body: { model: "modelmux/echo", messages: msg, stream: true } });
  assert.equal(s.status, 200);
  assert.match(s.text, /data: \[DONE\]/);
  const secrets = [KEY, PROV, ADMIN_KEY, KEY_SECRET, ...Object.entries(mockBindings(mock.url)).filter(([k]) => k.endsWith("_API_KEY")).map(([, v]) => v)];
  const logs = worker.logs();
  for (const secret of secrets) {
    for (const text of replies) assert.ok(!text.includes(secret), `a reply contains a secret: ${text.slice(0, 200)}`);
    assert.ok(!logs.includes(secret), "the logs contain a secret");
  }
});
