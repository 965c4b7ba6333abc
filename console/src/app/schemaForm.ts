/**
 * A form generated from a tool's JSON Schema (the subset tools use): strings (maxLength,
 * minLength, pattern hints), numbers and integers (minimum/maximum, exclusive bounds), booleans,
 * enums (a <select>), arrays (add/remove rows), nested objects (fieldsets; an optional one can
 * be left out), and `anyOf`/`oneOf` with a null branch (a nullable value). Anything else gets a
 * JSON text area. `collect()` validates and returns the typed value, or the errors (which are
 * also shown next to each field).
 */

import { h, uid } from "./dom";

export type JsonSchema = Record<string, unknown>;

export interface FieldError {
  path: string;
  message: string;
}

export type CollectResult = { ok: true; value: unknown } | { ok: false; errors: FieldError[] };

export interface SchemaForm {
  /** The controls (put it inside a <form>). */
  readonly element: HTMLElement;
  collect(): CollectResult;
}

/** Returned by a node that has nothing to contribute (an empty optional field). */
const OMIT: unique symbol = Symbol("omit");
type Read = unknown | typeof OMIT;

interface Node {
  readonly element: HTMLElement;
  read(errors: FieldError[]): Read;
}

interface Ctx {
  prefix: string;
}

const SCALAR_TYPES = ["string", "number", "integer", "boolean"] as const;

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function num(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** `anyOf: [X, {type: null}]` (what Optional[X] becomes) → X marked nullable. */
function unwrap(schema: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  for (const key of ["anyOf", "oneOf"]) {
    const branches = schema[key];
    if (!Array.isArray(branches)) continue;
    const nonNull = branches.filter((b) => !(isSchema(b) && b.type === "null"));
    if (nonNull.length === 1 && isSchema(nonNull[0]) && branches.length === 2) {
      const { [key]: _dropped, ...outer } = schema;
      return { schema: { ...nonNull[0], ...outer }, nullable: true };
    }
  }
  const type = schema.type;
  if (Array.isArray(type)) {
    const rest = type.filter((t) => t !== "null");
    if (rest.length === 1) return { schema: { ...schema, type: rest[0] }, nullable: rest.length < type.length };
  }
  return { schema, nullable: false };
}

function typeOf(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.enum)) return "enum";
  if ("const" in schema) return "const";
  const type = schema.type;
  if (typeof type === "string") return type;
  if (type === undefined && isSchema(schema.properties)) return "object";
  return undefined;
}

function labelText(name: string, schema: JsonSchema): string {
  return str(schema.title) ?? name;
}

function testid(path: string): string {
  return `field-${path || "input"}`;
}

/** Label + control + hint + error, wired with for/aria-describedby. */
function wrapField(
  ctx: Ctx,
  path: string,
  name: string,
  schema: JsonSchema,
  required: boolean,
  control: HTMLElement,
  hints: string[],
  inline = false,
): { element: HTMLElement; setError: (message: string | null) => void } {
  const id = uid(`${ctx.prefix}-f`);
  control.id = id;
  const errorEl = h("p", { class: "field-error", attrs: { id: `${id}-err`, hidden: true } });
  const description = str(schema.description);
  const hintText = [description, ...hints].filter(Boolean).join(" · ");
  const hintEl = hintText ? h("p", { class: "field-hint", text: hintText, attrs: { id: `${id}-hint` } }) : null;
  control.setAttribute("aria-describedby", [hintEl ? `${id}-hint` : "", `${id}-err`].filter(Boolean).join(" "));
  if (required) {
    control.setAttribute("aria-required", "true");
  }
  const label = h("label", { class: "field-label", attrs: { for: id } }, labelText(name, schema));
  if (required) label.appendChild(h("span", { class: "required-mark", text: " *", attrs: { "aria-hidden": "true" } }));
  if (required) label.appendChild(h("span", { class: "visually-hidden", text: " (required)" }));
  const element = inline
    ? h("div", { class: "field field-inline" }, control, label, hintEl, errorEl)
    : h("div", { class: "field" }, label, control, hintEl, errorEl);
  element.dataset.path = path;
  return {
    element,
    setError(message) {
      errorEl.textContent = message ?? "";
      errorEl.hidden = message === null;
      if (message === null) control.removeAttribute("aria-invalid");
      else control.setAttribute("aria-invalid", "true");
    },
  };
}

function report(errors: FieldError[], setError: (m: string | null) => void, path: string, message: string | null): void {
  setError(message);
  if (message !== null) errors.push({ path: path || "input", message });
}

// ---- scalars -------------------------------------------------------------------------------

function stringNode(ctx: Ctx, path: string, name: string, schema: JsonSchema, required: boolean, nullable: boolean): Node {
  const maxLength = num(schema.maxLength);
  const minLength = num(schema.minLength);
  const pattern = str(schema.pattern);
  const format = str(schema.format);
  const long = (maxLength ?? 0) > 200 || format === "textarea";
  const input = long
    ? h("textarea", { class: "input", testid: testid(path), attrs: { rows: 4 } })
    : h("input", {
        class: "input",
        testid: testid(path),
        attrs: { type: format === "email" ? "email" : format === "uri" ? "url" : "text" },
      });
  if (maxLength !== undefined) input.maxLength = maxLength;
  if (required) input.required = true;
  const def = str(schema.default);
  if (def !== undefined) input.value = def;
  const hints: string[] = [];
  if (minLength !== undefined && maxLength !== undefined) hints.push(`${minLength}–${maxLength} characters`);
  else if (maxLength !== undefined) hints.push(`at most ${maxLength} characters`);
  else if (minLength !== undefined) hints.push(`at least ${minLength} characters`);
  if (pattern !== undefined) hints.push(`must match ${pattern}`);
  const field = wrapField(ctx, path, name, schema, required, input, hints);
  return {
    element: field.element,
    read(errors) {
      const value = input.value;
      if (value === "") {
        if (required && !nullable && (minLength ?? 1) > 0) {
          report(errors, field.setError, path, `${labelText(name, schema)} is required`);
          return OMIT;
        }
        field.setError(null);
        if (required && nullable) return null;
        return required ? "" : OMIT;
      }
      const length = [...value].length;
      let message: string | null = null;
      if (maxLength !== undefined && length > maxLength) message = `at most ${maxLength} characters (has ${length})`;
      else if (minLength !== undefined && length < minLength) message = `at least ${minLength} characters (has ${length})`;
      else if (pattern !== undefined) {
        let re: RegExp | null = null;
        try {
          re = new RegExp(pattern, "u");
        } catch {
          re = null; // a pattern JS cannot compile: the daemon checks it
        }
        if (re && !re.test(value)) message = `must match the pattern ${pattern}`;
      }
      report(errors, field.setError, path, message);
      return message === null ? value : OMIT;
    },
  };
}

function numberNode(ctx: Ctx, path: string, name: string, schema: JsonSchema, required: boolean, nullable: boolean, integer: boolean): Node {
  const min = num(schema.minimum);
  const max = num(schema.maximum);
  const exMin = num(schema.exclusiveMinimum);
  const exMax = num(schema.exclusiveMaximum);
  const input = h("input", {
    class: "input",
    testid: testid(path),
    attrs: { type: "number", inputmode: integer ? "numeric" : "decimal", step: integer ? 1 : "any" },
  });
  if (min !== undefined) input.min = String(min);
  if (max !== undefined) input.max = String(max);
  if (required) input.required = true;
  const def = num(schema.default);
  if (def !== undefined) input.value = String(def);
  const hints: string[] = [integer ? "a whole number" : "a number"];
  if (min !== undefined) hints.push(`≥ ${min}`);
  if (exMin !== undefined) hints.push(`> ${exMin}`);
  if (max !== undefined) hints.push(`≤ ${max}`);
  if (exMax !== undefined) hints.push(`< ${exMax}`);
  const field = wrapField(ctx, path, name, schema, required, input, [hints.join(" ")]);
  return {
    element: field.element,
    read(errors) {
      const raw = input.value.trim();
      if (raw === "") {
        // jsdom and browsers give "" for unparsable text in a number input too.
        const bad = input.validity ? input.validity.badInput : false;
        if (bad) {
          report(errors, field.setError, path, `${labelText(name, schema)} must be a number`);
          return OMIT;
        }
        if (required && !nullable) {
          report(errors, field.setError, path, `${labelText(name, schema)} is required`);
          return OMIT;
        }
        field.setError(null);
        return required ? null : OMIT;
      }
      const value = Number(raw);
      let message: string | null = null;
      if (!Number.isFinite(value)) message = `${labelText(name, schema)} must be a number`;
      else if (integer && !Number.isInteger(value)) message = `${labelText(name, schema)} must be a whole number`;
      else if (min !== undefined && value < min) message = `must be at least ${min}`;
      else if (max !== undefined && value > max) message = `must be at most ${max}`;
      else if (exMin !== undefined && value <= exMin) message = `must be greater than ${exMin}`;
      else if (exMax !== undefined && value >= exMax) message = `must be less than ${exMax}`;
      report(errors, field.setError, path, message);
      return message === null ? value : OMIT;
    },
  };
}

function booleanNode(ctx: Ctx, path: string, name: string, schema: JsonSchema, required: boolean): Node {
  const input = h("input", { class: "checkbox", testid: testid(path), attrs: { type: "checkbox" } });
  input.checked = schema.default === true;
  const field = wrapField(ctx, path, name, schema, required, input, [], true);
  return {
    element: field.element,
    read() {
      return input.checked;
    },
  };
}

function enumNode(ctx: Ctx, path: string, name: string, schema: JsonSchema, required: boolean, nullable: boolean): Node {
  const values = (schema.enum as unknown[]).slice();
  const select = h("select", { class: "input", testid: testid(path) });
  const optional = !required || nullable;
  if (optional) select.appendChild(h("option", { text: "(not set)", attrs: { value: "" } }));
  values.forEach((value, index) => {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    select.appendChild(h("option", { text, attrs: { value: String(index) } }));
  });
  const defIndex = "default" in schema ? values.findIndex((v) => JSON.stringify(v) === JSON.stringify(schema.default)) : -1;
  if (defIndex >= 0) select.value = String(defIndex);
  else if (!optional && values.length > 0) select.value = "0";
  if (required) select.required = true;
  const field = wrapField(ctx, path, name, schema, required, select, []);
  return {
    element: field.element,
    read(errors) {
      if (select.value === "") {
        field.setError(null);
        return required && nullable ? null : OMIT;
      }
      const value = values[Number(select.value)];
      if (value === undefined && !values.includes(undefined)) {
        report(errors, field.setError, path, `choose one of the listed values`);
        return OMIT;
      }
      field.setError(null);
      return value;
    },
  };
}

/** Anything the form cannot represent: JSON typed in by hand. */
function jsonNode(ctx: Ctx, path: string, name: string, schema: JsonSchema, required: boolean): Node {
  const area = h("textarea", { class: "input mono", testid: testid(path), attrs: { rows: 4, spellcheck: "false" } });
  if ("default" in schema) area.value = JSON.stringify(schema.default, null, 2);
  else if (path === "" ) area.value = "{}";
  const field = wrapField(ctx, path, name, schema, required, area, ["JSON"]);
  return {
    element: field.element,
    read(errors) {
      const raw = area.value.trim();
      if (raw === "") {
        if (required) {
          report(errors, field.setError, path, `${labelText(name, schema)} is required`);
        } else {
          field.setError(null);
        }
        return OMIT;
      }
      try {
        const value: unknown = JSON.parse(raw);
        field.setError(null);
        return value;
      } catch (exc) {
        report(errors, field.setError, path, `not valid JSON: ${exc instanceof Error ? exc.message : String(exc)}`);
        return OMIT;
      }
    },
  };
}

// ---- containers ----------------------------------------------------------------------------

function objectNode(ctx: Ctx, path: string, name: string, schema: JsonSchema, required: boolean, root: boolean): Node {
  const properties = isSchema(schema.properties) ? schema.properties : {};
  const requiredNames = new Set(Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === "string") : []);
  const children: { key: string; node: Node }[] = [];
  for (const [key, child] of Object.entries(properties)) {
    if (!isSchema(child)) continue;
    const childPath = path ? `${path}.${key}` : key;
    children.push({ key, node: buildNode(ctx, childPath, key, child, requiredNames.has(key)) });
  }
  const body = h("div", { class: "object-fields" }, ...children.map((c) => c.node.element));
  if (root) {
    if (children.length === 0) body.appendChild(h("p", { class: "muted", text: "This tool takes no input." }));
    return { element: body, read: (errors) => collectObject(children, errors) };
  }
  const legend = h("legend", {}, labelText(name, schema));
  if (required) legend.appendChild(h("span", { class: "required-mark", text: " *", attrs: { "aria-hidden": "true" } }));
  const fieldset = h("fieldset", { class: "fieldset", testid: testid(path) }, legend);
  const description = str(schema.description);
  if (description) fieldset.appendChild(h("p", { class: "field-hint", text: description }));
  let include: HTMLInputElement | null = null;
  if (!required) {
    include = h("input", { testid: `${testid(path)}-include`, attrs: { type: "checkbox" } });
    const id = uid(`${ctx.prefix}-inc`);
    include.id = id;
    const toggle = h("div", { class: "field field-inline" }, include, h("label", { attrs: { for: id }, text: `Include ${labelText(name, schema)}` }));
    fieldset.appendChild(toggle);
    const sync = () => {
      body.hidden = !include?.checked;
    };
    include.addEventListener("change", sync);
    sync();
  }
  fieldset.appendChild(body);
  return {
    element: fieldset,
    read(errors) {
      if (include && !include.checked) return OMIT;
      return collectObject(children, errors);
    },
  };
}

function collectObject(children: { key: string; node: Node }[], errors: FieldError[]): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  for (const { key, node } of children) {
    const item = node.read(errors);
    if (item !== OMIT) value[key] = item;
  }
  return value;
}

function arrayNode(ctx: Ctx, path: string, name: string, schema: JsonSchema, required: boolean): Node {
  const itemSchema = isSchema(schema.items) ? schema.items : {};
  const minItems = num(schema.minItems);
  const maxItems = num(schema.maxItems);
  const unique = schema.uniqueItems === true;
  const rows: { node: Node; row: HTMLElement }[] = [];
  const list = h("div", { class: "array-rows" });
  const legend = h("legend", {}, labelText(name, schema));
  if (required) legend.appendChild(h("span", { class: "required-mark", text: " *", attrs: { "aria-hidden": "true" } }));
  const hints: string[] = [];
  const description = str(schema.description);
  if (description) hints.push(description);
  if (minItems !== undefined) hints.push(`at least ${minItems}`);
  if (maxItems !== undefined) hints.push(`at most ${maxItems} items`);
  if (unique) hints.push("no duplicates");
  const errorEl = h("p", { class: "field-error", attrs: { hidden: true, role: "alert" } });
  const add = h("button", {
    class: "btn btn-plain",
    testid: `${testid(path)}-add`,
    attrs: { type: "button" },
    text: "Add item",
  });
  const fieldset = h(
    "fieldset",
    { class: "fieldset", testid: testid(path) },
    legend,
    hints.length ? h("p", { class: "field-hint", text: hints.join(" · ") }) : null,
    list,
    add,
    errorEl,
  );

  const renumber = () => {
    add.disabled = maxItems !== undefined && rows.length >= maxItems;
  };
  const addRow = (initial?: unknown) => {
    const index = rows.length;
    const itemPath = `${path}.${index}`;
    const seeded = initial === undefined ? itemSchema : { ...itemSchema, default: initial };
    const node = buildNode(ctx, itemPath, `${labelText(name, schema)} ${index + 1}`, seeded, true);
    const remove = h("button", {
      class: "btn btn-plain btn-small",
      testid: `${testid(itemPath)}-remove`,
      attrs: { type: "button", "aria-label": `Remove item ${index + 1}` },
      text: "Remove",
    });
    const row = h("div", { class: "array-row" }, node.element, remove);
    const entry = { node, row };
    remove.addEventListener("click", () => {
      const at = rows.indexOf(entry);
      if (at >= 0) rows.splice(at, 1);
      row.remove();
      renumber();
    });
    rows.push(entry);
    list.appendChild(row);
    renumber();
  };
  add.addEventListener("click", () => addRow());
  if (Array.isArray(schema.default)) for (const item of schema.default) addRow(item);
  for (let i = rows.length; i < (minItems ?? 0); i++) addRow();

  return {
    element: fieldset,
    read(errors) {
      const before = errors.length;
      const values: unknown[] = [];
      for (const { node } of rows) {
        const item = node.read(errors);
        if (item !== OMIT) values.push(item);
      }
      let message: string | null = null;
      if (errors.length === before) {
        if (minItems !== undefined && values.length < minItems) message = `needs at least ${minItems} items`;
        else if (maxItems !== undefined && values.length > maxItems) message = `at most ${maxItems} items`;
        else if (unique && new Set(values.map((v) => JSON.stringify(v))).size !== values.length) message = "items must be distinct";
      }
      errorEl.textContent = message ?? "";
      errorEl.hidden = message === null;
      if (message !== null) {
        errors.push({ path, message: `${labelText(name, schema)}: ${message}` });
        return OMIT;
      }
      if (values.length === 0 && !required && !Array.isArray(schema.default)) return OMIT;
      return values;
    },
  };
}

function constNode(schema: JsonSchema): Node {
  const value = schema.const;
  return { element: h("div", { attrs: { hidden: true } }), read: () => value };
}

function buildNode(ctx: Ctx, path: string, name: string, raw: JsonSchema, required: boolean): Node {
  const { schema, nullable } = unwrap(raw);
  const type = typeOf(schema);
  switch (type) {
    case "enum":
      return enumNode(ctx, path, name, schema, required, nullable);
    case "const":
      return constNode(schema);
    case "string":
      return stringNode(ctx, path, name, schema, required, nullable);
    case "number":
    case "integer":
      return numberNode(ctx, path, name, schema, required, nullable, type === "integer");
    case "boolean":
      return booleanNode(ctx, path, name, schema, required);
    case "array":
      return arrayNode(ctx, path, name, schema, required);
    case "object":
      if (isSchema(schema.properties) && Object.keys(schema.properties).length > 0) {
        return objectNode(ctx, path, name, schema, required, false);
      }
      return jsonNode(ctx, path, name, schema, required);
    default:
      return jsonNode(ctx, path, name, schema, required);
  }
}

/** Build the form for `schema` (a tool's input_schema). */
export function buildSchemaForm(schema: unknown, options: { idPrefix?: string } = {}): SchemaForm {
  const ctx: Ctx = { prefix: options.idPrefix ?? "sf" };
  const root = isSchema(schema) ? schema : {};
  const type = typeOf(unwrap(root).schema);
  const objectLike = type === "object" && (isSchema(root.properties) || root.additionalProperties === false);
  const node = objectLike
    ? objectNode(ctx, "", "input", unwrap(root).schema, true, true)
    : SCALAR_TYPES.includes(type as (typeof SCALAR_TYPES)[number]) || type === "enum" || type === "array"
      ? buildNode(ctx, "", "Input", root, true)
      : jsonNode(ctx, "", "Input (JSON)", root, false);
  const element = h("div", { class: "schema-form" }, node.element);
  return {
    element,
    collect() {
      const errors: FieldError[] = [];
      const value = node.read(errors);
      if (errors.length > 0) return { ok: false, errors };
      return { ok: true, value: value === OMIT ? {} : value };
    },
  };
}

export const __test__ = { unwrap, typeOf };
