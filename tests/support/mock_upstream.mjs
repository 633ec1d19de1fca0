// Scripted mock upstreams on 127.0.0.1: one server speaking three wire formats
// (OpenAI chat completions, Anthropic messages, Gemini generateContent). What it does
// is chosen by the upstream model ID the gateway sends (see `scripts`), so a test
// catalogue maps each test model to a behaviour. Every request is recorded.
import http from "node:http";
import { fixtureCase } from "./fixtures.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sse = (obj, event) => (event ? `event: ${event}\n` : "") + `data: ${typeof obj === "string" ? obj : JSON.stringify(obj)}\n\n`;
const USAGE = { prompt: 11, completion: 7 };
/** A text in the few pieces a provider would stream it in. */
const pieces = (text) => text.match(/[\s\S]{1,8}/g) ?? [];
/** How long the mock's YouTube videos are: billed at 263 tokens a second, 6,575 tokens. */
export const VIDEO_SECONDS = 25;
/** The largest media a request may have fetched (MEDIA_MAX_BYTES' default), served at
 * `/media/huge-<name>.png`: bytes that vary, so a misplaced base64 chunk shows. */
export const HUGE_MEDIA = Buffer.alloc(20 * 1024 * 1024);
for (let i = 0; i < HUGE_MEDIA.length; i++) HUGE_MEDIA[i] = (i * 131 + (i >>> 13)) & 255;
/** A 1×1 PNG. */
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64");

// ------------------------------------------------------------------ wire formats

/** The request body OpenAI's chat completions API defines: anything else it refuses. */
export const OPENAI_FIELDS = new Set(["model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop",
  "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
  "user", "seed", "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort", "metadata", "store",
  "service_tier", "modalities", "audio", "prediction", "web_search_options", "verbosity", "prompt_cache_key"]);

export const OPENAI_MESSAGE_FIELDS = new Set(["role", "content", "name", "tool_calls", "tool_call_id", "refusal", "audio", "function_call"]);

/** OpenAI chat completions. */
const openai = {
  /** OpenAI's own refusal of a field it does not know (at the top or in a message), or null. */
  refuse(body) {
    const refusal = (message) => ({ status: 400, body: { error: { message, type: "invalid_request_error", param: null, code: null } } });
    const unknown = Object.keys(body).find((k) => !OPENAI_FIELDS.has(k));
    if (unknown) return refusal(`Unrecognized request argument supplied: ${unknown}`);
    for (const [i, m] of (body.messages ?? []).entries()) {
      const extra = Object.keys(m).find((k) => !OPENAI_MESSAGE_FIELDS.has(k));
      if (extra) return refusal(`Additional properties are not allowed ('${extra}' was unexpected) - 'messages.${i}'`);
    }
    return null;
  },
  match: (req) => (req.url.endsWith("/chat/completions") ? {} : null),
  model: (body) => body.model,
  stream: (body) => !!body.stream,
  lastUserText(body) {
    const last = body.messages.filter((m) => m.role === "user").at(-1);
    if (!last) return "";
    return typeof last.content === "string" ? last.content : last.content.filter((p) => p.type === "text").map((p) => p.text).join(" ");
  },
  toolResult: (body) => body.messages.filter((m) => m.role === "tool").map((m) => (typeof m.content === "string" ? m.content : JSON.stringify(m.content))).at(-1),
  reply(res, model, { text, tool, finish = tool ? "tool_calls" : "stop", completion = USAGE.completion }) {
    if (res.mockStream) {
      // The same reply as a stream, as OpenAI streams one (its usage in the last chunk).
      const w = openai.writer(res, model);
      w.start();
      if (text) for (const piece of pieces(text)) w.text(piece);
      if (tool) w.tool(tool.name, pieces(JSON.stringify(tool.args)));
      if (finish !== null) w.finish(finish === "tool_calls" ? "tool" : finish);
      return w.end({ prompt_tokens: USAGE.prompt, completion_tokens: completion, total_tokens: USAGE.prompt + completion });
    }
    const message = { role: "assistant", content: text ?? null, refusal: null };
    if (tool) message.tool_calls = [{ id: "call_mock1", type: "function", function: { name: tool.name, arguments: JSON.stringify(tool.args) } }];
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({
      id: "chatcmpl-mock", object: "chat.completion", created: 1751471234, model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
      usage: { prompt_tokens: USAGE.prompt, completion_tokens: completion, total_tokens: USAGE.prompt + completion },
      system_fingerprint: "fp_mock",
    }));
  },
  writer(res, model) {
    // As OpenAI streams with `stream_options.include_usage` (which the gateway always
    // sets): `usage: null` on every chunk but the last (tests/fixtures/openai/).
    const chunk = (delta, finish_reason = null, extra = {}) =>
      sse({ id: "chatcmpl-mock", object: "chat.completion.chunk", created: 1751471234, model, system_fingerprint: "fp_mock",
        choices: [{ index: 0, delta, logprobs: null, finish_reason }], usage: null, ...extra });
    return {
      start: () => { res.writeHead(200, { "content-type": "text/event-stream" }); res.write(chunk({ role: "assistant", content: "" })); },
      text: (t) => res.write(chunk({ content: t })),
      reasoning: (t) => res.write(chunk({ reasoning: t })),
      tool: (name, pieces) => {
        res.write(chunk({ tool_calls: [{ index: 0, id: "call_mock1", type: "function", function: { name, arguments: "" } }] }));
        for (const p of pieces) res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: p } }] }));
      },
      finish: (kind) => res.write(chunk({}, kind === "tool" ? "tool_calls" : kind === "error" ? "error" : kind === "length" ? "length" : "stop")),
      end: (usage = { prompt_tokens: USAGE.prompt, completion_tokens: USAGE.completion, total_tokens: USAGE.prompt + USAGE.completion }) => {
        res.write(sse({ id: "chatcmpl-mock", object: "chat.completion.chunk", created: 1751471234, model, system_fingerprint: "fp_mock", choices: [], usage }));
        res.end(sse("[DONE]"));
      },
      cut: () => res.end('data: {"id":"chatcmpl-mock","choi'),
      // As OpenAI fails mid-stream: an error event, then the end.
      fail: () => res.end(sse({ error: { message: "The server had an error while processing your request. Sorry about that!", type: "server_error", param: null, code: null } })),
    };
  },
  error(res, status, message, headers = {}) {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify({ error: { message, type: status === 429 ? "requests" : "server_error" } }));
  },
  /** The partial assistant turn a continuation carries (an assistant message, then
   * the instruction to go on), or "" when the request is not one. */
  continued(body) {
    const [turn, told] = body.messages.slice(-2);
    if (turn?.role !== "assistant" || told?.role !== "user") return "";
    return typeof turn.content === "string" ? turn.content : turn.content.filter((p) => p.type === "text").map((p) => p.text).join("");
  },
};

/** The fields Anthropic's Messages API defines, and each content block type's. */
const ANTHROPIC_FIELDS = new Set(["model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature",
  "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "context_management", "output_format", "output_config"]);
const ANTHROPIC_BLOCKS = {
  text: ["text", "cache_control", "citations"],
  image: ["source", "cache_control"],
  document: ["source", "title", "context", "citations", "cache_control"],
  tool_use: ["id", "name", "input", "cache_control"],
  tool_result: ["tool_use_id", "content", "is_error", "cache_control"],
  thinking: ["thinking", "signature"],
  redacted_thinking: ["data"],
};
const ANTHROPIC_SOURCES = { base64: ["media_type", "data"], url: ["url"], text: ["media_type", "data"], file: ["file_id"], content: ["content"] };

/** Anthropic's checks of `tools`: a custom tool's fields, its web search tool's
 * (docs.claude.com web-search-tool: `name` "web_search", `max_uses`, one of
 * `allowed_domains` / `blocked_domains`, an approximate `user_location`), and unique names. */
const ANTHROPIC_TOOL = ["name", "description", "input_schema", "cache_control", "type"];
const ANTHROPIC_WEB_SEARCH = ["type", "name", "max_uses", "allowed_domains", "blocked_domains", "user_location", "cache_control"];
const ANTHROPIC_LOCATION = ["type", "city", "region", "country", "timezone"];
function anthropicTools(tools, bad) {
  const names = new Set();
  for (const [i, t] of tools.entries()) {
    const search = String(t.type ?? "").startsWith("web_search_");
    if (search && t.type !== "web_search_20250305") return bad(`tools.${i}: Input tag '${t.type}' found using 'type' does not match any of the expected tags`);
    const fields = search ? ANTHROPIC_WEB_SEARCH : ANTHROPIC_TOOL;
    const k = Object.keys(t).find((k) => !fields.includes(k));
    if (k) return bad(`tools.${i}.${search ? t.type : "custom"}.${k}: Extra inputs are not permitted`);
    if (search) {
      if (t.name !== "web_search") return bad(`tools.${i}.${t.type}.name: Input should be 'web_search'`);
      if (t.max_uses !== undefined && !(Number.isInteger(t.max_uses) && t.max_uses > 0)) return bad(`tools.${i}.${t.type}.max_uses: Input should be greater than 0`);
      if (t.allowed_domains && t.blocked_domains) return bad("Only one of allowed_domains or blocked_domains can be provided");
      const loc = t.user_location;
      if (loc && (loc.type !== "approximate" || Object.keys(loc).some((k) => !ANTHROPIC_LOCATION.includes(k)))) return bad(`tools.${i}.${t.type}.user_location: Input should be an approximate location`);
    } else if (!t.input_schema) return bad(`tools.${i}.custom.input_schema: Field required`);
    if (names.has(t.name)) return bad("tools: Tool names must be unique.");
    names.add(t.name);
  }
  return null;
}

/** The signature the mock gives its thinking blocks, and wants back. */
export const MOCK_SIGNATURE = "EqQBCgIYAhIMmockSignature0001";

/** Anthropic messages. */
const anthropic = {
  match: (req) => (req.url.endsWith("/messages") ? {} : null),
  model: (body) => body.model,
  stream: (body) => !!body.stream,
  lastUserText(body) {
    const last = body.messages.filter((m) => m.role === "user").at(-1);
    if (!last) return "";
    return typeof last.content === "string" ? last.content : last.content.filter((b) => b.type === "text").map((b) => b.text).join(" ");
  },
  toolResult: (body) =>
    body.messages.flatMap((m) => (Array.isArray(m.content) ? m.content : [])).filter((b) => b.type === "tool_result")
      .map((b) => (typeof b.content === "string" ? b.content : JSON.stringify(b.content))).at(-1),
  reply(res, model, { text, tool, thinking, body }) {
    // A web search server tool runs two searches (at most its max_uses), billed apart.
    const search = (body?.tools ?? []).find((t) => String(t.type).startsWith("web_search_"));
    const searches = search ? Math.min(search.max_uses ?? Infinity, 2) : 0;
    // A 1-hour cache mark anywhere: 100 prompt tokens written for an hour, reported
    // apart as Anthropic does.
    const oneHour = JSON.stringify(body ?? {}).includes('"ttl":"1h"');
    const cache = oneHour ? { cache_creation_input_tokens: 100, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 100 } } : {};
    if (res.mockStream) {
      const w = anthropic.writer(res, model);
      w.start(cache);
      if (thinking) w.thinking(pieces(thinking.text), thinking.signature);
      if (text) for (const piece of pieces(text)) w.text(piece);
      if (tool) w.tool(tool.name, pieces(JSON.stringify(tool.args)));
      w.finish(tool ? "tool" : "stop", searches ? { server_tool_use: { web_search_requests: searches } } : {});
      return w.end();
    }
    const content = [];
    if (thinking) content.push({ type: "thinking", thinking: thinking.text, signature: thinking.signature });
    if (text != null) content.push({ type: "text", text });
    if (tool) content.push({ type: "tool_use", id: "toolu_mock1", name: tool.name, input: tool.args });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({
      id: "msg_mock", type: "message", role: "assistant", model, content,
      stop_reason: tool ? "tool_use" : "end_turn", stop_sequence: null,
      usage: { input_tokens: USAGE.prompt, output_tokens: USAGE.completion, cache_creation_input_tokens: 0, cache_read_input_tokens: 0,
        ...cache, ...(searches ? { server_tool_use: { web_search_requests: searches } } : {}) },
    }));
  },
  writer(res, model) {
    let block = -1;
    let textOpen = false;
    // As Anthropic does: every content block ends with content_block_stop.
    const closeText = () => {
      if (textOpen) res.write(sse({ type: "content_block_stop", index: block }, "content_block_stop"));
      textOpen = false;
    };
    return {
      thinking: (pieces, signature) => {
        closeText();
        block += 1;
        res.write(sse({ type: "content_block_start", index: block, content_block: { type: "thinking", thinking: "" } }, "content_block_start"));
        for (const t of pieces) res.write(sse({ type: "content_block_delta", index: block, delta: { type: "thinking_delta", thinking: t } }, "content_block_delta"));
        res.write(sse({ type: "content_block_delta", index: block, delta: { type: "signature_delta", signature } }, "content_block_delta"));
        res.write(sse({ type: "content_block_stop", index: block }, "content_block_stop"));
      },
      start: (usage = {}) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(sse({ type: "message_start", message: { id: "msg_mock", type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: USAGE.prompt, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, ...usage } } }, "message_start"));
        res.write(sse({ type: "ping" }, "ping"));
      },
      text: (t) => {
        if (!textOpen) { block += 1; textOpen = true; res.write(sse({ type: "content_block_start", index: block, content_block: { type: "text", text: "" } }, "content_block_start")); }
        res.write(sse({ type: "content_block_delta", index: block, delta: { type: "text_delta", text: t } }, "content_block_delta"));
      },
      tool: (name, pieces) => {
        closeText();
        block += 1;
        res.write(sse({ type: "content_block_start", index: block, content_block: { type: "tool_use", id: "toolu_mock1", name, input: {} } }, "content_block_start"));
        for (const p of pieces) res.write(sse({ type: "content_block_delta", index: block, delta: { type: "input_json_delta", partial_json: p } }, "content_block_delta"));
        res.write(sse({ type: "content_block_stop", index: block }, "content_block_stop"));
      },
      finish: (kind, usage = {}) => {
        closeText();
        res.write(sse({ type: "message_delta", delta: { stop_reason: kind === "tool" ? "tool_use" : "end_turn", stop_sequence: null }, usage: { output_tokens: USAGE.completion, ...usage } }, "message_delta"));
      },
      end: () => res.end(sse({ type: "message_stop" }, "message_stop")),
      cut: () => res.end('event: content_block_delta\ndata: {"type":"content_blo'),
      // As Anthropic fails mid-stream: an error event (its overloaded error), then the end.
      fail: () => res.end(sse({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, "error")),
      /** A tool call begun and cut off inside its arguments. */
      toolStart: (name, piece) => {
        closeText();
        block += 1;
        res.write(sse({ type: "content_block_start", index: block, content_block: { type: "tool_use", id: "toolu_mock1", name, input: {} } }, "content_block_start"));
        res.write(sse({ type: "content_block_delta", index: block, delta: { type: "input_json_delta", partial_json: piece } }, "content_block_delta"));
      },
    };
  },
  /** A prefilled assistant turn (the last message), or "". */
  continued(body) {
    const last = body.messages.at(-1);
    if (last?.role !== "assistant") return "";
    return typeof last.content === "string" ? last.content : last.content.filter((b) => b.type === "text").map((b) => b.text).join("");
  },
  /** Anthropic's own refusals: fields it does not define, and a turn that lost its
   * thinking. */
  refuse(body) {
    const bad = (message) => ({ status: 400, body: { type: "error", error: { type: "invalid_request_error", message } } });
    const extra = Object.keys(body).find((k) => !ANTHROPIC_FIELDS.has(k));
    if (extra) return bad(`${extra}: Extra inputs are not permitted`);
    const tooled = anthropicTools(body.tools ?? [], bad);
    if (tooled) return tooled;
    // A prefilled last assistant turn may not end in white space (Anthropic's rule).
    const last = body.messages.at(-1);
    const lastText = last?.role === "assistant" && (typeof last.content === "string" ? last.content : (last.content ?? []).filter((b) => b.type === "text").map((b) => b.text).join(""));
    if (lastText && /\s$/.test(lastText)) return bad("messages: final assistant content cannot end with trailing whitespace");
    for (const [i, m] of body.messages.entries()) {
      if (!["user", "assistant"].includes(m.role)) return bad(`messages.${i}.role: Input should be 'user' or 'assistant'`);
      for (const [j, b] of (Array.isArray(m.content) ? m.content : []).entries()) {
        const at = `messages.${i}.content.${j}`;
        const fields = ANTHROPIC_BLOCKS[b.type];
        if (!fields) return bad(`${at}: Input tag '${b.type}' found using 'type' does not match any of the expected tags: ${Object.keys(ANTHROPIC_BLOCKS).map((t) => `'${t}'`).join(", ")}`);
        const k = Object.keys(b).find((k) => k !== "type" && !fields.includes(k));
        if (k) return bad(`${at}.${b.type}.${k}: Extra inputs are not permitted`);
        if (b.source) {
          const sf = ANTHROPIC_SOURCES[b.source.type];
          const sk = sf && Object.keys(b.source).find((k) => k !== "type" && !sf.includes(k));
          if (!sf || sk) return bad(`${at}.${b.type}.source${sk ? `.${b.source.type}.${sk}: Extra inputs are not permitted` : `: Input tag '${b.source.type}' found using 'type' does not match any of the expected tags`}`);
        }
      }
    }
    if (body.thinking?.type !== "enabled") return null;
    for (const [i, m] of body.messages.entries()) {
      const blocks = Array.isArray(m.content) ? m.content : [];
      if (m.role !== "assistant" || !blocks.some((b) => b.type === "tool_use")) continue;
      const first = blocks[0];
      if (first.type !== "thinking" && first.type !== "redacted_thinking") {
        return { status: 400, body: { type: "error", error: { type: "invalid_request_error", message: `messages.${i}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${first.type}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable \`thinking\`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking` } } };
      }
      if (first.type === "thinking" && first.signature !== MOCK_SIGNATURE) {
        return { status: 400, body: { type: "error", error: { type: "invalid_request_error", message: `messages.${i}.content.0: Invalid \`signature\` in \`thinking\` block` } } };
      }
    }
    return null;
  },
  error(res, status, message, headers = {}) {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    const type = status === 429 ? "rate_limit_error" : status === 529 ? "overloaded_error" : "api_error";
    res.end(JSON.stringify({ type: "error", error: { type, message } }));
  },
};

/** The thought signature the mock Gemini gives its function calls, and wants back. */
export const MOCK_GEMINI_SIGNATURE = "CiQBcsjafMockGeminiSignature";
/** What Gemini's documentation says to send for a call another model made. */
const SKIP_SIGNATURE = "skip_thought_signature_validator";

/** The fields Gemini's GenerateContentRequest defines (in both spellings), and its parts'. */
const GEMINI_FIELDS = {
  request: ["contents", "tools", "toolConfig", "safetySettings", "systemInstruction", "generationConfig", "cachedContent", "labels"],
  generationConfig: ["stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities", "candidateCount",
    "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
    "enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "imageConfig", "mediaResolution"],
  tool: ["functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "googleMaps", "computerUse", "fileSearch"],
  part: ["text", "inlineData", "functionCall", "functionResponse", "fileData", "executableCode", "codeExecutionResult", "thought",
    "thoughtSignature", "videoMetadata", "partMetadata"],
};
const snake = (k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const knownTo = (list, k) => list.includes(k) || list.map(snake).includes(k);

/** Gemini generateContent / streamGenerateContent?alt=sse. */
/** The thinking budgets a Gemini 2.5 model accepts (ai.google.dev/gemini-api/docs/thinking). */
function geminiBudgetRange(model) {
  if (model.startsWith("gemini-2.5-pro")) return [128, 32768];
  if (model.startsWith("gemini-2.5-flash-lite")) return [512, 24576];
  if (model.startsWith("gemini-2.5-flash")) return [0, 24576];
  return null;
}

const gemini = {
  /** Gemini's own refusals: unknown fields, roles, and (as Gemini 3 does) a function
   * call of the current turn without its thought signature; a thinking budget out of
   * the model's documented range (Google's message for it). */
  refuse(body, m) {
    const bad = (message) => ({ status: 400, body: { error: { code: 400, message, status: "INVALID_ARGUMENT" } } });
    const unknown = (obj, list, at) => {
      const k = Object.keys(obj ?? {}).find((k) => !knownTo(list, k));
      return k && bad(`Invalid JSON payload received. Unknown name "${k}"${at ? ` at '${at}'` : ""}: Cannot find field.`);
    };
    const top = unknown(body, GEMINI_FIELDS.request, "");
    if (top) return top;
    const gen = unknown(body.generationConfig, GEMINI_FIELDS.generationConfig, "generation_config");
    if (gen) return gen;
    for (const [i, t] of (body.tools ?? []).entries()) {
      const u = unknown(t, GEMINI_FIELDS.tool, `tools[${i}]`);
      if (u) return u;
      const search = t.googleSearch ?? t.google_search;
      const s = search && unknown(search, ["timeRangeFilter", "excludeDomains"], `tools[${i}].google_search`);
      if (s) return s;
    }
    const budget = body.generationConfig?.thinkingConfig?.thinkingBudget;
    const range = geminiBudgetRange(m?.model ?? "");
    if (budget != null && budget !== -1 && range && (budget < range[0] || budget > range[1])) {
      return bad(`The thinking budget (${budget}) is invalid.`);
    }
    for (const [i, c] of (body.contents ?? []).entries()) {
      if (!["user", "model"].includes(c.role)) return bad("Please use a valid role: user, model.");
      for (const [j, p] of (c.parts ?? []).entries()) {
        const u = unknown(p, GEMINI_FIELDS.part, `contents[${i}].parts[${j}]`);
        if (u) return u;
      }
    }
    // The current turn starts after the last user content that is not a function response.
    const contents = body.contents ?? [];
    let start = 0;
    contents.forEach((c, i) => { if (c.role === "user" && c.parts.some((p) => !p.functionResponse)) start = i + 1; });
    for (let i = start; i < contents.length; i++) {
      const first = contents[i].role === "model" && contents[i].parts.find((p) => p.functionCall);
      if (first && ![MOCK_GEMINI_SIGNATURE, SKIP_SIGNATURE].includes(first.thoughtSignature)) {
        return bad(`Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${first.functionCall.name}\` , position ${i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`);
      }
    }
    return null;
  },
  match: (req) => {
    const m = req.url.match(/\/models\/([^/:]+):(generateContent|streamGenerateContent)/);
    return m ? { model: decodeURIComponent(m[1]), stream: m[2] === "streamGenerateContent" } : null;
  },
  lastUserText(body) {
    const last = body.contents.filter((c) => c.role === "user").at(-1);
    return (last?.parts ?? []).filter((p) => p.text != null).map((p) => p.text).join(" ");
  },
  toolResult: (body) => body.contents.flatMap((c) => c.parts ?? []).filter((p) => p.functionResponse).map((p) => JSON.stringify(p.functionResponse.response)).at(-1),
  usage: (completion, prompt = USAGE.prompt) => ({ promptTokenCount: prompt, candidatesTokenCount: completion, totalTokenCount: prompt + completion }),
  reply(res, model, { text, tool, prompt = USAGE.prompt }) {
    if (res.mockStream) {
      const w = gemini.writer(res, model, prompt);
      w.start();
      if (text) for (const piece of pieces(text)) w.text(piece);
      if (tool) w.tool(tool.name, [JSON.stringify(tool.args)]);
      w.finish();
      return w.end();
    }
    const parts = [];
    if (text != null) parts.push({ text });
    if (tool) parts.push({ functionCall: { name: tool.name, args: tool.args }, thoughtSignature: MOCK_GEMINI_SIGNATURE });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({
      candidates: [{ content: { role: "model", parts }, finishReason: "STOP", index: 0 }],
      usageMetadata: { promptTokenCount: prompt, candidatesTokenCount: USAGE.completion, totalTokenCount: prompt + USAGE.completion },
      modelVersion: model, responseId: "mock",
    }));
  },
  writer(res, model, prompt = USAGE.prompt) {
    // As Gemini streams (tests/fixtures/gemini/): the prompt counted on every event, the
    // candidates only on the last, one response ID throughout.
    const ev = (parts, extra = {}) => sse({ candidates: [{ content: { role: "model", parts }, index: 0, ...extra }],
      usageMetadata: { promptTokenCount: prompt, totalTokenCount: prompt }, modelVersion: model, responseId: "mock" });
    let pendingTool = null;
    return {
      start: () => res.writeHead(200, { "content-type": "text/event-stream" }),
      text: (t) => res.write(ev([{ text: t }])),
      tool: (name, pieces) => { pendingTool = { name, args: JSON.parse(pieces.join("")) }; },
      finish: () => {
        const parts = pendingTool ? [{ functionCall: pendingTool, thoughtSignature: MOCK_GEMINI_SIGNATURE }] : [{ text: "" }];
        res.write(sse({ candidates: [{ content: { role: "model", parts }, finishReason: "STOP", index: 0 }], usageMetadata: gemini.usage(USAGE.completion, prompt), modelVersion: model, responseId: "mock" }));
      },
      end: () => res.end(),
      cut: () => res.end('data: {"candidates": [{"content": {"par'),
      // As Gemini fails mid-stream: an error object as the last event.
      fail: () => res.end(sse({ error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" } })),
    };
  },
  /** A `model` turn the request ends with (a continuation), or "". */
  continued(body) {
    const last = (body.contents ?? []).at(-1);
    if (last?.role !== "model") return "";
    return (last.parts ?? []).filter((p) => p.text != null).map((p) => p.text).join("");
  },
  error(res, status, message, headers = {}) {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    const st = { 400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE" }[status] ?? "UNKNOWN";
    res.end(JSON.stringify({ error: { code: status, message, status: st } }));
  },
};

// What each family asks for at most, and how it refuses more than a model generates
// (an upstream model named `<script>@max<N>` generates at most N tokens per reply).
openai.outputAsk = (body) => body.max_completion_tokens ?? body.max_tokens;
openai.tooLong = (asked, most) => ({ status: 400, body: { error: {
  message: `max_tokens is too large: ${asked}. This model supports at most ${most} completion tokens, whereas you provided ${asked}.`,
  type: "invalid_request_error", param: "max_tokens", code: "invalid_value" } } });
anthropic.outputAsk = (body) => body.max_tokens;
anthropic.tooLong = (asked, most, model) => ({ status: 400, body: { type: "error", error: { type: "invalid_request_error",
  message: `max_tokens: ${asked} > ${most}, which is the maximum allowed number of output tokens for ${model}` } } });
gemini.outputAsk = (body) => body.generationConfig?.maxOutputTokens;
gemini.tooLong = (asked, most) => ({ status: 400, body: { error: { code: 400, status: "INVALID_ARGUMENT",
  message: `Unable to submit request because it has a maxOutputTokens value of ${asked} but the supported range is from 1 (inclusive) to ${most + 1} (exclusive). Update the value and try again.` } } });

// How each family refuses a prompt longer than the model's context, and reports an
// overload, in its own words (OpenAI's `context_length_exceeded`, Anthropic's "prompt
// is too long" and 529 `overloaded_error`, Gemini's INVALID_ARGUMENT and 503).
openai.contextTooLong = () => ({ status: 400, body: { error: {
  message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130012 tokens. Please reduce the length of the messages.",
  type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } } });
anthropic.contextTooLong = () => ({ status: 400, body: { type: "error", error: { type: "invalid_request_error",
  message: "prompt is too long: 210012 tokens > 200000 maximum" } } });
gemini.contextTooLong = () => ({ status: 400, body: { error: { code: 400, status: "INVALID_ARGUMENT",
  message: "The input token count (1200012) exceeds the maximum number of tokens allowed (1048576)." } } });
openai.overloadedStatus = 503;
anthropic.overloadedStatus = 529;
gemini.overloadedStatus = 503;
// An error event in the middle of a stream, as each family sends one.
openai.streamError = (res) => res.end(sse({ error: { code: "server_error", message: "Provider disconnected unexpectedly" } }));
anthropic.streamError = (res) => res.end(sse({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }, "error"));
gemini.streamError = (res) => res.end(sse({ error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" } }));

const FORMATS = [gemini, anthropic, openai];
/** Each format's fixture folder (tests/fixtures/<family>/). */
const FIXTURE_FAMILY = new Map([[openai, "openai"], [anthropic, "anthropic"], [gemini, "gemini"]]);

/** The embeddings requests OpenAI (`/embeddings`) and Gemini (`:batchEmbedContents`)
 * define: anything else they refuse, as their chat endpoints do. */
const openaiEmbeddings = {
  refuse(body) {
    const unknown = Object.keys(body).find((k) => !["model", "input", "dimensions", "encoding_format", "user"].includes(k));
    return unknown ? { status: 400, body: { error: { message: `Unrecognized request argument supplied: ${unknown}`, type: "invalid_request_error", param: null, code: null } } } : null;
  },
};
const GEMINI_EMBED_FIELDS = ["model", "content", "taskType", "title", "outputDimensionality"];
const geminiEmbeddings = {
  refuse(body, model) {
    const bad = (message) => ({ status: 400, body: { error: { code: 400, message, status: "INVALID_ARGUMENT" } } });
    const top = Object.keys(body).find((k) => k !== "requests");
    if (top) return bad(`Invalid JSON payload received. Unknown name "${top}": Cannot find field.`);
    for (const [i, r] of (body.requests ?? []).entries()) {
      const k = Object.keys(r).find((k) => !knownTo(GEMINI_EMBED_FIELDS, k));
      if (k) return bad(`Invalid JSON payload received. Unknown name "${k}" at 'requests[${i}]': Cannot find field.`);
      if (model && r.model !== `models/${model}`) return bad(`Model in request (${r.model}) does not match the model in the URL`);
      const p = (r.content?.parts ?? []).flatMap((p) => Object.keys(p)).find((k) => !knownTo(GEMINI_FIELDS.part, k));
      if (p) return bad(`Invalid JSON payload received. Unknown name "${p}" at 'requests[${i}].content.parts': Cannot find field.`);
    }
    return null;
  },
};

/** The fields Anthropic's `count_tokens` defines (`MessageCountTokensParams`): it
 * refuses any other, `max_tokens` and `stream` included. */
const ANTHROPIC_COUNT_FIELDS = new Set(["model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers",
  "context_management", "output_config", "output_format"]);

/** Token counting as Anthropic (`POST /v1/messages/count_tokens`, `{input_tokens}`) and
 * Gemini (`models/{model}:countTokens`, `{totalTokens}`) serve it, as strict as their
 * generation endpoints: each refuses a field it does not define. */
const counters = {
  anthropic: {
    match: (url) => url.endsWith("/messages/count_tokens"),
    refuse(body) {
      const bad = (message) => ({ status: 400, body: { type: "error", error: { type: "invalid_request_error", message } } });
      const extra = Object.keys(body).find((k) => !ANTHROPIC_COUNT_FIELDS.has(k));
      if (extra) return bad(`${extra}: Extra inputs are not permitted`);
      for (const k of ["model", "messages"]) if (body[k] == null) return bad(`${k}: Field required`);
      return anthropic.refuse(body);
    },
    model: (body) => body.model,
  },
  gemini: {
    match: (url) => url.match(/\/models\/([^/:]+):countTokens/),
    refuse(body, model) {
      const bad = (message) => ({ status: 400, body: { error: { code: 400, message, status: "INVALID_ARGUMENT" } } });
      const top = Object.keys(body).find((k) => !knownTo(["contents", "generateContentRequest"], k));
      if (top) return bad(`Invalid JSON payload received. Unknown name "${top}": Cannot find field.`);
      const g = body.generateContentRequest ?? body.generate_content_request;
      if (!g) return gemini.refuse({ contents: body.contents ?? [] }, { model });
      if (body.contents) return bad("contents and generate_content_request are mutually exclusive.");
      if (g.model !== `models/${model}`) return bad("* GenerateContentRequest.model: unexpected model name format\n");
      const { model: _named, ...request } = g;
      return gemini.refuse(request, { model });
    },
  },
};

/** How the provider the request at `url` is for refuses `body` (what it does not
 * define), or null: the mock's strict checks, also run on every fixture request. */
export function refusal(url, body) {
  if (counters.anthropic.match(url)) return counters.anthropic.refuse(body);
  const count = counters.gemini.match(url);
  if (count) return counters.gemini.refuse(body, decodeURIComponent(count[1]));
  if (url.endsWith("/embeddings")) return openaiEmbeddings.refuse(body);
  const embed = url.match(/models\/([^/:]+):batchEmbedContents/);
  if (embed) return geminiEmbeddings.refuse(body, decodeURIComponent(embed[1]));
  const f = FORMATS.find((f) => f.match({ url }));
  return f ? f.refuse(body, f.match({ url })) : { status: 404, body: { error: { message: `no provider serves ${url}` } } };
}

/** Answers with fixture case `name` of `family` as it is on disk: its stream when
 * the request asks for one and the case has one, else its reply or its error. */
function serveFixture(res, family, name, stream) {
  const c = fixtureCase(family, name);
  if (c.error) {
    res.writeHead(c.error.status, { "content-type": "application/json" });
    return res.end(c.error.body);
  }
  if (c.stream && (stream || !c.reply)) {
    res.writeHead(200, { "content-type": "text/event-stream" });
    return res.end(c.stream);
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(c.reply);
}

// ------------------------------------------------------------------ behaviours

/** The reply the failover tests stream, cut, and continue elsewhere. */
export const FAILOVER_TEXT = "The quick brown fox jumps over a lazy dog; meanwhile, six wizards vex Jack by the river.";
/** The tool call a failover test's reply ends with. */
export const FAILOVER_TOOL = { name: "get_weather", args: { city: "Paris" } };
/** A continuation's usage: what the mock bills for its part of the reply. */
export const CONTINUED_USAGE = { prompt: 23, completion: 9 };

/** Failover scripts, named by the upstream model: `cut-<how>-<at>[-tool]` streams the
 * first `at` characters of FAILOVER_TEXT (then, with `-tool`, the start of a tool call)
 * and fails: `fail` (the provider's error event), `reset` (the connection dropped),
 * `eof` (a clean end before the family's terminal event), `garbage` (an event cut in
 * the middle), `stall` (silence until the gateway leaves). `cont-<repeat>[-tool]`
 * continues the partial assistant turn it is given (refusing one that is not the
 * reply's start), repeating the last `repeat` characters of it first, as models do. */
function failoverScript(model) {
  const cut = model.match(/^cut-(fail|reset|eof|garbage|stall)-(\d+)(-tool)?$/);
  if (cut) {
    const [, how, at, tool] = cut;
    return async (f, c) => {
      const w = f.writer(c.res, c.model);
      w.start();
      for (const p of pieces(FAILOVER_TEXT.slice(0, Number(at)))) w.text(p);
      if (tool && w.toolStart) w.toolStart(FAILOVER_TOOL.name, '{"ci');
      else if (tool) w.tool(FAILOVER_TOOL.name, ['{"ci']);
      await sleep(30);
      if (how === "fail") return w.fail();
      if (how === "reset") return c.res.socket.destroy();
      if (how === "eof") return c.res.end();
      if (how === "garbage") return w.cut();
      await new Promise((resolve) => c.res.on("close", resolve));
    };
  }
  const cont = model.match(/^cont-(\d+)(-tool)?$/);
  if (!cont) return undefined;
  return async (f, c) => {
    const prefix = f.continued(c.body);
    if (!FAILOVER_TEXT.startsWith(prefix)) return f.error(c.res, 400, `mock: not a continuation of the reply: ${JSON.stringify(prefix)}`);
    const from = Math.max(0, prefix.length - Number(cont[1]));
    const w = f === gemini ? gemini.writer(c.res, c.model, CONTINUED_USAGE.prompt) : f.writer(c.res, c.model);
    w.start();
    for (const p of pieces(FAILOVER_TEXT.slice(from))) w.text(p);
    if (cont[2]) w.tool(FAILOVER_TOOL.name, pieces(JSON.stringify(FAILOVER_TOOL.args)));
    w.finish(cont[2] ? "tool" : "stop");
    if (f === openai) return w.end({ prompt_tokens: CONTINUED_USAGE.prompt, completion_tokens: CONTINUED_USAGE.completion, total_tokens: CONTINUED_USAGE.prompt + CONTINUED_USAGE.completion });
    w.end();
  };
}

/** What the native search script answers, and cites. */
export const NATIVE_ANSWER = "Spain won Euro 2024.";
export const NATIVE_URL = "https://uefa.test/euro2024";

/** Anthropic's reply after `n` searches of its own (server_tool_use and
 * web_search_tool_result blocks, then text citing a result), streamed or whole. */
function nativeAnthropic(c, n) {
  const searches = Array.from({ length: n }, (_, i) => [
    { type: "server_tool_use", id: `srvtoolu_mock${i}`, name: "web_search", input: { query: `euro 2024 ${i}` } },
    { type: "web_search_tool_result", tool_use_id: `srvtoolu_mock${i}`, content: [
      { type: "web_search_result", url: NATIVE_URL, title: "UEFA EURO 2024", encrypted_content: "EqgfCioIARgBmock", page_age: "July 15, 2024" }] },
  ]).flat();
  const citation = { type: "web_search_result_location", url: NATIVE_URL, title: "UEFA EURO 2024", encrypted_index: "Eo8BCioIAhgBmock", cited_text: "Spain beat England 2-1 in Berlin." };
  const usage = { input_tokens: USAGE.prompt, output_tokens: USAGE.completion, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, server_tool_use: { web_search_requests: n } };
  if (!c.stream) {
    c.res.writeHead(200, { "content-type": "application/json" });
    return c.res.end(JSON.stringify({ id: "msg_mock", type: "message", role: "assistant", model: c.model,
      content: [...searches, { type: "text", text: NATIVE_ANSWER, citations: [citation] }], stop_reason: "end_turn", stop_sequence: null, usage }));
  }
  c.res.writeHead(200, { "content-type": "text/event-stream" });
  const ev = (v) => c.res.write(sse(v, v.type));
  ev({ type: "message_start", message: { id: "msg_mock", type: "message", role: "assistant", model: c.model, content: [], stop_reason: null, stop_sequence: null,
    usage: { input_tokens: USAGE.prompt, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 } } });
  searches.forEach((b, index) => {
    if (b.type === "server_tool_use") {
      ev({ type: "content_block_start", index, content_block: { ...b, input: {} } });
      ev({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: JSON.stringify(b.input) } });
    } else ev({ type: "content_block_start", index, content_block: b });
    ev({ type: "content_block_stop", index });
  });
  const index = searches.length;
  ev({ type: "content_block_start", index, content_block: { type: "text", text: "", citations: [] } });
  ev({ type: "content_block_delta", index, delta: { type: "citations_delta", citation } });
  for (const p of pieces(NATIVE_ANSWER)) ev({ type: "content_block_delta", index, delta: { type: "text_delta", text: p } });
  ev({ type: "content_block_stop", index });
  ev({ type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: USAGE.completion, server_tool_use: { web_search_requests: n } } });
  ev({ type: "message_stop" });
  c.res.end();
}

/** Gemini's grounded reply: two queries, one source supporting the whole answer. */
function nativeGemini(c) {
  const grounding = { webSearchQueries: ["euro 2024 winner", "euro 2024 final score"], searchEntryPoint: { renderedContent: "<div>mock</div>" },
    groundingChunks: [{ web: { uri: NATIVE_URL, title: "uefa.test" } }],
    groundingSupports: [{ segment: { startIndex: 0, endIndex: NATIVE_ANSWER.length, text: NATIVE_ANSWER }, groundingChunkIndices: [0], confidenceScores: [0.9] }] };
  const usage = gemini.usage(USAGE.completion, USAGE.prompt);
  const last = { candidates: [{ content: { role: "model", parts: [{ text: c.stream ? "" : NATIVE_ANSWER }] }, finishReason: "STOP", index: 0, groundingMetadata: grounding }],
    usageMetadata: usage, modelVersion: c.model, responseId: "mock" };
  if (!c.stream) {
    c.res.writeHead(200, { "content-type": "application/json" });
    return c.res.end(JSON.stringify(last));
  }
  c.res.writeHead(200, { "content-type": "text/event-stream" });
  c.res.write(sse({ candidates: [{ content: { role: "model", parts: [{ text: NATIVE_ANSWER }] }, index: 0 }],
    usageMetadata: { promptTokenCount: USAGE.prompt, totalTokenCount: USAGE.prompt }, modelVersion: c.model, responseId: "mock" }));
  c.res.end(sse(last));
}

/** Whether a request (of any family) offers the function `name`. */
function offers(body, name) {
  return (body.tools ?? []).some((t) => t.function?.name === name || t.name === name
    || (t.functionDeclarations ?? []).some((d) => d.name === name));
}

export async function startMockUpstream() {
  const requests = [];
  const gates = new Map();
  const gate = (name) => {
    if (!gates.has(name)) {
      let resolve;
      const promise = new Promise((r) => (resolve = r));
      gates.set(name, { promise, resolve });
    }
    return gates.get(name);
  };
  const events = new Map();
  const note = (name, event) => {
    if (!events.has(name)) events.set(name, []);
    events.get(name).push({ event, at: Date.now() });
  };
  const WEATHER = { name: "get_weather", args: { city: "Paris" } };

  // Each script gets (format f, ctx) with ctx = {body, res, req, model, stream}.
  const scripts = {
    async ok(f, c) {
      f.reply(c.res, c.model, { text: `mock says: ${f.lastUserText(c.body)}`, body: c.body });
    },
    // What a stored conversation's turn shows: how many user and assistant messages the
    // upstream was sent (any family's shape), and the last user text.
    async recall(f, c) {
      const turns = c.body.messages ?? c.body.contents ?? [];
      const users = turns.filter((m) => m.role === "user").length;
      const replies = turns.filter((m) => m.role === "assistant" || m.role === "model").length;
      f.reply(c.res, c.model, { text: `mock heard ${users} user, ${replies} assistant: ${f.lastUserText(c.body)}`, body: c.body });
    },
    async stream(f, c) {
      if (!c.stream) return f.reply(c.res, c.model, { text: "Hello from the mock" });
      const w = f.writer(c.res, c.model);
      w.start();
      for (const t of ["Hello", " from", " the", " mock"]) w.text(t);
      w.finish("stop");
      w.end();
    },
    async tool(f, c) {
      if (!c.stream) return f.reply(c.res, c.model, { text: null, tool: WEATHER });
      const w = f.writer(c.res, c.model);
      w.start();
      w.tool(WEATHER.name, ['{"ci', 'ty": "Par', 'is"}']);
      w.finish("tool");
      w.end();
    },
    // An empty reply (no content, no output tokens) without a normal finish: what
    // insurance covers.
    async empty(f, c) {
      if (!c.stream) return f.reply(c.res, c.model, { text: "", finish: null, completion: 0 });
      const w = f.writer(c.res, c.model);
      w.start();
      w.finish("error");
      w.end({ prompt_tokens: USAGE.prompt, completion_tokens: 0, total_tokens: USAGE.prompt });
    },
    // An empty reply that stopped normally (a stop sequence that fired at once): billed.
    async emptystop(f, c) {
      if (!c.stream) return f.reply(c.res, c.model, { text: "", completion: 0 });
      const w = f.writer(c.res, c.model);
      w.start();
      w.finish("stop");
      w.end({ prompt_tokens: USAGE.prompt, completion_tokens: 0, total_tokens: USAGE.prompt });
    },
    // An agent's turn: call the weather tool, then answer with what it returned.
    async agent(f, c) {
      const result = f.toolResult(c.body);
      if (result === undefined) return scripts.tool(f, c);
      const text = `The tool said: ${result}`;
      if (!c.stream) return f.reply(c.res, c.model, { text });
      const w = f.writer(c.res, c.model);
      w.start();
      w.text(text);
      w.finish("stop");
      w.end();
    },
    // A model using a server tool (tests/integration/mcpfetch.test.mjs): the last user
    // message says `CALL <function> <JSON arguments>`; it calls that function if it was
    // offered and no tool result has come yet, then answers with the result.
    async servercall(f, c) {
      const result = f.toolResult(c.body);
      if (result !== undefined) return f.reply(c.res, c.model, { text: `The tool said: ${result}` });
      const m = /CALL (\S+) (.*)$/s.exec(f.lastUserText(c.body));
      const offered = (c.body.tools ?? []).map((t) => t.function?.name ?? t.name);
      if (!m || !offered.includes(m[1])) {
        return f.reply(c.res, c.model, { text: `No tool ${m?.[1]} among: ${offered.join(", ")}` });
      }
      f.reply(c.res, c.model, { text: null, tool: { name: m[1], args: JSON.parse(m[2]) } });
    },
    // A model that searches: calls the gateway's web_search function (refusing to go
    // on if it is not offered) until it has read two searches' results, then answers
    // citing two of the URLs it read. `searchforever` never stops searching while the
    // function is offered.
    async searcher(f, c) {
      const seen = JSON.stringify(c.body);
      const done = (seen.match(/Web search results for/g) ?? []).length;
      const offered = offers(c.body, "web_search");
      if (done < 2 && offered) return f.reply(c.res, c.model, { text: null, tool: { name: "web_search", args: { query: done ? "workers rust" : "rust wasm" } } });
      const text = offered || done ? "Rust runs on Workers (https://developers.cloudflare.com/workers/languages/rust/), see https://www.rust-lang.org/what/wasm" : "no web_search offered";
      f.reply(c.res, c.model, { text });
    },
    // A model whose provider searches itself (native search): Anthropic's web search
    // tool or Gemini's google_search, when sent, runs two searches (at most max_uses)
    // and answers citing NATIVE_URL as each provider writes it; without it, says so.
    async nativesearch(f, c) {
      const tools = c.body.tools ?? [];
      const anthropicTool = f === anthropic && tools.find((t) => t.type === "web_search_20250305");
      const google = f === gemini && tools.find((t) => t.googleSearch || t.google_search);
      if (!anthropicTool && !google) return f.reply(c.res, c.model, { text: `no native search offered: ${JSON.stringify(tools)}` });
      const n = Math.min(2, anthropicTool?.max_uses ?? 2);
      note("nativesearch", { family: f === anthropic ? "anthropic" : "gemini", tools });
      if (anthropicTool) return nativeAnthropic(c, n);
      return nativeGemini(c);
    },
    async searchforever(f, c) {
      const seen = JSON.stringify(c.body);
      const done = (seen.match(/Web search results for/g) ?? []).length;
      if (offers(c.body, "web_search")) return f.reply(c.res, c.model, { text: null, tool: { name: "web_search", args: { query: `q${done}` } } });
      f.reply(c.res, c.model, { text: `stopped after ${done} searches` });
    },
    // Answers with a JSON document (what structured output asks for).
    async json(f, c) {
      if (f === anthropic) return f.reply(c.res, c.model, { text: null, tool: { name: "modelmux_json_response", args: { answer: 4 } } });
      f.reply(c.res, c.model, { text: '{"answer":4}' });
    },
    async gated(f, c) {
      const w = f.writer(c.res, c.model);
      w.start();
      w.text("first");
      note("gated", "first-sent");
      await gate("gated").promise;
      w.text(" second");
      w.finish("stop");
      w.end();
      note("gated", "finished");
    },
    // The content ends at once; the usage (reasoning tokens included, on OpenAI's
    // format) follows a second later.
    async lateusage(f, c) {
      const w = f.writer(c.res, c.model);
      w.start();
      w.text("all of it");
      w.finish("stop");
      note("lateusage", "content-ended");
      await sleep(1000);
      if (f === openai) w.end({ prompt_tokens: 12, completion_tokens: 34, total_tokens: 46, completion_tokens_details: { reasoning_tokens: 30 } });
      else w.end();
      note("lateusage", "usage-sent");
    },
    // Extended thinking with a tool (Anthropic's format): thinks, calls the weather tool,
    // then answers from its result; the strict mock wants the thinking back.
    async thinkagent(f, c) {
      if (f !== anthropic) return scripts.agent(f, c);
      const result = f.toolResult(c.body);
      const thinking = { text: result === undefined ? "I should call the tool." : "The tool answered.", signature: MOCK_SIGNATURE };
      if (!c.stream) {
        return result === undefined
          ? f.reply(c.res, c.model, { text: null, tool: WEATHER, thinking })
          : f.reply(c.res, c.model, { text: `The tool said: ${result}`, thinking });
      }
      const w = f.writer(c.res, c.model);
      w.start();
      w.thinking(thinking.text.match(/\S+\s*/g), MOCK_SIGNATURE);
      if (result === undefined) {
        w.tool(WEATHER.name, ['{"city": "Paris"}']);
        w.finish("tool");
      } else {
        w.text(`The tool said: ${result}`);
        w.finish("stop");
      }
      w.end();
    },
    // Thinks out loud (OpenAI-compatible `reasoning` deltas), then answers in Markdown.
    async think(f, c) {
      const w = f.writer(c.res, c.model);
      w.start();
      w.reasoning("The user wants code. ");
      w.reasoning("A one-liner will do.");
      w.text("Here you are:\n\n```python\nprint(\"hi\")\n```\n");
      w.finish("stop");
      w.end();
    },
    // A model that thinks without showing it (OpenAI's reasoning models): silent for
    // 800 ms after its first chunk, then answering slowly; its usage, the reasoning
    // included, only at the end.
    async hiddenthink(f, c) {
      const w = f.writer(c.res, c.model);
      let open = true;
      c.res.on("close", () => { open = false; note("hiddenthink", "closed"); });
      w.start();
      await sleep(800);
      for (let i = 0; open && i < 40; i++) {
        w.text(`word${i} `);
        await sleep(50);
      }
      if (!open) return;
      w.finish("stop");
      w.end({ prompt_tokens: 11, completion_tokens: 200, total_tokens: 211, completion_tokens_details: { reasoning_tokens: 120 } });
    },
    // One JSON reply, even to a request for a stream (some OpenAI-compatible hosts).
    async jsonanyway(_f, c) {
      c.res.writeHead(200, { "content-type": "application/json" });
      c.res.end(JSON.stringify({ id: "chatcmpl-mock", object: "chat.completion", created: 1751471234, model: c.model,
        choices: [{ index: 0, message: { role: "assistant", content: "whole anyway" }, finish_reason: "stop" }],
        usage: { prompt_tokens: USAGE.prompt, completion_tokens: USAGE.completion, total_tokens: USAGE.prompt + USAGE.completion } }));
    },
    // A large reply (200 KB of content) that takes about a second: streamed in 100
    // pieces of 2,000 bytes 10 ms apart.
    async bigreply(f, c) {
      const w = f.writer(c.res, c.model);
      w.start();
      for (let i = 0; i < 100; i++) {
        w.text("x".repeat(2000));
        await sleep(10);
      }
      w.finish("stop");
      w.end();
    },
    // The same as one JSON reply, even to a request for a stream, written in 100 pieces.
    async bigjson(_f, c) {
      c.res.writeHead(200, { "content-type": "application/json" });
      const body = JSON.stringify({ id: "chatcmpl-mock", object: "chat.completion", created: 1751471234, model: c.model,
        choices: [{ index: 0, message: { role: "assistant", content: "x".repeat(200000) }, finish_reason: "stop" }],
        usage: { prompt_tokens: USAGE.prompt, completion_tokens: USAGE.completion, total_tokens: USAGE.prompt + USAGE.completion } });
      const piece = Math.ceil(body.length / 100);
      for (let at = 0; at < body.length; at += piece) {
        c.res.write(body.slice(at, at + piece));
        await sleep(10);
      }
      c.res.end();
    },
    // A stream that never says its usage.
    async nousage(f, c) {
      const w = f.writer(c.res, c.model);
      w.start();
      w.text("twelve bytes");
      w.finish("stop");
      c.res.end(sse("[DONE]"));
    },
    // A non-streamed reply that takes 600 ms (a model thinking before it answers).
    async slowreply(f, c) {
      await sleep(600);
      f.reply(c.res, c.model, { text: "worth the wait" });
      note("slowreply", "replied");
    },
    // Silent for a while mid-stream, then finishes.
    async slow(f, c) {
      const w = f.writer(c.res, c.model);
      w.start();
      w.text("before");
      await sleep(450);
      w.text(" after");
      w.finish("stop");
      w.end();
    },
    // Goes silent mid-stream and never finishes.
    async stall(f, c) {
      const w = f.writer(c.res, c.model);
      w.start();
      w.text("then silence");
      await new Promise((resolve) => c.res.on("close", resolve));
      note("stall", "closed");
    },
    // Says what media it was given (Gemini's format): "inline <type> <bytes>B" per inline
    // part, "file <uri>" per file URI. Bills what Google bills for what it fetched: a
    // YouTube video at 263 tokens a second (the mock's videos last VIDEO_SECONDS).
    async media(f, c) {
      const parts = c.body.contents.filter((x) => x.role === "user").at(-1).parts;
      const said = parts.filter((p) => !p.text).map((p) => (p.inlineData
        ? `inline ${p.inlineData.mimeType} ${Buffer.from(p.inlineData.data, "base64").length}B`
        : `file ${p.fileData.fileUri}`));
      const videos = parts.filter((p) => /youtube\.com|youtu\.be/.test(p.fileData?.fileUri ?? "")).length;
      f.reply(c.res, c.model, { text: said.join(", "), prompt: USAGE.prompt + videos * VIDEO_SECONDS * 263 });
    },
    // Draws (Gemini's format): a caption and a PNG, its tokens reported as IMAGE.
    async image(f, c) {
      const parts = [{ text: "A tiny red square." }, { inlineData: { mimeType: "image/png", data: PNG.toString("base64") } }];
      const usageMetadata = { promptTokenCount: 9, candidatesTokenCount: 1295, totalTokenCount: 1304,
        candidatesTokensDetails: [{ modality: "TEXT", tokenCount: 5 }, { modality: "IMAGE", tokenCount: 1290 }] };
      if (!c.stream) {
        c.res.writeHead(200, { "content-type": "application/json" });
        return c.res.end(JSON.stringify({ candidates: [{ content: { role: "model", parts }, finishReason: "STOP", index: 0 }], usageMetadata, modelVersion: c.model }));
      }
      c.res.writeHead(200, { "content-type": "text/event-stream" });
      c.res.write(sse({ candidates: [{ content: { role: "model", parts: [parts[0]] }, index: 0 }], modelVersion: c.model }));
      c.res.end(sse({ candidates: [{ content: { role: "model", parts: [parts[1]] }, finishReason: "STOP", index: 0 }], usageMetadata, modelVersion: c.model }));
    },
    fail500: async (f, c) => f.error(c.res, 500, "internal mock failure"),
    fail429: async (f, c) => f.error(c.res, 429, "Rate limit reached for requests", { "retry-after": "17" }),
    fail400: async (f, c) => f.error(c.res, 400, "mock refuses this request"),
    async failcontext(f, c) {
      const { status, body } = f.contextTooLong();
      c.res.writeHead(status, { "content-type": "application/json" });
      c.res.end(JSON.stringify(body));
    },
    failoverloaded: async (f, c) => f.error(c.res, f.overloadedStatus, "Overloaded"),
    // Overloaded, saying when to come back (as Anthropic's 529 and a 503 may).
    failbusy: async (f, c) => f.error(c.res, f.overloadedStatus, "Overloaded", { "retry-after": "23" }),
    // A few words, then the family's error event.
    async midstreamerror(f, c) {
      if (!c.stream) return f.error(c.res, 500, "internal mock failure");
      const w = f.writer(c.res, c.model);
      w.start();
      w.text("Hel");
      f.streamError(c.res);
    },
    fail401: async (f, c) => f.error(c.res, 401, "Incorrect API key provided: sk-mockai-secret. You can find your API key at https://example.invalid/keys."),
    // Google's answer to a bad API key: a 400 whose details give the reason.
    async googlebadkey(_f, c) {
      c.res.writeHead(400, { "content-type": "application/json" });
      c.res.end(JSON.stringify({ error: { code: 400, message: "API key not valid. Please pass a valid API key.", status: "INVALID_ARGUMENT",
        details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com", metadata: { service: "generativelanguage.googleapis.com" } }] } }));
    },
    async hang(_f, c) {
      note("hang", "started");
      await new Promise((resolve) => c.res.on("close", resolve));
      note("hang", "closed");
    },
    async garbage(_f, c) {
      c.res.writeHead(200, { "content-type": "application/json" });
      c.res.end("<html>definitely not json</html>");
    },
    async broken(f, c) {
      const w = f.writer(c.res, c.model);
      w.start();
      w.text("partial");
      await sleep(50);
      c.res.socket.destroy();
    },
    async truncated(f, c) {
      const w = f.writer(c.res, c.model);
      w.start();
      w.text("cut");
      w.cut();
    },
    async endless(f, c) {
      const w = f.writer(c.res, c.model);
      let open = true;
      c.res.on("close", () => { open = false; note("endless", "closed"); });
      w.start();
      note("endless", "started");
      for (let i = 0; open && i < 600; i++) {
        w.text(`tick${i} `);
        await sleep(50);
      }
      if (!c.res.writableEnded) c.res.end();
    },
  };

  // Embeddings, as OpenAI (`/embeddings`) and Gemini (`:batchEmbedContents`) serve
  // them: a vector per input, derived from the text; `embed` answers, `fail500` fails.
  const vector = (text, dims = 4) => Array.from({ length: dims }, (_, i) => ((text.length + i) % 7) / 7 - 0.5);
  function embeddings(req, res, body) {
    const json = (status, v) => { res.writeHead(status, { "content-type": "application/json" }); res.end(JSON.stringify(v)); };
    if (req.url.endsWith("/embeddings")) {
      const refused = openaiEmbeddings.refuse(body);
      if (refused) return json(refused.status, refused.body), true;
      if (String(body.model).startsWith("fixture-")) return serveFixture(res, "openai", body.model.slice(8), false), true;
      if (body.model !== "embed") return json(500, { error: { message: "internal mock failure" } }), true;
      const inputs = typeof body.input === "string" ? [body.input] : body.input;
      const data = inputs.map((input, index) => {
        const v = vector(typeof input === "string" ? input : input.join(" "), body.dimensions ?? 4);
        const embedding = body.encoding_format === "base64" ? Buffer.from(new Float32Array(v).buffer).toString("base64") : v;
        return { object: "embedding", index, embedding };
      });
      const tokens = inputs.reduce((n, i) => n + Math.ceil((typeof i === "string" ? i.length : i.length * 4) / 4), 0);
      return json(200, { object: "list", data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }), true;
    }
    const m = req.url.match(/models\/([^/:]+):batchEmbedContents/);
    if (m) {
      const refused = geminiEmbeddings.refuse(body, m[1]);
      if (refused) return json(refused.status, refused.body), true;
      if (m[1].startsWith("fixture-")) return serveFixture(res, "gemini", m[1].slice(8), false), true;
      if (m[1] !== "embed") return json(500, { error: { code: 500, message: "internal mock failure", status: "INTERNAL" } }), true;
      return json(200, { embeddings: body.requests.map((r) => ({ values: vector(r.content.parts[0].text, r.outputDimensionality ?? 4) })) }), true;
    }
    return false;
  }

  // Token counts: the reply of the family's fixture case `count_tokens` (or of case
  // `<name>` for the model `fixture-<name>`); `fail500` fails.
  function counting(req, res, body) {
    const json = (status, v) => { res.writeHead(status, { "content-type": "application/json" }); res.end(typeof v === "string" ? v : JSON.stringify(v)); };
    const gem = counters.gemini.match(req.url);
    const [family, f, model] = counters.anthropic.match(req.url) ? ["anthropic", anthropic, String(body.model)]
      : gem ? ["gemini", gemini, decodeURIComponent(gem[1])] : [];
    if (!family) return false;
    const refused = counters[family].refuse(body, model);
    if (refused) return json(refused.status, refused.body), true;
    if (model === "fail500") return f.error(res, 500, "internal mock failure"), true;
    const name = model.startsWith("fixture-") ? model.slice(8) : "count_tokens";
    return json(200, fixtureCase(family, name).reply), true;
  }

  // Media a request may point at by URL, as the web serves it.
  function media(req, res) {
    const path = req.url.split("?")[0];
    if (!path.startsWith("/media/")) return false;
    const send = (status, type, body, headers = {}) => { res.writeHead(status, { "content-type": type, ...headers }); res.end(body); };
    const routes = {
      "/media/cat.png": () => send(200, "image/png", PNG),
      "/media/paper": () => send(200, "application/octet-stream", Buffer.from("%PDF-1.4 mock")),
      "/media/hop": () => send(302, "text/plain", "", { location: "/media/cat.png" }),
      "/media/to-private": () => send(302, "text/plain", "", { location: "http://10.0.0.1/cat.png" }),
      "/media/big": () => send(200, "image/png", Buffer.alloc(3 * 1024 * 1024, 7)),
      "/media/slow.png": () => setTimeout(() => send(200, "image/png", PNG), 400),
    };
    if (/^\/media\/huge-\w+\.png$/.test(path)) return send(200, "image/png", HUGE_MEDIA), true;
    (routes[path] ?? (() => send(404, "text/plain", "not found")))();
    return true;
  }

  const server = http.createServer(async (req, res) => {
    if (media(req, res)) return;
    let raw = "";
    for await (const part of req) raw += part;
    let body = null;
    try { body = JSON.parse(raw); } catch { /* recorded as null */ }
    requests.push({ method: req.method, url: req.url, headers: req.headers, body });
    try {
      if (body && embeddings(req, res, body)) return;
      if (body && counting(req, res, body)) return;
      for (const f of FORMATS) {
        const m = f.match(req);
        if (!m || !body) continue;
        const [model, most] = (m.model ?? f.model(body)).split("@max");
        const stream = m.stream ?? f.stream(body);
        const script = scripts[model] ?? failoverScript(model);
        const asked = f.outputAsk(body);
        const refusal = f.refuse?.(body, m) ?? (most && asked > Number(most) ? f.tooLong(asked, Number(most), model) : null);
        if (refusal) {
          res.writeHead(refusal.status, { "content-type": "application/json" });
          return res.end(JSON.stringify(refusal.body));
        }
        // A fixture case (`fixture-<case>`), served as it is on disk.
        if (model.startsWith("fixture-")) return serveFixture(res, FIXTURE_FAMILY.get(f), model.slice(8), stream);
        // A script's reply is streamed when the request asked for a stream.
        res.mockStream = stream;
        if (script) return await script(f, { body, res, req, model, stream });
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `mock has no script for ${req.url}` } }));
    } catch (e) {
      if (!res.headersSent) res.writeHead(599);
      res.end(String(e));
    }
  });
  // Long, as real providers keep connections: a short one races the gateway reusing a
  // pooled connection just as the server closes it (ECONNRESET, a spurious 502).
  server.keepAliveTimeout = 30000;
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    last: (pathPart) => requests.filter((r) => r.url.includes(pathPart)).at(-1),
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
