// Exact money in tests: the gateway prints every USD amount as an exact decimal, which
// JSON.parse would turn into an inexact float; these read it as text and compare in
// integer picodollars (BigInt).

/** Parses JSON `text` with every number kept as its decimal text (a string). */
export function exactJson(text) {
  // Strings first, so that digits inside them are left alone.
  const quoted = text.replace(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, (m) => (m.startsWith('"') ? m : `"${m}"`));
  return JSON.parse(quoted);
}

/** The body of `r` by {@link exactJson}. */
export async function exactBody(r) {
  return exactJson(await r.text());
}

/** Picodollars (BigInt) of a USD amount's decimal text ("0.000025", "10"); anything
 * else (a float's exponent, more than 12 decimals, a sign) throws. */
export function picos(usd) {
  const m = /^(\d+)(?:\.(\d{1,12}))?$/.exec(String(usd));
  if (!m) throw new Error(`not an exact USD amount: ${usd}`);
  return BigInt(m[1]) * 10n ** 12n + BigInt((m[2] ?? "").padEnd(12, "0"));
}

/** Picodollars of `tokens` at a catalogue price (USD per token, decimal text). */
export const priced = (tokens, price) => BigInt(tokens) * picos(price);

/** The sum of BigInts. */
export const sum = (xs) => xs.reduce((a, b) => a + b, 0n);
