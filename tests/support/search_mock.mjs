// Strict mocks of the search engines' APIs (Exa, Brave, Tavily): each checks its key
// header and its request's shape as the real API takes it, and answers with the real
// wire format from tests/fixtures/search/ (the same files the Rust tests read). The
// fixtures' results are answered for any query; `requests` records what was asked.
// `startSearchMock({ delayMs })` answers each search that much later (a slow engine;
// `mock.delayMs` may be changed between tests).
import http from "node:http";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fixture = (name) => readFileSync(path.join(ROOT, "tests/fixtures/search", `${name}.json`));

export const SEARCH_KEYS = { exa: "exa-test-key", brave: "brave-test-key", tavily: "tavily-test-key" };

export function searchBindings(url) {
  return {
    EXA_API_KEY: SEARCH_KEYS.exa, EXA_BASE_URL: `${url}/exa`,
    BRAVE_API_KEY: SEARCH_KEYS.brave, BRAVE_BASE_URL: `${url}/brave`,
    TAVILY_API_KEY: SEARCH_KEYS.tavily, TAVILY_BASE_URL: `${url}/tavily`,
  };
}

function refuse(res, status, message) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: message }));
}

export async function startSearchMock({ delayMs = 0 } = {}) {
  const requests = [];
  const state = { delayMs };
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url, "http://x");
    const send = (name) => setTimeout(() => { res.writeHead(200, { "content-type": "application/json" }); res.end(fixture(name)); }, state.delayMs);
    if (req.method === "POST" && url.pathname === "/exa/search") {
      if (req.headers["x-api-key"] !== SEARCH_KEYS.exa) return refuse(res, 401, "bad key");
      const body = JSON.parse(raw);
      requests.push({ engine: "exa", body });
      if (typeof body.query !== "string" || !body.query) return refuse(res, 400, "query is required");
      if (!Number.isInteger(body.numResults) || body.numResults < 1 || body.numResults > 100) return refuse(res, 400, "numResults");
      return send("exa");
    }
    if (req.method === "GET" && url.pathname === "/brave/res/v1/web/search") {
      if (req.headers["x-subscription-token"] !== SEARCH_KEYS.brave) return refuse(res, 401, "bad key");
      if (raw.length) return refuse(res, 400, "GET with a body");
      const q = url.searchParams.get("q"), count = Number(url.searchParams.get("count"));
      requests.push({ engine: "brave", q, count });
      if (!q || !(count >= 1 && count <= 20)) return refuse(res, 422, "q and count (1..20)");
      return send("brave");
    }
    if (req.method === "POST" && url.pathname === "/tavily/search") {
      if (req.headers.authorization !== `Bearer ${SEARCH_KEYS.tavily}`) return refuse(res, 401, "bad key");
      const body = JSON.parse(raw);
      requests.push({ engine: "tavily", body });
      if (!body.query || !(body.max_results >= 1 && body.max_results <= 20)) return refuse(res, 400, "query and max_results");
      if (!["basic", "advanced"].includes(body.search_depth)) return refuse(res, 400, "search_depth");
      return send("tavily");
    }
    refuse(res, 404, `no such path ${req.method} ${url.pathname}`);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(r)),
    get delayMs() { return state.delayMs; }, set delayMs(ms) { state.delayMs = ms; },
  };
}
