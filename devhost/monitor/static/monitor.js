// The monitor page: a small vanilla-JS client of the monitor's JSON API (pages and routing).
//
// Written here rather than taken from a framework: a handful of tables, forms and bar charts
// do not need one, and the page must work with no network access. Values are put into the
// document only through dom.js's helpers, as text.

import { metricsView } from "./charts.js";
import {
  STATUSES, badge, cellText, confirmAction, dataTable, duration, fmtSeconds, fmtTime, getJson, go, h,
  instanceHref, isoFromLocal, localInput, notice, postJson, pretty, tableWrap,
} from "./dom.js";
import { eventForm } from "./eventform.js";

const REFRESH_MS = 5000;

let info = null;

let refreshTimer = null;

let renderToken = 0;

function route() {
  const hash = location.hash.replace(/^#/, "") || "/instances";
  const [path, query] = hash.split("?");
  return { path, params: new URLSearchParams(query || "") };
}

function scheduleRefresh(fn) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(fn, REFRESH_MS);
}

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
