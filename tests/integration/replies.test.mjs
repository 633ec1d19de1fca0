// The isolate's budget of reply bytes (ISOLATE_REPLY_BYTES): replies read whole or
// gathered count against it as they are read, so two large replies at once cannot take
// an isolate's memory; past it a reply is a 503 with Retry-After (the next endpoint is
// tried), its hold given back once it is done. Streams passed through do not count.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/eventually.mjs";
import { startWorker } from "../support/worker.mjs";
import { startMockUpstream } from "../support/mock_upstream.mjs";
import { testCatalog, mockBindings } from "../support/catalog.mjs";

let mock, worker, key;

before(async () => {
  mock = await startMockUpstream();
  // Room for one 200 KB reply, not two.
  worker = await startWorker({ catalog: testCatalog(), bindings: { ...mockBindings(mock.url), ISOLATE_REPLY_BYTES: "300000", FREE_REQUESTS_PER_MINUTE: "100000" } });
  key = (await worker.createAccount({ credits: 1 })).key;
});

after(async () => {
  await worker?.close();
  await mock?.close();
});

const chat = (model, stream = false) =>
  fetch(`${worker.base}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model, stream, messages: [{ role: "user", content: "hi" }], max_tokens: 100000 }),
  });

const served = async (r) => {
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal((await r.json()).choices[0].message.content.length, 200000);
};

for (const model of ["test/bigreply", "test/bigjson"]) {
  test(`two large replies at once in one isolate: one served, the other a 503 with Retry-After (${model})`, async () => {
    const both = await Promise.all([chat(model), chat(model)]);
    const refused = both.filter((r) => r.status === 503);
    assert.equal(refused.length, 1, `statuses ${both.map((r) => r.status)}`);
    for (const r of both) {
      if (r.status !== 503) await served(r);
    }
    const [no] = refused;
    assert.equal(no.headers.get("retry-after"), "1");
    assert.match((await no.json()).error.message, /reading replies .*retry shortly/);
    // The holds were given back: the isolate serves the next ones, one after the other.
    await served(await chat(model));
    await served(await chat(model));
  });
}

test("streams passed through are not buffered and do not count", async () => {
  const both = await Promise.all([chat("test/bigreply", true), chat("test/bigreply", true)]);
  for (const r of both) {
    assert.equal(r.status, 200);
    const text = await r.text();
    assert.ok(text.includes("[DONE]"), "whole");
    assert.ok(!text.includes("retry shortly"));
  }
  // And the isolate still serves a gathered reply after them.
  await eventually(async () => (await chat("test/bigreply")).status === 200, "served");
});
