// A mock OpenAI-compatible upstream for the plugins tests (tests/integration/plugins.test.mjs),
// as strict as OpenAI: fields it does not define are refused (so `plugins` and
// `transforms` reaching it fail), and a prompt past its context is refused with
// OpenAI's `context_length_exceeded`. What it answers is chosen by the upstream model:
//   json-<name>  replies with the JSON text JSONS[name] (broken or not);
//   ctx-<n>      has n tokens of context, counted as the gateway estimates them (a
//                token per four bytes of a message's text, plus four a message),
//                and says how many messages it got;
//   echo         repeats the prompt's text;
//   down         is overloaded (a 503, as OpenAI's "The engine is currently overloaded").
// Every request is recorded.
import http from "node:http";
import { OPENAI_FIELDS, OPENAI_MESSAGE_FIELDS } from "./mock_upstream.mjs";

/** What the `json-*` models reply. */
export const JSONS = {
  fenced: "Here it is:\n```json\n{name: 'Pen', price: 2, tags: ['a', 'b',],}\n```",
  cut: '{"name": "Pen", "price": 2, "tags": ["a"',
  noprice: '{"name": "Pen"}',
  good: '{"name":"Pen","price":2}',
};

const USAGE = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };

const text = (m) =>
  typeof m.content === "string" ? m.content : (m.content ?? []).filter((p) => p.type === "text").map((p) => p.text).join("\n");

/** The prompt's tokens as the gateway estimates them. */
export const promptTokens = (messages) => messages.reduce((n, m) => n + Math.ceil(Buffer.byteLength(text(m)) / 4) + 4, 0);

function refuse(res, status, message, code = null, param = null) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { message, type: "invalid_request_error", param, code } }));
}

function reply(res, body, content) {
  const id = "chatcmpl-plugins";
  const created = 1700000000;
  if (!body.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ id, object: "chat.completion", created, model: body.model,
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }], usage: USAGE }));
  }
  res.writeHead(200, { "content-type": "text/event-stream" });
  const chunk = (delta, finish = null) =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  res.write(chunk({ role: "assistant", content: "" }));
  for (const piece of content.match(/[\s\S]{1,7}/g) ?? []) res.write(chunk({ content: piece }));
  res.write(chunk({}, "stop"));
  if (body.stream_options?.include_usage) {
    res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices: [], usage: USAGE })}\n\n`);
  }
  res.end("data: [DONE]\n\n");
}

export async function startPluginsMock() {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    let raw = "";
    for await (const part of req) raw += part;
    let body = null;
    try { body = JSON.parse(raw); } catch { /* recorded as null */ }
    requests.push({ url: req.url, headers: req.headers, body });
    if (!req.url.endsWith("/chat/completions") || !body) return refuse(res, 404, "not found");
    if (!req.headers.authorization?.startsWith("Bearer sk-")) return refuse(res, 401, "Incorrect API key provided");
    const unknown = Object.keys(body).find((k) => !OPENAI_FIELDS.has(k));
    if (unknown) return refuse(res, 400, `Unrecognized request argument supplied: ${unknown}`);
    for (const [i, m] of body.messages.entries()) {
      const extra = Object.keys(m).find((k) => !OPENAI_MESSAGE_FIELDS.has(k));
      if (extra) return refuse(res, 400, `Additional properties are not allowed ('${extra}' was unexpected) - 'messages.${i}'`);
      // OpenAI refuses a tool result whose call is not in the assistant turn before it.
      if (m.role === "tool") {
        const call = body.messages.slice(0, i).findLast((p) => p.role !== "tool");
        if (!call?.tool_calls?.some((c) => c.id === m.tool_call_id)) {
          return refuse(res, 400, "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", null, `messages.[${i}].role`);
        }
      }
    }
    const model = String(body.model);
    if (model.startsWith("json-")) return reply(res, body, JSONS[model.slice(5)] ?? "");
    if (model.startsWith("ctx-")) {
      const context = Number(model.slice(4));
      const asked = promptTokens(body.messages) + (body.max_tokens ?? body.max_completion_tokens ?? 0);
      if (asked > context) {
        return refuse(res, 400, `This model's maximum context length is ${context} tokens. However, your messages resulted in ${asked} tokens. Please reduce the length of the messages.`, "context_length_exceeded", "messages");
      }
      return reply(res, body, `got ${body.messages.length} messages, ${promptTokens(body.messages)} tokens`);
    }
    if (model === "down") {
      res.writeHead(503, { "content-type": "application/json" });
      return res.end(JSON.stringify({ error: { message: "The engine is currently overloaded, please try again later", type: "server_error", param: null, code: null } }));
    }
    if (model === "echo") return reply(res, body, body.messages.map(text).join("\n"));
    return refuse(res, 404, `The model ${model} does not exist`, "model_not_found");
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}
