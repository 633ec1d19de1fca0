import { api, el, getKey, keyField, usd } from "/app.js";

const $ = (s) => document.querySelector(s);
const status = (t, cls = "muted") => { $("#status").textContent = t; $("#status").className = cls; };

async function load() {
  for (const s of ["#overview", "#keys", "#activity"]) $(s).hidden = true;
  if (!getKey()) return status("Enter an API key or a provisioning key to see its account.");
  status("Loading…");
  try {
    const [{ data: key }, { data: credits }] = await Promise.all([api("/key"), api("/credits")]);
    $("#balance").textContent = usd(credits.total_credits - credits.total_usage);
    $("#credits-detail").textContent = `${usd(credits.total_credits)} granted, ${usd(credits.total_usage)} used`;
    $("#usage").textContent = `${usd(key.usage_daily)} / ${usd(key.usage_monthly)} / ${usd(key.usage)}`;
    $("#limit").textContent = key.limit == null ? "none" : usd(key.limit);
    $("#limit-detail").textContent = key.limit == null ? "" : `${usd(key.limit_remaining)} left${key.limit_reset ? `, resets ${key.limit_reset}` : ""}`;
    const f = key.free_model_daily_requests;
    $("#free").textContent = `${f.used} of ${f.limit}`;
    $("#label").textContent = key.label;
    $("#kind").textContent = key.is_provisioning_key ? "provisioning key: manages this account's keys" : "API key: calls models";
    $("#overview").hidden = false;
    if (key.is_provisioning_key) await Promise.all([loadKeys(), loadActivity()]);
    status("");
  } catch (e) {
    status(e.message, "error");
  }
}

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

async function loadActivity() {
  const { data } = await api("/activity");
  $("#activity-rows").replaceChildren(...(data.length ? data.map((a) => el("tr", {},
    el("td", {}, a.date), el("td", {}, a.model), el("td", {}, a.provider_name), el("td", {}, a.requests),
    el("td", {}, `${a.prompt_tokens} / ${a.completion_tokens}`), el("td", {}, usd(a.usage))))
    : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No requests yet."))]));
  $("#activity").hidden = false;
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
  if ($("#new-limit").value !== "") body.limit = Number($("#new-limit").value);
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

keyField(load);
load();
