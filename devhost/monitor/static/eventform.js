// The raise-event form, built from the JSON Schema of the event's pydantic model.

import { confirmAction, h, notice, postJson, words } from "./dom.js";

export function resolveSchema(schema, root) {
  if (schema && schema.$ref && root.$defs) {
    const name = schema.$ref.split("/").pop();
    return root.$defs[name] || schema;
  }
  return schema || {};
}

export function fieldKind(schema, root) {
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

export function eventForm(item, reload) {
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
