// BYOK through the built worker (issue 26): an account's own provider key added with a
// provisioning key and never shown again; the provider sees that key (not the
// operator's) on the first attempt; the fee charged exactly (credits before and after);
// a fallback key tried after shared capacity; a refused key falling to shared capacity,
// or not when "always use" is set; `provider.allow_byok: false`; the key never in any
// reply, listing or log.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, caller } from "../support/worker.mjs";
import { testCatalog } from "../support/catalog.mjs";
import { startByokUpstream, OPERATOR_KEY } from "../support/byok_upstream.mjs";
import { exactBody, picos } from "../support/money.mjs";
import { eventually } from "../support/eventually.mjs";

// The account's own keys (the provider's), which must never come back.
const USER_KEY = "sk-user-0123456789abcdefWXYZ";
const SECOND_KEY = "sk-user-second-key-000000QRST";
const REVOKED_KEY = "sk-user-revoked-9999999999ABCD";
// 32 bytes of hex: the deployment's BYOK_ENCRYPTION_KEY.
const ENCRYPTION_KEY = "7f".repeat(32);

// byok/m at 100 and 1000 µ$ a token: 11 prompt and 7 completion tokens cost $0.0081;
// the fee at 5% is $0.000405.
const PRICE = { prompt: "0.0001", completion: "0.001" };
const FULL = picos("0.0081");
const FEE = picos("0.000405");

function catalog() {
  const c = testCatalog();
  c.providers.push({ slug: "byokai", name: "ByokAI", api: "openai", base_url: "http://byokai.invalid/v1", data_policy: { training: false } });
  const model = (id, upstream) => ({
    id, name: id, created: 1700000000, description: id, input_modalities: ["text"], output_modalities: ["text"],
    context_length: 8192, supported_parameters: ["max_tokens", "temperature"],
    endpoints: [{ provider: "byokai", upstream_model: upstream, pricing: PRICE }],
  });
  c.models.push(model("byok/m", "ok"), model("byok/flaky", "flaky"));
  return c;
}

let up, worker, acc;
const replies = [];

before(async () => {
  up = await startByokUpstream();
  worker = await startWorker({
    catalog: catalog(),
    bindings: { BYOKAI_BASE_URL: `${up.url}/v1`, BYOKAI_API_KEY: OPERATOR_KEY, BYOK_ENCRYPTION_KEY: ENCRYPTION_KEY, SETTLE_FLUSH_MS: "20" },
  });
  acc = await worker.createAccount({ credits: 10 });
});

after(async () => {
  // Nothing of the account's provider keys in anything the worker answered or logged.
  const all = replies.join("\n") + worker?.logs();
  for (const k of [USER_KEY, SECOND_KEY, REVOKED_KEY, ENCRYPTION_KEY]) {
    assert.ok(!all.includes(k), `a key leaked: ${k.slice(0, 12)}`);
  }
  await worker?.close();
  await up?.close();
});

const rawCall = caller(() => worker);
const call = async (...args) => {
  const r = await rawCall(...args);
  const text = await r.text();
  replies.push(text);
  return { status: r.status, text, json: () => JSON.parse(text) };
};
const chat = (body = {}) => call("POST", "/chat/completions", acc.key,
  { model: "byok/m", messages: [{ role: "user", content: "hi" }], max_tokens: 10, ...body });
const usage = async () => {
  const r = await call("GET", "/credits", acc.key);
  return picos(String(r.json().data.total_usage));
};
const settled = () => eventually(async () => {
  const a = (await worker.admin("GET", `/accounts/${acc.id}`)).data;
  return a.reserved === 0 && a;
}, "every hold settled");

let credential;

test("a provisioning key adds a provider key; it is shown masked and never again", async () => {
  const body = { provider: "byokai", key: USER_KEY, name: "mine" };
  assert.equal((await call("POST", "/byok", acc.key, body)).status, 403, "an API key manages no BYOK keys");
  const bad = await call("POST", "/byok", acc.provisioningKey, { provider: "nowhere", key: USER_KEY });
  assert.equal(bad.status, 400);
  assert.match(bad.json().error.message, /^provider: not a provider of this gateway/);
  const empty = await call("POST", "/byok", acc.provisioningKey, { provider: "byokai", key: "" });
  assert.equal(empty.json().error.message, "key: must be a non-empty string");
  const r = await call("POST", "/byok", acc.provisioningKey, body);
  assert.equal(r.status, 201, r.text);
  credential = r.json().data;
  assert.match(credential.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(
    { ...credential, id: undefined, created_at: undefined },
    { id: undefined, created_at: undefined, provider: "byokai", workspace_id: null, label: "sk-...WXYZ", name: "mine", disabled: false,
      is_fallback: false, always_use: false, allowed_models: null, allowed_api_key_hashes: null, allowed_user_ids: null,
      sort_order: 0, updated_at: null },
  );
  const list = await call("GET", "/byok", acc.provisioningKey);
  assert.equal(list.status, 200);
  assert.equal(list.json().total_count, 1);
  assert.equal(list.json().data[0].label, "sk-...WXYZ");
  assert.ok(!list.text.includes("envelope") && !list.text.includes("v1:"), list.text);
  const one = await call("GET", `/byok/${credential.id}`, acc.provisioningKey);
  assert.equal(one.json().data.id, credential.id);
  assert.equal((await call("GET", "/byok/nope", acc.provisioningKey)).status, 404);
});

test("the provider sees the account's key on the first attempt, and the fee is charged exactly", async () => {
  await settled();
  const before = await usage();
  const from = up.calls.length;
  const r = await chat();
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(up.keysSince(from), [USER_KEY], "one attempt, with the account's key");
  const u = r.json().usage;
  assert.equal(u.is_byok, true);
  assert.equal(picos(String(u.cost)), FEE);
  assert.equal(picos(String(u.cost_details.upstream_inference_cost)), FULL);
  await settled();
  assert.equal((await usage()) - before, FEE);
  const id = r.json().id;
  const g = await eventually(async () => {
    const x = await call("GET", `/generation?id=${id}`, acc.key);
    return x.status === 200 && x.json().data;
  }, "the generation's record");
  assert.equal(g.is_byok, true);
  assert.equal(picos(String(g.total_cost)), FEE);
  // Streamed too: the final usage says the same.
  const from2 = up.calls.length;
  const s = await chat({ stream: true });
  assert.equal(s.status, 200);
  assert.deepEqual(up.keysSince(from2), [USER_KEY]);
  const last = s.text.split("\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6))).find((c) => c.usage);
  assert.equal(last.usage.is_byok, true);
  assert.equal(picos(String(last.usage.cost)), FEE);
});

test("provider.allow_byok: false uses shared capacity at the full price", async () => {
  const from = up.calls.length;
  const r = await chat({ provider: { allow_byok: false } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(up.keysSince(from), [OPERATOR_KEY]);
  assert.equal(r.json().usage.is_byok, undefined);
  assert.equal(picos(String(r.json().usage.cost)), FULL);
  const bad = await chat({ provider: { allow_byok: "yes" } });
  assert.equal(bad.status, 400);
  assert.match(bad.json().error.message, /provider\.allow_byok/);
});

test("a fallback key is tried after shared capacity", async () => {
  const p = await call("PATCH", `/byok/${credential.id}`, acc.provisioningKey, { is_fallback: true });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json().data.is_fallback, true);
  // Shared capacity serves byok/m first now.
  let from = up.calls.length;
  assert.equal((await chat()).status, 200);
  assert.deepEqual(up.keysSince(from), [OPERATOR_KEY]);
  // byok/flaky's shared endpoint fails for the operator's key: the fallback key serves.
  from = up.calls.length;
  const r = await chat({ model: "byok/flaky" });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(up.keysSince(from), [OPERATOR_KEY, USER_KEY]);
  assert.equal(r.json().usage.is_byok, true);
  const back = await call("PATCH", `/byok/${credential.id}`, acc.provisioningKey, { is_fallback: false });
  assert.equal(back.json().data.is_fallback, false);
});

test("a refused key falls to shared capacity, unless always_use is set", async () => {
  // The key rotated in place to one the provider refuses.
  const p = await call("PATCH", `/byok/${credential.id}`, acc.provisioningKey, { key: REVOKED_KEY });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json().data.label, "sk-...ABCD");
  let from = up.calls.length;
  const ok = await chat();
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(up.keysSince(from), [REVOKED_KEY, OPERATOR_KEY]);
  assert.equal(ok.json().usage.is_byok, undefined);
  // "Always use for this provider": no shared capacity for it.
  await call("PATCH", `/byok/${credential.id}`, acc.provisioningKey, { always_use: true });
  // The served request's charge is in once its record is (both are the settlement's).
  await eventually(async () => (await call("GET", `/generation?id=${ok.json().id}`, acc.key)).status === 200, "the served request's record");
  await settled();
  const before = await usage();
  from = up.calls.length;
  const r = await chat();
  assert.deepEqual(up.keysSince(from), [REVOKED_KEY]);
  assert.equal(r.status, 401, r.text);
  const e = r.json().error;
  assert.equal(e.code, 401);
  assert.equal(e.metadata.error_type, "authentication");
  assert.equal(e.metadata.provider_name, "ByokAI");
  assert.match(e.message, /^Provider ByokAI refused your BYOK key \(credential [0-9a-f-]+\)/);
  await settled();
  assert.equal(await usage(), before, "a refused request costs nothing");
  // A second, good key of the same provider is tried before giving up.
  const second = await call("POST", "/byok", acc.provisioningKey, { provider: "byokai", key: SECOND_KEY });
  assert.equal(second.status, 201);
  assert.equal(second.json().data.sort_order, 1);
  from = up.calls.length;
  const served = await chat();
  assert.equal(served.status, 200, served.text);
  assert.deepEqual(up.keysSince(from), [REVOKED_KEY, SECOND_KEY]);
  const del = await call("DELETE", `/byok/${second.json().data.id}`, acc.provisioningKey);
  assert.deepEqual(del.json(), { deleted: true });
  const gone = await call("DELETE", `/byok/${credential.id}`, acc.provisioningKey);
  assert.equal(gone.status, 200);
  from = up.calls.length;
  assert.equal((await chat()).status, 200);
  assert.deepEqual(up.keysSince(from), [OPERATOR_KEY]);
});

test("a key's allowlist and model filter decide who uses a credential", async () => {
  const other = await call("POST", "/keys", acc.provisioningKey, { name: "other" });
  const otherKey = other.json().key;
  const hash = other.json().data.hash;
  const r = await call("POST", "/byok", acc.provisioningKey, { provider: "byokai", key: USER_KEY, allowed_api_key_hashes: [hash], allowed_models: ["byok/m"] });
  assert.equal(r.status, 201, r.text);
  const foreign = await call("POST", "/byok", acc.provisioningKey, { provider: "byokai", key: USER_KEY, allowed_api_key_hashes: ["0".repeat(64)] });
  assert.equal(foreign.status, 400);
  let from = up.calls.length;
  assert.equal((await chat()).status, 200);
  assert.deepEqual(up.keysSince(from), [OPERATOR_KEY], "not the key's credential");
  from = up.calls.length;
  const mine = await call("POST", "/chat/completions", otherKey, { model: "byok/m", messages: [{ role: "user", content: "hi" }] });
  assert.equal(mine.status, 200, mine.text);
  assert.deepEqual(up.keysSince(from), [USER_KEY]);
  from = up.calls.length;
  const flaky = await call("POST", "/chat/completions", otherKey, { model: "byok/flaky", messages: [{ role: "user", content: "hi" }] });
  assert.equal(flaky.status, 502, "byok/flaky is not in the credential's models");
  assert.deepEqual(up.keysSince(from), [OPERATOR_KEY]);
});

test("without BYOK_ENCRYPTION_KEY BYOK is off, with a clear error", async () => {
  const w = await startWorker({ catalog: catalog(), bindings: { BYOKAI_BASE_URL: `${up.url}/v1`, BYOKAI_API_KEY: OPERATOR_KEY } });
  try {
    const a = await w.createAccount({ credits: 1 });
    const r = await fetch(`${w.base}/byok`, { method: "POST", headers: { authorization: `Bearer ${a.provisioningKey}`, "content-type": "application/json" },
      body: JSON.stringify({ provider: "byokai", key: USER_KEY }) });
    const text = await r.text();
    replies.push(text);
    assert.equal(r.status, 503);
    assert.match(JSON.parse(text).error.message, /^BYOK is disabled on this gateway: the BYOK_ENCRYPTION_KEY secret is not set/);
  } finally {
    await w.close();
  }
});
