// A mock OpenAI-compatible upstream for the file-parser tests
// (tests/integration/pdftext.test.mjs), as strict as a real provider: fields OpenAI
// does not define are refused (at the top and on messages, so `plugins` or a
// gateway's `annotations` reaching it fail), and the upstream model `text-only`
// refuses `file` parts as a text-only provider does. It answers with the text of the
// user messages' text parts, and serves `GET /files/<name>.pdf` (the PDFs a test
// registers) for the PDF URL tests. Every chat request is recorded.
import http from "node:http";
import zlib from "node:zlib";
import { OPENAI_FIELDS, OPENAI_MESSAGE_FIELDS } from "./mock_upstream.mjs";

const USAGE = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };

/** A PDF of one page per entry of `pages` (a content stream's text), each stream
 * FlateDecode-compressed when `flate`. */
export function makePdf(pages, { flate = false } = {}) {
  const parts = [Buffer.from("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "latin1")];
  const kids = pages.map((_, i) => `${3 + 2 * i} 0 R`).join(" ");
  parts.push(Buffer.from(`1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [${kids}] /Count ${pages.length} >>\nendobj\n`));
  pages.forEach((content, i) => {
    const n = 3 + 2 * i;
    const raw = Buffer.from(content, "latin1");
    const data = flate ? zlib.deflateSync(raw) : raw;
    parts.push(Buffer.from(`${n} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${n + 1} 0 R >>\nendobj\n`));
    parts.push(Buffer.from(`${n + 1} 0 obj\n<< /Length ${data.length}${flate ? " /Filter /FlateDecode" : ""} >>\nstream\n`));
    parts.push(data, Buffer.from("\nendstream\nendobj\n"));
  });
  parts.push(Buffer.from("trailer\n<< /Root 1 0 R >>\n%%EOF\n"));
  return Buffer.concat(parts);
}

function refuse(res, status, message, param = null) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { message, type: "invalid_request_error", param, code: null } }));
}

const userText = (body) => body.messages.filter((m) => m.role === "user").flatMap((m) =>
  typeof m.content === "string" ? [m.content] : m.content.filter((p) => p.type === "text").map((p) => p.text)).join("\n");

function reply(res, body, content) {
  const id = "chatcmpl-pdf";
  const created = 1700000000;
  if (!body.stream) {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ id, object: "chat.completion", created, model: body.model,
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }], usage: USAGE }));
  }
  res.writeHead(200, { "content-type": "text/event-stream" });
  const chunk = (delta, finish = null, usage) =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) })}\n\n`;
  res.write(chunk({ role: "assistant", content: "" }));
  res.write(chunk({ content }));
  res.write(chunk({}, "stop"));
  if (body.stream_options?.include_usage) res.write(chunk(null, null, USAGE));
  res.end("data: [DONE]\n\n");
}

export async function startPdfMock() {
  const requests = [];
  const files = new Map();
  const server = http.createServer(async (req, res) => {
    if (req.method === "GET" && req.url.startsWith("/files/")) {
      const pdf = files.get(req.url.slice("/files/".length));
      if (!pdf) return refuse(res, 404, "not found");
      res.writeHead(200, { "content-type": "application/pdf", "content-length": pdf.length });
      return res.end(pdf);
    }
    let raw = "";
    for await (const part of req) raw += part;
    let body = null;
    try { body = JSON.parse(raw); } catch { /* recorded as null */ }
    requests.push({ url: req.url, body });
    if (!req.url.endsWith("/chat/completions") || !body) return refuse(res, 404, "not found");
    if (!req.headers.authorization?.startsWith("Bearer sk-")) return refuse(res, 401, "Incorrect API key provided");
    const unknown = Object.keys(body).find((k) => !OPENAI_FIELDS.has(k));
    if (unknown) return refuse(res, 400, `Unrecognized request argument supplied: ${unknown}`);
    for (const [i, m] of body.messages.entries()) {
      const extra = Object.keys(m).find((k) => !OPENAI_MESSAGE_FIELDS.has(k));
      if (extra) return refuse(res, 400, `Additional properties are not allowed ('${extra}' was unexpected) - 'messages.${i}'`);
      const parts = Array.isArray(m.content) ? m.content : [];
      const file = parts.findIndex((p) => p.type === "file");
      if (file >= 0 && body.model === "text-only") {
        return refuse(res, 400, `Invalid content type. file is not supported for this model.`, `messages.[${i}].content.[${file}].type`);
      }
    }
    if (body.model === "text-only" || body.model === "reads-files") return reply(res, body, `read: ${userText(body)}`);
    return refuse(res, 404, `The model ${body.model} does not exist`);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    files,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}
