// The account page: balance and key figures for any key; with a provisioning key also
// charts of the last 30 days (from /activity), the keys, and the privacy setting. The
// latest requests (from /generations, each opening its /generation record) for both.
import { api, el, getKey, keyField, usd } from "/app.js";

const $ = (s) => document.querySelector(s);
const status = (t, cls = "muted") => { $("#status").textContent = t; $("#status").className = cls; };
const SECTIONS = ["#overview", "#charts", "#generations", "#keys", "#activity"];
const charts = {};

async function load() {
  for (const s of SECTIONS) $(s).hidden = true;
  if (!getKey()) return status("Enter an API key or a provisioning key to see its account.");
  status("Loading…");
  try {
    const [{ data: key }, { data: credits }, { data: privacy }] = await Promise.all([api("/key"), api("/credits"), api("/account")]);
    $("#balance").textContent = usd(credits.total_credits - credits.total_usage);
    $("#credits-detail").textContent = `${usd(credits.total_credits)} granted, ${usd(credits.total_usage)} used`;
    $("#usage").textContent = `${usd(key.usage_daily)} / ${usd(key.usage_monthly)} / ${usd(key.usage)}`;
    $("#limit").textContent = key.limit == null ? "none" : usd(key.limit);
    $("#limit-detail").textContent = key.limit == null ? "" : `${usd(key.limit_remaining)} left${key.limit_reset ? `, resets ${key.limit_reset}` : ""}`;
    const f = key.free_model_daily_requests;
    $("#free").textContent = `${f.used} of ${f.limit}`;
    $("#label").textContent = key.label;
    $("#kind").textContent = key.is_provisioning_key ? "provisioning key: manages this account's keys" : "API key: calls models";
    $("#allow-training").checked = privacy.allow_training;
    $("#allow-training").disabled = !key.is_provisioning_key;
    $("#privacy-note").textContent = key.is_provisioning_key
      ? "Applies to every key of the account."
      : "A provisioning key can change this.";
    $("#overview").hidden = false;
    const work = [loadGenerations()];
    if (key.is_provisioning_key) work.push(loadKeys(), loadActivity());
    await Promise.all(work);
    status("");
    document.body.dataset.loaded = "true";
  } catch (e) {
    status(e.message, "error");
  }
}

// ------------------------------------------------------------------ activity

/** The last 30 UTC days, oldest first, as YYYY-MM-DD. */
function lastDays(n = 30) {
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
  return Array.from({ length: n }, (_, i) => new Date(today - (n - 1 - i) * 86_400_000).toISOString().slice(0, 10));
}

const PALETTE = ["#2f5bea", "#e8590c", "#0ca678", "#ae3ec9", "#f59f00", "#1098ad", "#d6336c", "#5c940d", "#495057"];

/** Per-day series stacked by model: {labels, datasets} for `value(row)`. */
export function series(rows, value, days = lastDays()) {
  const models = [...new Set(rows.map((r) => r.model))].sort();
  return {
    labels: days,
    datasets: models.map((model, i) => ({
      label: model,
      backgroundColor: PALETTE[i % PALETTE.length],
      stack: "models",
      data: days.map((d) => rows.filter((r) => r.model === model && r.date === d).reduce((s, r) => s + value(r), 0)),
    })),
  };
}

function drawChart(id, data, money) {
  charts[id]?.destroy();
  if (typeof Chart === "undefined") return;
  charts[id] = new Chart($(`#${id}`), {
    type: "bar",
    data,
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } }, tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${money ? usd(c.parsed.y) : c.parsed.y}` } } },
      scales: {
        x: { stacked: true, ticks: { maxTicksLimit: 8 } },
        y: { stacked: true, beginAtZero: true, ticks: { maxTicksLimit: 6, callback: (v) => (money ? usd(v) : v) } },
      },
    },
  });
}

async function loadActivity() {
  const { data } = await api("/activity");
  drawChart("chart-spend", series(data, (r) => r.usage), true);
  drawChart("chart-requests", series(data, (r) => r.requests));
  drawChart("chart-tokens", series(data, (r) => r.prompt_tokens + r.completion_tokens));
  $("#activity-rows").replaceChildren(...(data.length ? data.map((a) => el("tr", {},
    el("td", {}, a.date), el("td", {}, a.model), el("td", {}, a.provider_name), el("td", {}, a.requests),
    el("td", {}, `${a.prompt_tokens} / ${a.completion_tokens}`), el("td", {}, usd(a.usage))))
    : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No requests yet."))]));
  $("#charts").hidden = false;
  $("#activity").hidden = false;
}

// ------------------------------------------------------------------ requests

async function loadGenerations() {
  const { data } = await api("/generations?limit=50");
  $("#generation-rows").replaceChildren(...(data.length ? data.map((g) => el("tr", {
    "data-id": g.id, tabindex: 0, "aria-selected": "false",
    onclick: () => showGeneration(g.id), onkeydown: (e) => { if (e.key === "Enter") showGeneration(g.id); },
  },
  el("td", {}, new Date(g.created_at).toLocaleString()),
  el("td", {}, g.model),
  el("td", {}, g.provider_name ?? "—"),
  el("td", {}, g.api_type),
  el("td", {}, `${g.tokens_prompt ?? 0} / ${g.tokens_completion ?? 0}`),
  el("td", {}, usd(g.total_cost)),
  el("td", {}, g.latency == null ? "—" : `${g.latency} ms`),
  el("td", {}, g.cancelled ? "cancelled" : g.finish_reason ?? "—")))
    : [el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No requests yet."))]));
  $("#generations").hidden = false;
}

const DETAIL_FIELDS = [
  ["model", "Model"], ["provider_name", "Provider"], ["api_type", "API"], ["created_at", "Created"],
  ["tokens_prompt", "Prompt tokens"], ["tokens_completion", "Completion tokens"],
  ["native_tokens_reasoning", "Reasoning tokens"], ["native_tokens_cached", "Cached tokens"],
  ["total_cost", "Charged (USD)"], ["upstream_inference_cost", "Provider cost (USD)"], ["usage_source", "Usage from"],
  ["latency", "Latency (ms)"], ["generation_time", "Generation time (ms)"], ["streamed", "Streamed"],
  ["cancelled", "Cancelled"], ["finish_reason", "Finish reason"], ["native_finish_reason", "Native finish reason"],
  ["app_title", "App"], ["origin", "Origin"], ["user_agent", "User agent"],
];

async function showGeneration(id) {
  for (const tr of document.querySelectorAll("#generation-rows tr")) tr.setAttribute("aria-selected", String(tr.dataset.id === id));
  try {
    const { data: g } = await api(`/generation?id=${encodeURIComponent(id)}`);
    $("#detail-id").textContent = g.id;
    $("#detail-fields").replaceChildren(...DETAIL_FIELDS.filter(([k]) => g[k] !== undefined && g[k] !== null && g[k] !== "")
      .flatMap(([k, label]) => [el("dt", {}, label), el("dd", { "data-field": k }, String(g[k]))]));
    $("#generation-detail").hidden = false;
  } catch (e) {
    status(e.message, "error");
  }
}

// ------------------------------------------------------------------ keys

async function loadKeys() {
  const { data } = await api("/keys");
  $("#key-rows").replaceChildren(...data.map((k) => el("tr", { "data-hash": k.hash },
    el("td", {}, k.name, k.disabled ? el("span", { class: "muted" }, " (disabled)") : null),
    el("td", {}, el("code", {}, k.label)),
    el("td", {}, usd(k.usage)),
    el("td", {}, k.limit == null ? "—" : `${usd(k.limit)}${k.limit_reset ? ` / ${k.limit_reset}` : ""}`),
    el("td", {}, new Date(k.created_at).toLocaleDateString()),
    el("td", {},
      el("button", { type: "button", onclick: () => update(k.hash, { disabled: !k.disabled }) }, k.disabled ? "Enable" : "Disable"), " ",
      el("button", { type: "button", onclick: () => remove(k) }, "Delete")))));
  $("#keys").hidden = false;
}

async function update(hash, patch) {
  try { await api(`/keys/${hash}`, { method: "PATCH", body: patch }); await loadKeys(); }
  catch (e) { status(e.message, "error"); }
}

async function remove(k) {
  if (!confirm(`Delete the key "${k.name}"? Requests with it will fail at once.`)) return;
  try { await api(`/keys/${k.hash}`, { method: "DELETE" }); await loadKeys(); }
  catch (e) { status(e.message, "error"); }
}

$("#create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { name: $("#new-name").value.trim() };
  if ($("#new-limit").value !== "") body.limit = $("#new-limit").value;
  if ($("#new-reset").value) body.limit_reset = $("#new-reset").value;
  try {
    const { key } = await api("/keys", { method: "POST", body });
    $("#new-key").replaceChildren("New key (shown once, copy it now): ", el("code", { id: "new-key-value" }, key));
    $("#new-key").hidden = false;
    $("#create").reset();
    await loadKeys();
  } catch (e) {
    status(e.message, "error");
  }
});

$("#allow-training").addEventListener("change", async (ev) => {
  try {
    const { data } = await api("/account", { method: "PATCH", body: { allow_training: ev.target.checked } });
    ev.target.checked = data.allow_training;
    status(data.allow_training ? "Providers that may train on prompts are allowed." : "Only providers that do not train on prompts are used.", "ok");
  } catch (e) {
    ev.target.checked = !ev.target.checked;
    status(e.message, "error");
  }
});
$("#detail-close").addEventListener("click", () => { $("#generation-detail").hidden = true; });

keyField(load);
load();
