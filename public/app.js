// Shared by the chatroom and the account page: the stored key and API calls.
export const API = `${location.origin}/api/v1`;
const KEY = "modelmux.key";

export const getKey = () => localStorage.getItem(KEY) ?? "";
export const setKey = (k) => (k ? localStorage.setItem(KEY, k.trim()) : localStorage.removeItem(KEY));

/** Wires the header's key field: fills it, saves it, calls `onChange` with the key. */
export function keyField(onChange) {
  const input = document.querySelector("#key");
  input.value = getKey();
  const save = () => {
    setKey(input.value);
    onChange(getKey());
  };
  input.addEventListener("change", save);
  document.querySelector("#key-save")?.addEventListener("click", save);
  return getKey();
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the API with the stored key; throws ApiError with the gateway's message. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const r = await fetch(`${API}${path}`, {
    method,
    signal,
    headers: { authorization: `Bearer ${getKey()}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, json.error?.message ?? `HTTP ${r.status}`);
  return json;
}

/** Reads an SSE body, calling `onData` with each parsed `data:` payload until [DONE]. */
export async function readSse(body, onData) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue; // comments and keep-alives
      if (data === "[DONE]") return;
      onData(JSON.parse(data));
    }
  }
}

export const usd = (n) => (n == null ? "—" : `$${Number(n).toFixed(n !== 0 && Math.abs(n) < 0.01 ? 6 : 2)}`);

/** Makes an element: el("div", {class: "x"}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

/** USD per million tokens of a per-token price (`"0.000002"` → `$2.00`). */
export function perMillion(price) {
  const n = Number(price ?? 0) * 1e6;
  if (!Number.isFinite(n) || n <= 0) return "free";
  return `$${n.toFixed(n < 0.1 ? 3 : 2)}`;
}

/** A token count made short: 128000 → 128K. */
export function tokenCount(n) {
  if (n == null) return "—";
  if (n >= 1e6) return `${+(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** The p50 of a health figure: a number, or a percentile object `{p50, p90, ...}`. */
export const p50 = (v) => (v == null ? null : typeof v === "number" ? v : v.p50 ?? null);

/** Every endpoint of each model, fetched a few at a time; calls `onModel` as each comes. */
export async function loadEndpoints(ids, onModel, concurrency = 4) {
  const queue = [...ids];
  const worker = async () => {
    for (let id = queue.shift(); id; id = queue.shift()) {
      try {
        const { data } = await api(`/models/${id}/endpoints`);
        onModel(id, data.endpoints ?? []);
      } catch {
        onModel(id, []);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
