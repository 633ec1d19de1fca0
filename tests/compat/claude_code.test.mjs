// Claude Code (npm @anthropic-ai/claude-code), unchanged, pointed at the local worker with
// ANTHROPIC_BASE_URL and a modelmux key: it streams its large system prompt and tool list
// to /api/v1/messages and prints the model's answer, for a model served natively by an
// Anthropic endpoint and for one translated to another family; and a session budget
// (x-session-id, X-Session-Limits through ANTHROPIC_CUSTOM_HEADERS) that stops it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
let mock, worker, KEY, home;

before(async () => {
  mock = await startMockUpstream();
  worker = await startWorker({ catalog: testCatalog(), bindings: mockBindings(mock.url) });
  KEY = (await worker.createAccount({ credits: 10 })).key;
  home = mkdtempSync(path.join(tmpdir(), "claude-home-"));
});

after(async () => {
  await worker?.close();
  await mock?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

function claude(prompt, model, headers = {}) {
  return new Promise((resolve) => {
    const env = {
      // Claude Code's own way to add headers to every request ("Name: Value" lines).
      ANTHROPIC_CUSTOM_HEADERS: Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join("\n"),
      PATH: process.env.PATH,
      HOME: home,
      ANTHROPIC_BASE_URL: `${worker.url}/api`,
      ANTHROPIC_AUTH_TOKEN: KEY,
      ANTHROPIC_MODEL: model,
      ANTHROPIC_SMALL_FAST_MODEL: model,
      ANTHROPIC_DEFAULT_HAIKU_MODEL: model,
      DISABLE_TELEMETRY: "1",
      DISABLE_AUTOUPDATER: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    };
    const p = spawn(path.join(ROOT, "node_modules/.bin/claude"), ["-p", prompt], { env, cwd: home, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), 120_000);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// Claude Code asks for more output than a 4,096-token endpoint generates on every call:
// the gateway lowers it, as OpenRouter does, on every family.
test("claude -p runs unchanged on a model of each family that generates at most 4,096 tokens", { timeout: 400_000 }, async () => {
  for (const model of ["anthropic-mock/short", "openai-mock/short", "gemini-mock/short"]) {
    const seen = mock.requests.length;
    const r = await claude("Say hello to modelmux", model);
    assert.equal(r.code, 0, `${model}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    // The mock answers a prompt with what it was told.
    assert.match(r.stdout, /mock says:[\s\S]*Say hello to modelmux/, model);
    const asked = mock.requests.slice(seen).map((c) => c.body?.max_tokens ?? c.body?.max_completion_tokens ?? c.body?.generationConfig?.maxOutputTokens);
    assert.ok(asked.length && asked.every((n) => n <= 4096), `${model}: ${asked}`);
  }
});

for (const model of ["anthropic-mock/ok", "openai-mock/ok"]) {
  test(`claude -p completes a prompt through /api/v1/messages (${model})`, { timeout: 150_000 }, async () => {
    const seen = mock.requests.length;
    const r = await claude("Say hello to modelmux", model);
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /mock says:[\s\S]*Say hello to modelmux/);
    const calls = mock.requests.slice(seen);
    assert.ok(calls.length > 0, "no upstream call");
    if (model.startsWith("anthropic")) {
      const body = calls.find((c) => c.url.includes("/anthropic/v1/messages")).body;
      assert.equal(body.stream, true);
      assert.ok(body.tools.length >= 5, `${body.tools.length} tools`);
      assert.ok(JSON.stringify(body.system).length > 1000, "the large system prompt arrived intact");
    } else {
      const body = calls.find((c) => c.url.includes("/openai/v1/chat/completions")).body;
      assert.ok(body.tools.length >= 5, `${body.tools.length} tools`);
      assert.equal(body.messages[0].role, "system");
    }
  });
}

// An agent on a leash: Claude Code's requests count against its session; once the
// session's limit is reached, its next run is refused with a 403 that names the limit
// before anything goes upstream, and Claude Code exits with it instead of retrying.
test("claude -p with x-session-id stops cleanly at its session's limit", { timeout: 300_000 }, async () => {
  const model = "anthropic-mock/ok";
  const session = { "x-session-id": `cc-${Date.now()}`, "X-Session-Limits": "max_requests=100" };
  const first = await claude("Say hello to modelmux", model, session);
  assert.equal(first.code, 0, `exit ${first.code}\nstdout: ${first.stdout}\nstderr: ${first.stderr}`);
  const read = await fetch(`${worker.base}/sessions/${session["x-session-id"]}`, { headers: { authorization: `Bearer ${KEY}` } });
  assert.equal(read.status, 200);
  const used = (await read.json()).data.requests;
  assert.ok(used >= 1, `${used} requests`);
  const seen = mock.requests.length;
  const second = await claude("Say hello again", model, { ...session, "X-Session-Limits": `max_requests=${used}` });
  assert.notEqual(second.code, 0, `stdout: ${second.stdout}`);
  assert.match(second.stdout + second.stderr, /403[\s\S]*Session limit reached \(max_requests\)/);
  assert.equal(mock.requests.length, seen, "nothing went upstream");
});
