// The file-parser plugin's pdf-text engine (issue 25): a PDF sent to a text-only model
// (whose strict mock refuses `file` parts, as a text-only provider does) is read at
// the edge and answered from its text; the reply carries OpenRouter's `file`
// annotation, and that annotation sent back on the assistant message is used instead
// of reading the file again (and never reaches the upstream). PDF URLs go through the
// media fetcher; `native` leaves the file as it is; `mistral-ocr` without MISTRAL_API_KEY is a 400.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startWorker } from "../support/worker.mjs";
import { startPdfMock, makePdf } from "../support/pdf_mock.mjs";
import { testCatalog } from "../support/catalog.mjs";
import { collect } from "../support/sse.mjs";

let mock, worker, KEY;

const price = { prompt: "0.000001", completion: "0.000002" };
const model = (id, upstream_model, input_modalities) => ({
  id, name: `Test: ${id}`, created: 1700000000, description: `pdf model ${id}`, input_modalities,
  context_length: 100000, supported_parameters: ["max_tokens"],
  endpoints: [{ provider: "mockai", upstream_model, pricing: price }],
});

before(async () => {
  mock = await startPdfMock();
  const catalog = testCatalog();
  catalog.models.push(model("pdf/text", "text-only", ["text"]), model("pdf/reads", "reads-files", ["text", "file"]));
  worker = await startWorker({
    catalog,
    bindings: {
      MOCKAI_BASE_URL: `${mock.url}/v1`, MOCKAI_API_KEY: "sk-mockai-secret",
      MEDIA_FETCH_ALLOW_HOSTS: mock.host,
    },
  });
  KEY = (await worker.createAccount()).key;
});
after(async () => {
  await worker?.close();
  await mock?.close();
});

const chat = (body) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });

const PAGES = [
  "BT /F1 12 Tf 72 720 Td (Quarterly report) Tj 0 -14 Td [(Rev) 20 (enue ) -300 (rose) ] TJ ET",
  "BT <5072> Tj (ofit: \\(12%\\)) Tj ET",
];
const TEXT = "Quarterly report\nRevenue rose\n\nProfit: (12%)";
const pdf = makePdf(PAGES, { flate: true });
const dataUrl = (bytes) => `data:application/pdf;base64,${bytes.toString("base64")}`;
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const asking = (file_data, extra = {}) => ({
  role: "user",
  content: [{ type: "text", text: "Summarise" }, { type: "file", file: { filename: "report.pdf", file_data } }],
  ...extra,
});
const wrapped = (text, name = "report.pdf") => `<file name="${name}">\n${text}\n</file>`;
const ANNOTATION = { type: "file", file: { hash: sha256(pdf), name: "report.pdf", content: [{ type: "text", text: TEXT }] } };

test("a PDF to a text-only model is answered from its text, with the file annotation", async () => {
  const n = mock.requests.length;
  const r = await chat({ model: "pdf/text", messages: [asking(dataUrl(pdf))] });
  assert.equal(r.status, 200, await r.clone().text());
  const body = await r.json();
  assert.equal(body.choices[0].message.content, `read: Summarise\n${wrapped(TEXT)}`);
  assert.deepEqual(body.choices[0].message.annotations, [ANNOTATION]);
  const sent = mock.requests.slice(n);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0].body.messages[0].content, [
    { type: "text", text: "Summarise" },
    { type: "text", text: wrapped(TEXT) },
  ]);
  assert.equal(sent[0].body.plugins, undefined);
});

test("the annotation sent back is used instead of reading the file again, and stays at the gateway", async () => {
  const n = mock.requests.length;
  const kept = { ...ANNOTATION, file: { ...ANNOTATION.file, content: [{ type: "text", text: "text from the annotation" }] } };
  const r = await chat({
    model: "pdf/text",
    messages: [
      asking(dataUrl(pdf)),
      { role: "assistant", content: "It is a report.", annotations: [kept] },
      { role: "user", content: "And the profit?" },
    ],
  });
  assert.equal(r.status, 200, await r.clone().text());
  const body = await r.json();
  assert.equal(body.choices[0].message.content, `read: Summarise\n${wrapped("text from the annotation")}\nAnd the profit?`);
  assert.deepEqual(body.choices[0].message.annotations, [kept]);
  const sent = mock.requests.slice(n);
  assert.deepEqual(sent[0].body.messages[1], { role: "assistant", content: "It is a report." });
});

test("a streamed reply carries the annotation in a delta before its end", async () => {
  const r = await chat({ model: "pdf/text", stream: true, messages: [asking(dataUrl(makePdf(["BT (short) Tj ET"])))] });
  assert.equal(r.status, 200);
  const events = (await collect(r.body)).filter((e) => e.data).map((e) => e.data);
  const annotated = events.filter((e) => e.choices?.[0]?.delta?.annotations);
  assert.equal(annotated.length, 1);
  assert.deepEqual(annotated[0].choices[0].delta.annotations[0].file.content, [{ type: "text", text: "short" }]);
  const text = events.map((e) => e.choices?.[0]?.delta?.content ?? "").join("");
  assert.equal(text, `read: Summarise\n${wrapped("short")}`);
});

test("a PDF URL is fetched by the media fetcher's rules and read", async () => {
  mock.files.set("plain.pdf", makePdf(["BT (From a URL) Tj ET"]));
  const r = await chat({ model: "pdf/text", messages: [asking(`${mock.url}/files/plain.pdf`)] });
  assert.equal(r.status, 200, await r.clone().text());
  const body = await r.json();
  assert.equal(body.choices[0].message.content, `read: Summarise\n${wrapped("From a URL")}`);
  const missing = await chat({ model: "pdf/text", messages: [asking(`${mock.url}/files/missing.pdf`)] });
  assert.equal(missing.status, 400);
  assert.match((await missing.json()).error.message, /^messages\[0\]\.content\[1\]: /);
});

test("a model that reads files gets the file, unless pdf-text is asked for", async () => {
  let n = mock.requests.length;
  const r = await chat({ model: "pdf/reads", messages: [asking(dataUrl(pdf))] });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).choices[0].message.annotations, undefined);
  assert.equal(mock.requests[n].body.messages[0].content[1].type, "file");
  n = mock.requests.length;
  const parsed = await chat({ model: "pdf/reads", messages: [asking(dataUrl(pdf))], plugins: [{ id: "file-parser", pdf: { engine: "pdf-text" } }] });
  assert.equal(parsed.status, 200);
  assert.deepEqual((await parsed.json()).choices[0].message.annotations, [ANNOTATION]);
  assert.deepEqual(mock.requests[n].body.messages[0].content[1], { type: "text", text: wrapped(TEXT) });
});

test("native leaves the file to the model; mistral-ocr, unreadable and encrypted PDFs are 400s upstream never sees", async () => {
  const n = mock.requests.length;
  const cases = [
    [{ plugins: [{ id: "file-parser", pdf: { engine: "native" } }] }, dataUrl(pdf),
      "messages: pdf/text does not take file input, and the request has a file part; remove it or choose a model with file in its input_modalities"],
    [{ plugins: [{ id: "file-parser", pdf: { engine: "mistral-ocr" } }] }, dataUrl(pdf),
      "plugins[0].pdf.engine: mistral-ocr is not configured on this gateway (secret MISTRAL_API_KEY is not set); use pdf-text or native"],
    [{}, dataUrl(Buffer.from("hello")), "messages[0].content[1]: the file is not a PDF"],
    [{}, dataUrl(Buffer.concat([pdf, Buffer.from("trailer << /Encrypt 9 0 R >>")])),
      "messages[0].content[1]: the file is an encrypted PDF, whose text cannot be read"],
  ];
  for (const [extra, file, message] of cases) {
    const r = await chat({ model: "pdf/text", messages: [asking(file)], ...extra });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.message, message);
  }
  assert.equal(mock.requests.length, n);
});
