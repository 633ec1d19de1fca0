// The chatroom: one question to several models at once, each streaming its answer in
// its own column (Markdown, code highlighted, reasoning collapsed, images shown), with
// timings, tokens, cost and provider under every reply. Conversations are kept in this
// browser (localStorage) and listed on the left.
import { API, el, getKey, keyField, readSse, usd, api, perMillion, tokenCount } from "/app.js";
import { renderMarkdown } from "/markdown.js";

const $ = (s) => document.querySelector(s);
const status = (t, cls = "muted") => { $("#status").textContent = t; $("#status").className = cls; };

// ------------------------------------------------------------------ storage

const INDEX = "modelmux.conversations";
const convKey = (id) => `modelmux.conversation.${id}`;
const newId = () => `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** The conversations' index, newest first: [{id, title, updated}]. */
const listConversations = () => JSON.parse(localStorage.getItem(INDEX) ?? "[]");

function blank(models) {
  return { id: newId(), title: "New chat", created: Date.now(), models, system: "", params: {}, turns: {} };
}

function save(conv) {
  conv.updated = Date.now();
  const index = listConversations().filter((c) => c.id !== conv.id);
  const asked = Object.values(conv.turns).some((t) => t.length);
  if (asked) index.unshift({ id: conv.id, title: conv.title, updated: conv.updated });
  try {
    if (asked) localStorage.setItem(convKey(conv.id), JSON.stringify(conv));
    localStorage.setItem(INDEX, JSON.stringify(index));
    localStorage.setItem("modelmux.models", JSON.stringify(conv.models));
  } catch (e) {
    status(`This conversation is too large to keep in the browser (${e.name}); remove old ones or images.`, "error");
  }
  renderConversations();
}

function open(id) {
  const stored = localStorage.getItem(convKey(id));
  if (!stored) return;
  stop();
  current = JSON.parse(stored);
  $("#system").value = current.system ?? "";
  if (current.system) $("#system-box").open = true;
  renderAll();
}

function remove(id) {
  localStorage.removeItem(convKey(id));
  localStorage.setItem(INDEX, JSON.stringify(listConversations().filter((c) => c.id !== id)));
  if (current.id === id) {
    current = blank(current.models);
    $("#system").value = "";
    renderAll();
  } else {
    renderConversations();
  }
}

// ------------------------------------------------------------------ state

const catalog = new Map(); // model ID -> its /models entry
// The models last chosen; checked against the catalogue once it is loaded (loadModels).
let current = blank(JSON.parse(localStorage.getItem("modelmux.models") ?? "[]"));
let controllers = [];
let attachments = []; // data URLs of images to send with the next message

const takesImages = (model) => catalog.get(model)?.architecture?.input_modalities?.includes("image") ?? false;

// ------------------------------------------------------------------ rendering

function renderConversations() {
  $("#conversations").replaceChildren(...listConversations().map((c) =>
    el("li", { "data-id": c.id, "aria-current": c.id === current.id ? "true" : "false" },
      el("button", { type: "button", class: "open", title: c.title, onclick: () => open(c.id) }, c.title),
      el("button", { type: "button", class: "delete", "aria-label": `Delete conversation ${c.title}`, onclick: () => remove(c.id) }, "×"))));
}

function renderChips() {
  $("#chosen").replaceChildren(...current.models.map((m) =>
    el("span", { class: "chip", "data-model": m }, m,
      el("button", { type: "button", "aria-label": `Remove ${m}`, onclick: () => removeModel(m) }, "×"))));
}

function paramsForm(model) {
  const p = (current.params[model] ??= {});
  const set = (k, v) => { if (v === "" || v == null) delete p[k]; else p[k] = v; save(current); };
  const id = (k) => `${k}-${model.replace(/[^a-z0-9]/gi, "-")}`;
  return el("details", { class: "param-box" },
    el("summary", { class: "muted" }, "Parameters"),
    el("div", { class: "params" },
      el("label", { for: id("temperature") }, "Temperature",
        el("input", { id: id("temperature"), type: "number", min: 0, max: 2, step: 0.1, value: p.temperature ?? "", placeholder: "default",
          oninput: (e) => set("temperature", e.target.value === "" ? "" : Number(e.target.value)) })),
      el("label", { for: id("max-tokens") }, "Max tokens",
        el("input", { id: id("max-tokens"), type: "number", min: 1, step: 1, value: p.max_tokens ?? "", placeholder: "default",
          oninput: (e) => set("max_tokens", e.target.value === "" ? "" : Number(e.target.value)) })),
      el("label", { for: id("effort") }, "Reasoning effort",
        el("select", { id: id("effort"), onchange: (e) => set("effort", e.target.value) },
          ...["", "none", "minimal", "low", "medium", "high"].map((v) => el("option", { value: v, selected: (p.effort ?? "") === v }, v || "default"))))));
}

function userBubble(turn) {
  const parts = typeof turn.content === "string" ? [{ type: "text", text: turn.content }] : turn.content;
  return el("div", { class: "msg user" },
    ...parts.map((part) => part.type === "image_url"
      ? el("img", { src: part.image_url.url, alt: "attached image" })
      : el("span", {}, part.text)),
    turn.note ? el("span", { class: "note" }, turn.note) : null);
}

/** An assistant bubble; returns it with an `update(turn)` that re-renders it in place. */
function assistantBubble(turn) {
  const reasoningText = el("div");
  const reasoning = el("details", { class: "reasoning", hidden: true }, el("summary", {}, "Reasoning"), reasoningText);
  const body = el("div", { class: "body" });
  const images = el("div", { class: "images" });
  const meta = el("span", { class: "meta" });
  const bubble = el("div", { class: "msg assistant" }, reasoning, body, images, meta);
  let pending = false;
  const draw = (t) => {
    reasoning.hidden = !t.reasoning;
    reasoningText.textContent = t.reasoning ?? "";
    renderMarkdown(body, t.content ?? "");
    if (images.children.length !== (t.images ?? []).length) {
      images.replaceChildren(...(t.images ?? []).map((url) => el("img", { src: url, alt: "image from the model" })));
    }
    bubble.classList.toggle("failed", !!t.failed);
    meta.textContent = t.failed ?? metaLine(t.meta);
    bubble.closest(".log")?.scrollTo({ top: 1e9 });
  };
  // While streaming, at most once a frame; `now` for the final state.
  bubble.update = (t, now = false) => {
    if (now) {
      pending = false;
      return draw(t);
    }
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      if (!pending) return;
      pending = false;
      draw(t);
    });
  };
  draw(turn);
  return bubble;
}

function metaLine(m) {
  if (!m) return "…";
  const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;
  return [
    m.provider,
    m.usage && `${m.usage.prompt_tokens} + ${m.usage.completion_tokens} tokens`,
    m.usage && usd(m.usage.cost),
    m.ttft != null && `first token ${secs(m.ttft)}`,
    m.total != null && `total ${secs(m.total)}`,
    m.tps != null && `${m.tps.toFixed(1)} tok/s`,
  ].filter(Boolean).join(" · ");
}

function column(model) {
  const log = el("div", { class: "log" });
  for (const t of current.turns[model] ?? []) log.append(t.role === "user" ? userBubble(t) : assistantBubble(t));
  const info = catalog.get(model);
  return el("section", { class: "panel column", "data-model": model, "aria-label": model },
    el("header", {}, el("h3", {}, model),
      info ? el("span", { class: "muted" }, priceLabel(info)) : null),
    paramsForm(model), log);
}

function priceLabel(m) {
  const [i, o] = [perMillion(m.pricing?.prompt), perMillion(m.pricing?.completion)];
  return i === "free" && o === "free" ? "free" : `${i} in / ${o} out per M`;
}

function renderColumns() {
  $("#columns").replaceChildren(...current.models.map(column));
  if (!current.models.length) $("#columns").replaceChildren(el("p", { id: "empty", class: "muted" }, "Add one or more models above, then ask them all the same question."));
}

function renderAll() {
  renderChips();
  renderColumns();
  renderConversations();
}

// ------------------------------------------------------------------ models

function addModel(id) {
  id = id.trim();
  if (id && !current.models.includes(id)) {
    current.models.push(id);
    save(current);
    renderChips();
    $("#columns").querySelector("#empty")?.remove();
    $("#columns").append(column(id));
  }
  $("#model-pick").value = "";
  closeResults();
}

function removeModel(m) {
  current.models.splice(current.models.indexOf(m), 1);
  save(current);
  renderChips();
  $(`.column[data-model="${CSS.escape(m)}"]`)?.remove();
  if (!current.models.length) renderColumns();
}

let results = [];
let active = -1;
function closeResults() {
  $("#model-results").hidden = true;
  $("#model-pick").setAttribute("aria-expanded", "false");
  active = -1;
}
function showResults() {
  const q = $("#model-pick").value.trim().toLowerCase();
  results = [...catalog.values()]
    .filter((m) => !current.models.includes(m.id) && !m.architecture?.output_modalities?.includes("embeddings"))
    .filter((m) => !q || m.id.toLowerCase().includes(q) || m.name.toLowerCase().includes(q))
    .slice(0, 30);
  $("#model-results").replaceChildren(...results.map((m, i) =>
    el("li", { role: "option", id: `result-${i}`, "data-model": m.id, "aria-selected": i === active ? "true" : "false", onmousedown: (e) => { e.preventDefault(); addModel(m.id); } },
      el("span", {}, m.name, " ", el("code", { class: "muted" }, m.id)),
      el("span", { class: "facts" }, `${tokenCount(m.context_length)} ctx · ${perMillion(m.pricing?.prompt)} in · ${perMillion(m.pricing?.completion)} out`))));
  $("#model-results").hidden = !results.length;
  $("#model-pick").setAttribute("aria-expanded", String(!!results.length));
}

/** A chat model of this catalogue to start on: the demo model when it is there. */
const chatModels = () => [...catalog.values()].filter((m) => !m.architecture?.output_modalities?.includes("embeddings"));
const firstModel = () => (catalog.has("modelmux/echo") ? "modelmux/echo" : chatModels()[0]?.id);

/** Remembered models the catalogue no longer has are dropped (a conversation that has
 * turns keeps its columns); one with no model left starts on the first usable one. */
function settleModels() {
  const known = (m) => catalog.has(m);
  const remembered = JSON.parse(localStorage.getItem("modelmux.models") ?? "[]").filter(known);
  localStorage.setItem("modelmux.models", JSON.stringify(remembered));
  const asked = Object.values(current.turns ?? {}).some((t) => t.length);
  if (!asked) current.models = current.models.filter(known);
  if (!current.models.length && firstModel()) current.models = [firstModel()];
  renderChips();
}

async function loadModels() {
  try {
    const { data } = await api("/models");
    for (const m of data) catalog.set(m.id, m);
    settleModels();
    renderColumns();
    document.body.dataset.models = String(catalog.size);
  } catch (e) {
    status(`Could not load the model list: ${e.message}`, "error");
  }
}

// ------------------------------------------------------------------ asking

/** The conversation as `model` is sent it: the system prompt, then its turns. */
function messagesFor(model) {
  const msgs = current.system.trim() ? [{ role: "system", content: current.system.trim() }] : [];
  for (const t of current.turns[model] ?? []) {
    if (t.role === "user") msgs.push({ role: "user", content: t.content });
    else if (!t.failed || t.content) msgs.push({ role: "assistant", content: t.content ?? "" });
    // A question left unanswered is not sent again.
    else if (msgs.at(-1)?.role === "user") msgs.pop();
  }
  return msgs;
}

function requestBody(model) {
  const p = current.params[model] ?? {};
  const body = { model, messages: messagesFor(model), stream: true };
  if (p.temperature != null) body.temperature = p.temperature;
  if (p.max_tokens != null) body.max_tokens = p.max_tokens;
  if (p.effort) body.reasoning = { effort: p.effort };
  return body;
}

async function ask(model, log) {
  const body = JSON.stringify(requestBody(model));
  const turn = { role: "assistant", content: "", reasoning: "", images: [], meta: null };
  current.turns[model].push(turn);
  const bubble = assistantBubble(turn);
  log.append(bubble);
  const ctl = new AbortController();
  controllers.push(ctl);
  const started = performance.now();
  let first = null;
  const meta = { provider: "", usage: null };
  try {
    const r = await fetch(`${API}/chat/completions`, {
      method: "POST",
      signal: ctl.signal,
      headers: { authorization: `Bearer ${getKey()}`, "content-type": "application/json", "X-Title": "modelmux chatroom" },
      body,
    });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error(body.error?.message ?? `HTTP ${r.status}`);
    }
    let failure = null;
    await readSse(r.body, (chunk) => {
      meta.provider = chunk.provider ?? meta.provider;
      if (chunk.error) failure = chunk.error.message;
      const delta = chunk.choices?.[0]?.delta;
      if (delta) {
        if (delta.content) turn.content += delta.content;
        if (delta.reasoning) turn.reasoning += delta.reasoning;
        for (const img of delta.images ?? []) if (img.image_url?.url) turn.images.push(img.image_url.url);
        if ((delta.content || delta.reasoning || delta.images?.length) && first == null) first = performance.now();
      }
      if (chunk.usage) meta.usage = chunk.usage;
      turn.meta = { ...meta, ttft: first == null ? null : first - started };
      bubble.update(turn);
    });
    if (failure) throw new Error(failure);
    const end = performance.now();
    const out = meta.usage?.completion_tokens;
    turn.meta = {
      ...meta,
      ttft: first == null ? null : first - started,
      total: end - started,
      // Over a generation too short to time (a cached or tiny reply), no rate is shown.
      tps: out && first != null && end - first >= 100 ? out / ((end - first) / 1000) : null,
    };
  } catch (e) {
    turn.failed = e.name === "AbortError" ? "stopped" : e.message;
  }
  bubble.update(turn, true);
}

async function send() {
  const prompt = $("#prompt").value.trim();
  if ((!prompt && !attachments.length) || !current.models.length) return;
  if (!getKey()) return status("Enter your API key at the top right first.", "error");
  $("#prompt").value = "";
  const images = attachments;
  attachments = [];
  $("#attachments").replaceChildren();
  $("#send").disabled = true;
  $("#stop").disabled = false;
  current.system = $("#system").value;
  if (current.title === "New chat") current.title = (prompt || "Image").slice(0, 60);
  status(`Asking ${current.models.length} model${current.models.length > 1 ? "s" : ""}…`);
  controllers = [];
  await Promise.all(current.models.map((model) => {
    const col = $(`.column[data-model="${CSS.escape(model)}"]`);
    const log = col.querySelector(".log");
    const withImages = images.length && takesImages(model);
    const content = withImages
      ? [...(prompt ? [{ type: "text", text: prompt }] : []), ...images.map((url) => ({ type: "image_url", image_url: { url } }))]
      : prompt;
    const turn = { role: "user", content };
    if (images.length && !withImages) turn.note = " (images not sent: this model takes text only)";
    (current.turns[model] ??= []).push(turn);
    log.append(userBubble(turn));
    return ask(model, log);
  }));
  save(current);
  $("#send").disabled = false;
  $("#stop").disabled = true;
  status("");
}

function stop() {
  controllers.forEach((c) => c.abort());
}

function attach(files) {
  for (const f of files) {
    if (!f.type.startsWith("image/")) continue;
    if (f.size > 5 * 1024 * 1024) { status(`${f.name} is over 5 MB.`, "error"); continue; }
    const reader = new FileReader();
    reader.onload = () => {
      attachments.push(reader.result);
      $("#attachments").append(el("span", { class: "chip" }, el("img", { src: reader.result, alt: f.name }),
        el("button", { type: "button", "aria-label": `Remove ${f.name}`, onclick: (e) => { attachments = attachments.filter((a) => a !== reader.result); e.target.parentElement.remove(); } }, "×")));
    };
    reader.readAsDataURL(f);
  }
}

// ------------------------------------------------------------------ wiring

$("#composer").addEventListener("submit", (ev) => { ev.preventDefault(); send(); });
$("#prompt").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); $("#composer").requestSubmit(); }
});
document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { stop(); closeResults(); } });
$("#stop").addEventListener("click", stop);
$("#attach-button").addEventListener("click", () => $("#attach").click());
$("#attach").addEventListener("change", (ev) => { attach(ev.target.files); ev.target.value = ""; });
$("#system").addEventListener("change", () => { current.system = $("#system").value; save(current); });
/** The conversation's setup as a preset (`POST /presets`, a provisioning key, not
 * kept): its first model with the others as fallbacks, the system prompt, and the
 * first model's parameters. Requests then name it as `@preset/<slug>`. */
async function savePreset() {
  const slug = $("#preset-slug").value.trim();
  const key = $("#preset-key").value.trim();
  if (!current.models.length) return status("Add a model first.", "error");
  if (!/^[a-z0-9_-]{1,64}$/.test(slug)) return status("A slug is 1 to 64 of a-z, 0-9, - and _.", "error");
  if (!key) return status("Saving a preset takes the account's provisioning key.", "error");
  const [model, ...models] = current.models;
  const p = current.params[model] ?? {};
  const config = { model, ...(models.length && { models }) };
  if (p.temperature != null) config.temperature = p.temperature;
  if (p.max_tokens != null) config.max_tokens = p.max_tokens;
  if (p.effort) config.reasoning = { effort: p.effort };
  const body = { slug, name: current.title === "New chat" ? slug : current.title, config,
    system_prompt: current.system.trim() || null };
  const r = await fetch(`${API}/presets`, { method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) return status(`Not saved: ${j.error?.message ?? r.status}`, "error");
  status(`Saved as @preset/${slug} (version ${j.data.designated_version.version}).`);
}
$("#save-preset").addEventListener("click", savePreset);
$("#new-chat").addEventListener("click", () => {
  stop();
  current = blank([...current.models]);
  $("#system").value = "";
  renderAll();
});
const pick = $("#model-pick");
pick.addEventListener("input", () => { active = -1; showResults(); });
pick.addEventListener("focus", showResults);
pick.addEventListener("blur", closeResults);
pick.addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    if (!results.length) return;
    active = (active + (ev.key === "ArrowDown" ? 1 : results.length - 1)) % results.length;
    showResults();
    pick.setAttribute("aria-activedescendant", `result-${active}`);
  } else if (ev.key === "Enter") {
    ev.preventDefault();
    addModel(active >= 0 ? results[active].id : pick.value);
  }
});

keyField(() => status(getKey() ? "Key saved in this browser." : "Key removed."));
// "Chat with it" from a model page: a new conversation with that model.
const wanted = new URLSearchParams(location.search).get("model");
if (wanted) {
  current = blank([wanted]);
  history.replaceState(null, "", "/");
}
renderAll();
loadModels();
