// The models browser: the whole catalogue from /api/v1/models, filtered and sorted in
// the page; providers, latency and throughput come from each model's /endpoints.
import { api, el, loadEndpoints, p50, perMillion, tokenCount } from "/app.js";

const $ = (s) => document.querySelector(s);
let models = [];
const endpoints = new Map(); // model ID -> its endpoints

const price = (m) => Number(m.pricing?.prompt ?? 0) + Number(m.pricing?.completion ?? 0);
const isFree = (m) => price(m) === 0 && Number(m.pricing?.request ?? 0) === 0;
const supports = (m, ...params) => params.some((p) => m.supported_parameters?.includes(p));
/** The best of a figure over a model's endpoints (`better` picks), or null. */
function best(m, field, better) {
  const xs = (endpoints.get(m.id) ?? []).map((e) => p50(e[field])).filter((x) => x != null);
  return xs.length ? xs.reduce((a, b) => (better(a, b) ? a : b)) : null;
}
const throughput = (m) => best(m, "throughput_last_30m", (a, b) => a > b);
const latency = (m) => best(m, "latency_last_30m", (a, b) => a < b);

function filters() {
  return {
    q: $("#q").value.trim().toLowerCase(),
    input: $("#input").value,
    output: $("#output").value,
    context: Number($("#context").value),
    minPrice: $("#min-price").value === "" ? null : Number($("#min-price").value) / 1e6,
    maxPrice: $("#max-price").value === "" ? null : Number($("#max-price").value) / 1e6,
    provider: $("#provider").value,
    free: $("#free").checked,
    tools: $("#tools").checked,
    structured: $("#structured").checked,
    reasoning: $("#reasoning").checked,
    sort: $("#sort").value,
  };
}

function keeps(m, f) {
  const a = m.architecture ?? {};
  if (f.q && ![m.id, m.name, m.description].some((s) => s?.toLowerCase().includes(f.q))) return false;
  if (f.input && !a.input_modalities?.includes(f.input)) return false;
  if (f.output && !a.output_modalities?.includes(f.output)) return false;
  if (m.context_length < f.context) return false;
  // Compared per million tokens, as shown (per-token prices are tiny floats).
  const perM = Math.round(Number(m.pricing?.prompt ?? 0) * 1e12) / 1e6;
  if (f.minPrice != null && perM < Math.round(f.minPrice * 1e12) / 1e6) return false;
  if (f.maxPrice != null && perM > Math.round(f.maxPrice * 1e12) / 1e6) return false;
  if (f.provider && !(endpoints.get(m.id) ?? []).some((e) => e.provider_name === f.provider)) return false;
  if (f.free && !isFree(m)) return false;
  if (f.tools && !supports(m, "tools")) return false;
  if (f.structured && !supports(m, "structured_outputs", "response_format")) return false;
  if (f.reasoning && !supports(m, "reasoning", "include_reasoning")) return false;
  return true;
}

/** Sorts with unknown figures last. */
const byFigure = (fig, asc) => (a, b) => {
  const x = fig(a), y = fig(b);
  if (x == null || y == null) return (x == null) - (y == null);
  return asc ? x - y : y - x;
};
const SORTS = {
  name: (a, b) => a.name.localeCompare(b.name),
  "price-asc": byFigure(price, true),
  "price-desc": byFigure(price, false),
  context: byFigure((m) => m.context_length, false),
  newest: byFigure((m) => m.created, false),
  throughput: byFigure(throughput, false),
  latency: byFigure(latency, true),
};

function item(m) {
  const a = m.architecture ?? {};
  const eps = endpoints.get(m.id);
  const lat = latency(m), tps = throughput(m);
  const href = `/models/${m.id}`;
  return el("li", { class: "panel", "data-id": m.id },
    el("h2", {}, el("a", { href }, m.name), el("code", { class: "muted" }, m.id),
      isFree(m) ? el("span", { class: "badge free" }, "free") : null),
    el("p", { class: "desc" }, m.description?.length > 220 ? `${m.description.slice(0, 220)}…` : m.description ?? ""),
    el("div", { class: "actions" }, el("a", { class: "button", href: `/?model=${encodeURIComponent(m.id)}` }, "Chat")),
    el("div", { class: "facts" },
      el("span", {}, el("b", {}, tokenCount(m.context_length)), " context"),
      a.output_modalities?.includes("embeddings")
        ? el("span", {}, el("b", {}, perMillion(m.pricing?.prompt)), " /M input tokens")
        : [el("span", {}, el("b", {}, perMillion(m.pricing?.prompt)), " /M in"),
          el("span", {}, el("b", {}, perMillion(m.pricing?.completion)), " /M out")],
      el("span", { class: "muted" }, `${(a.input_modalities ?? []).join(", ")} → ${(a.output_modalities ?? []).join(", ")}`),
      eps ? el("span", { class: "muted providers" }, eps.map((e) => e.provider_name).join(", ")) : null,
      lat != null ? el("span", {}, el("b", {}, `${Math.round(lat)} ms`), " latency") : null,
      tps != null ? el("span", {}, el("b", {}, `${Math.round(tps)} tok/s`), "") : null));
}

function render() {
  const f = filters();
  const shown = models.filter((m) => keeps(m, f)).sort(SORTS[f.sort] ?? SORTS.name);
  $("#models").replaceChildren(...shown.map(item));
  $("#count").textContent = `${shown.length} of ${models.length} models`;
}

async function load() {
  try {
    ({ data: models } = await api("/models?output_modalities=all"));
  } catch (e) {
    $("#count").textContent = `Could not load the catalogue: ${e.message}`;
    $("#count").className = "error";
    return;
  }
  render();
  const providers = new Set();
  let pending = 0;
  await loadEndpoints(models.map((m) => m.id), (id, eps) => {
    endpoints.set(id, eps);
    for (const e of eps) providers.add(e.provider_name);
    // Re-render in batches as figures arrive, not once per model.
    if (!pending++) requestAnimationFrame(() => { pending = 0; render(); });
  });
  const chosen = $("#provider").value;
  $("#provider").replaceChildren(el("option", { value: "" }, "any"),
    ...[...providers].sort().map((p) => el("option", { value: p, selected: p === chosen }, p)));
  render();
  document.body.dataset.loaded = "true";
}

for (const id of ["#q", "#input", "#output", "#context", "#min-price", "#max-price", "#provider", "#sort", "#free", "#tools", "#structured", "#reasoning"]) {
  $(id).addEventListener("input", render);
}
load();
