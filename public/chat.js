import { API, api, el, getKey, keyField, readSse, usd } from "/app.js";

const chosen = JSON.parse(localStorage.getItem("modelmux.models") ?? '["modelmux/echo"]');
const history = new Map(); // model -> [{role, content}]
let controllers = [];

const $ = (s) => document.querySelector(s);
const status = (t, cls = "muted") => { $("#status").textContent = t; $("#status").className = cls; };

function saveModels() {
  localStorage.setItem("modelmux.models", JSON.stringify(chosen));
}

function render() {
  $("#chosen").replaceChildren(...chosen.map((m) =>
    el("span", { class: "chip", "data-model": m }, m,
      el("button", { type: "button", title: `remove ${m}`, onclick: () => { chosen.splice(chosen.indexOf(m), 1); saveModels(); render(); } }, "×"))));
  const cols = $("#columns");
  const existing = new Map([...cols.children].map((c) => [c.dataset.model, c]));
  cols.replaceChildren(...chosen.map((m) => existing.get(m) ?? el("section", { class: "panel column", "data-model": m },
    el("h2", {}, el("span", {}, m), el("span", { class: "muted cost" })),
    el("div", { class: "log" }))));
  if (!chosen.length) cols.replaceChildren(el("p", { id: "empty", class: "muted" }, "Add one or more models above, then ask them all the same question."));
}

function addModel(id) {
  id = id.trim();
  if (id && !chosen.includes(id)) { chosen.push(id); saveModels(); render(); }
  $("#model-pick").value = "";
}

async function loadModels() {
  try {
    const { data } = await api("/models");
    $("#model-list").replaceChildren(...data.map((m) => el("option", { value: m.id }, m.name)));
  } catch (e) {
    status(`Could not load the model list: ${e.message}`, "error");
  }
}

async function ask(model, column) {
  const log = column.querySelector(".log");
  const turns = history.get(model) ?? [];
  const bubble = el("div", { class: "msg assistant" });
  const text = el("span");
  const meta = el("span", { class: "meta" }, "…");
  bubble.append(text, meta);
  log.append(bubble);
  const ctl = new AbortController();
  controllers.push(ctl);
  let reply = "";
  try {
    const r = await fetch(`${API}/chat/completions`, {
      method: "POST",
      signal: ctl.signal,
      headers: { authorization: `Bearer ${getKey()}`, "content-type": "application/json", "X-Title": "modelmux chatroom" },
      body: JSON.stringify({ model, messages: turns, stream: true }),
    });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error(body.error?.message ?? `HTTP ${r.status}`);
    }
    let usage = null, provider = "", failure = null;
    await readSse(r.body, (chunk) => {
      provider = chunk.provider ?? provider;
      if (chunk.error) failure = chunk.error.message;
      const delta = chunk.choices?.[0]?.delta;
      if (delta?.content) { reply += delta.content; text.textContent = reply; log.scrollTop = log.scrollHeight; }
      if (chunk.usage) usage = chunk.usage;
    });
    if (failure) throw new Error(failure);
    turns.push({ role: "assistant", content: reply });
    meta.textContent = [provider, usage && `${usage.prompt_tokens} + ${usage.completion_tokens} tokens`, usage && usd(usage.cost)].filter(Boolean).join(" · ");
  } catch (e) {
    bubble.classList.add("failed");
    meta.textContent = e.name === "AbortError" ? "stopped" : e.message;
    if (reply) turns.push({ role: "assistant", content: reply });
    else turns.pop(); // the question stays unanswered for this model
  }
}

$("#composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const prompt = $("#prompt").value.trim();
  if (!prompt || !chosen.length) return;
  if (!getKey()) return status("Enter your API key at the top right first.", "error");
  $("#prompt").value = "";
  $("#send").disabled = true;
  $("#stop").disabled = false;
  status(`Asking ${chosen.length} model${chosen.length > 1 ? "s" : ""}…`);
  controllers = [];
  await Promise.all([...$("#columns").children].filter((c) => c.dataset.model).map((column) => {
    const model = column.dataset.model;
    if (!history.has(model)) history.set(model, []);
    history.get(model).push({ role: "user", content: prompt });
    column.querySelector(".log").append(el("div", { class: "msg user" }, prompt));
    return ask(model, column);
  }));
  $("#send").disabled = false;
  $("#stop").disabled = true;
  status("");
});

$("#prompt").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("#composer").requestSubmit(); }
});
$("#stop").addEventListener("click", () => controllers.forEach((c) => c.abort()));
$("#add-model").addEventListener("click", () => addModel($("#model-pick").value));
$("#model-pick").addEventListener("keydown", (ev) => { if (ev.key === "Enter") addModel($("#model-pick").value); });
$("#clear").addEventListener("click", () => { history.clear(); document.querySelectorAll(".log").forEach((l) => l.replaceChildren()); });

keyField(() => status(getKey() ? "Key saved in this browser." : "Key removed."));
render();
loadModels();
