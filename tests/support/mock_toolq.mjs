// A strict OpenAI-compatible chat completions upstream for the tool-call quality and
// service tier tests (tests/integration/toolq.test.mjs). As OpenAI: a bearer key is
// required, `service_tier` must be one of OpenAI's names, and every reply says the tier
// that served it (`service_tier`, in the reply and in each chunk). The upstream model
// names the script:
// - `halfbad`: a tool call whose arguments are JSON on even requests, cut off on odd ones;
// - `good`: a valid `get_weather` call;
// - `dupindex`: streamed, two calls the upstream both numbers 0;
// - `tier`: text, at the tier asked for (`default` when none), 10 prompt and 20
//   completion tokens; `shed`: the same, always at `default`.
import http from "node:http";

const TIERS = new Set(["auto", "default", "flex", "priority", "scale"]);
const USAGE = { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 };

export async function startToolqMock() {
  const requests = [];
  const counts = new Map();
  const server = http.createServer(async (req, res) => {
    let raw = "";
    for await (const c of req) raw += c;
    const fail = (status, message) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message, type: "invalid_request_error", code: null } }));
    };
    if (req.method !== "POST" || !req.url.endsWith("/chat/completions")) return fail(404, `no route ${req.url}`);
    if (!/^Bearer sk-toolq-/.test(req.headers.authorization ?? "")) return fail(401, "Incorrect API key provided");
    let body;
    try { body = JSON.parse(raw); } catch { return fail(400, "We could not parse the JSON body of your request."); }
    if (typeof body.model !== "string" || !Array.isArray(body.messages)) return fail(400, "Missing required parameter: 'model' or 'messages'.");
    if (body.service_tier !== undefined && !TIERS.has(body.service_tier)) return fail(400, `Invalid value for 'service_tier': '${body.service_tier}'.`);
    requests.push({ url: req.url, body });
    const n = counts.get(body.model) ?? 0;
    counts.set(body.model, n + 1);
    const tier = body.model === "shed" ? "default" : (body.service_tier && body.service_tier !== "auto" ? body.service_tier : "default");
    const head = { id: `chatcmpl-${n}`, created: 1700000000, model: body.model, system_fingerprint: "fp_toolq", service_tier: tier };
    const call = (id, name, args) => ({ id, type: "function", function: { name, arguments: args } });
    let calls = null;
    if (body.model === "halfbad") calls = [call("call_1", "get_weather", n % 2 === 0 ? '{"city":"Oslo"}' : '{"city": "Os')];
    if (body.model === "good") calls = [call("call_1", "get_weather", '{"city":"Oslo"}')];
    if (body.stream) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const chunk = (delta, finish = null, extra = {}) =>
        res.write(`data: ${JSON.stringify({ ...head, object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`);
      if (body.model === "dupindex") {
        chunk({ role: "assistant", content: null, tool_calls: [{ index: 0, ...call("call_a", "get_weather", "") }] });
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Oslo"}' } }] });
        chunk({ tool_calls: [{ index: 0, ...call("call_b", "get_weather", "") }] });
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Rome"}' } }] });
        chunk({}, "tool_calls");
      } else if (calls) {
        chunk({ role: "assistant", content: null, tool_calls: calls.map((c, index) => ({ index, ...c })) });
        chunk({}, "tool_calls");
      } else {
        chunk({ role: "assistant", content: "served" });
        chunk({}, "stop");
      }
      res.write(`data: ${JSON.stringify({ ...head, object: "chat.completion.chunk", choices: [], usage: USAGE })}\n\n`);
      res.end("data: [DONE]\n\n");
      return;
    }
    const message = calls ? { role: "assistant", content: null, tool_calls: calls } : { role: "assistant", content: "served" };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ...head, object: "chat.completion", choices: [{ index: 0, message, finish_reason: calls ? "tool_calls" : "stop" }], usage: USAGE }));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, requests, close: () => new Promise((r) => server.close(r)) };
}
