#!/usr/bin/env node
// A stand-in for `wrangler dev` in tests/dev: called as `wrangler dev ... --port P` by
// scripts/dev, it behaves as FAKE_MODE says, after a "build" of FAKE_BUILD_SECS that
// prints nothing and keeps target/.build.pid (as scripts/build does):
//   serve: then serves the few routes scripts/dev calls (models, key, admin accounts),
//          counting account creations in FAKE_COUNT_FILE;
//   exit:  then prints a build error and exits 1;
//   stall: prints one line and then nothing, serving nothing.
import http from "node:http";
import { spawn } from "node:child_process";
import { writeFileSync, mkdirSync, appendFileSync } from "node:fs";

const args = process.argv.slice(2);
const port = Number(args[args.indexOf("--port") + 1]);
const mode = process.env.FAKE_MODE ?? "serve";
const buildSecs = Number(process.env.FAKE_BUILD_SECS ?? 0);

console.log(" ⛅️ wrangler 4.86.0 (stand-in)");
if (mode === "stall") {
  setInterval(() => {}, 1 << 30);
} else {
  console.log("[custom build] Running: bash scripts/build");
  mkdirSync("target", { recursive: true });
  const build = spawn("sleep", [String(buildSecs)], { stdio: "ignore" });
  writeFileSync("target/.build.pid", String(build.pid));
  build.on("exit", () => {
    if (mode === "exit") {
      console.error("✘ [ERROR] Running custom build `bash scripts/build` failed.");
      process.exit(1);
    }
    const server = http.createServer((req, res) => {
      const json = (status, body) => { res.writeHead(status, { "content-type": "application/json" }); res.end(JSON.stringify(body)); };
      if (req.url === "/api/v1/models") return json(200, { data: [] });
      if (req.url === "/api/v1/key") return json(401, { error: { code: 401, message: "no" } });
      if (req.method === "POST" && req.url === "/admin/v1/accounts") {
        if (process.env.FAKE_COUNT_FILE) appendFileSync(process.env.FAKE_COUNT_FILE, "created\n");
        return json(200, { api_key: "sk-mm-v1-fake", data: { id: "acct_fake" } });
      }
      json(404, {});
    });
    server.listen(port, "127.0.0.1", () => console.log(`[wrangler:info] Ready on http://127.0.0.1:${port}`));
  });
}
process.on("SIGTERM", () => process.exit(0));
