// Scripted mock upstreams on 127.0.0.1, one server speaking several wire formats.
// What it does is chosen by the upstream model ID the worker sends (see SCRIPTS), so a
// test catalogue maps each test model to a behaviour. Every request is recorded.
import http from "node:http";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function openaiReply(model, content, usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 }) {
  return {
    id: "chatcmpl-mock", object: "chat.completion", created: 1751471234, model,
    choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
    usage, system_fingerprint: "fp_mock",
  };
}

function chunk(model, delta, finish_reason = null, extra = {}) {
  return { id: "chatcmpl-mock", object: "chat.completion.chunk", created: 1751471234, model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason }], ...extra };
}

const sse = (obj) => `data: ${typeof obj === "string" ? obj : JSON.stringify(obj)}\n\n`;

export async function startMockUpstream() {
  const requests = [];
  const gates = new Map(); // name -> {promise, resolve}
  const gate = (name) => {
    if (!gates.has(name)) {
      let resolve;
      const promise = new Promise((r) => (resolve = r));
      gates.set(name, { promise, resolve });
    }
    return gates.get(name);
  };
  const events = new Map(); // name -> array of {event, at}
  const note = (name, event) => {
    if (!events.has(name)) events.set(name, []);
    events.get(name).push({ event, at: Date.now() });
  };

  // OpenAI-format behaviours, keyed by upstream model ID.
  const openai = {
    async ok(body, res) {
      const last = body.messages.at(-1);
      const text = typeof last.content === "string" ? last.content : JSON.stringify(last.content);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(openaiReply(body.model, `mock says: ${text}`)));
    },
    async stream(body, res) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const words = ["Hello", " from", " the", " mock"];
      res.write(sse(chunk(body.model, { role: "assistant", content: "" })));
      for (const w of words) res.write(sse(chunk(body.model, { content: w })));
      res.write(sse(chunk(body.model, {}, "stop")));
      res.write(sse({ ...chunk(body.model, {}), choices: [], usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 } }));
      res.end(sse("[DONE]"));
    },
    // Sends one chunk, then waits until the test releases gate `gated`.
    async gated(body, res) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(sse(chunk(body.model, { role: "assistant", content: "first" })));
      note("gated", "first-sent");
      await gate("gated").promise;
      res.write(sse(chunk(body.model, { content: " second" })));
      res.write(sse(chunk(body.model, {}, "stop")));
      res.end(sse("[DONE]"));
      note("gated", "finished");
    },
    async fail500(_body, res) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "internal mock failure", type: "server_error" } }));
    },
    async fail429(_body, res) {
      res.writeHead(429, { "content-type": "application/json", "retry-after": "17" });
      res.end(JSON.stringify({ error: { message: "Rate limit reached for requests", type: "requests" } }));
    },
    async hang(_body, res) {
      note("hang", "started");
      // Never answers; resolves when the gateway gives up and closes the connection.
      await new Promise((resolve) => res.on("close", resolve));
      note("hang", "closed");
    },
    async garbage(_body, res) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end("<html>definitely not json</html>");
    },
    // A stream whose connection drops after the first chunk.
    async broken(body, res) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(sse(chunk(body.model, { role: "assistant", content: "partial" })));
      await sleep(50);
      res.socket.destroy();
    },
    // A stream that ends cleanly at the TCP level but never finishes the completion.
    async truncated(body, res) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(sse(chunk(body.model, { role: "assistant", content: "cut" })));
      res.end('data: {"id":"chatcmpl-mock","choi');
    },
    // Streams slowly until the client goes away; records whether the upstream saw the abort.
    async endless(body, res, req) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      let open = true;
      req.on("close", () => { open = false; note("endless", "closed"); });
      res.on("close", () => { open = false; note("endless", "closed"); });
      note("endless", "started");
      for (let i = 0; open && i < 600; i++) {
        res.write(sse(chunk(body.model, { content: `tick${i} ` })));
        await sleep(50);
      }
      if (!res.writableEnded) res.end();
    },
  };

  const server = http.createServer(async (req, res) => {
    let raw = "";
    for await (const part of req) raw += part;
    let body = null;
    try { body = JSON.parse(raw); } catch { /* recorded as null */ }
    requests.push({ method: req.method, url: req.url, headers: req.headers, body });
    try {
      if (req.url.endsWith("/chat/completions") && body) {
        const script = openai[body.model.split(":")[0]];
        if (script) {
          if (body.stream && !["stream", "gated", "broken", "truncated", "endless"].includes(body.model)) {
            return await openai.stream(body, res);
          }
          return await script(body, res, req);
        }
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `mock has no script for ${req.url} ${body?.model}` } }));
    } catch (e) {
      if (!res.headersSent) res.writeHead(599);
      res.end(String(e));
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    release: (name) => gate(name).resolve(),
    events: (name) => events.get(name) ?? [],
    waitFor: async (name, event, timeoutMs = 5000) => {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        if ((events.get(name) ?? []).some((e) => e.event === event)) return true;
        await sleep(20);
      }
      return false;
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}
