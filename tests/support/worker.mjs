// Runs the built worker (build/, from `make build`) in workerd through miniflare, with
// fresh in-memory KV and SQLite Durable Objects, seeded with a catalogue.
import { createHash } from "node:crypto";
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { Miniflare } from "miniflare";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const sha256 = (s) => createHash("sha256").update(s).digest("hex");

/** Vars of wrangler.toml's [vars], so tests run with the deployed defaults. */
function wranglerVars() {
  const text = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
  const section = text.split(/^\[vars\]\s*$/m)[1]?.split(/^\[/m)[0] ?? "";
  const vars = {};
  for (const m of section.matchAll(/^([A-Z0-9_]+)\s*=\s*"([^"]*)"/gm)) vars[m[1]] = m[2];
  return vars;
}

export const ADMIN_KEY = "test-admin-key-0123456789";
/** The deployment's key-tagging secret in tests. */
export const KEY_SECRET = "test-key-secret-9876543210";

export async function startWorker({ catalog, bindings = {}, assets = true, inspectorPort, build = path.join(ROOT, "build") } = {}) {
  const logs = [];
  if (!existsSync(path.join(build, "index.js"))) throw new Error("build/index.js missing: run `make build`");
  const mf = new Miniflare({
    modules: true,
    modulesRoot: build,
    scriptPath: path.join(build, "index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-01",
    // As wrangler.toml's compatibility_flags.
    compatibilityFlags: ["enable_request_signal"],
    kvNamespaces: ["CATALOG"],
    // As wrangler.toml's [assets]: the pages, with the API paths going to the worker.
    // Without them (benchmarks) requests reach the worker directly, as API paths do on
    // Cloudflare, where the static routing happens before any worker runs; miniflare
    // runs its assets router as one more worker in front.
    ...(assets ? { assets: {
      directory: path.join(ROOT, "public"),
      binding: "ASSETS",
      routerConfig: { has_user_worker: true, static_routing: { user_worker: ["/api/*", "/admin/*"] } },
    } } : {}),
    ...(inspectorPort ? { inspectorPort } : {}),
    durableObjects: {
      COUNTERS: { className: "Counters", useSQLite: true },
      ACCOUNTS: { className: "Account", useSQLite: true },
      HEALTH: { className: "Health", useSQLite: true },
    },
    bindings: { ...wranglerVars(), ECHO_STREAM_DELAY_MS: "0", ADMIN_KEY, KEY_SECRET, ...bindings },
    // Everything the worker logs, kept so tests can check that no secret is in it.
    handleRuntimeStdio(stdout, stderr) {
      for (const s of [stdout, stderr]) s.on("data", (d) => logs.push(d.toString()));
    },
    host: "127.0.0.1",
    port: 0,
  });
  const url = await mf.ready;
  const kv = await mf.getKVNamespace("CATALOG");
  if (catalog) await kv.put("catalog", JSON.stringify(catalog));
  const admin = async (method, path, body) => {
    const r = await fetch(`${url.origin}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await r.json();
    if (!r.ok) throw new Error(`admin ${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    url: url.origin,
    base: `${url.origin}/api/v1`,
    mf,
    kv,
    admin,
    /** What the worker has printed so far. */
    logs: () => logs.join(""),
    /** A new account: {id, key (API key), provisioningKey}. */
    async createAccount({ credits = 10, allow_training = false, name = "test" } = {}) {
      const r = await admin("POST", "/accounts", { name, credits, allow_training });
      return { id: r.data.id, key: r.api_key, provisioningKey: r.provisioning_key };
    },
    close: () => mf.dispose(),
  };
}
