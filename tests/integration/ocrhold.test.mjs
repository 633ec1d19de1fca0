// The mistral-ocr engine's hold (issue 25): a PDF's pages are counted before Mistral
// is called (the page tree's /Count or its page objects, whichever is larger), and
// the request is admitted for their worst case (pages × MISTRAL_OCR_PAGE_PICOS) with
// the model call's: a balance or key limit that cannot cover it is refused (402 for
// credits, the key limit's 403) and Mistral never sees the file. The bill charges the
// pages Mistral reported, not the worst case; a request that fails after the OCR
// still pays for them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, caller } from "../support/worker.mjs";
import { startPdfMock, makePdf } from "../support/pdf_mock.mjs";
import { startOcrMock, MISTRAL_KEY } from "../support/ocr_mock.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";
import { eventually } from "../support/eventually.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { startSearchMock, searchBindings } from "../support/search_mock.mjs";
import * as money from "../support/money.mjs";

let mock, ocr, worker, call;

// A text-only model of 1,000 tokens of context at $1/M prompt, $2/M completion: with a
// PDF to read, its call holds the whole context (1,000,000,000 picodollars) and ten
// completion tokens (20,000,000).
const model = (id, upstream_model, pricing) => ({
  id, name: `Test: ${id}`, created: 1700000000, description: "text only", input_modalities: ["text"],
  context_length: 1000, supported_parameters: ["max_tokens"],
  endpoints: [{ provider: "mockai", upstream_model, pricing }],
});
const PAID = { prompt: "0.000001", completion: "0.000002" };

before(async () => {
  mock = await startPdfMock();
  ocr = await startOcrMock();
  const catalog = testCatalog();
  catalog.models.push(
    model("ocr/small", "text-only", PAID),
    model("ocr/free", "text-only", { prompt: "0", completion: "0" }),
    model("ocr/missing", "missing", PAID),
  );
  worker = await startWorker({
    catalog,
    bindings: {
      MOCKAI_BASE_URL: `${mock.url}/v1`, MOCKAI_API_KEY: "sk-mockai-secret",
      MISTRAL_API_KEY: MISTRAL_KEY, MISTRAL_BASE_URL: ocr.url,
    },
  });
  call = caller(() => worker);
});
after(async () => {
  await worker?.close();
  await mock?.close();
  await ocr?.close();
});

const picos = (usd) => Math.round(usd * 1e12);
const account = async (id) => (await worker.admin("GET", `/accounts/${id}`)).data;
const OCR = [{ id: "file-parser", pdf: { engine: "mistral-ocr" } }];
const dataUrl = (bytes) => `data:application/pdf;base64,${bytes.toString("base64")}`;
const scan = (n) => makePdf(Array.from({ length: n }, (_, i) => `q 100 0 0 100 0 0 cm /Im${i} Do Q`));
// Fifty page objects under a page tree that says one.
const lying = Buffer.from(scan(50).toString("latin1").replace("/Count 50", "/Count 1"), "latin1");
const ask = (key, model, pdf) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({
      model, max_tokens: 10, plugins: OCR,
      messages: [{ role: "user", content: [{ type: "text", text: "Summarise" }, { type: "file", file: { filename: "scan.pdf", file_data: dataUrl(pdf) } }] }],
    }),
  });
const settled = (id, check) => eventually(async () => {
  const a = await account(id);
  return a.reserved === 0 && check(a) && a;
}, "settled");

test("credits that cannot cover the pages' worst case: 402, and Mistral never sees the file", async () => {
  const acc = await worker.createAccount({ credits: 0.02 });
  const [n, m] = [mock.requests.length, ocr.requests.length];
  // 50 pages at $1/1,000 ($0.05) and the model call's $0.00102: past $0.02.
  const r = await ask(acc.key, "ocr/small", lying);
  assert.equal(r.status, 402, await r.clone().text());
  assert.match((await r.json()).error.message, /This request requires more credits/);
  assert.equal(ocr.requests.length, m);
  assert.equal(mock.requests.length, n);
  // Five pages ($0.005 held, $0.00602 with the call) fit; Mistral bills three.
  ocr.pages = ["# One", "Two", "Three"];
  try {
    const ok = await ask(acc.key, "ocr/small", scan(5));
    assert.equal(ok.status, 200, await ok.clone().text());
    const body = await ok.json();
    assert.equal(body.usage.ocr_pages, 3);
    // Three pages at 1,000,000,000 each, and the mock's 10 prompt and 5 completion
    // tokens at $1/M and $2/M.
    assert.equal(picos(body.usage.cost), 3_020_000_000);
    assert.equal(ocr.requests.length, m + 1);
    const id = ok.headers.get("x-generation-id");
    const gen = await eventually(async () => {
      const g = await call("GET", `/generation?id=${id}`, acc.key);
      return g.status === 200 && (await g.json()).data;
    }, "generation record");
    assert.equal(picos(gen.total_cost), 3_020_000_000);
    const a = await settled(acc.id, (a) => a.total_usage > 0);
    assert.equal(picos(a.total_usage), 3_020_000_000);
  } finally {
    ocr.pages = ["# Scanned report", "Page two"];
  }
});

test("a key whose limit cannot cover the pages is refused before the OCR", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const made = await (await call("POST", "/keys", acc.provisioningKey, { name: "capped", limit: 0.02 })).json();
  const m = ocr.requests.length;
  const r = await ask(made.key, "ocr/small", lying);
  assert.equal(r.status, 403, await r.clone().text());
  assert.match((await r.json()).error.message, /Key limit exceeded: this request may cost up to \$0\.05102 /);
  assert.equal(ocr.requests.length, m);
  const a = await account(acc.id);
  assert.equal(a.total_usage, 0);
  assert.equal(a.reserved, 0);
});

test("a free model's request still holds its pages: no credits, no OCR", async () => {
  const acc = await worker.createAccount({ credits: 0.001 });
  const m = ocr.requests.length;
  const r = await ask(acc.key, "ocr/free", scan(2));
  assert.equal(r.status, 402, await r.clone().text());
  assert.equal(ocr.requests.length, m);
  // One page is what the balance covers: read, and charged its $0.001.
  ocr.pages = ["Only page"];
  try {
    const ok = await ask(acc.key, "ocr/free", scan(1));
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal(picos((await ok.json()).usage.cost), 1_000_000_000);
    assert.equal(ocr.requests.length, m + 1);
    const a = await settled(acc.id, (a) => a.total_usage > 0);
    assert.equal(picos(a.total_usage), 1_000_000_000);
    assert.equal(a.balance, 0);
  } finally {
    ocr.pages = ["# Scanned report", "Page two"];
  }
});

test("a request that fails after the OCR pays for the pages read, and nothing more", async () => {
  const acc = await worker.createAccount({ credits: 1 });
  const m = ocr.requests.length;
  const r = await ask(acc.key, "ocr/missing", scan(2));
  assert.equal(r.status, 400, await r.clone().text());
  assert.equal((await r.json()).error.message, "Provider returned error: The model missing does not exist");
  assert.equal(ocr.requests.length, m + 1);
  const a = await settled(acc.id, (a) => a.total_usage > 0);
  // The mock's two pages, recorded with the request's generation.
  assert.equal(picos(a.total_usage), 2_000_000_000);
  const [gen] = await eventually(async () => {
    const g = await call("GET", "/generations", acc.key);
    return g.status === 200 && (await g.json()).data;
  }, "generations");
  assert.equal(gen.model, "ocr/missing");
  assert.equal(gen.finish_reason, "error");
  assert.equal(picos(gen.total_cost), 2_000_000_000);
});

// A server-tool loop (a model that searches twice, then answers): its first model call
// is admitted with the pages' worst case and reads the PDF; the later calls have the
// text in place before they are admitted, and Mistral is called once.
test("in a server-tool loop the OCR runs once, billed with the first model call, and every call reads its text", async () => {
  const up = await startMockUpstream();
  const search = await startSearchMock();
  const PRICE = { prompt: "0.000001", completion: "0.000002", web_search: "0.01" };
  const c = testCatalog();
  const base = c.models.find((m) => m.id === "openai-mock/ok");
  c.models.push({ ...base, id: "srv/ocr-searcher", endpoints: [{ provider: "mockopenai", upstream_model: "searcher", pricing: PRICE }] });
  const w = await startWorker({
    catalog: c,
    bindings: { ...mockBindings(up.url), ...searchBindings(search.url), MISTRAL_API_KEY: MISTRAL_KEY, MISTRAL_BASE_URL: ocr.url },
  });
  try {
    const { key } = await w.createAccount({ credits: 10 });
    const [n, m] = [up.requests.length, ocr.requests.length];
    const r = await fetch(`${w.base}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({
        model: "srv/ocr-searcher", plugins: OCR, tools: [{ type: "openrouter:web_search", parameters: { engine: "exa" } }],
        messages: [{ role: "user", content: [{ type: "text", text: "Does Rust run on Workers?" }, { type: "file", file: { filename: "scan.pdf", file_data: dataUrl(scan(2)) } }] }],
      }),
    });
    assert.equal(r.status, 200, (await r.clone().text()) + w.logs().slice(-3000));
    const body = await money.exactBody(r);
    assert.match(body.id, /^gen-.+-3$/);
    assert.equal(ocr.requests.length, m + 1);
    const calls = up.requests.slice(n).filter((q) => q.url.includes("/chat/completions"));
    assert.equal(calls.length, 3);
    for (const q of calls) {
      const parts = q.body.messages[0].content;
      assert.deepEqual(parts[1], { type: "text", text: '<file name="scan.pdf">\n# Scanned report\n\nPage two\n</file>' });
      assert.ok(!JSON.stringify(q.body).includes('ocr=\\"pending\\"'));
    }
    const id = body.id.replace(/-3$/, "");
    const gen = (k) => eventually(async () => {
      const g = await fetch(`${w.base}/generation?id=${id}-${k}`, { headers: { authorization: `Bearer ${key}` } });
      return g.status === 200 && (await money.exactBody(g)).data;
    }, `generation ${k}`);
    const [g1, g2, g3] = [await gen(1), await gen(2), await gen(3)];
    const tokens = (g) => money.priced(g.tokens_prompt, PRICE.prompt) + money.priced(g.tokens_completion, PRICE.completion);
    assert.equal(money.picos(g1.total_cost), tokens(g1) + 2_000_000_000n);
    assert.equal(money.picos(g2.total_cost), tokens(g2) + money.picos(PRICE.web_search));
    assert.equal(money.picos(g3.total_cost), tokens(g3) + money.picos(PRICE.web_search));
  } finally {
    await w.close();
    await up.close();
    await search.close();
  }
});
