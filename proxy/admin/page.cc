#include "proxy/admin/page.h"

namespace mongoguard::proxy {

namespace {

// Kept plain on purpose: whoever is on call may open it on a laptop in a
// hurry. Everything it shows comes from the JSON API with the bearer token
// the person types once (kept in sessionStorage for this tab).
constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mongoguard</title>
<style>
  :root { --fg: #1d2126; --muted: #5f6b76; --line: #d8dde2; --bg: #f6f7f9; --warn: #b42318;
          --ok: #1a7f37; --accent: #1f5fbf; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 10px 20px;
           background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0 12px 0 0; }
  header .spacer { flex: 1; }
  main { padding: 16px 20px 40px; max-width: 1400px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px;
            margin-bottom: 18px; }
  section h2 { font-size: 15px; margin: 0; padding: 10px 14px; border-bottom: 1px solid var(--line); }
  section h2 .count { color: var(--muted); font-weight: normal; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #eef0f2;
           vertical-align: top; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; }
  td code { font: 12px/1.3 ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
  .empty { padding: 12px 14px; color: var(--muted); }
  .tripped { color: var(--warn); font-weight: 600; }
  .okstate { color: var(--ok); }
  .muted { color: var(--muted); }
  button { font: inherit; padding: 3px 10px; border-radius: 4px; border: 1px solid #b8c0c8;
           background: #fff; cursor: pointer; }
  button:hover { background: #eef2f6; }
  button.approve { border-color: var(--ok); color: var(--ok); }
  button.reject { border-color: var(--warn); color: var(--warn); }
  input { font: inherit; padding: 3px 6px; border: 1px solid #b8c0c8; border-radius: 4px; }
  .bar { height: 6px; background: #eef0f2; border-radius: 3px; min-width: 80px; margin-top: 3px; }
  .bar > div { height: 6px; border-radius: 3px; background: var(--accent); }
  .bar.full > div { background: var(--warn); }
  #status { color: var(--muted); font-size: 12px; }
  #message { padding: 8px 20px; display: none; }
  #message.error { display: block; background: #fdecea; color: var(--warn); }
  #message.info { display: block; background: #e9f5ec; color: var(--ok); }
  #login { max-width: 420px; margin: 60px auto; background: #fff; padding: 20px;
           border: 1px solid var(--line); border-radius: 6px; }
  #login input { width: 100%; margin: 8px 0 12px; }
  #grant { position: fixed; inset: 0; background: rgba(0,0,0,.3); display: none;
           align-items: center; justify-content: center; }
  #grant.open { display: flex; }
  #grant form { background: #fff; padding: 18px; border-radius: 6px; min-width: 340px; }
  #grant label { display: block; margin: 8px 0; }
  #grant input { width: 120px; }
</style>
</head>
<body>
<header>
  <h1>mongoguard</h1>
  <label>Operator <input id="operator" placeholder="your name" size="14"></label>
  <span class="spacer"></span>
  <span id="status">not loaded</span>
  <button id="logout" type="button">Forget token</button>
</header>
<div id="message"></div>

<div id="login" hidden>
  <form id="login-form">
    <strong>Admin token</strong>
    <p class="muted">The bearer token from the proxy's <code>admin.token_file</code>.
      It is kept in this tab only.</p>
    <input id="token" type="password" autocomplete="off" required>
    <button type="submit">Open</button>
  </form>
</div>

<main id="app" hidden>
  <section>
    <h2>Held operations <span class="count" id="holds-count"></span></h2>
    <div id="holds"></div>
  </section>
  <section>
    <h2>Breakers <span class="count" id="breakers-count"></span></h2>
    <div id="breakers"></div>
  </section>
  <section>
    <h2>Recent decisions <span class="count" id="decisions-count"></span></h2>
    <div id="decisions"></div>
  </section>
</main>

<div id="grant">
  <form id="grant-form">
    <strong>Grant <span id="grant-name"></span></strong>
    <p class="muted">Break-glass: lets more through without holding. Give documents, minutes,
      or both.</p>
    <label>Documents <input id="grant-documents" type="number" min="1" step="1"></label>
    <label>Minutes <input id="grant-minutes" type="number" min="0.1" step="any"></label>
    <button type="submit">Grant</button> <button type="button" id="grant-cancel">Cancel</button>
  </form>
</div>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v === undefined || v === null ? "" : v)
  .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
  .replace(/"/g, "&quot;").replace(/'/g, "&#39;");

function token() { return sessionStorage.getItem("mongoguard.token") || ""; }
function operatorName(ask) {
  let name = $("operator").value.trim() || localStorage.getItem("mongoguard.operator") || "";
  if (!name && ask) name = (window.prompt("Your name (recorded with the decision):") || "").trim();
  if (name) { localStorage.setItem("mongoguard.operator", name); $("operator").value = name; }
  return name;
}

function say(text, kind) {
  const m = $("message");
  m.textContent = text;
  m.className = text ? kind : "";
}

function showLogin() {
  $("app").hidden = true;
  $("login").hidden = false;
  $("token").focus();
}

async function api(method, path, body) {
  const headers = { "Authorization": "Bearer " + token() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401) {
    sessionStorage.removeItem("mongoguard.token");
    showLogin();
    throw new Error((data && data.error) || "unauthorized");
  }
  if (!res.ok) {
    let msg = (data && data.error) || ("HTTP " + res.status);
    if (data && data.errors) msg += ": " + data.errors.join("; ");
    throw new Error(msg);
  }
  return data;
}

function seconds(s) {
  if (s === null || s === undefined) return "";
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}

function bar(used, limit) {
  if (!limit) return "";
  const pct = Math.min(100, Math.round(100 * used / limit));
  return `<div class="bar${used >= limit ? " full" : ""}"><div style="width:${pct}%"></div></div>`;
}

function renderHolds(holds) {
  $("holds-count").textContent = `(${holds.length} pending)`;
  if (!holds.length) { $("holds").innerHTML = '<div class="empty">Nothing is held.</div>'; return; }
  const rows = holds.map((h) => `
    <tr data-hold="${esc(h.id)}">
      <td>#${esc(h.id)}${h.owner ? `<br><span class="muted">on ${esc(h.owner)}</span>` : ""}</td>
      <td><strong>${esc(h.ns)}</strong><br><span class="muted">${esc(h.operation)}</span></td>
      <td>${esc(h.client)}</td><td>${esc(h.user)}</td><td>${esc(h.app)}</td>
      <td><code>${esc(h.filter)}</code></td>
      <td>${h.limit ? esc(h.documents_in_window) + " / " + esc(h.limit) + bar(h.documents_in_window, h.limit)
                    : '<span class="muted">—</span>'}</td>
      <td>${esc(h.rule)}<br><span class="muted">${esc(h.reason)}</span></td>
      <td>${seconds(h.waiting_seconds)}</td>
      <td><button class="approve" data-action="approve" data-id="${esc(h.id)}">Approve</button>
          <button class="reject" data-action="reject" data-id="${esc(h.id)}">Reject</button></td>
    </tr>`).join("");
  $("holds").innerHTML = `<table><thead><tr><th>Hold</th><th>Namespace</th><th>Client</th>
    <th>User</th><th>App</th><th>Filter</th><th>Docs in window</th><th>Rule</th><th>Waiting</th>
    <th></th></tr></thead><tbody>${rows}</tbody></table>`;
}

function renderBreakers(breakers) {
  const tripped = breakers.filter((b) => b.tripped).length;
  $("breakers-count").textContent = `(${breakers.length}, ${tripped} tripped)`;
  if (!breakers.length) {
    $("breakers").innerHTML = '<div class="empty">No budget has counted anything yet.</div>';
    return;
  }
  const rows = breakers.map((b) => {
    const allowance = [];
    if (b.allowance && b.allowance.documents) allowance.push(b.allowance.documents + " docs");
    if (b.allowance && b.allowance.expires_in_seconds)
      allowance.push("free for " + seconds(b.allowance.expires_in_seconds));
    return `
    <tr data-breaker="${esc(b.name)}">
      <td><code>${esc(b.name)}</code><br><span class="muted">rule ${esc(b.rule)}</span></td>
      <td>${esc(b.ns)}</td>
      <td>${esc(b.used)} / ${esc(b.limit)} per ${esc(b.per)}${bar(b.used, b.limit)}</td>
      <td>${b.tripped ? '<span class="tripped">TRIPPED</span>' : '<span class="okstate">ok</span>'}</td>
      <td>${seconds(b.drains_in_seconds)}</td>
      <td>${esc(allowance.join(", "))}</td>
      <td>${esc(b.pending_holds)}</td>
      <td><button data-action="reset" data-name="${esc(b.name)}">Reset</button>
          <button data-action="grant" data-name="${esc(b.name)}">Grant</button>
          ${b.pending_holds ? `<button class="approve" data-action="approve-all" data-name="${esc(b.name)}">Approve all</button>
          <button class="reject" data-action="reject-all" data-name="${esc(b.name)}">Reject all</button>` : ""}</td>
    </tr>`;
  }).join("");
  $("breakers").innerHTML = `<table><thead><tr><th>Breaker</th><th>Namespace</th><th>Window</th>
    <th>State</th><th>Drains in</th><th>Allowance</th><th>Held</th><th></th></tr></thead>
    <tbody>${rows}</tbody></table>`;
}

function when(t) {
  const v = t && t.$date !== undefined ? t.$date : t;
  if (v === undefined || v === null) return "";
  const d = new Date(typeof v === "object" && v.$numberLong ? Number(v.$numberLong) : v);
  return isNaN(d) ? String(v) : d.toLocaleTimeString();
}

function renderDecisions(decisions) {
  $("decisions-count").textContent = `(last ${decisions.length})`;
  if (!decisions.length) { $("decisions").innerHTML = '<div class="empty">No decisions yet.</div>'; return; }
  const rows = decisions.map((d) => {
    if (d.operator_action) {
      return `<tr><td>${esc(when(d.time))}</td><td><strong>${esc(d.operator_action)}</strong></td>
        <td colspan="3">${esc(d.target)} ${d.details ? "— " + esc(d.details) : ""}</td>
        <td>by ${esc(d.by)}</td></tr>`;
    }
    const targets = (d.targets || []).map((t) => esc(t.operation) + " " + esc(t.ns)).join(", ");
    const who = [d.client, d.app && "app=" + d.app, d.user && "user=" + d.user]
      .filter(Boolean).map(esc).join(" ");
    const outcome = d.outcome || (d.ok === false ? "error" : d.n !== undefined ? "n=" + d.n : "");
    return `<tr><td>${esc(when(d.time))}</td>
      <td class="${d.verdict === "block" || d.verdict === "hold" ? "tripped" : ""}">${esc(d.verdict)}${d.dry_run ? " (dry run)" : ""}</td>
      <td>${targets || esc(d.command)}</td><td>${esc(d.rule)}</td><td>${esc(outcome)}</td>
      <td>${who}</td></tr>`;
  }).join("");
  $("decisions").innerHTML = `<table><thead><tr><th>Time</th><th>Verdict</th><th>Operation</th>
    <th>Rule</th><th>Outcome</th><th>Who</th></tr></thead><tbody>${rows}</tbody></table>`;
}

let refreshing = false;
async function refresh() {
  if (!token() || refreshing) return;
  refreshing = true;
  try {
    const [h, b, d] = await Promise.all([api("GET", "/api/holds"), api("GET", "/api/breakers"),
                                         api("GET", "/api/decisions?limit=50")]);
    $("login").hidden = true;
    $("app").hidden = false;
    renderHolds(h.holds);
    renderBreakers(b.breakers);
    renderDecisions(d.decisions);
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("status").textContent = "update failed: " + e.message;
  } finally {
    refreshing = false;
  }
}

async function act(method, path, body, done) {
  try {
    const r = await api(method, path, body);
    say(done(r), "info");
  } catch (e) {
    say(e.message, "error");
  }
  refresh();
}

document.addEventListener("click", (ev) => {
  const btn = ev.target.closest("button[data-action]");
  if (!btn) return;
  const action = btn.dataset.action;
  if (action === "grant") { openGrant(btn.dataset.name); return; }
  const by = operatorName(true);
  if (!by) { say("Type your name in the Operator field first.", "error"); return; }
  if (action === "approve" || action === "reject") {
    act("POST", `/api/holds/${encodeURIComponent(btn.dataset.id)}/${action}`, { by },
        (r) => `Hold #${r.id} ${r.outcome} by ${r.by}.`);
  } else {
    act("POST", `/api/breakers/${encodeURIComponent(btn.dataset.name)}/${action}`, { by },
        (r) => action === "reset" ? `Breaker ${btn.dataset.name} reset.`
                                  : `${r.resolved} hold(s) ${r.outcome} on ${btn.dataset.name}.`);
  }
});

let granting = "";
function openGrant(name) {
  granting = name;
  $("grant-name").textContent = name;
  $("grant-documents").value = "";
  $("grant-minutes").value = "";
  $("grant").className = "open";
  $("grant-documents").focus();
}
$("grant-cancel").addEventListener("click", () => { $("grant").className = ""; });
$("grant-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const by = operatorName(true);
  if (!by) { say("Type your name in the Operator field first.", "error"); return; }
  const body = { by };
  const docs = $("grant-documents").value, mins = $("grant-minutes").value;
  if (docs) body.documents = Number(docs);
  if (mins) body.minutes = Number(mins);
  $("grant").className = "";
  act("POST", `/api/breakers/${encodeURIComponent(granting)}/grant`, body,
      () => `Granted ${granting}.`);
});

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("mongoguard.token", $("token").value.trim());
  $("token").value = "";
  say("", "");
  refresh();
});
$("logout").addEventListener("click", () => { sessionStorage.removeItem("mongoguard.token"); showLogin(); });
$("operator").addEventListener("change", () => {
  const v = $("operator").value.trim();
  if (v) localStorage.setItem("mongoguard.operator", v); else localStorage.removeItem("mongoguard.operator");
});

$("operator").value = localStorage.getItem("mongoguard.operator") || "";
if (token()) refresh(); else showLogin();
setInterval(refresh, 2000);
</script>
</body>
</html>
)HTML";

}  // namespace

std::string_view admin_page_html() { return kPage; }

}  // namespace mongoguard::proxy
