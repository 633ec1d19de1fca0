// Streamed requests one at a time, for `make bench`: time to the first byte of the body
// and to its last byte. Run pinned to the load generator's core. Prints JSON.
// Usage: node bench/client.mjs URL N BODY [AUTH_HEADER_JSON]
const [url, n, body, headersJson] = process.argv.slice(2);
const headers = { "content-type": "application/json", ...JSON.parse(headersJson ?? "{}") };

async function one() {
  const t0 = performance.now();
  const r = await fetch(url, { method: "POST", headers, body });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${(await r.text()).slice(0, 300)}`);
  const reader = r.body.getReader();
  let first = null;
  for (;;) {
    const { done } = await reader.read();
    if (first === null) first = performance.now() - t0;
    if (done) break;
  }

  return [first, performance.now() - t0];
}

const q = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const warm = Math.min(20, Number(n));
for (let i = 0; i < warm; i++) await one();
const ttfb = [];
const total = [];
let failed = 0;
for (let i = 0; i < Number(n); i++) {
  try {
    const [a, b] = await one();
    ttfb.push(a);
    total.push(b);
  } catch {
    failed++;
  }
}
ttfb.sort((a, b) => a - b);
total.sort((a, b) => a - b);
console.log(JSON.stringify({ ttfb_p50: q(ttfb, 0.5), ttfb_p99: q(ttfb, 0.99), last_p50: q(total, 0.5), last_p99: q(total, 0.99), failed }));
