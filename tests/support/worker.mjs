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

export async function startWorker({ catalog, keys = [], bindings = {} } = {}) {
  const build = path.join(ROOT, "build");
  if (!existsSync(path.join(build, "index.js"))) throw new Error("build/index.js missing: run `make build`");
  const mf = new Miniflare({
    modules: true,
    modulesRoot: build,
    scriptPath: path.join(build, "index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-01",
    kvNamespaces: ["CATALOG"],
    durableObjects: {
      COUNTERS: { className: "Counters", useSQLite: true },
      LEDGER: { className: "Ledger", useSQLite: true },
      HEALTH: { className: "Health", useSQLite: true },
    },
    bindings: { ...wranglerVars(), ECHO_STREAM_DELAY_MS: "0", API_KEYS: keys.map(sha256).join(","), ...bindings },
    host: "127.0.0.1",
    port: 0,
  });
  const url = await mf.ready;
  const kv = await mf.getKVNamespace("CATALOG");
  if (catalog) await kv.put("catalog", JSON.stringify(catalog));
  return {
    url: url.origin,
    base: `${url.origin}/api/v1`,
    mf,
    kv,
    close: () => mf.dispose(),
  };
}
