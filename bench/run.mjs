// Benchmark: how much latency the gateway adds and how many requests a second it serves,
// with the built worker under miniflare (workerd) in front of a fixed-reply upstream on
// loopback. Prints figures; asserts nothing. Loops are bounded in count and time.
import { spawn } from "node:child_process";
import { statSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { startWorker } from "../tests/support/worker.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const N = Number(process.env.BENCH_REQUESTS ?? 300);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

const up = spawn(process.execPath, [path.join(ROOT, "bench/upstream.mjs")], { stdio: ["pipe", "pipe", "inherit"] });
const upstreamUrl = await new Promise((res) => up.stdout.once("data", (d) => res(String(d).trim())));

const catalog = {
  providers: [{ slug: "bench", name: "Bench", api: "openai", base_url: "http://bench.invalid/v1" }],
  models: [{ id: "bench/fixed", name: "Bench", context_length: 8192,
    endpoints: [{ provider: "bench", upstream_model: "fixed", pricing: { prompt: "0.000001", completion: "0.000002" } }] }],
};
const worker = await startWorker({ catalog, bindings: { BENCH_BASE_URL: `${upstreamUrl}/v1`, BENCH_API_KEY: "sk-bench" } });
const { key } = await worker.createAccount({ credits: 1000 });

const body = (stream) => JSON.stringify({ model: "bench/fixed", stream, max_tokens: 16, messages: [{ role: "user", content: "hello" }] });
const direct = (stream) => fetch(`${upstreamUrl}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: body(stream) });
const gateway = (stream) => fetch(`${worker.base}/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: body(stream) });

async function timeOne(send, stream) {
  const t0 = performance.now();
  const r = await send(stream);
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`status ${r.status}`);
  return performance.now() - t0;
}

async function series(send, stream) {
  for (let i = 0; i < 20; i++) await timeOne(send, stream); // warm-up
  const times = [];
  for (let i = 0; i < N; i++) times.push(await timeOne(send, stream));
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  return { p50: q(0.5), p99: q(0.99) };
}

async function throughput(send) {
  const until = performance.now() + SECONDS * 1000;
  let done = 0;
  let failed = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < until) {
      try { await timeOne(send, false); done++; } catch { failed++; }
    }
  }));
  return { rps: done / SECONDS, failed };
}

const f = (ms) => `${ms.toFixed(2)} ms`;
try {
  const wasm = readFileSync(path.join(ROOT, "build/index_bg.wasm"));
  console.log(`wasm: ${statSync(path.join(ROOT, "build/index_bg.wasm")).size} bytes raw, ${gzipSync(wasm, { level: 9 }).length} gzipped`);
  for (const stream of [false, true]) {
    const d = await series(direct, stream);
    const g = await series(gateway, stream);
    console.log(`${stream ? "streamed" : "plain   "}: upstream alone p50 ${f(d.p50)} p99 ${f(d.p99)} | through modelmux p50 ${f(g.p50)} p99 ${f(g.p99)} | added p50 ${f(g.p50 - d.p50)}`);
  }
  const t = await throughput(gateway);
  console.log(`throughput: ${t.rps.toFixed(0)} requests/s at concurrency ${CONCURRENCY} for ${SECONDS} s (${t.failed} failed)`);
  console.log("(miniflare adds its own entry worker per request; see PERFORMANCE notes for plain workerd figures)");
} finally {
  await worker.close();
  up.stdin.end();
}
