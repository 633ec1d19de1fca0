// A strict mock of Mistral's OCR API (`POST /v1/ocr`): it checks the key, refuses
// fields Mistral's OCR request does not have (as its API's validation does) and a
// document other than a `document_url` data URL of a PDF, and answers in Mistral's
// reply shape (`pages[]` with `index`, `markdown`, `images`, `dimensions`;
// `usage_info`), pages out of order so that the reader must sort them. `pages` sets
// what each PDF reads as (by default two pages); `fail` makes it answer 500;
// `requests` records what was asked.
import http from "node:http";

export const MISTRAL_KEY = "mistral-test-key";

const REQUEST_FIELDS = new Set([
  "model", "id", "document", "pages", "include_image_base64", "image_limit", "image_min_size",
  "bbox_annotation_format", "document_annotation_format",
]);
const DOCUMENT_FIELDS = new Set(["type", "document_url", "document_name"]);

function refuse(res, status, detail) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ object: "error", message: detail, type: "invalid_request_error", code: null }));
}

export async function startOcrMock() {
  const requests = [];
  const mock = { requests, pages: ["# Scanned report", "Page two"] };
  const server = http.createServer(async (req, res) => {
    let raw = "";
    for await (const part of req) raw += part;
    if (req.method !== "POST" || req.url !== "/v1/ocr") return refuse(res, 404, `no such path ${req.method} ${req.url}`);
    if (req.headers.authorization !== `Bearer ${MISTRAL_KEY}`) return refuse(res, 401, "Unauthorized");
    if (req.headers["content-type"] !== "application/json") return refuse(res, 415, "content-type");
    let body;
    try { body = JSON.parse(raw); } catch { return refuse(res, 400, "invalid JSON"); }
    requests.push({ body });
    if (mock.fail) return refuse(res, 500, "Service unavailable");
    const extra = Object.keys(body).find((k) => !REQUEST_FIELDS.has(k));
    if (extra) return refuse(res, 422, `body.${extra}: Extra inputs are not permitted`);
    if (body.model !== "mistral-ocr-latest") return refuse(res, 400, `Invalid model: ${body.model}`);
    const doc = body.document ?? {};
    const extraDoc = Object.keys(doc).find((k) => !DOCUMENT_FIELDS.has(k));
    if (extraDoc) return refuse(res, 422, `body.document.${extraDoc}: Extra inputs are not permitted`);
    if (doc.type !== "document_url" || typeof doc.document_url !== "string") return refuse(res, 422, "body.document: document_url expected");
    const prefix = "data:application/pdf;base64,";
    if (!doc.document_url.startsWith(prefix)) return refuse(res, 400, "the document could not be fetched");
    const pdf = Buffer.from(doc.document_url.slice(prefix.length), "base64");
    if (!pdf.subarray(0, 5).equals(Buffer.from("%PDF-"))) return refuse(res, 400, "the document is not a PDF");
    if (typeof body.include_image_base64 !== "undefined" && typeof body.include_image_base64 !== "boolean") {
      return refuse(res, 422, "body.include_image_base64: boolean expected");
    }
    const pages = mock.pages.map((markdown, index) => ({
      index, markdown, images: [], dimensions: { dpi: 200, height: 2200, width: 1700 },
    })).reverse();
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({
      pages, model: "mistral-ocr-2505-completion",
      usage_info: { pages_processed: mock.pages.length, doc_size_bytes: pdf.length },
      document_annotation: null,
    }));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  mock.url = `http://127.0.0.1:${port}`;
  mock.close = () => new Promise((r) => { server.closeAllConnections(); server.close(r); });
  return mock;
}
