// Starts the mock upstreams and the built worker, prints one JSON line
// {"base_url", "key", "mock_url"} and runs until stdin closes or a signal arrives.
// Used by the SDK compatibility tests (Python and npm).
import { startWorker } from "./worker.mjs";
import { startMockUpstream } from "./mock_upstream.mjs";
import { testCatalog, mockBindings } from "./catalog.mjs";

const mock = await startMockUpstream();
const worker = await startWorker({ catalog: testCatalog(), bindings: mockBindings(mock.url) });
const account = await worker.createAccount({ credits: 100 });
const key = account.key;
let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  await worker.close();
  await mock.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
console.log(JSON.stringify({ base_url: worker.base, key, provisioning_key: account.provisioningKey, mock_url: mock.url }));
