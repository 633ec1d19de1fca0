// scripts/dev, what `make dev` runs: it waits for the worker as long as wrangler makes
// progress (a long silent build included), fails loudly when wrangler exits or stalls,
// creates the local account only once something answers; and, with the real wrangler
// and the built worker, serves the demo model. The stand-in cases run scripts/dev in a
// scratch copy of scripts/ with tests/dev/fake-wrangler.mjs as its wrangler.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, copyFileSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FAKE = path.join(ROOT, "tests/dev/fake-wrangler.mjs");

const freePort = () => new Promise((res) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
});

function scratch() {
  const dir = mkdtempSync(path.join(tmpdir(), "modelmux-dev-"));
  mkdirSync(path.join(dir, "scripts"));
  for (const f of ["dev", "env.sh", "admin"]) copyFileSync(path.join(ROOT, "scripts", f), path.join(dir, "scripts", f));
  writeFileSync(path.join(dir, ".dev.vars"), "ADMIN_KEY=test-admin\n");
  return dir;
}

/** Runs scripts/dev in `dir`; resolves when `until(output)` holds or it exits. */
function runDev(dir, env, until = () => false, ms = 150_000) {
  const child = spawn("bash", [path.join(dir, "scripts/dev")], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill(); reject(new Error(`scripts/dev did neither within ${ms} ms:\n${out}`)); }, ms);
    const check = () => { if (until(out)) { clearTimeout(timer); resolve({ child, out, code: null }); } };
    child.stdout.on("data", check);
    child.stderr.on("data", check);
    child.on("exit", (code) => { clearTimeout(timer); resolve({ child, out, code }); });
  });
}

const stop = (child) => new Promise((res) => { if (child.exitCode !== null) return res(child.exitCode); child.on("exit", res); child.kill("SIGTERM"); });
const answers = async (url) => { try { await fetch(url); return true; } catch { return false; } };

test("scripts/dev", { concurrency: true }, async (t) => {
  await t.test("waits out a silent build longer than the old 60 s limit, then creates the account once", async () => {
    const dir = scratch();
    const port = await freePort();
    const count = path.join(dir, "created");
    const started = Date.now();
    const r = await runDev(dir, { PORT: String(port), DEV_WRANGLER: FAKE, FAKE_MODE: "serve", FAKE_BUILD_SECS: "65", DEV_STALL_SECS: "5", FAKE_COUNT_FILE: count },
      (o) => o.includes("API key:"));
    assert.equal(r.code, null, r.out);
    assert.ok(Date.now() - started > 65_000);
    assert.match(r.out, new RegExp(`modelmux is serving on http://127.0.0.1:${port}`));
    assert.match(r.out, /waiting for .*: the worker is building/);
    assert.match(r.out, /API key:\s+sk-mm-v1-fake/);
    assert.equal(readFileSync(count, "utf8"), "created\n");
    assert.equal(readFileSync(path.join(dir, ".dev.key"), "utf8").trim(), "sk-mm-v1-fake");
    await stop(r.child);
    // Stopping scripts/dev stops its wrangler.
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(await answers(`http://127.0.0.1:${port}/api/v1/models`), false);
  });

  await t.test("fails with wrangler's error when wrangler exits, and creates nothing", async () => {
    const dir = scratch();
    const port = await freePort();
    const r = await runDev(dir, { PORT: String(port), DEV_WRANGLER: FAKE, FAKE_MODE: "exit", FAKE_BUILD_SECS: "2" });
    assert.notEqual(r.code, 0);
    assert.notEqual(r.code, null);
    assert.match(r.out, /dev: wrangler dev exited \(status 1\) before the worker answered/);
    assert.match(r.out, /\| ✘ \[ERROR\] Running custom build/);
    assert.doesNotMatch(r.out, /admin:|cannot reach/);
    assert.equal(existsSync(path.join(dir, ".dev.key")), false);
  });

  await t.test("gives up on a wrangler that neither builds, prints nor answers", async () => {
    const dir = scratch();
    const port = await freePort();
    const r = await runDev(dir, { PORT: String(port), DEV_WRANGLER: FAKE, FAKE_MODE: "stall", DEV_STALL_SECS: "3" });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /for 3s wrangler has printed nothing, no build ran and .* does not answer; giving up/);
    assert.equal(existsSync(path.join(dir, ".dev.key")), false);
  });

  await t.test("refuses a port something else answers on", async () => {
    const dir = scratch();
    const server = net.createServer((s) => s.end("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")).listen(0, "127.0.0.1");
    await new Promise((res) => server.once("listening", res));
    const r = await runDev(dir, { PORT: String(server.address().port), DEV_WRANGLER: FAKE });
    server.close();
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /something already answers on/);
  });

  await t.test("with the real wrangler and the built worker: the demo model answers", async () => {
    assert.ok(existsSync(path.join(ROOT, "build/index.js")), "run `make build` first");
    const seeded = spawn("bash", [path.join(ROOT, "scripts/seed")], { stdio: "inherit" });
    assert.equal(await new Promise((res) => seeded.on("exit", res)), 0);
    const port = await freePort();
    const r = await runDev(ROOT, { PORT: String(port) }, (o) => o.includes("API key:"), 240_000);
    try {
      assert.equal(r.code, null, r.out);
      // A no-change start runs no build: wrangler's [build] finds everything up to date.
      assert.match(r.out, /build: up to date/);
      const key = /API key:\s+(\S+)/.exec(r.out)[1];
      const reply = await fetch(`http://127.0.0.1:${port}/api/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "modelmux/echo", messages: [{ role: "user", content: "hello from make dev" }] }),
      });
      assert.equal(reply.status, 200);
      assert.match((await reply.json()).choices[0].message.content, /hello from make dev/);
    } finally {
      await stop(r.child);
    }
  });
});
