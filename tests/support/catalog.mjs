// The catalogue the integration tests run against: the demo model plus test models
// whose upstream IDs name a mock_upstream.mjs script.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { FIXTURE_FAMILIES, fixtureCases, fixtureCase } from "./fixtures.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const shipped = JSON.parse(readFileSync(path.join(ROOT, "catalog/catalog.json"), "utf8"));

const price = { prompt: "0.000001", completion: "0.000002" };
const mock = (id, endpoints, extra = {}) => ({
  id, name: `Test: ${id}`, created: 1700000000, description: `mock model ${id}`,
  // The mocks take images and PDFs (the test of a text-only model uses the demo model).
  input_modalities: ["text", "image", "file"],
  context_length: 8192, supported_parameters: ["max_tokens", "temperature", "tools", "tool_choice"],
  endpoints: endpoints.map(([provider, upstream_model]) => ({ provider, upstream_model, pricing: price })),
  ...extra,
});

/** Provider families the mock speaks: [api, provider slug, provider name]. */
export const FAMILIES = [
  ["openai", "mockopenai", "MockOpenAI"],
  ["anthropic", "mockanthropic", "MockAnthropic"],
  ["gemini", "mockgemini", "MockGemini"],
];
/** Behaviours every family's mock has (see mock_upstream.mjs). */
export const SCRIPTS = ["ok", "recall", "stream", "tool", "agent", "json", "fail500", "fail429", "fail400", "hang", "garbage", "broken", "truncated"];

/** The mock provider of each fixture family. */
const FIXTURE_PROVIDER = { openai: "mockopenai", anthropic: "mockanthropic", gemini: "mockgemini" };

/** A model per fixture case, `fixture/<family>-<case>`: the shipped model the case's
 * client names (its limits, parameters and prices, so that the worker builds the
 * case's upstream request), served by its family's mock, which answers the upstream
 * model `fixture-<case>` with the case's files. Not in `testCatalog()`: add them where
 * they are used (tests/integration/fixtures.test.mjs). */
export function fixtureModels() {
  return FIXTURE_FAMILIES.flatMap((family) => fixtureCases(family).map((name) => {
    const model = shipped.models.find((m) => m.id === fixtureCase(family, name).client.model);
    const [endpoint] = model.endpoints;
    return { ...model, id: `fixture/${family}-${name}`, endpoints: [{ ...endpoint, provider: FIXTURE_PROVIDER[family], upstream_model: `fixture-${name}`,
      ...(family === "gemini" && { thinking_as: endpoint.upstream_model }) }] };
  }));
}

export function testCatalog() {
  return {
    version: 1,
    providers: [
      shipped.providers.find((p) => p.slug === "modelmux"),
      { slug: "mockai", name: "MockAI", api: "openai", base_url: "http://mockai.invalid/v1", data_policy: { training: false } },
      { slug: "mockbackup", name: "MockBackup", api: "openai", base_url: "http://mockbackup.invalid/v1", data_policy: { training: false } },
      { slug: "nokey", name: "NoKey", api: "openai", base_url: "http://nokey.invalid/v1" },
      ...FAMILIES.map(([api, slug, name]) => ({ slug, name, api, base_url: `http://${slug}.invalid/v1` })),
      { slug: "mockquota", name: "MockQuota", api: "openai", base_url: "http://mockquota.invalid/v1" },
      { slug: "mocktrain", name: "MockTrain", api: "openai", base_url: "http://mocktrain.invalid/v1", data_policy: { training: true, retains_prompts: true } },
      { slug: "mockretain", name: "MockRetain", api: "openai", base_url: "http://mockretain.invalid/v1", data_policy: { training: false, retains_prompts: true } },
      { slug: "mockdead", name: "MockDead", api: "openai", base_url: "http://127.0.0.1:1/v1" },
    ],
    models: [
      shipped.models.find((m) => m.id === "modelmux/echo"),
      mock("test/ok", [["mockai", "ok"]]),
      mock("test/stream", [["mockai", "stream"]]),
      mock("test/gated", [["mockai", "gated"]]),
      mock("test/fallback", [["mockai", "fail500"], ["mockbackup", "ok"]]),
      mock("test/ratelimited", [["mockai", "fail429"]]),
      mock("test/hang", [["mockai", "hang"]]),
      mock("test/garbage", [["mockai", "garbage"]]),
      mock("test/broken", [["mockai", "broken"]]),
      mock("test/truncated", [["mockai", "truncated"]]),
      mock("test/endless", [["mockai", "endless"]]),
      mock("test/slow", [["mockai", "slow"]]),
      mock("test/lateusage", [["mockai", "lateusage"]]),
      mock("test/lateusage-anthropic", [["mockanthropic", "lateusage"]]),
      mock("test/slowreply", [["mockai", "slowreply"]]),
      // Thinks without showing it, at about 100 tokens a second (no health figure yet).
      mock("test/hiddenthink", [], { context_length: 200000, endpoints: [
        { provider: "mockai", upstream_model: "hiddenthink", pricing: price, hidden_reasoning_tps: 100 }] }),
      mock("test/think", [["mockai", "think"]], { supported_parameters: ["max_tokens", "temperature", "reasoning", "include_reasoning"] }),
      mock("test/vision", [["mockai", "ok"]], { input_modalities: ["text", "image"] }),
      mock("test/thinkagent", [["mockanthropic", "thinkagent"]], { context_length: 200000, supported_parameters: ["max_tokens", "tools", "tool_choice", "reasoning", "include_reasoning"] }),
      mock("test/endless-anthropic", [["mockanthropic", "endless"]]),
      mock("test/gemini-media", [["mockgemini", "media"]], { input_modalities: ["text", "image", "file", "audio", "video"] }),
      mock("test/gemini-image", [], { output_modalities: ["image", "text"], endpoints: [
        { provider: "mockgemini", upstream_model: "image", pricing: { ...price, image_output: "0.00003" } }] }),
      mock("test/stall", [["mockai", "stall"]]),
      mock("test/search-anthropic", [], { endpoints: [{ provider: "mockanthropic", upstream_model: "ok", pricing: { ...price, web_search: "0.01" } }] }),
      mock("test/nokey", [["nokey", "ok"]]),
      mock("test/badkey", [["mockai", "fail401"]]),
      mock("test/googlebadkey", [["mockgemini", "googlebadkey"]]),
      mock("test/googlebadkey-fallback", [["mockgemini", "googlebadkey"], ["mockbackup", "ok"]]),
      mock("test/empty", [["mockai", "empty"]]),
      mock("test/emptystop", [["mockai", "emptystop"]]),
      mock("test/garbage-fallback", [["mockai", "garbage"], ["mockbackup", "ok"]]),
      mock("test/jsonanyway", [["mockai", "jsonanyway"]]),
      mock("test/bigreply", [["mockai", "bigreply"]]),
      mock("test/bigjson", [["mockai", "bigjson"]]),
      mock("test/nousage", [["mockai", "nousage"]]),
      mock("test/broken-fallback", [["mockai", "broken"], ["mockbackup", "ok"]]),
      // Dearer past 10 prompt tokens, for every token (as Google prices Gemini Pro past 200k).
      mock("test/tiered", [], { endpoints: [{ provider: "mockai", upstream_model: "ok",
        pricing: { ...price, tiers: [{ above_prompt_tokens: 10, prompt: "0.000003", completion: "0.000005" }] } }] }),
      ...[["test/embed-openai", [["mockopenai", "embed"]]], ["test/embed-gemini", [["mockgemini", "embed"]]], ["test/embed-fallback", [["mockai", "fail500"], ["mockbackup", "embed"]]]]
        .map(([id, eps]) => mock(id, eps, { output_modalities: ["embeddings"], supported_parameters: ["dimensions", "encoding_format"] })),
      mock("route/gauntlet", [["mockai", "fail500"], ["mockbackup", "fail429"], ["mockopenai", "hang"], ["mockdead", "ok"], ["mockquota", "stream"]]),
      mock("route/dead", [["mockai", "fail500"]]),
      mock("route/twin", [["mockai", "ok"], ["mockbackup", "ok"]]),
      mock("route/quota", [["mockquota", "ok"]], { endpoints: [{ provider: "mockquota", upstream_model: "ok", pricing: price, limits: { requests_per_minute: 2 } }] }),
      mock("route/quota-backup", [], { endpoints: [
        { provider: "mockquota", upstream_model: "tool", pricing: price, limits: { requests_per_minute: 2 } },
        { provider: "mockbackup", upstream_model: "ok", pricing: price },
      ] }),
      mock("route/trainer", [["mocktrain", "ok"]]),
      mock("route/retainer", [["mockretain", "ok"], ["mocktrain", "ok"]]),
      mock("route/flaky", [], { endpoints: [
        { provider: "mockai", upstream_model: "fail500", pricing: { prompt: "0.0000001", completion: "0.0000001" } },
        { provider: "mockbackup", upstream_model: "stream", pricing: { prompt: "0.00001", completion: "0.00001" } },
      ] }),
      // Room for what agents ask (Claude Code asks for 32,000 output tokens).
      ...FAMILIES.flatMap(([api, slug]) => SCRIPTS.map((script) => mock(`${api}-mock/${script}`, [[slug, script]], { context_length: 200000 }))),
      // Each family with an endpoint that generates at most 4,096 tokens per reply (its
      // mock refuses more, with the provider's own message).
      ...FAMILIES.map(([api, slug]) => mock(`${api}-mock/short`, [], { context_length: 200000,
        endpoints: [{ provider: slug, upstream_model: "ok@max4096", max_completion_tokens: 4096, pricing: price }] })),
    ],
  };
}

/** Worker bindings that point the test providers at the mock and give them keys. */
// The test catalogue plus test/pricey: test/ok's endpoints at 100 and 1000 µ$ a token
// (its reply of 11 prompt and 7 completion tokens costs $0.0081).
export function pricedCatalog() {
  const c = testCatalog();
  const ok = c.models.find((m) => m.id === "test/ok");
  c.models.push({
    ...ok, id: "test/pricey", name: "Test: pricey",
    endpoints: ok.endpoints.map((e) => ({ ...e, pricing: { prompt: "0.0001", completion: "0.001" } })),
  });
  return c;
}

export function mockBindings(mockUrl) {
  return {
    MOCKAI_BASE_URL: `${mockUrl}/v1`,
    MOCKAI_API_KEY: "sk-mockai-secret",
    MOCKBACKUP_BASE_URL: `${mockUrl}/backup/v1`,
    MOCKBACKUP_API_KEY: "sk-mockbackup-secret",
    MOCKQUOTA_BASE_URL: `${mockUrl}/quota/v1`,
    MOCKQUOTA_API_KEY: "sk-mockquota-secret",
    MOCKTRAIN_BASE_URL: `${mockUrl}/train/v1`,
    MOCKTRAIN_API_KEY: "sk-mocktrain-secret",
    MOCKRETAIN_BASE_URL: `${mockUrl}/retain/v1`,
    MOCKRETAIN_API_KEY: "sk-mockretain-secret",
    MOCKDEAD_API_KEY: "sk-mockdead-secret",
    MOCKOPENAI_BASE_URL: `${mockUrl}/openai/v1`,
    MOCKOPENAI_API_KEY: "sk-mockopenai-secret",
    MOCKANTHROPIC_BASE_URL: `${mockUrl}/anthropic/v1`,
    MOCKANTHROPIC_API_KEY: "sk-mockanthropic-secret",
    MOCKGEMINI_BASE_URL: `${mockUrl}/gemini/v1beta`,
    MOCKGEMINI_API_KEY: "sk-mockgemini-secret",
  };
}
