// Reads an SSE response body into events, buffering lines split across reads.
export async function* sseEvents(body) {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const bytes of body) {
    buf += decoder.decode(bytes, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (block.startsWith(":")) { yield { comment: block }; continue; }
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      yield data === "[DONE]" ? { done: true } : { data: JSON.parse(data) };
    }
  }
}

export async function collect(body) {
  const out = [];
  for await (const ev of sseEvents(body)) out.push(ev);
  return out;
}
