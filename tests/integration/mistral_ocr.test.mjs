// The file-parser plugin's mistral-ocr engine (issue 25): each PDF goes to Mistral's
// OCR API (a strict mock, tests/support/ocr_mock.mjs) as a data URL, its pages'
// Markdown takes the file's place for the model, the reply carries the `file`
// annotation, and the pages read are charged with the generation ($1 per 1,000 pages
// by default: `usage.ocr_pages`, `usage.cost`, the generation record). An annotation
// sent back skips the OCR (and its charge); a file that is not a PDF never reaches it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startWorker, caller } from "../support/worker.mjs";
import { startPdfMock, makePdf } from "../support/pdf_mock.mjs";
import { startOcrMock, MISTRAL_KEY } from "../support/ocr_mock.mjs";
import { testCatalog } from "../support/catalog.mjs";
import { eventually } from "../support/eventually.mjs";
import { collect } from "../support/sse.mjs";

let mock, ocr, worker, KEY, call;

before(async () => {
  mock = await startPdfMock();
  ocr = await startOcrMock();
  const catalog = testCatalog();
  catalog.models.push({
    id: "pdf/text", name: "Test: pdf/text", created: 1700000000, description: "text only", input_modalities: ["text"],
    context_length: 100000, supported_parameters: ["max_tokens"],
    endpoints: [{ provider: "mockai", upstream_model: "text-only", pricing: { prompt: "0.000001", completion: "0.000002" } }],
  });
  worker = await startWorker({
    catalog,
    bindings: {
      MOCKAI_BASE_URL: `${mock.url}/v1`, MOCKAI_API_KEY: "sk-mockai-secret",
      MEDIA_FETCH_ALLOW_HOSTS: mock.host,
      MISTRAL_API_KEY: MISTRAL_KEY, MISTRAL_BASE_URL: ocr.url,
    },
  });
  KEY = (await worker.createAccount()).key;
  call = caller(() => worker);
});
after(async () => {
  await worker?.close();
  await mock?.close();
  await ocr?.close();
});

const chat = (body) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });

// A scan: no text operators at all, so pdf-text could not read it.
const pdf = makePdf(["q 100 0 0 100 0 0 cm /Im1 Do Q"]);
const dataUrl = (bytes) => `data:application/pdf;base64,${bytes.toString("base64")}`;
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const OCR = [{ id: "file-parser", pdf: { engine: "mistral-ocr" } }];
const asking = (file_data) => ({
  role: "user",
  content: [{ type: "text", text: "Summarise" }, { type: "file", file: { filename: "scan.pdf", file_data } }],
});
const TEXT = "# Scanned report\n\nPage two";
const wrapped = (text) => `<file name="scan.pdf">\n${text}\n</file>`;
const ANNOTATION = { type: "file", file: { hash: sha256(pdf), name: "scan.pdf", content: [{ type: "text", text: TEXT }] } };
// The mock's usage (10 prompt, 5 completion tokens) at $1/M and $2/M: 20,000,000
// picodollars; two pages at 1,000,000,000 each.
const picos = (usd) => Math.round(usd * 1e12);

test("a scanned PDF is read by Mistral's OCR, answered from its Markdown, and its pages charged", async () => {
  const [n, m] = [mock.requests.length, ocr.requests.length];
  const r = await chat({ model: "pdf/text", messages: [asking(dataUrl(pdf))], plugins: OCR });
  assert.equal(r.status, 200, await r.clone().text());
  const body = await r.json();
  assert.equal(body.choices[0].message.content, `read: Summarise\n${wrapped(TEXT)}`);
  assert.deepEqual(body.choices[0].message.annotations, [ANNOTATION]);
  assert.equal(body.usage.ocr_pages, 2);
  assert.equal(picos(body.usage.cost), 2_020_000_000);
  assert.deepEqual(ocr.requests.slice(m).map((q) => q.body), [{
    model: "mistral-ocr-latest", include_image_base64: false,
    document: { type: "document_url", document_url: dataUrl(pdf) },
  }]);
  const sent = mock.requests.slice(n);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0].body.messages[0].content[1], { type: "text", text: wrapped(TEXT) });
  const id = r.headers.get("x-generation-id");
  const gen = await eventually(async () => {
    const g = await call("GET", `/generation?id=${id}`, KEY);
    return g.status === 200 && (await g.json()).data;
  }, "generation record");
  assert.equal(picos(gen.total_cost), 2_020_000_000);
});

test("a streamed reply is charged its pages too", async () => {
  const m = ocr.requests.length;
  const r = await chat({
    model: "pdf/text", messages: [asking(dataUrl(pdf))], plugins: OCR, stream: true, stream_options: { include_usage: true },
  });
  assert.equal(r.status, 200);
  const chunks = (await collect(r.body)).filter((e) => e.data).map((e) => e.data);
  const last = chunks.filter((c) => c.usage).at(-1);
  assert.equal(last.usage.ocr_pages, 2);
  assert.equal(picos(last.usage.cost), 2_020_000_000);
  assert.equal(ocr.requests.length, m + 1);
});

test("the annotation sent back skips the OCR and its charge", async () => {
  const m = ocr.requests.length;
  const r = await chat({
    model: "pdf/text", plugins: OCR,
    messages: [asking(dataUrl(pdf)), { role: "assistant", content: "A report.", annotations: [ANNOTATION] }, { role: "user", content: "More?" }],
  });
  assert.equal(r.status, 200, await r.clone().text());
  const body = await r.json();
  assert.equal(body.choices[0].message.content, `read: Summarise\n${wrapped(TEXT)}\nMore?`);
  assert.equal(body.usage.ocr_pages, undefined);
  assert.equal(picos(body.usage.cost), 20_000_000);
  assert.equal(ocr.requests.length, m);
});

test("a PDF URL is fetched by the media fetcher and sent to the OCR as a data URL", async () => {
  const m = ocr.requests.length;
  mock.files.set("scan.pdf", pdf);
  const r = await chat({ model: "pdf/text", messages: [asking(`${mock.url}/files/scan.pdf`)], plugins: OCR });
  assert.equal(r.status, 200, await r.clone().text());
  assert.deepEqual((await r.json()).choices[0].message.annotations, [ANNOTATION]);
  assert.equal(ocr.requests.slice(m)[0].body.document.document_url, dataUrl(pdf));
});

test("a file that is not a PDF, or provider.zdr, is a 400 the OCR never sees", async () => {
  const [n, m] = [mock.requests.length, ocr.requests.length];
  const r = await chat({ model: "pdf/text", messages: [asking(dataUrl(Buffer.from("hello")))], plugins: OCR });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.message, "messages[0].content[1]: the file is not a PDF");
  const zdr = await chat({ model: "pdf/text", messages: [asking(dataUrl(pdf))], plugins: OCR, provider: { zdr: true } });
  assert.equal(zdr.status, 400);
  assert.equal((await zdr.json()).error.message,
    "plugins[0].pdf.engine: mistral-ocr shows the file to Mistral, which provider.zdr rules out; use pdf-text");
  assert.equal(ocr.requests.length, m);
  assert.equal(mock.requests.length, n);
});

test("a failed OCR call is an upstream error before any model is called", async () => {
  const [n, m] = [mock.requests.length, ocr.requests.length];
  ocr.fail = true;
  try {
    const r = await chat({ model: "pdf/text", messages: [asking(dataUrl(pdf))], plugins: OCR });
    assert.equal(r.status, 502);
    const { error } = await r.json();
    assert.equal(error.message, "Provider returned error: Service unavailable");
    assert.equal(error.metadata.provider_name, "mistral");
  } finally {
    ocr.fail = false;
  }
  assert.equal(ocr.requests.length, m + 1);
  assert.equal(mock.requests.length, n);
});

test("a request whose PDFs the OCR read bypasses the response cache (a hit would be free)", async () => {
  const m = ocr.requests.length;
  for (let i = 0; i < 2; i++) {
    const r = await fetch(`${worker.base}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}`, "X-OpenRouter-Cache": "true" },
      body: JSON.stringify({ model: "pdf/text", messages: [asking(dataUrl(pdf))], plugins: OCR }),
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-openrouter-cache-status"), null);
    assert.equal(picos((await r.json()).usage.cost), 2_020_000_000);
  }
  assert.equal(ocr.requests.length, m + 2);
});
