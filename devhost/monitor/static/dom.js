// Helpers of the monitor page: building DOM from values (always as text), formatting, the API.
//
// Every value from the task hub (instance IDs, inputs, custom status, event payloads) is
// attacker-controlled, so it only ever enters the document as text (textContent, attribute
// values, SVG text nodes): nothing here, or in the modules using it, assigns markup.

export const API = "api/";

export const TOKEN = document.querySelector('meta[name="monitor-token"]').content;

export const STATUSES = ["Running", "Pending", "Suspended", "Completed", "Failed", "Terminated", "Canceled", "ContinuedAsNew"];

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function instanceHref(id) {
  return "#/instance?id=" + encodeURIComponent(id);
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

export function fmtSeconds(value) {
  if (value === null || value === undefined) return "—";
  if (value < 1) return Math.round(value * 1000) + " ms";
  if (value < 120) return value.toFixed(1) + " s";
  if (value < 7200) return (value / 60).toFixed(1) + " min";
  if (value < 172800) return (value / 3600).toFixed(1) + " h";
  return (value / 86400).toFixed(1) + " d";
}

export function fmtRate(value) {
  return value === null || value === undefined ? "—" : (value * 100).toFixed(1) + " %";
}

export function duration(item) {
  if (!item.completedTime || !item.createdTime) return null;
  return (new Date(item.completedTime) - new Date(item.createdTime)) / 1000;
}

export function words(name) {
  // "approverEmail" -> "Approver email" (pydantic's own titles run the words together).
  const text = String(name).replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/_/g, " ").toLowerCase();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function pretty(value) {
  if (value === null || value === undefined) return "(none)";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

export function badge(status) {
  return h("span", { class: "badge s-" + String(status).toLowerCase(), text: status });
}

export function localInput(iso) {
  // <input type="datetime-local"> wants local time without a zone.
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function isoFromLocal(value) {
  if (!value) return "";
  const d = new Date(value);
  return isNaN(d) ? "" : d.toISOString();
}

export async function getJson(path, params) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const response = await fetch(API + path + query, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && body.error && body.error.message) || "HTTP " + response.status);
  return body;
}

export async function postJson(path, params, body) {
  const response = await fetch(API + path + "?" + new URLSearchParams(params).toString(), {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Monitor-Token": TOKEN, Accept: "application/json" },
    body: JSON.stringify(body === undefined ? null : body),
  });
  const result = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (result && result.error) || {};
    const detail = (error.details || []).map((d) => (d.field ? d.field + ": " : "") + d.message).join("; ");
    throw new Error((error.message || "HTTP " + response.status) + (detail && detail !== error.message ? " (" + detail + ")" : ""));
  }
  return result;
}

export function notice(text, kind) {
  const banner = document.getElementById("banner");
  banner.hidden = !text;
  banner.className = "banner " + (kind || "info");
  banner.textContent = text || "";
}

export function confirmAction(title, text, withReason) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  const reason = document.getElementById("confirm-reason");
  reason.value = "";
  document.getElementById("confirm-reason-label").hidden = !withReason;
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "ok" ? { reason: reason.value } : null),
      { once: true },
    );
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

export function go(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) if (value) query.set(key, value);
  const text = query.toString();
  location.hash = "#" + path + (text ? "?" + text : "");
}

export function tableWrap(table) {
  return h("div", { class: "table-wrap" }, table);
}

export function cellText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function dataTable(table) {
  const columns = table.columns || [];
  if (!(table.rows || []).length) return h("p", { class: "muted", text: "None." });
  return tableWrap(h("table", { class: "list" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { text: c.label || c.key })))),
    h("tbody", {}, (table.rows || []).map((row) => h("tr", {}, columns.map((c) => {
      const value = row[c.key];
      if (c.link === "instance" && value) return h("td", { class: "id" }, h("a", { href: instanceHref(String(value)), text: String(value) }));
      return h("td", { text: cellText(value) });
    }))))));
}
