// A strict MCP server on 127.0.0.1 speaking Streamable HTTP (MCP 2025-06-18), as the
// spec has a server behave: POST only, `Accept` naming both JSON and SSE, a session id
// given by `initialize` and required (and checked) on every later message with the
// negotiated `MCP-Protocol-Version`, requests refused until `notifications/initialized`,
// unknown methods JSON-RPC -32601. Its tools: `add`, `echo`, `report` (answered as an
// SSE stream with a progress notification first), `fail` (a result with isError), and
// `secret` (for allowed_tools). `tools/list` pages two tools at a time. Every message
// is recorded, headers included, so tests can check what the gateway sent.
import http from "node:http";
import { randomUUID } from "node:crypto";

export const MCP_VERSION = "2025-06-18";

export const MCP_TOOLS = [
  { name: "add", description: "Adds two numbers", inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] },
    annotations: { title: "Add", readOnlyHint: true, openWorldHint: false } },
  { name: "echo", description: "Echoes its text", inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] } },
  { name: "report", description: "A long report, streamed", inputSchema: { type: "object", properties: { topic: { type: "string" } } } },
  { name: "fail", description: "Always fails", inputSchema: { type: "object", properties: {} } },
  { name: "secret", description: "Not for everyone", inputSchema: { type: "object", properties: {} } },
];
const PAGE = 2;

const rpcResult = (id, result) => ({ jsonrpc: "2.0", id, result });
const rpcError = (id, code, message) => ({ jsonrpc: "2.0", id, error: { code, message } });

/** Starts the server; `auth` is the Authorization header it requires, if any. */
export async function startMcpServer({ auth } = {}) {
  const sessions = new Map(); // id -> { initialized }
  const seen = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString("utf8");
    const entry = { method: req.method, path: req.url, headers: { ...req.headers }, body: null };
    seen.push(entry);
    const send = (status, body, headers = {}) => {
      res.writeHead(status, { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    if (req.url !== "/mcp") return send(404, { error: "not found" });
    if (auth && req.headers.authorization !== auth) return send(401, { error: "unauthorized" }, { "www-authenticate": "Bearer" });
    const sid = req.headers["mcp-session-id"];
    if (req.method === "DELETE") {
      if (!sid || !sessions.has(sid)) return send(404, { error: "no such session" });
      sessions.delete(sid);
      return send(200, undefined);
    }
    // This server offers no stream of its own (GET): 405, as the spec allows.
    if (req.method !== "POST") return send(405, undefined, { allow: "POST, DELETE" });
    const accept = String(req.headers.accept ?? "");
    if (!accept.includes("application/json") || !accept.includes("text/event-stream")) {
      return send(406, rpcError(null, -32600, "Accept must list application/json and text/event-stream"));
    }
    if (!String(req.headers["content-type"] ?? "").startsWith("application/json")) {
      return send(415, rpcError(null, -32600, "Content-Type must be application/json"));
    }
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return send(400, rpcError(null, -32700, "Parse error"));
    }
    entry.body = msg;
    if (msg?.jsonrpc !== "2.0" || typeof msg.method !== "string") return send(400, rpcError(msg?.id ?? null, -32600, "Invalid Request"));
    if (msg.method === "initialize") {
      const p = msg.params ?? {};
      if (typeof p.protocolVersion !== "string" || typeof p.clientInfo?.name !== "string" || typeof p.capabilities !== "object") {
        return send(200, rpcError(msg.id, -32602, "initialize needs protocolVersion, capabilities and clientInfo"));
      }
      const id = randomUUID();
      sessions.set(id, { initialized: false });
      return send(200, rpcResult(msg.id, {
        protocolVersion: MCP_VERSION,
        capabilities: { tools: { listChanged: false } },
        serverInfo: { name: "mock-mcp", version: "1.0.0" },
      }), { "mcp-session-id": id });
    }
    if (!sid) return send(400, rpcError(msg.id ?? null, -32600, "Bad Request: Mcp-Session-Id header is required"));
    const session = sessions.get(sid);
    if (!session) return send(404, rpcError(msg.id ?? null, -32001, "Session not found"));
    if (req.headers["mcp-protocol-version"] !== MCP_VERSION) {
      return send(400, rpcError(msg.id ?? null, -32600, `Unsupported MCP-Protocol-Version: ${req.headers["mcp-protocol-version"]}`));
    }
    if (msg.id === undefined) {
      // A notification: accepted, no body.
      if (msg.method === "notifications/initialized") session.initialized = true;
      return send(202, undefined);
    }
    if (!session.initialized) return send(200, rpcError(msg.id, -32600, "Session not initialized"));
    if (msg.method === "tools/list") {
      const from = msg.params?.cursor === undefined ? 0 : Number(String(msg.params.cursor).replace("page-", ""));
      if (!Number.isInteger(from) || from < 0 || from >= MCP_TOOLS.length) return send(200, rpcError(msg.id, -32602, "Invalid cursor"));
      const next = from + PAGE;
      return send(200, rpcResult(msg.id, { tools: MCP_TOOLS.slice(from, next), ...(next < MCP_TOOLS.length ? { nextCursor: `page-${next}` } : {}) }));
    }
    if (msg.method === "tools/call") {
      const { name, arguments: args = {} } = msg.params ?? {};
      if (!MCP_TOOLS.some((t) => t.name === name)) return send(200, rpcError(msg.id, -32602, `Unknown tool: ${name}`));
      if (name === "add") {
        if (typeof args.a !== "number" || typeof args.b !== "number") return send(200, rpcError(msg.id, -32602, "a and b must be numbers"));
        return send(200, rpcResult(msg.id, { content: [{ type: "text", text: String(args.a + args.b) }], structuredContent: { sum: args.a + args.b } }));
      }
      if (name === "echo") return send(200, rpcResult(msg.id, { content: [{ type: "text", text: String(args.text) }] }));
      if (name === "fail") return send(200, rpcResult(msg.id, { content: [{ type: "text", text: "the tool broke" }], isError: true }));
      if (name === "secret") return send(200, rpcResult(msg.id, { content: [{ type: "text", text: "SECRET-OUTPUT" }] }));
      // `report`: an SSE stream, a progress notification before the response.
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write(`id: 1\ndata:\n\n`);
      res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 1, total: 2 } })}\n\n`);
      await new Promise((r) => setTimeout(r, 20));
      res.write(`event: message\ndata: ${JSON.stringify(rpcResult(msg.id, { content: [{ type: "text", text: `Report on ${args.topic ?? "nothing"}: all good.` }] }))}\n\n`);
      return res.end();
    }
    if (msg.method === "ping") return send(200, rpcResult(msg.id, {}));
    return send(200, rpcError(msg.id, -32601, `Method not found: ${msg.method}`));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    host: `127.0.0.1:${port}`,
    /** Every message received: {method, path, headers, body}. */
    seen,
    /** The JSON-RPC messages received, by method. */
    rpc: (method) => seen.filter((s) => s.body?.method === method),
    reset: () => { seen.length = 0; },
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}
