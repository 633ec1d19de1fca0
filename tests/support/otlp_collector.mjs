// A small OpenTelemetry collector for tests: OTLP/HTTP JSON at `POST .../v1/traces`
// and a webhook at `POST /hook`, as strict as a real receiver about what it takes
// (a JSON body with `resourceSpans`), keeping every request it gets; `failFirst`
// answers that many requests 503 first (to see exports retried).
import http from "node:http";

export async function startCollector({ failFirst = 0 } = {}) {
  const received = [];
  let failures = failFirst;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const entry = { method: req.method, url: req.url, headers: req.headers, text, body: null, status: 0 };
      received.push(entry);
      const answer = (status, body) => {
        entry.status = status;
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.method !== "POST") return answer(405, { error: "POST only" });
      if (!String(req.headers["content-type"]).startsWith("application/json")) return answer(415, { error: "JSON only" });
      try {
        entry.body = JSON.parse(text);
      } catch {
        return answer(400, { error: "not JSON" });
      }
      if (!Array.isArray(entry.body.resourceSpans)) return answer(400, { error: "resourceSpans is required" });
      if (failures > 0) {
        failures -= 1;
        return answer(503, { error: "busy" });
      }
      answer(200, { partialSuccess: {} });
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    received,
    /** The spans accepted at paths containing `part`. */
    spans: (part) => received.filter((r) => r.url.includes(part) && r.status === 200)
      .flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans))),
    close: () => new Promise((r) => server.close(r)),
  };
}

/** A span's attributes as a plain object (each value as OTLP/JSON writes it). */
export const attributes = (span) => Object.fromEntries(span.attributes.map((a) => [a.key, a.value]));
