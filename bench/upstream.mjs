// A fixed-reply OpenAI-format upstream for the benchmark, run in its own process so
// that it does not share an event loop with the load generator. Prints its URL.
import http from "node:http";

const reply = JSON.stringify({
  id: "chatcmpl-bench", object: "chat.completion", created: 1, model: "bench",
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 },
});
const chunk = (delta, finish = null) =>
  `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 1, model: "bench", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const stream = chunk({ role: "assistant", content: "" }) + ["a", "b", "c", "d"].map((w) => chunk({ content: w })).join("") + chunk({}, "stop") + "data: [DONE]\n\n";

const server = http.createServer(async (req, res) => {
  let body = "";
  for await (const p of req) body += p;
  if (body.includes('"stream":true')) {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.end(stream);
  } else {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(reply);
  }
});
server.keepAliveTimeout = 5000;
server.listen(0, "127.0.0.1", () => console.log(`http://127.0.0.1:${server.address().port}`));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
