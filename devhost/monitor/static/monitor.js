// The monitor page: a small vanilla-JS client of the monitor's JSON API.
//
// Written here rather than taken from a framework: a handful of tables, forms and bar charts
// do not need one, and the page must work with no network access. Every value from the task
// hub (instance IDs, inputs, custom status, event payloads) is attacker-controlled, so it only
// ever enters the document as text (textContent, attribute values, SVG text nodes): this file
// never assigns markup.
"use strict";

const API = "api/";
const TOKEN = document.querySelector('meta[name="monitor-token"]').content;
const REFRESH_MS = 5000;
const STATUSES = ["Running", "Pending", "Suspended", "Completed", "Failed", "Terminated", "Canceled", "ContinuedAsNew"];

let info = null;
let refreshTimer = null;
let renderToken = 0;

// -- small helpers -------------------------------------------------------------------------

function h(tag, attrs, ...children) {
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

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
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

function instanceHref(id) {
  return "#/instance?id=" + encodeURIComponent(id);
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

function fmtSeconds(value) {
  if (value === null || value === undefined) return "—";
  if (value < 1) return Math.round(value * 1000) + " ms";
  if (value < 120) return value.toFixed(1) + " s";
  if (value < 7200) return (value / 60).toFixed(1) + " min";
  if (value < 172800) return (value / 3600).toFixed(1) + " h";
  return (value / 86400).toFixed(1) + " d";
}

function fmtRate(value) {
  return value === null || value === undefined ? "—" : (value * 100).toFixed(1) + " %";
}

function duration(item) {
  if (!item.completedTime || !item.createdTime) return null;
  return (new Date(item.completedTime) - new Date(item.createdTime)) / 1000;
}

function words(name) {
  // "approverEmail" -> "Approver email" (pydantic's own titles run the words together).
  const text = String(name).replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/_/g, " ").toLowerCase();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function pretty(value) {
  if (value === null || value === undefined) return "(none)";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function badge(status) {
  return h("span", { class: "badge s-" + String(status).toLowerCase(), text: status });
}

function localInput(iso) {
  // <input type="datetime-local"> wants local time without a zone.
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function isoFromLocal(value) {
  if (!value) return "";
  const d = new Date(value);
  return isNaN(d) ? "" : d.toISOString();
}

async function getJson(path, params) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const response = await fetch(API + path + query, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && body.error && body.error.message) || "HTTP " + response.status);
  return body;
}

async function postJson(path, params, body) {
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

function notice(text, kind) {
  const banner = document.getElementById("banner");
  banner.hidden = !text;
  banner.className = "banner " + (kind || "info");
  banner.textContent = text || "";
}

function confirmAction(title, text, withReason) {
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

function route() {
  const hash = location.hash.replace(/^#/, "") || "/instances";
  const [path, query] = hash.split("?");
  return { path, params: new URLSearchParams(query || "") };
}

function go(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) if (value) query.set(key, value);
  const text = query.toString();
  location.hash = "#" + path + (text ? "?" + text : "");
}

function scheduleRefresh(fn) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(fn, REFRESH_MS);
}

function tableWrap(table) {
  return h("div", { class: "table-wrap" }, table);
}

// -- navigation ----------------------------------------------------------------------------

function renderNav(active) {
  const nav = document.getElementById("nav");
  nav.replaceChildren();
  const links = [["/instances", "Instances"], ["/entities", "Entities"]];
  for (const view of info.views || []) links.push(["/view?id=" + encodeURIComponent(view.id), view.title || view.id]);
  links.push(["/metrics", "Metrics"]);
  for (const [href, label] of links) {
    const isActive = active === href || (active.startsWith("/view") && href === active);
    nav.appendChild(h("a", { href: "#" + href, class: isActive ? "active" : null, text: label }));
  }
}

// -- instance list -------------------------------------------------------------------------

function listFilters(params) {
  return {
    name: params.get("name") || "",
    runtimeStatus: params.get("runtimeStatus") || "",
    createdFrom: params.get("createdFrom") || "",
    createdTo: params.get("createdTo") || "",
    instanceIdPrefix: params.get("instanceIdPrefix") || "",
    customStatus: params.get("customStatus") || "",
    sort: params.get("sort") || "createdTime",
    order: params.get("order") || "desc",
    offset: params.get("offset") || "0",
    limit: params.get("limit") || "50",
    refresh: params.get("refresh") || "on",
  };
}

function renderInstances(params, main, token) {
  const f = listFilters(params);
  const chosen = new Set(f.runtimeStatus.split(",").filter(Boolean));
  const form = h("form", { class: "filters", id: "filters" },
    h("label", {}, "Name ", h("input", { name: "name", value: f.name, placeholder: "orchestrator", autocomplete: "off" })),
    h("label", {}, "Instance ID starts with ", h("input", { name: "instanceIdPrefix", value: f.instanceIdPrefix, autocomplete: "off" })),
    h("label", {}, "Custom status contains ", h("input", { name: "customStatus", value: f.customStatus, autocomplete: "off" })),
    h("label", {}, "Created from ", h("input", { type: "datetime-local", name: "createdFrom", value: localInput(f.createdFrom) })),
    h("label", {}, "Created to ", h("input", { type: "datetime-local", name: "createdTo", value: localInput(f.createdTo) })),
    h("fieldset", { class: "statuses" }, h("legend", { text: "Runtime status" }),
      STATUSES.map((s) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "status", value: s, checked: chosen.has(s) }), s))),
    h("label", {}, "Sort by ", h("select", { name: "sort" },
      [["createdTime", "Created"], ["lastUpdatedTime", "Last updated"], ["name", "Name"], ["instanceId", "Instance ID"], ["runtimeStatus", "Status"], ["duration", "Duration"]]
        .map(([v, l]) => h("option", { value: v, selected: f.sort === v, text: l })))),
    h("label", {}, "Order ", h("select", { name: "order" },
      h("option", { value: "desc", selected: f.order === "desc", text: "Descending" }),
      h("option", { value: "asc", selected: f.order === "asc", text: "Ascending" }))),
    h("label", {}, "Per page ", h("select", { name: "limit" },
      ["20", "50", "100", "200"].map((n) => h("option", { value: n, selected: f.limit === n, text: n })))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "refresh", checked: f.refresh === "on" }), "Auto-refresh"),
    h("div", { class: "buttons" },
      h("button", { type: "submit", text: "Apply" }),
      h("button", { type: "button", onclick: () => go("/instances", {}), text: "Clear" })),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    go("/instances", {
      name: data.get("name"),
      instanceIdPrefix: data.get("instanceIdPrefix"),
      customStatus: data.get("customStatus"),
      createdFrom: isoFromLocal(data.get("createdFrom")),
      createdTo: isoFromLocal(data.get("createdTo")),
      runtimeStatus: data.getAll("status").join(","),
      sort: data.get("sort"),
      order: data.get("order"),
      limit: data.get("limit"),
      refresh: data.get("refresh") ? "on" : "off",
    });
  });
  const results = h("section", { id: "results" }, h("p", { class: "muted", text: "Loading…" }));
  main.replaceChildren(h("h1", { text: "Instances" }), h("details", { class: "filter-box", open: window.matchMedia("(min-width: 700px)").matches || Boolean(params.toString()) }, h("summary", { text: "Filters" }), form), results);

  const load = async () => {
    if (token !== renderToken) return;
    const query = {};
    for (const key of ["name", "runtimeStatus", "createdFrom", "createdTo", "instanceIdPrefix", "customStatus", "sort", "order", "offset", "limit"]) {
      if (f[key]) query[key] = f[key];
    }
    try {
      const page = await getJson("instances", query);
      if (token !== renderToken) return;
      results.replaceChildren(instanceTable(page, f));
    } catch (error) {
      if (token !== renderToken) return;
      results.replaceChildren(h("p", { class: "error", text: "Could not read the instances: " + error.message }));
    }
    if (f.refresh === "on") scheduleRefresh(load);
  };
  load();
}

function instanceTable(page, f) {
  const offset = Number(f.offset) || 0;
  const limit = Number(f.limit) || 50;
  const sortHeader = (field, label) => {
    const order = f.sort === field && f.order === "desc" ? "asc" : "desc";
    const arrow = f.sort === field ? (f.order === "desc" ? " ▼" : " ▲") : "";
    return h("th", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); go("/instances", { ...f, sort: field, order, offset: "0" }); } }, label + arrow));
  };
  const rows = page.instances.map((item) =>
    h("tr", { "data-instance-id": item.instanceId },
      h("td", { class: "id" }, h("a", { href: instanceHref(item.instanceId), text: item.instanceId })),
      h("td", { text: item.name }),
      h("td", {}, badge(item.runtimeStatus)),
      h("td", { class: "status-text", text: item.description || (item.customStatus === null ? "" : pretty(item.customStatus)).slice(0, 160) }),
      h("td", { text: fmtTime(item.createdTime) }),
      h("td", { text: fmtTime(item.lastUpdatedTime) }),
      h("td", { text: fmtSeconds(duration(item)) }),
    ));
  const table = h("table", { class: "list", id: "instance-table" },
    h("thead", {}, h("tr", {}, sortHeader("instanceId", "Instance ID"), sortHeader("name", "Name"), sortHeader("runtimeStatus", "Status"),
      h("th", { text: "Where it is" }), sortHeader("createdTime", "Created"), sortHeader("lastUpdatedTime", "Updated"), sortHeader("duration", "Duration"))),
    h("tbody", {}, rows));
  const last = Math.min(offset + page.instances.length, page.total);
  const pager = h("div", { class: "pager" },
    h("button", { type: "button", disabled: offset === 0, onclick: () => go("/instances", { ...f, offset: String(Math.max(0, offset - limit)) }), text: "‹ Previous" }),
    h("span", { id: "page-info", text: page.total ? `${offset + 1}–${last} of ${page.total}${page.truncated ? "+" : ""}` : "No instance matches." }),
    h("button", { type: "button", disabled: last >= page.total, onclick: () => go("/instances", { ...f, offset: String(offset + limit) }), text: "Next ›" }));
  const parts = [pager, tableWrap(table)];
  if (page.truncated) parts.unshift(h("p", { class: "warn", text: `Only the first ${page.scanLimit} matching rows were read: narrow the filters (status, created range, ID prefix).` }));
  return h("div", {}, parts);
}

// -- one instance ----------------------------------------------------------------------------

function renderInstance(params, main, token) {
  const id = params.get("id") || "";
  let eventsKey = null;
  const head = h("section", { id: "instance-head" });
  const panel = h("section", { id: "panel" });
  const timelineBox = h("section", { id: "timeline-box" });
  const values = h("section", { id: "values" });
  const actions = h("section", { id: "actions" });
  main.replaceChildren(h("p", {}, h("a", { href: "#/instances", text: "‹ Instances" })), head, actions, panel, timelineBox, values);

  const load = async () => {
    if (token !== renderToken) return;
    let item;
    try {
      item = await getJson("instance", { id });
    } catch (error) {
      if (token !== renderToken) return;
      head.replaceChildren(h("h1", { class: "id", text: id }), h("p", { class: "error", text: error.message }));
      actions.replaceChildren();
      scheduleRefresh(load);
      return;
    }
    if (token !== renderToken) return;
    head.replaceChildren(
      h("h1", { class: "id" }, h("span", { id: "instance-id", text: item.instanceId })),
      h("div", { class: "summary" }, badge(item.runtimeStatus), " ", h("strong", { id: "instance-name", text: item.name })),
      h("p", { class: "where", id: "where" }, item.description ? "Where it is: " + item.description : ""),
      h("dl", { class: "fields" },
        h("dt", { text: "Created" }), h("dd", { text: fmtTime(item.createdTime) }),
        h("dt", { text: "Last updated" }), h("dd", { text: fmtTime(item.lastUpdatedTime) }),
        h("dt", { text: "Completed" }), h("dd", { text: fmtTime(item.completedTime) || "—" }),
        h("dt", { text: "Duration" }), h("dd", { text: fmtSeconds(duration(item)) }),
        h("dt", { text: "Execution" }), h("dd", { class: "id", text: item.executionId || "—" }),
        h("dt", { text: "Parent" }), h("dd", {}, item.parentInstanceId ? h("a", { href: instanceHref(item.parentInstanceId), text: item.parentInstanceId }) : "—"),
      ),
    );
    const key = JSON.stringify([item.runtimeStatus, Object.keys(item.events || {}), item.actions]);
    if (key !== eventsKey) {
      eventsKey = key;
      actions.replaceChildren(...instanceActions(item, load));
    }
    panel.replaceChildren(...(item.panel || []).map(panelSection));
    timelineBox.replaceChildren(h("h2", { text: "Timeline" }), timeline(item.timeline));
    values.replaceChildren(
      valueBlock("Custom status", item.customStatus, "custom-status"),
      valueBlock("Input", item.input, "input"),
      valueBlock(item.runtimeStatus === "Failed" ? "Output (why it failed)" : "Output", item.output, "output"),
    );
    if (!["Completed", "Failed", "Terminated", "Canceled"].includes(item.runtimeStatus)) scheduleRefresh(load);
  };
  load();
}

function valueBlock(title, value, id) {
  return h("details", { class: "value", open: value !== null && value !== undefined, id },
    h("summary", { text: title }), h("pre", { text: pretty(value) }));
}

function panelSection(section) {
  const parts = [h("h2", { text: section.title || "" })];
  if (section.fields && section.fields.length) {
    parts.push(h("dl", { class: "fields" }, section.fields.map(([label, value]) => [h("dt", { text: label }), h("dd", { text: cellText(value) })])));
  }
  if (section.table) parts.push(dataTable(section.table));
  if (section.progress !== undefined && section.progress !== null) {
    const pct = Math.max(0, Math.min(100, Number(section.progress) || 0));
    parts.push(h("div", { class: "progress", role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 },
      h("div", { class: "progress-bar", style: null, "data-pct": pct })));
  }
  const el = h("section", { class: "panel" }, parts);
  for (const bar of el.querySelectorAll(".progress-bar")) bar.style.width = bar.dataset.pct + "%";
  return el;
}

function cellText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function dataTable(table) {
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

function timeline(data) {
  const box = h("div", { class: "timeline", id: "timeline" });
  if (!data || !data.start) {
    box.appendChild(h("p", { class: "muted", text: "No history recorded yet." }));
    return box;
  }
  const start = new Date(data.start).getTime();
  const lastBarEnd = Math.max(...data.bars.map((b) => (b.end ? new Date(b.end).getTime() : Date.now())), new Date(data.end).getTime());
  const span = Math.max(1, lastBarEnd - start);
  const pos = (iso) => ((new Date(iso).getTime() - start) / span) * 100;
  box.appendChild(h("div", { class: "axis" }, h("span", { text: fmtTime(data.start) }), h("span", { text: "+" + fmtSeconds(span / 1000) })));
  for (const bar of data.bars) {
    const left = pos(bar.start);
    const right = bar.end ? pos(bar.end) : 100;
    const label = (bar.kind === "activity" ? "" : bar.kind + ": ") + bar.name + (bar.attempt > 1 ? ` (retry ${bar.attempt - 1})` : "");
    const title = `${label} — ${bar.outcome}, ${fmtSeconds(((bar.end ? new Date(bar.end) : new Date()) - new Date(bar.start)) / 1000)}` + (bar.detail ? "\n" + bar.detail : "");
    const fill = h("div", { class: `bar k-${bar.kind} o-${bar.outcome}`, title });
    fill.style.left = left + "%";
    fill.style.width = Math.max(0.6, right - left) + "%";
    const name = bar.child_instance_id
      ? h("a", { href: instanceHref(bar.child_instance_id), text: label })
      : h("span", { text: label });
    const row = h("div", { class: "row", "data-kind": bar.kind, "data-outcome": bar.outcome }, h("div", { class: "label" }, name), h("div", { class: "track" }, fill));
    if (bar.outcome === "failed" && bar.detail) row.appendChild(h("div", { class: "failure", text: bar.detail }));
    box.appendChild(row);
  }
  if (data.marks.length) {
    box.appendChild(h("h3", { text: "Events" }));
    box.appendChild(h("ul", { class: "marks" }, data.marks.map((m) =>
      h("li", { class: "m-" + m.kind }, h("time", { text: fmtTime(m.at) }), " ", h("strong", { text: m.kind }), m.name ? " " + m.name : "", m.detail ? h("div", { class: "detail", text: m.detail }) : null))));
  }
  if (data.children && data.children.length) {
    box.appendChild(h("h3", { text: "Sub-orchestrations" }));
    box.appendChild(h("ul", {}, data.children.map((c) => h("li", { class: "id" }, h("a", { href: instanceHref(c), text: c })))));
  }
  return box;
}

function instanceActions(item, reload) {
  const out = [];
  if (info.readOnly) {
    out.push(h("p", { class: "muted", text: info.readOnlyReason || "Read-only." }));
    return out;
  }
  const buttons = h("div", { class: "buttons actions" });
  for (const action of item.actions || []) {
    if (action === "raiseEvent") continue;
    const danger = ["terminate", "purge", "rewind", "restart"].includes(action);
    buttons.appendChild(h("button", {
      type: "button", class: danger ? "danger" : null, "data-action": action, text: action[0].toUpperCase() + action.slice(1),
      onclick: async () => {
        const answer = await confirmAction(`${action[0].toUpperCase() + action.slice(1)} this instance?`, `${action} ${item.instanceId} (${item.name})`, action !== "purge");
        if (!answer) return;
        try {
          const result = await postJson("instance/action", { id: item.instanceId, action }, { reason: answer.reason || undefined });
          notice(result.message, "ok");
          if (action === "purge") go("/instances", {});
          else setTimeout(reload, 300);
        } catch (error) {
          notice(error.message, "error");
        }
      },
    }));
  }
  if (buttons.childNodes.length) out.push(h("h2", { text: "Actions" }), buttons);
  if ((item.actions || []).includes("raiseEvent")) out.push(eventForm(item, reload));
  return out;
}

// -- the raise-event form, built from the event's JSON Schema ------------------------------

function resolveSchema(schema, root) {
  if (schema && schema.$ref && root.$defs) {
    const name = schema.$ref.split("/").pop();
    return root.$defs[name] || schema;
  }
  return schema || {};
}

function fieldKind(schema, root) {
  let s = resolveSchema(schema, root);
  let nullable = false;
  if (s.anyOf) {
    const options = s.anyOf.filter((o) => o.type !== "null");
    nullable = options.length < s.anyOf.length;
    if (options.length === 1) s = resolveSchema(options[0], root);
    else return { kind: "json", schema: s, nullable };
  }
  if (s.enum) return { kind: "enum", schema: s, nullable, options: s.enum };
  if (s.const !== undefined) return { kind: "enum", schema: s, nullable, options: [s.const] };
  if (s.type === "boolean") return { kind: "boolean", schema: s, nullable };
  if (s.type === "integer" || s.type === "number") return { kind: "number", schema: s, nullable };
  if (s.type === "string") return { kind: "string", schema: s, nullable };
  return { kind: "json", schema: s, nullable };
}

function eventForm(item, reload) {
  const names = Object.keys(item.events || {});
  const box = h("section", { class: "event-box" }, h("h2", { text: "Raise an event" }));
  const fieldsBox = h("div", { class: "event-fields" });
  let nameInput;
  if (names.length) {
    nameInput = h("select", { name: "eventName", id: "event-name" }, names.map((n) => h("option", { value: n, text: n })));
  } else {
    nameInput = h("input", { name: "eventName", id: "event-name", required: true, autocomplete: "off", placeholder: "event name" });
  }
  const form = h("form", { class: "event-form", id: "event-form" }, h("label", {}, "Event ", nameInput), fieldsBox,
    h("div", { class: "buttons" }, h("button", { type: "submit", text: "Raise event" })));
  const build = () => {
    fieldsBox.replaceChildren();
    const schema = item.events[nameInput.value];
    if (!schema) {
      fieldsBox.appendChild(h("label", { class: "wide" }, "Payload (JSON) ", h("textarea", { name: "__json", rows: 4, text: "{}" })));
      return;
    }
    const required = new Set(schema.required || []);
    for (const [prop, propSchema] of Object.entries(schema.properties || {})) {
      const kind = fieldKind(propSchema, schema);
      const label = words(prop) + (required.has(prop) ? " *" : "");
      const dflt = propSchema.default !== undefined ? propSchema.default : kind.schema.default;
      let input;
      if (kind.kind === "boolean") {
        input = h("input", { type: "checkbox", name: prop, "data-kind": "boolean", checked: Boolean(dflt) });
      } else if (kind.kind === "enum") {
        input = h("select", { name: prop, "data-kind": "enum" },
          !required.has(prop) ? h("option", { value: "", text: "—" }) : null,
          kind.options.map((o) => h("option", { value: JSON.stringify(o), selected: o === dflt, text: String(o) })));
      } else if (kind.kind === "number") {
        const s = kind.schema;
        input = h("input", { type: "number", name: prop, "data-kind": kind.schema.type, step: s.type === "integer" ? "1" : "any",
          min: s.minimum ?? s.exclusiveMinimum, max: s.maximum ?? s.exclusiveMaximum, value: dflt ?? "", required: required.has(prop) });
      } else if (kind.kind === "string") {
        const s = kind.schema;
        const long = (s.maxLength || 0) > 500;
        input = long
          ? h("textarea", { name: prop, "data-kind": "string", rows: 3, maxlength: s.maxLength, required: required.has(prop) && (s.minLength || 0) > 0, text: dflt ?? "" })
          : h("input", { name: prop, "data-kind": "string", type: s.format === "email" ? "email" : "text", maxlength: s.maxLength, autocomplete: "off",
            value: dflt ?? "", required: required.has(prop) && (s.minLength || 0) > 0, placeholder: s.format === "date-time" ? "2025-01-31T12:00:00Z" : null });
      } else {
        input = h("textarea", { name: prop, "data-kind": "json", rows: 3, placeholder: "JSON", text: dflt === undefined ? "" : JSON.stringify(dflt) });
      }
      const help = propSchema.description || kind.schema.description;
      fieldsBox.appendChild(h("label", { class: kind.kind === "json" ? "wide" : null }, label + " ", input, help ? h("small", { text: help }) : null));
    }
  };
  nameInput.addEventListener("change", build);
  build();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let payload = {};
    try {
      for (const el of fieldsBox.querySelectorAll("[name]")) {
        const kind = el.dataset.kind;
        if (el.name === "__json") { payload = JSON.parse(el.value || "null"); continue; }
        if (kind === "boolean") payload[el.name] = el.checked;
        else if (kind === "enum") { if (el.value) payload[el.name] = JSON.parse(el.value); }
        else if (kind === "integer" || kind === "number") { if (el.value !== "") payload[el.name] = Number(el.value); }
        else if (kind === "json") { if (el.value.trim()) payload[el.name] = JSON.parse(el.value); }
        else if (el.value !== "") payload[el.name] = el.value;
      }
    } catch (error) {
      notice("A JSON field is not valid JSON: " + error.message, "error");
      return;
    }
    const name = nameInput.value.trim();
    const answer = await confirmAction(`Raise '${name}'?`, `Send ${JSON.stringify(payload)} to ${item.instanceId}`, false);
    if (!answer) return;
    try {
      const result = await postJson("instance/event", { id: item.instanceId, name }, payload);
      notice(result.message, "ok");
      setTimeout(reload, 300);
    } catch (error) {
      notice(error.message, "error");
    }
  });
  box.appendChild(form);
  return box;
}

// -- entities, views -----------------------------------------------------------------------

function renderEntities(params, main, token) {
  const name = params.get("name") || "";
  const form = h("form", { class: "filters" }, h("label", {}, "Entity name ", h("input", { name: "name", value: name, autocomplete: "off" })),
    h("div", { class: "buttons" }, h("button", { type: "submit", text: "Apply" })));
  form.addEventListener("submit", (e) => { e.preventDefault(); go("/entities", { name: new FormData(form).get("name") }); });
  const results = h("section", { id: "results" }, h("p", { class: "muted", text: "Loading…" }));
  main.replaceChildren(h("h1", { text: "Entities" }), form, results);
  const load = async () => {
    try {
      const data = await getJson("entities", name ? { name } : {});
      if (token !== renderToken) return;
      const rows = data.entities.map((e) => h("tr", {},
        h("td", { text: e.name }), h("td", { class: "id", text: e.key }), h("td", { text: fmtTime(e.lastUpdatedTime) }),
        h("td", {}, e.exists ? h("pre", { class: "state", text: pretty(e.state) }) : h("span", { class: "muted", text: "(deleted)" }))));
      results.replaceChildren(data.entities.length
        ? tableWrap(h("table", { class: "list", id: "entity-table" }, h("thead", {}, h("tr", {}, h("th", { text: "Entity" }), h("th", { text: "Key" }), h("th", { text: "Updated" }), h("th", { text: "State" }))), h("tbody", {}, rows)))
        : h("p", { class: "muted", text: "No entities." }));
    } catch (error) {
      if (token !== renderToken) return;
      results.replaceChildren(h("p", { class: "error", text: error.message }));
    }
    scheduleRefresh(load);
  };
  load();
}

function renderView(params, main, token) {
  const id = params.get("id") || "";
  const view = (info.views || []).find((v) => v.id === id);
  const results = h("section", { id: "results" }, h("p", { class: "muted", text: "Loading…" }));
  main.replaceChildren(h("h1", { text: view ? view.title : id }), view && view.description ? h("p", { class: "muted", text: view.description }) : null, results);
  const load = async () => {
    const query = { id };
    for (const [key, value] of params) if (key !== "id") query[key] = value;
    try {
      const data = await getJson("view", query);
      if (token !== renderToken) return;
      const parts = [];
      if (data.filters && data.filters.length) parts.push(viewFilters(id, data.filters, params));
      if (data.note) parts.push(h("p", { class: "muted", text: data.note }));
      parts.push((data.rows || []).length ? dataTable(data) : h("p", { class: "muted", text: "Nothing here yet." }));
      results.replaceChildren(...parts);
    } catch (error) {
      if (token !== renderToken) return;
      results.replaceChildren(h("p", { class: "error", text: error.message }));
    }
    scheduleRefresh(load);
  };
  load();
}

function viewFilters(id, filters, params) {
  const form = h("form", { class: "filters" }, filters.map((f) => h("label", {}, (f.label || f.name) + " ",
    f.options
      ? h("select", { name: f.name }, h("option", { value: "", text: "any" }), f.options.map((o) => h("option", { value: o, selected: params.get(f.name) === o, text: o })))
      : h("input", { name: f.name, value: params.get(f.name) || "", autocomplete: "off" }))),
  h("div", { class: "buttons" }, h("button", { type: "submit", text: "Apply" })));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const values = { id };
    for (const [key, value] of new FormData(form)) values[key] = value;
    go("/view", values);
  });
  return form;
}

// -- metrics -------------------------------------------------------------------------------

function renderMetrics(params, main, token) {
  const to = params.get("to") || "";
  const from = params.get("from") || "";
  const form = h("form", { class: "filters", id: "metrics-range" },
    h("label", {}, "From ", h("input", { type: "datetime-local", name: "from", value: localInput(from) })),
    h("label", {}, "To ", h("input", { type: "datetime-local", name: "to", value: localInput(to) })),
    h("div", { class: "buttons" }, h("button", { type: "submit", text: "Show" }),
      [["1 h", 1], ["24 h", 24], ["7 d", 168], ["30 d", 720]].map(([label, hours]) => h("button", { type: "button", text: "Last " + label,
        onclick: () => go("/metrics", { from: new Date(Date.now() - hours * 3600e3).toISOString() }) }))));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    go("/metrics", { from: isoFromLocal(data.get("from")), to: isoFromLocal(data.get("to")) });
  });
  const results = h("section", { id: "results" }, h("p", { class: "muted", text: "Loading…" }));
  main.replaceChildren(h("h1", { text: "Metrics" }), form, results);
  (async () => {
    try {
      const query = {};
      if (from) query.from = from;
      if (to) query.to = to;
      const m = await getJson("metrics", query);
      if (token !== renderToken) return;
      results.replaceChildren(...metricsView(m));
    } catch (error) {
      if (token !== renderToken) return;
      results.replaceChildren(h("p", { class: "error", text: error.message }));
    }
  })();
}

const STATUS_COLORS = { Completed: "#2e7d32", Failed: "#c62828", Terminated: "#6d4c41", Canceled: "#8d6e63", Running: "#1565c0", Pending: "#90a4ae", Suspended: "#f9a825", ContinuedAsNew: "#5e35b1" };

function metricsView(m) {
  const out = [h("p", { class: "muted", text: `Instances created ${fmtTime(m.from)} – ${fmtTime(m.to)}` + (m.truncated ? " (only the first rows were read: narrow the range)" : "") })];
  out.push(h("h2", { text: "Started per " + fmtSeconds(m.series.bucketSeconds) }), seriesChart(m.series));
  out.push(h("h2", { text: "Per orchestrator" }));
  if (!m.orchestrators.length) out.push(h("p", { class: "muted", text: "No orchestration was created in this range." }));
  else {
    out.push(countsChart(m.orchestrators));
    out.push(barChart("Duration of finished instances (p50 / p95)", m.orchestrators.map((o) => [o.name, o.durationP50, o.durationP95]), fmtSeconds, "duration-chart"));
    out.push(tableWrap(h("table", { class: "list", id: "orchestrator-metrics" },
      h("thead", {}, h("tr", {}, ["Orchestrator", "Total", "By status", "Duration p50", "p95", "Failure rate", "Compensation rate"].map((t) => h("th", { text: t })))),
      h("tbody", {}, m.orchestrators.map((o) => h("tr", {},
        h("td", {}, h("a", { href: "#/instances?name=" + encodeURIComponent(o.name), text: o.name })),
        h("td", { text: o.total }),
        h("td", { text: Object.entries(o.counts).map(([k, v]) => `${k} ${v}`).join(", ") }),
        h("td", { text: fmtSeconds(o.durationP50) }), h("td", { text: fmtSeconds(o.durationP95) }),
        h("td", { text: fmtRate(o.failureRate) }), h("td", { text: fmtRate(o.compensationRate) })))))));
  }
  out.push(h("h2", { text: "Approvals by workflow type" }));
  if (!m.approvals.length) out.push(h("p", { class: "muted", text: "No approval in this range (or the app reports none)." }));
  else {
    out.push(barChart("Approval latency (p50 / p95)", m.approvals.map((a) => [a.type, a.latencyP50, a.latencyP95]), fmtSeconds, "approval-latency-chart"));
    out.push(barChart("Timeout rate", m.approvals.map((a) => [a.type, a.timeoutRate, null]), fmtRate, "timeout-chart", 1));
    out.push(tableWrap(h("table", { class: "list", id: "approval-metrics" },
      h("thead", {}, h("tr", {}, ["Type", "Total", "Pending", "Decided", "Timed out", "Timeout rate", "Latency p50", "p95"].map((t) => h("th", { text: t })))),
      h("tbody", {}, m.approvals.map((a) => h("tr", {}, h("td", { text: a.type }), h("td", { text: a.total }), h("td", { text: a.pending }), h("td", { text: a.decided }),
        h("td", { text: a.timeouts }), h("td", { text: fmtRate(a.timeoutRate) }), h("td", { text: fmtSeconds(a.latencyP50) }), h("td", { text: fmtSeconds(a.latencyP95) })))))));
  }
  return out;
}

function seriesChart(series) {
  const W = 720, H = 160, pad = 24;
  const max = Math.max(1, ...series.buckets.map((b) => b.started));
  const w = (W - pad * 2) / Math.max(1, series.buckets.length);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H + 20}`, class: "chart", id: "series-chart", role: "img", "aria-label": "Instances started over time" });
  chart.appendChild(svg("text", { x: 2, y: 12, class: "axis-label" }, String(max)));
  series.buckets.forEach((b, i) => {
    const x = pad + i * w;
    let y = H;
    for (const [key, color] of [["completed", STATUS_COLORS.Completed], ["failed", STATUS_COLORS.Failed], ["other", STATUS_COLORS.Running]]) {
      const value = key === "other" ? b.started - b.completed - b.failed : b[key];
      if (value <= 0) continue;
      const height = (value / max) * (H - 16);
      y -= height;
      chart.appendChild(svg("rect", { x: x + 1, y, width: Math.max(1, w - 2), height, fill: color }, svg("title", {}, `${fmtTime(b.start)}: ${value} ${key}`)));
    }
  });
  chart.appendChild(svg("line", { x1: pad, y1: H, x2: W - pad, y2: H, class: "axis" }));
  if (series.buckets.length) {
    chart.appendChild(svg("text", { x: pad, y: H + 14, class: "axis-label" }, fmtTime(series.buckets[0].start)));
    chart.appendChild(svg("text", { x: W - pad, y: H + 14, class: "axis-label", "text-anchor": "end" }, fmtTime(series.buckets[series.buckets.length - 1].start)));
  }
  return h("figure", {}, chart, legend([["completed", STATUS_COLORS.Completed], ["failed", STATUS_COLORS.Failed], ["other", STATUS_COLORS.Running]]));
}

function legend(items) {
  return h("figcaption", { class: "legend" }, items.map(([label, color]) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = color;
    return h("span", {}, swatch, label);
  }));
}

function countsChart(orchestrators) {
  const W = 720, row = 22, labelW = 200;
  const max = Math.max(1, ...orchestrators.map((o) => o.total));
  const chart = svg("svg", { viewBox: `0 0 ${W} ${orchestrators.length * row + 4}`, class: "chart", id: "counts-chart", role: "img", "aria-label": "Instances by status per orchestrator" });
  orchestrators.forEach((o, i) => {
    const y = i * row + 2;
    chart.appendChild(svg("text", { x: labelW - 6, y: y + 15, "text-anchor": "end", class: "axis-label" }, o.name));
    let x = labelW;
    for (const status of STATUSES) {
      const count = o.counts[status] || 0;
      if (!count) continue;
      const width = (count / max) * (W - labelW - 40);
      chart.appendChild(svg("rect", { x, y, width, height: row - 6, fill: STATUS_COLORS[status] || "#999" }, svg("title", {}, `${o.name}: ${count} ${status}`)));
      x += width;
    }
    chart.appendChild(svg("text", { x: x + 4, y: y + 15, class: "axis-label" }, String(o.total)));
  });
  return h("figure", {}, h("figcaption", { text: "Instances by status" }), chart, legend(STATUSES.map((s) => [s, STATUS_COLORS[s]])));
}

function barChart(title, rows, fmt, id, fixedMax) {
  const W = 720, row = 26, labelW = 200;
  const max = fixedMax || Math.max(1e-9, ...rows.flatMap(([, a, b]) => [a || 0, b || 0]));
  const chart = svg("svg", { viewBox: `0 0 ${W} ${rows.length * row + 4}`, class: "chart", id, role: "img", "aria-label": title });
  rows.forEach(([label, a, b], i) => {
    const y = i * row + 2;
    chart.appendChild(svg("text", { x: labelW - 6, y: y + 15, "text-anchor": "end", class: "axis-label" }, label));
    const scale = (v) => ((v || 0) / max) * (W - labelW - 90);
    if (b !== null && b !== undefined) chart.appendChild(svg("rect", { x: labelW, y: y + 2, width: scale(b), height: row - 10, class: "p95" }, svg("title", {}, `${label} p95: ${fmt(b)}`)));
    chart.appendChild(svg("rect", { x: labelW, y: y + 5, width: scale(a), height: row - 16, class: "p50" }, svg("title", {}, `${label}: ${fmt(a)}`)));
    chart.appendChild(svg("text", { x: labelW + Math.max(scale(a), scale(b)) + 4, y: y + 15, class: "axis-label" }, b !== null && b !== undefined ? `${fmt(a)} / ${fmt(b)}` : fmt(a)));
  });
  return h("figure", {}, h("figcaption", { text: title }), chart);
}

// -- start -----------------------------------------------------------------------------------

async function render() {
  renderToken += 1;
  clearTimeout(refreshTimer);
  const token = renderToken;
  const { path, params } = route();
  const main = document.getElementById("main");
  const navPath = path === "/view" ? "/view?id=" + encodeURIComponent(params.get("id") || "") : path === "/instance" ? "/instances" : path;
  renderNav(navPath);
  if (path === "/instance") renderInstance(params, main, token);
  else if (path === "/entities") renderEntities(params, main, token);
  else if (path === "/view") renderView(params, main, token);
  else if (path === "/metrics") renderMetrics(params, main, token);
  else renderInstances(params, main, token);
}

async function start() {
  try {
    info = await getJson("info");
  } catch (error) {
    document.getElementById("main").replaceChildren(h("p", { class: "error", text: "The monitor's API did not answer: " + error.message }));
    return;
  }
  document.getElementById("hub").textContent = "Task hub " + info.taskHub + (info.readOnly ? " · read-only" : "");
  document.title = "Monitor · " + info.taskHub;
  window.addEventListener("hashchange", () => { notice(""); render(); });
  render();
}

start();
