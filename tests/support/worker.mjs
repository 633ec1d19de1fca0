// Runs the built worker (build/, from `make build`) in workerd through miniflare, with
// fresh in-memory KV and SQLite Durable Objects, seeded with a catalogue.
import { createHash } from "node:crypto";
import http from "node:http";
import { Readable } from "node:stream";
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

// `call(method, path, key, body)` against a worker started later: JSON in, as a key.
export const caller = (worker) => (method, path, key, body, headers = {}) =>
  fetch(`${worker().base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

export const ADMIN_KEY = "test-admin-key-0123456789";
/** The deployment's key-tagging secret in tests. */
export const KEY_SECRET = "test-key-secret-9876543210";

/** The options of one worker running the built worker (`build`): its bindings, and
 * its Durable Object bindings, hosted by itself or, with `host`, by the worker of that
 * name (bound by `scriptName`: one set of objects for several isolates). */
function workerOptions({ build, bindings, host, name, assets = false, directSocket = false, kv = [], traceQueue = false }) {
  const object = (className) => ({ className, useSQLite: true, ...(host ? { scriptName: host } : {}) });
  return {
    ...(name ? { name } : {}),
    modules: true,
    modulesRoot: build,
    scriptPath: path.join(build, "index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-01",
    // As wrangler.toml's compatibility_flags.
    compatibilityFlags: ["enable_request_signal"],
    // `kv`: more namespaces a test binds (the response cache's `RESPONSE_CACHE`).
    kvNamespaces: ["CATALOG", ...kv],
    // As wrangler.toml's [[r2_buckets]]: stored Responses and trace export.
    r2Buckets: ["RESPONSES", "TRACES"],
    // `traceQueue`: as wrangler.toml's (commented) trace queue, the worker its own
    // consumer; batches of up to 64 spans, within 1 s, retried twice, then dead-lettered.
    ...(traceQueue ? {
      queueProducers: { TRACE_QUEUE: { queueName: "modelmux-traces" } },
      queueConsumers: { "modelmux-traces": { maxBatchSize: 64, maxBatchTimeout: 1, maxRetries: 2, deadLetterQueue: "modelmux-traces-dlq" } },
    } : {}),
    // As wrangler.toml's [assets]: the pages, with the API paths going to the worker.
    // Without them (benchmarks) requests reach the worker directly, as API paths do on
    // Cloudflare, where the static routing happens before any worker runs; miniflare
    // runs its assets router as one more worker in front.
    ...(assets ? { assets: {
      directory: path.join(ROOT, "public"),
      binding: "ASSETS",
      routerConfig: { has_user_worker: true, static_routing: { user_worker: ["/api/*", "/admin/*"] } },
    } } : {}),
    durableObjects: { COUNTERS: object("Counters"), ACCOUNTS: object("Account"), HEALTH: object("Health"), RECORDS: object("Records") },
    // Test hooks (`TEST_FAIL_SETTLES`, ...) act only with TEST_HOOKS set: set where one is used.
    // (An explicit `TEST_HOOKS: ""` turns them off again.)
    bindings: { ...wranglerVars(), ECHO_STREAM_DELAY_MS: "0", ADMIN_KEY, KEY_SECRET,
      ...(Object.keys(bindings).some((k) => k.startsWith("TEST_")) ? { TEST_HOOKS: "1" } : {}), ...bindings },
    // Media named by a host name goes out through a network that reaches public
    // addresses only, whatever the name resolves to (README "Media").
    serviceBindings: { MEDIA_FETCHER: { network: { allow: ["public"], tlsOptions: { trustBrowserCas: true } } } },
    // A socket of its own, straight to this worker (`Miniflare#unsafeGetDirectURL`).
    ...(directSocket ? { unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] } : {}),
  };
}

/** Starts miniflare with `workers`, the catalogue in their (shared) KV; what every
 * harness returns: the admin API and account creation through the first worker. */
async function start({ workers, catalog, inspectorPort, build }) {
  if (!existsSync(path.join(build, "index.js"))) throw new Error("build/index.js missing: run `make build`");
  const logs = [];
  const mf = new Miniflare({
    workers,
    ...(inspectorPort ? { inspectorPort } : {}),
    // Everything the workers log, kept so tests can check that no secret is in it.
    handleRuntimeStdio(stdout, stderr) {
      for (const s of [stdout, stderr]) s.on("data", (d) => logs.push(d.toString()));
    },
    host: "127.0.0.1",
    port: 0,
  });
  const url = await mf.ready;
  const kv = await mf.getKVNamespace("CATALOG", workers[0].name);
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
    /** What the workers have printed so far. */
    logs: () => logs.join(""),
    /** A new account: {id, key (API key), provisioningKey}. */
    async createAccount({ credits = 10, allow_training = false, name = "test" } = {}) {
      const r = await admin("POST", "/accounts", { name, credits, allow_training });
      return { id: r.data.id, key: r.api_key, provisioningKey: r.provisioning_key };
    },
    close: () => mf.dispose(),
  };
}

/** The built worker in one isolate, hosting its own Durable Objects. */
export async function startWorker({ catalog, bindings = {}, assets = true, inspectorPort, build = path.join(ROOT, "build"), kv = [], traceQueue = false } = {}) {
  return start({ workers: [workerOptions({ build, bindings, assets, kv, traceQueue })], catalog, inspectorPort, build });
}

/** Name of the worker that hosts a cluster's Durable Objects. */
export const CLUSTER_HOST = "host";

/**
 * Several isolates for real: `n` instances of the built worker, each its own worker
 * (so its own isolate, with its own leases, settlement queues and key cache), all bound
 * by `scriptName` to the one set of Durable Objects that a host worker (the same build)
 * defines, as a deployment's isolates share them. Each instance has its own socket:
 * `instances[i]` is `{name, url, base}`; the admin API (`admin`, `createAccount`) goes
 * through the host.
 */
export async function startCluster({ n = 3, catalog, bindings = {}, build = path.join(ROOT, "build") } = {}) {
  const names = Array.from({ length: n }, (_, i) => `instance-${i}`);
  const workers = [
    workerOptions({ build, bindings, name: CLUSTER_HOST }),
    ...names.map((name) => workerOptions({ build, bindings, name, host: CLUSTER_HOST, directSocket: true })),
  ];
  const cluster = await start({ workers, catalog, build });
  try {
    const instances = [];
    for (const name of names) {
      const url = (await cluster.mf.unsafeGetDirectURL(name)).origin;
      instances.push({ name, url, base: `${url}/api/v1` });
    }
    return { ...cluster, instances };
  } catch (e) {
    await cluster.close();
    throw e;
  }
}

/**
 * `fetch` over a connection of its own, closed after the reply (no pooling). Under a
 * saturated event loop (a load test's client in one process with its mock upstream),
 * fetch's pool can reuse a keep-alive connection the worker has just closed for being
 * idle: a spurious ECONNRESET, or "other side closed", before any answer. A fresh
 * connection per request cannot race that. Returns a standard `Response`; `signal`
 * aborts the request and its body, as with fetch.
 */
export function freshFetch(url, { method = "GET", headers = {}, body, signal } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, signal }, (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) for (const one of [v].flat()) h.append(k, one);
      const empty = [204, 205, 304].includes(res.statusCode);
      if (empty) res.resume();
      resolve(new Response(empty ? null : Readable.toWeb(res), { status: res.statusCode, headers: h }));
    });
    req.on("error", reject);
    req.end(body);
  });
}
