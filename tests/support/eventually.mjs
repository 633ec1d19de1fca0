// Polls `fn` until it returns something truthy (what it returned), or fails the test
// after `ms` naming `what` and the last value seen: for effects that land after a reply
// (settlements, lease returns, usage records).
export async function eventually(fn, what, ms = 15_000, every = 25) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
}
