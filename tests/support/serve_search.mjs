// serve.mjs with a model that searches (the `searcher` mock script on an
// OpenAI-compatible endpoint, model `msgsurf/searcher`) and the search engines' mocks:
// for the SDK tests of the gateway's server-tool loop. Prints one JSON line
// {"base_url", "key"} and runs until stdin closes or a signal arrives.
import { startWorker } from "./worker.mjs";
import { startMockUpstream } from "./mock_upstream.mjs";
import { testCatalog, mockBindings } from "./catalog.mjs";
import { startSearchMock, searchBindings } from "./search_mock.mjs";

const catalog = testCatalog();
const base = catalog.models.find((m) => m.id === "openai-mock/ok");
catalog.models.push({ ...base, id: "msgsurf/searcher", name: "msgsurf searcher",
  endpoints: [{ provider: "mockopenai", upstream_model: "searcher",
    pricing: { prompt: "0.000001", completion: "0.000002", web_search: "0.01" } }] });
const mock = await startMockUpstream();
const search = await startSearchMock();
const worker = await startWorker({ catalog, bindings: { ...mockBindings(mock.url), ...searchBindings(search.url), FREE_REQUESTS_PER_MINUTE: "1000" } });
const account = await worker.createAccount({ credits: 100 });
let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  await worker.close();
  await mock.close();
  await search.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
console.log(JSON.stringify({ base_url: worker.base, key: account.key }));
