// One model's page, /models/{author}/{slug}: what it costs, what it can do, every
// provider endpoint with its live health, and code to call it.
import { API, api, el, p50, perMillion, tokenCount } from "/app.js";
import { copyText } from "/markdown.js";

const $ = (s) => document.querySelector(s);
const id = decodeURIComponent(location.pathname.replace(/^\/models\//, "").replace(/\/$/, ""));
const origin = location.origin;

const PRICES = [
  ["prompt", "Input", "/M tokens"],
  ["completion", "Output", "/M tokens"],
  ["input_cache_read", "Cached input (read)", "/M tokens"],
  ["input_cache_write", "Cache write", "/M tokens"],
  ["internal_reasoning", "Reasoning", "/M tokens"],
  ["image", "Image input", "per image"],
  ["request", "Request", "per request"],
];

function priceCell(key, value) {
  if (value == null || Number(value) === 0) return null;
  if (key === "image" || key === "request") return `$${Number(value)}`;
  return perMillion(value);
}

function snippets(model) {
  const body = JSON.stringify({ model, messages: [{ role: "user", content: "Hello!" }] });
  return {
    curl: `curl ${API}/chat/completions \\
  -H "Authorization: Bearer $MODELMUX_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '${body}'`,
    "Python (openai)": `import os
from openai import OpenAI

client = OpenAI(base_url="${API}", api_key=os.environ["MODELMUX_API_KEY"])
reply = client.chat.completions.create(
    model="${model}",
    messages=[{"role": "user", "content": "Hello!"}],
)
print(reply.choices[0].message.content)`,
    "JavaScript (openai)": `import OpenAI from "openai";

const client = new OpenAI({ baseURL: "${API}", apiKey: process.env.MODELMUX_API_KEY });
const reply = await client.chat.completions.create({
  model: "${model}",
  messages: [{ role: "user", content: "Hello!" }],
});
console.log(reply.choices[0].message.content);`,
    "Python (openrouter)": `import os
from openrouter import OpenRouter

client = OpenRouter(api_key=os.environ["MODELMUX_API_KEY"], server_url="${API}")
reply = client.chat.send(model="${model}", messages=[{"role": "user", "content": "Hello!"}])
print(reply.choices[0].message.content)`,
  };
}

function showSnippets(model) {
  const all = snippets(model);
  const tabs = Object.keys(all).map((name, i) => el("button", {
    type: "button", role: "tab", "aria-selected": i === 0 ? "true" : "false", "data-name": name,
    onclick: () => select(name),
  }, name));
  const select = (name) => {
    for (const t of tabs) t.setAttribute("aria-selected", String(t.dataset.name === name));
    $("#snippet").textContent = all[name];
  };
  $("#snippet-tabs").replaceChildren(...tabs);
  select(Object.keys(all)[0]);
  $("#copy-snippet").addEventListener("click", () => copyText($("#copy-snippet"), $("#snippet").textContent));
  $("#snippets-panel").hidden = false;
}

/** A small bar chart of an endpoint's latency over the last 30 minutes: its percentiles
 * when the gateway reports them, else its median. */
function latencyChart(e) {
  const canvas = el("canvas", { width: 160, height: 48, role: "img", "aria-label": `latency of ${e.provider_name}` });
  const v = e.latency_last_30m;
  if (v == null || typeof Chart === "undefined") return el("span", { class: "muted" }, "no data yet");
  const points = typeof v === "number" ? { p50: v } : Object.fromEntries(["p50", "p75", "p90", "p99"].filter((k) => v[k] != null).map((k) => [k, v[k]]));
  new Chart(canvas, {
    type: "bar",
    data: { labels: Object.keys(points), datasets: [{ label: "ms", data: Object.values(points), backgroundColor: "#2f5bea" }] },
    options: { responsive: false, animation: false, plugins: { legend: { display: false } }, scales: { x: { ticks: { font: { size: 10 } } }, y: { beginAtZero: true, ticks: { font: { size: 10 }, maxTicksLimit: 3 } } } },
  });
  return canvas;
}

function endpointRow(e) {
  const lat = p50(e.latency_last_30m), tps = p50(e.throughput_last_30m);
  const down = e.status < 0;
  return el("tr", { "data-provider": e.provider_name },
    el("td", {}, e.provider_name),
    el("td", { class: down ? "status-down" : "status-ok" }, down ? "degraded" : "up"),
    el("td", {}, e.uptime_last_30m == null ? "—" : `${Number(e.uptime_last_30m).toFixed(1)}%`),
    el("td", {}, lat == null ? "—" : `${Math.round(lat)} ms`),
    el("td", {}, tps == null ? "—" : `${Math.round(tps)} tok/s`),
    el("td", {}, latencyChart(e)),
    el("td", {}, tokenCount(e.context_length)),
    el("td", {}, tokenCount(e.max_completion_tokens)),
    el("td", {}, `${perMillion(e.pricing?.prompt)} / ${perMillion(e.pricing?.completion)}`),
    el("td", {}, e.quantization ?? "—"));
}

async function load() {
  let model, detail;
  try {
    const [{ data: all }, { data }] = await Promise.all([api("/models?output_modalities=all"), api(`/models/${id}/endpoints`)]);
    model = all.find((m) => m.id === id);
    detail = data;
  } catch (e) {
    $("#status").textContent = e.status === 404 ? `There is no model ${id}.` : `Could not load ${id}: ${e.message}`;
    $("#status").className = "error";
    return;
  }
  document.title = `modelmux · ${detail.name}`;
  $("#name").textContent = detail.name;
  $("#model-id").textContent = detail.id;
  $("#description").textContent = detail.description ?? "";
  $("#chat").href = `/?model=${encodeURIComponent(detail.id)}`;
  const a = detail.architecture ?? {};
  const top = model?.top_provider ?? {};
  const fact = (label, value) => el("div", { class: "stat" }, el("div", { class: "muted" }, label), el("div", { class: "value" }, value));
  $("#facts").replaceChildren(
    fact("Context", tokenCount(model?.context_length)),
    fact("Max output", tokenCount(top.max_completion_tokens)),
    fact("Input", (a.input_modalities ?? []).join(", ")),
    fact("Output", (a.output_modalities ?? []).join(", ")),
    fact("Providers", String(detail.endpoints.length)),
  );
  $("#facts").append(el("p", { class: "muted" }, `Parameters: ${(model?.supported_parameters ?? []).join(", ")}`));
  const pricing = model?.pricing ?? {};
  $("#pricing tbody").replaceChildren(...PRICES.map(([k, label, unit]) => [label, priceCell(k, pricing[k]), unit])
    .filter(([, v]) => v != null)
    .map(([label, v, unit]) => el("tr", { "data-price": label }, el("td", {}, label), el("td", {}, v === "free" ? "free" : `${v} ${unit}`))));
  if (!$("#pricing tbody").children.length) $("#pricing tbody").append(el("tr", {}, el("td", { colspan: 2 }, "Free")));
  $("#endpoints tbody").replaceChildren(...detail.endpoints.map(endpointRow));
  showSnippets(detail.id);
  for (const s of ["#about", "#pricing-panel", "#endpoints-panel"]) $(s).hidden = false;
  $("#status").textContent = "";
  document.body.dataset.loaded = "true";
}

load();
