// `make bench`: what modelmux adds to a request, side by side with the floor of its
// architecture and with the gateways people would pick instead, in one run against the
// same fixed-reply upstream on loopback. Servers run on core 0 (the Makefile pins this
// process; children inherit it), the load generator (oha) and the streaming client on
// core 1. Prints figures; asserts nothing. `--smoke` runs modelmux and the forwarder
// briefly, with a load generator in this process instead of oha and without the peers:
// it proves the code runs, not how fast.
//
// Targets: the upstream alone; a minimal Rust forwarder worker (bench/forwarder, same
// toolchain, same miniflare harness); modelmux with edge-local admission (leases), also
// with a 50 ms delay on every Durable Object call (TEST_ACCOUNT_DELAY_MS: a caller far from its account's
// object); Portkey's gateway (npm); the LiteLLM proxy (PyPI).
//
// A/B of two builds of the worker: `BENCH_AB=<dir>` measures only the upstream and
// modelmux from build/ and from <dir> (another `make build`'s output, e.g. at another
// opt-level), in the same interleaved rounds. `BENCH_LOAD=node` uses the in-process load
// generator instead of oha (figures then carry Node's own overhead, alike for both).
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, statSync, existsSync, mkdtempSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import path from "node:path";
import net from "node:net";
import { Miniflare } from "miniflare";
import { startWorker } from "../tests/support/worker.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SMOKE = process.argv.includes("--smoke");
const N = SMOKE ? 60 : Number(process.env.BENCH_REQUESTS ?? 2000);
const SECONDS = SMOKE ? 1 : Number(process.env.BENCH_SECONDS ?? 10);
// Requests each target gets before it is measured, at c1: JIT tiers (V8's for wasm and
// JavaScript, Python's caches) settle in these, not in the measured ones.
const WARMUP = SMOKE ? 5 : Number(process.env.BENCH_WARMUP ?? 300);
// Targets are measured in rounds, all of them in each round (the order reversed every
// other round), and each figure is the median of its rounds: the host's drift over the
// minutes a run takes then falls on every target alike instead of on whichever ran last.
const ROUNDS = SMOKE ? 1 : Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5));
const STREAM_N = SMOKE ? 30 : Math.max(100, Math.floor(N / 4));
const KEY_GENERATIONS = SMOKE ? 300 : Number(process.env.BENCH_KEY_GENERATIONS ?? 10000);
const CONCURRENCY = 32;
const DELAY_MS = 50;
const OHA = process.env.OHA_BIN ?? path.join(process.env.CARGO_HOME ?? path.join(process.env.HOME, ".cargo"), "bin/oha");
// (cpus(), not availableParallelism(): this process is itself pinned to core 0.)
const LOAD_CORE = cpus().length > 1 && spawnSync("taskset", ["-V"]).status === 0 ? "1" : null;
const pinned = (cmd, args) => (LOAD_CORE ? ["taskset", ["-c", LOAD_CORE, cmd, ...args]] : [cmd, args]);

/** Runs a load generator. Never synchronously: miniflare reads workerd's output in
 * this process, and a blocked reader stalls workerd once the pipe fills. */
function run(cmd, args) {
  const [c, a] = pinned(cmd, args);
  return new Promise((resolve, reject) => {
    const p = spawn(c, a, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => p.kill(), 600_000);
    p.on("close", (code) => {
      clearTimeout(timer);
      code === 0 ? resolve(out) : reject(new Error(`${cmd} failed (${code}): ${err || out}`));
    });
  });
}

/** oha against `url`: {p50, p99, rps, failed} (milliseconds). */
async function oha(url, { n, seconds, ms: millis, concurrency, headers = {}, body }) {
  const args = ["--no-tui", "--output-format", "json", "-c", String(concurrency), "-t", "20s"];
  if (n) args.push("-n", String(n));
  if (seconds) args.push("-z", `${seconds}s`);
  if (millis) args.push("-z", `${millis}ms`);
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  if (body !== undefined) args.push("-m", "POST", "-H", "content-type: application/json", "-d", body);
  const out = JSON.parse(await run(OHA, [...args, url]));
  const codes = out.statusCodeDistribution ?? {};
  const ok = codes["200"] ?? 0;
  // Requests cut by the end of a timed run are not failures.
  const errors = Object.entries(out.errorDistribution ?? {}).filter(([k]) => !/deadline/.test(k));
  const all = Object.values(codes).reduce((a, b) => a + b, 0) + errors.reduce((a, [, b]) => a + b, 0);
  if (all - ok > 0) console.error(`${url}: ${JSON.stringify(codes)} ${JSON.stringify(Object.fromEntries(errors))}`);
  const ms = (s) => (s == null ? NaN : s * 1000);
  return { p50: ms(out.latencyPercentiles?.p50), p99: ms(out.latencyPercentiles?.p99), rps: out.summary?.requestsPerSec ?? 0, failed: all - ok, ok };
}

/** The smoke run's load generator, in this process (no oha to install): the same
 * figures as `oha`, measured by Node's fetch. Proves the code paths, not the speed. */
async function nodeLoad(url, { n, seconds, ms: millis, concurrency, headers = {}, body }) {
  const until = Date.now() + (millis ?? (seconds ? seconds * 1000 : Infinity));
  let left = n ?? Infinity;
  const times = [];
  let failed = 0;
  const started = Date.now();
  const init = body === undefined ? { headers } : { method: "POST", headers: { ...headers, "content-type": "application/json" }, body };
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (left > 0 && Date.now() < until) {
      left--;
      const t0 = performance.now();
      try {
        const r = await fetch(url, init);
        await r.arrayBuffer();
        if (r.status === 200) times.push(performance.now() - t0); else failed++;
      } catch { failed++; }
    }
  }));
  if (failed) console.error(`${url}: ${failed} failed`);
  times.sort((a, b) => a - b);
  const at = (q) => (times.length ? times[Math.min(times.length - 1, Math.floor(q * times.length))] : NaN);
  return { p50: at(0.5), p99: at(0.99), rps: times.length / ((Date.now() - started) / 1000), failed, ok: times.length };
}
const AB = process.env.BENCH_AB;
const load = SMOKE || process.env.BENCH_LOAD === "node" ? nodeLoad : oha;

/** Streamed requests one at a time from core 1: time to first and last byte. */
async function streamed(url, body, headers) {
  return JSON.parse(await run(process.execPath, [path.join(ROOT, "bench/client.mjs"), url, String(STREAM_N), body, JSON.stringify(headers)]));
}

const freePort = () => new Promise((res) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
});

async function waitFor(url, ms, init) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try { if ((await fetch(url, init)).status < 500) return; } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not come up within ${ms} ms`);
}

const up = spawn(process.execPath, [path.join(ROOT, "bench/upstream.mjs")], { stdio: ["pipe", "pipe", "inherit"] });
const upstream = await new Promise((res) => up.stdout.once("data", (d) => res(String(d).trim())));
const children = [up];

const body = (model, stream = false) => JSON.stringify({ model, stream, max_tokens: 16, messages: [{ role: "user", content: "hello" }] });
const shipped = JSON.parse(readFileSync(path.join(ROOT, "catalog/catalog.json"), "utf8"));
const catalog = {
  providers: [
    { slug: "bench", name: "Bench", api: "openai", base_url: "http://bench.invalid/v1", data_policy: { training: false } },
    shipped.providers.find((p) => p.slug === "modelmux"),
  ],
  models: [
    { id: "bench/fixed", name: "Bench", context_length: 8192,
      endpoints: [{ provider: "bench", upstream_model: "fixed", pricing: { prompt: "0.000001", completion: "0.000002" } }] },
    { id: "bench/fixed:free", name: "Bench (free)", context_length: 8192,
      endpoints: [{ provider: "bench", upstream_model: "fixed", pricing: { prompt: "0", completion: "0" } }] },
    shipped.models.find((m) => m.id === "modelmux/echo"),
  ],
};
const MODELMUX_BINDINGS = {
  BENCH_BASE_URL: `${upstream}/v1`, BENCH_API_KEY: "sk-bench",
  FREE_REQUESTS_PER_MINUTE: "1000000000", FREE_REQUESTS_PER_DAY: "1000000000", ECHO_STREAM_DELAY_MS: "0",
};

const rows = [];
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

/** Targets to measure: {name, model, url, headers, stream}; `cleanups` stop them. */
const targets = [];
const cleanups = [];

function target(name, url, model, headers = {}, { stream = true } = {}) {
  targets.push({ name, url, model, headers, stream, rounds: [] });
}

const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
};

/** Every target, in ROUNDS interleaved rounds (c1 and c32 each), then streamed; one
 * row per target with the medians of its rounds. */
async function measureAll() {
  const perRound = { n: Math.max(1, Math.ceil(N / ROUNDS)), ms: Math.max(500, Math.round((SECONDS * 1000) / ROUNDS)) };
  for (const t of targets) {
    try { await load(t.url, { n: WARMUP, concurrency: 1, headers: t.headers, body: body(t.model) }); } catch (e) { t.error = firstLine(e); }
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...targets].reverse() : targets;
    for (const t of order) {
      if (t.error) continue;
      try {
        // A few unmeasured requests first: while the other targets ran, this one sat
        // idle long enough to hand back its lease and let its key cache expire, which a
        // steady caller's requests never see.
        if (round > 0 && !SMOKE) await load(t.url, { n: 20, concurrency: 1, headers: t.headers, body: body(t.model) });
        const plain = await load(t.url, { n: perRound.n, concurrency: 1, headers: t.headers, body: body(t.model) });
        const busy = await load(t.url, { ms: perRound.ms, concurrency: CONCURRENCY, headers: t.headers, body: body(t.model) });
        t.rounds.push({ plain, load: busy });
      } catch (e) { t.error = firstLine(e); }
    }
    console.error(`round ${round + 1} of ${ROUNDS} measured`);
  }
  for (const t of targets) {
    if (t.error) { rows.push({ name: t.name, error: t.error }); continue; }
    let s = { ttfb_p50: NaN, last_p50: NaN, failed: 0 };
    if (t.stream) {
      try { s = await streamed(t.url, body(t.model, true), t.headers); } catch (e) { s.error = firstLine(e); }
    }
    const of = (pick) => median(t.rounds.map(pick));
    const failed = (kind) => t.rounds.reduce((a, r) => a + r[kind].failed, 0);
    rows.push({ name: t.name, model: t.model, c1_p50: of((r) => r.plain.p50), c1_p99: of((r) => r.plain.p99), c1_failed: failed("plain"),
      rps: of((r) => r.load.rps), c32_p99: of((r) => r.load.p99), c32_failed: failed("load"), ...s });
  }
}

/** A child's own error line (e.g. "status 500: ..."), not its stack. */
const firstLine = (e) => (/Error: (.*)/.exec(e.message)?.[1] ?? e.message.split("\n")[0]).slice(0, 100);

async function modelmux(label, bindings, models, build) {
  // No assets router: on Cloudflare API paths reach the worker directly (see worker.mjs).
  const w = await startWorker({ catalog, bindings: { ...MODELMUX_BINDINGS, ...bindings }, assets: false, ...(build ? { build } : {}) });
  cleanups.push(() => w.close());
  const { key } = await w.createAccount({ credits: 1000 });
  const headers = { authorization: `Bearer ${key}` };
  for (const model of models) target(label, `${w.base}/chat/completions`, model, headers);
}

/** `GET /key` on a key with KEY_GENERATIONS recorded generations, and on a new one. */
async function keyLatency() {
  const w = await startWorker({ catalog, bindings: MODELMUX_BINDINGS, assets: false });
  try {
    const acc = await w.createAccount({ credits: 1000 });
    await load(`${w.base}/chat/completions`, { n: KEY_GENERATIONS, concurrency: CONCURRENCY, headers: { authorization: `Bearer ${acc.key}` }, body: body("bench/fixed") });
    // Every generation settled and recorded.
    const want = KEY_GENERATIONS * 0.000012; // 10 prompt + 1 completion token
    const until = Date.now() + 120_000;
    let usage = 0;
    while (Date.now() < until) {
      usage = (await w.admin("GET", `/accounts/${acc.id}`)).data.total_usage;
      if (usage >= want - 1e-9) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const fresh = await w.createAccount({ credits: 1 });
    const get = (key) => load(`${w.base}/key`, { n: Math.max(50, Math.floor(N / 2)), concurrency: 1, headers: { authorization: `Bearer ${key}` } });
    return { used: await get(acc.key), fresh: await get(fresh.key), recorded: Math.round(usage / 0.000012) };
  } finally {
    await w.close();
  }
}

async function forwarder() {
  const dir = path.join(ROOT, "bench/forwarder/build");
  if (!existsSync(path.join(dir, "index.js"))) throw new Error("bench/forwarder/build missing: run scripts/bench-setup");
  const mf = new Miniflare({
    modules: true, modulesRoot: dir, scriptPath: path.join(dir, "index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-01", bindings: { UPSTREAM: `${upstream}/v1` }, host: "127.0.0.1", port: 0,
  });
  cleanups.push(() => mf.dispose());
  const url = await mf.ready;
  target("minimal Rust forwarder", `${url.origin}/api/v1/chat/completions`, "bench/fixed");
}

async function portkey() {
  const port = await freePort();
  const entry = path.join(ROOT, "node_modules/@portkey-ai/gateway/build/start-server.js");
  const p = spawn(process.execPath, [entry, `--port=${port}`, "--headless"], { stdio: "ignore", env: { ...process.env, NODE_ENV: "production" } });
  children.push(p);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/v1/models`, 30_000);
  const headers = { authorization: "Bearer sk-bench", "x-portkey-provider": "openai", "x-portkey-custom-host": `${upstream}/v1` };
  target(`Portkey ${version("node_modules/@portkey-ai/gateway/package.json")}`, `${base}/v1/chat/completions`, "fixed", headers);
}

async function litellm() {
  const bin = path.join(ROOT, ".venv-bench/bin/litellm");
  if (!existsSync(bin)) throw new Error(".venv-bench missing: run scripts/bench-setup");
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "litellm-"));
  const config = path.join(dir, "config.yaml");
  writeFileSync(config, `model_list:\n  - model_name: bench/fixed\n    litellm_params:\n      model: openai/fixed\n      api_base: ${upstream}/v1\n      api_key: sk-bench\n`);
  const master = "sk-bench-master-0123456789abcdef";
  const p = spawn(bin, ["--config", config, "--port", String(port), "--num_workers", "1"], {
    cwd: dir, stdio: "ignore", env: { ...process.env, LITELLM_MASTER_KEY: master, LITELLM_LOG: "ERROR", DISABLE_SCHEMA_UPDATE: "true" },
  });
  children.push(p);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/health/liveliness`, 180_000);
  const ver = spawnSync(path.join(ROOT, ".venv-bench/bin/python"), ["-c", "import importlib.metadata as m; print(m.version('litellm'))"], { encoding: "utf8" }).stdout.trim();
  target(`LiteLLM proxy ${ver}`, `${base}/v1/chat/completions`, "bench/fixed", { authorization: `Bearer ${master}` });
}

function version(pkg) {
  try { return JSON.parse(readFileSync(path.join(ROOT, pkg), "utf8")).version; } catch { return "?"; }
}

async function peer(name, fn) {
  try { await fn(); } catch (e) { rows.push({ name, error: String(e.message).split("\n")[0] }); console.error(`${name}: ${e.message}`); }
}

let key;
try {
  target("upstream alone", `${upstream}/v1/chat/completions`, "fixed");
  if (AB) {
    await modelmux("modelmux (leases), build/", {}, ["bench/fixed"]);
    await modelmux(`modelmux (leases), ${AB}`, {}, ["bench/fixed"], path.resolve(AB));
    await measureAll();
    for (const stop of cleanups.splice(0)) await stop();
  } else {
    await peer("minimal Rust forwarder", forwarder);
    await modelmux("modelmux (leases)", {}, ["bench/fixed", "bench/fixed:free", "modelmux/echo"]);
    await modelmux(`modelmux (leases), ${DELAY_MS} ms per object call`, { TEST_ACCOUNT_DELAY_MS: String(DELAY_MS) }, ["bench/fixed"]);
    // The peers are for `make bench` only (scripts/bench-setup installs them on first use).
    if (!SMOKE) {
      await peer("Portkey", portkey);
      await peer("LiteLLM proxy", litellm);
    }
    await measureAll();
    for (const stop of cleanups.splice(0)) await stop();
    for (const c of children.splice(1)) c.kill();
    key = await keyLatency();
  }
} finally {
  for (const stop of cleanups) await stop().catch(() => {});
  for (const c of children) c.kill();
}

const base = rows.find((r) => r.name === "upstream alone");
const wasm = readFileSync(path.join(ROOT, "build/index_bg.wasm"));
console.log(`\nmodelmux bench${SMOKE ? " (smoke: figures are not comparable)" : ""}: ${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores, node ${process.version}, ` +
  `servers on core 0, load (oha) on core ${LOAD_CORE ?? "any"}; ${N} requests at c1 and ${SECONDS} s at c${CONCURRENCY} per target ` +
  `in ${ROUNDS} interleaved rounds (figures are medians of rounds), ${STREAM_N} streamed`);
console.log(`worker: ${statSync(path.join(ROOT, "build/index_bg.wasm")).size} bytes wasm, ${gzipSync(wasm, { level: 9 }).length} gzipped\n`);
console.log("| target | model | p50 c1 | added p50 | p99 c1 | req/s c32 | p99 c32 | stream first byte p50 | stream last byte p50 | failed |");
console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  if (r.error && r.c1_p50 === undefined) { console.log(`| ${r.name} | | ${r.error} | | | | | | | |`); continue; }
  const added = r === base ? "" : `+${f(r.c1_p50 - base.c1_p50)} ms`;
  const stream = r.error ? `fails: ${r.error}` : `${f(r.ttfb_p50)} ms`;
  console.log(`| ${r.name} | ${r.model} | ${f(r.c1_p50)} ms | ${added} | ${f(r.c1_p99)} ms | ${f(r.rps, 0)} | ${f(r.c32_p99)} ms | ${stream} | ${f(r.last_p50)} ms | ${r.c1_failed + r.c32_failed + (r.failed ?? 0)} |`);
}
if (AB) {
  const [a, b] = rows.filter((r) => r.name.startsWith("modelmux"));
  const ratio = (x, y) => f(x / y, 3);
  console.log(`\n${AB} / build/: added p50 c1 ${ratio(b.c1_p50 - base.c1_p50, a.c1_p50 - base.c1_p50)}, req/s c32 ${ratio(b.rps, a.rps)}, p99 c32 ${ratio(b.c32_p99, a.c32_p99)}`);
  process.exit(0);
}
console.log(`\nGET /key after ${key.recorded} generations: p50 ${f(key.used.p50)} ms; on a new key: p50 ${f(key.fresh.p50)} ms (${f((key.used.p50 / key.fresh.p50 - 1) * 100, 0)}%)`);

// The issue's targets, as ratios within this run.
const find = (prefix, model = "bench/fixed") => rows.find((r) => r.name.startsWith(prefix) && r.model === model && r.c1_p50 !== undefined);
const mm = find("modelmux (leases)"), fwd = find("minimal Rust forwarder"), pk = rows.find((r) => r.name.startsWith("Portkey") && r.c1_p50 !== undefined);
const slow = rows.find((r) => r.name.startsWith(`modelmux (leases), ${DELAY_MS}`));
const added = (r) => r.c1_p50 - base.c1_p50;
const check = (what, value, goal) => console.log(`${Number.isFinite(value) ? (eval(`${value} ${goal}`) ? "meets" : "misses") : "n/a   "} ${what}: ${f(value)} (goal ${goal})`);
console.log("");
if (fwd) {
  check("added p50 c1, modelmux / forwarder", added(mm) / added(fwd), "<= 1.5");
  check("req/s c32, modelmux / forwarder", mm.rps / fwd.rps, ">= 0.75");
  check("p99 c32, modelmux / forwarder", mm.c32_p99 / fwd.c32_p99, "<= 2");
}
if (pk) {
  check("added p50 c1, modelmux / Portkey", added(mm) / added(pk), "<= 0.5");
  check("req/s c32, modelmux / Portkey", mm.rps / pk.rps, "> 2");
}
check("/key after many generations / new key", key.used.p50 / key.fresh.p50, "<= 1.2");
if (slow) check(`added p50 moved by a ${DELAY_MS} ms object delay (ms)`, slow.c1_p50 - mm.c1_p50, "< 1");
