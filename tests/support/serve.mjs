// Starts the mock upstreams (and the search engines' mocks) and the built worker,
// prints one JSON line {"base_url", "key", "mock_url"} and runs until stdin closes or
// a signal arrives. Used by the SDK compatibility tests (Python and npm). Beside the
// test catalogue, `msgsurf/searcher`: a model that searches (the `searcher` mock
// script on an OpenAI-compatible endpoint), for the server-tool loop's SDK tests.
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
const worker = await startWorker({ catalog, bindings: { ...mockBindings(mock.url), ...searchBindings(search.url) } });
const account = await worker.createAccount({ credits: 100 });
const key = account.key;
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
console.log(JSON.stringify({ base_url: worker.base, key, provisioning_key: account.provisioningKey, mock_url: mock.url }));
