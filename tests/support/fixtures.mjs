// The provider fixture cases (tests/fixtures/<family>/<case>/, see the README there):
// what the Rust tests check each family's translator against, and what the mock
// upstream serves for an upstream model named `fixture-<case>`.
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures");

/** The families with fixture cases, by their folder (the catalogue's `api`). */
export const FIXTURE_FAMILIES = ["openai", "anthropic", "gemini"];

/** The names of `family`'s cases: its folders that hold a `client.json`. */
export function fixtureCases(family) {
  return readdirSync(path.join(ROOT, family), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(ROOT, family, d.name, "client.json")))
    .map((d) => d.name)
    .sort();
}

/** One case: the client's request, the upstream request the gateway builds for it,
 * the provider's answer (`reply` JSON text, `stream` SSE text, or `error` {status,
 * body}) and the gateway's output (`expected`). */
export function fixtureCase(family, name) {
  const dir = path.join(ROOT, family, name);
  const read = (file) => (existsSync(path.join(dir, file)) ? readFileSync(path.join(dir, file), "utf8") : undefined);
  const json = (file) => { const t = read(file); return t === undefined ? undefined : JSON.parse(t); };
  const errorFile = readdirSync(dir).find((f) => /^error-\d{3}\.json$/.test(f));
  return {
    family,
    name,
    client: json("client.json"),
    request: json("request.json"),
    expected: json("expected.json"),
    reply: read("reply.json"),
    stream: read("stream.sse"),
    error: errorFile && { status: Number(errorFile.slice(6, 9)), body: read(errorFile) },
  };
}
