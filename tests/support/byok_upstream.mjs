// A mock OpenAI-compatible provider for the BYOK tests: it records the key of every
// call (`Authorization: Bearer`), refuses revoked keys as OpenAI does (401
// `invalid_api_key`, its message naming the key masked), and answers the chat
// completions of two upstream models: `ok` (any good key) and `flaky` (a 500 for the
// operator's key, so that the shared endpoint fails and a fallback key serves).
import http from "node:http";

export const OPERATOR_KEY = "sk-operator-byokai-secret";
/** Keys that contain this are refused (401), as a revoked provider key is. */
export const REVOKED = "revoked";
/** What each reply counts: 11 prompt and 7 completion tokens. */
export const USAGE = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };

const ALLOWED = new Set(["model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "user"]);

export async function startByokUpstream() {
  const calls = [];
  const server = http.createServer(async (req, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const key = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    const send = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "POST" || !req.url.endsWith("/chat/completions")) return send(404, { error: { message: "not found" } });
    let body;
    try { body = JSON.parse(raw); } catch { return send(400, { error: { message: "bad json", type: "invalid_request_error" } }); }
    calls.push({ key, model: body.model, stream: !!body.stream });
    const unknown = Object.keys(body).find((k) => !ALLOWED.has(k));
    if (unknown) return send(400, { error: { message: `Unrecognized request argument supplied: ${unknown}`, type: "invalid_request_error" } });
    if (!key || key.includes(REVOKED)) {
      return send(401, { error: { message: `Incorrect API key provided: ${key.slice(0, 3)}***${key.slice(-4)}. You can find your API key at https://platform.openai.com/account/api-keys.`, type: "invalid_request_error", param: null, code: "invalid_api_key" } });
    }
    if (body.model === "flaky" && key === OPERATOR_KEY) {
      return send(500, { error: { message: "The server had an error while processing your request.", type: "server_error" } });
    }
    const id = "chatcmpl-byok1";
    const created = 1700000000;
    if (!body.stream) {
      return send(200, { id, object: "chat.completion", created, model: body.model,
        choices: [{ index: 0, message: { role: "assistant", content: "hello from your own key" }, finish_reason: "stop" }], usage: USAGE });
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    const chunk = (o) => res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, ...o })}\n\n`);
    chunk({ choices: [{ index: 0, delta: { role: "assistant", content: "hello" }, finish_reason: null }] });
    chunk({ choices: [{ index: 0, delta: { content: " again" }, finish_reason: "stop" }] });
    chunk({ choices: [], usage: USAGE });
    res.end("data: [DONE]\n\n");
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    calls,
    /** The keys of the calls made since `from`. */
    keysSince: (from) => calls.slice(from).map((c) => c.key),
    close: () => new Promise((r) => server.close(r)),
  };
}
