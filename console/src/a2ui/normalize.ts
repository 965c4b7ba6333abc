/**
 * A2UI v1 normaliser (reference runtime.md §8.1, palyra_sdk.a2ui).
 *
 * Input: what `palyra_sdk.a2ui.Document.to_json()` produces (components `{id, type, props}` with
 * snake_case `submit_label`/`submit_tool` and field `default`), the reference's camelCase aliases
 * (`submitLabel`, markdown `markdown`), or this module's own output (flat components, camelCase,
 * field `defaultValue`) so that normalising is idempotent and patches on the normalised shape keep
 * their effect (the reference's "form defaults reset after a patch" bug).
 *
 * Output: fresh, deeply frozen plain objects in the flat shape:
 *   text     {id, type, value, tone}
 *   markdown {id, type, value}
 *   list     {id, type, ordered, items: string[]}
 *   table    {id, type, columns: string[], rows: string[][]}
 *   chart    {id, type, title, kind: "bar"|"line", series: {label, value}[]}
 *   form     {id, type, title, submitLabel, submitTool?, fields: A2uiFormField[]}
 *
 * Anything outside the format is refused with `A2uiError` (never clamped or dropped silently).
 */
import { A2uiError, type A2uiComponent, type A2uiDocument } from "./types";

export const A2UI_LIMITS = Object.freeze({
  maxDocumentBytes: 1024 * 1024,
  maxDepth: 12,
  surface: 128,
  title: 512,
  components: 128,
  componentId: 64,
  string: 512,
  markdown: 12_000,
  listItems: 256,
  tableColumns: 16,
  columnName: 256,
  tableRows: 256,
  formFields: 32,
  formTitle: 512,
  submitLabel: 48,
  fieldId: 48,
  fieldLabel: 64,
  fieldHint: 128,
  placeholder: 96,
  selectOptions: 64,
  optionLabel: 64,
  optionValue: 64,
  chartPoints: 64,
  chartLabel: 64,
  chartValue: 1_000_000,
  numberLimit: 1_000_000,
  minStep: 1e-6,
  maxStep: 100_000,
});

export const COMPONENT_TYPES = ["text", "markdown", "list", "table", "form", "chart"] as const;
export const TONES = ["normal", "muted", "success", "critical"] as const;
export const CHART_KINDS = ["bar", "line"] as const;
export const FIELD_TYPES = ["text", "email", "number", "select", "checkbox"] as const;

export type A2uiTone = (typeof TONES)[number];
export type A2uiChartKind = (typeof CHART_KINDS)[number];
export type A2uiFieldType = (typeof FIELD_TYPES)[number];

/** A normalised form field (`defaultValue` always set, typed by `type`). */
export interface A2uiFormField {
  readonly id: string;
  readonly type: A2uiFieldType;
  readonly label: string;
  readonly required: boolean;
  readonly hint?: string;
  readonly placeholder?: string;
  readonly min?: number;
  readonly max?: number;
  readonly step?: number;
  readonly options?: readonly { readonly label: string; readonly value: string }[];
  readonly defaultValue: string | number | boolean;
}

/** Keys refused anywhere in a document or patch (prototype pollution). */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

const IDENTIFIER = /^[A-Za-z0-9:_]+(?:-[A-Za-z0-9:_]+)*$/;
const TOOL_NAME = /^[a-z][a-z0-9_]{0,63}$/;

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
type JsonObject = { [key: string]: JsonValue };

// ---- safe copy of untrusted input ------------------------------------------------------------

/** Approximate UTF-8 JSON size of a string literal (quotes and escapes included). */
function jsonStringBytes(text: string): number {
  let bytes = 2;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22 || code === 0x5c) bytes += 2;
    else if (code < 0x20) bytes += 6;
    else if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdfff) bytes += 2; // half of a 4-byte pair
    else bytes += 3;
  }
  return bytes;
}

/**
 * Copies an untrusted value into fresh plain JSON values, refusing non-JSON values, exotic
 * objects, accessors, forbidden keys, nesting deeper than `maxDepth` and a JSON size above
 * `maxBytes`. The recursion is bounded by `maxDepth`, so hostile nesting cannot overflow the
 * stack, and the size budget is checked before any large array or string is walked.
 */
export function safeJsonCopy(raw: unknown, maxDepth: number, maxBytes: number, what = "document"): JsonValue {
  let budget = maxBytes;
  const spend = (bytes: number): void => {
    budget -= bytes;
    if (budget < 0) throw new A2uiError(`${what} is larger than ${maxBytes} bytes`);
  };
  const copy = (value: unknown, depth: number, path: string): JsonValue => {
    if (value === null) {
      spend(4);
      return null;
    }
    switch (typeof value) {
      case "boolean":
        spend(value ? 4 : 5);
        return value;
      case "number":
        if (!Number.isFinite(value)) throw new A2uiError(`${path} must be a finite number`);
        spend(String(value).length);
        return value;
      case "string":
        // Cheap lower bound first so a 10 MB string is refused without scanning it.
        spend(value.length + 2);
        spend(jsonStringBytes(value) - value.length - 2);
        return value;
      case "object":
        break;
      default:
        throw new A2uiError(`${path} is not a JSON value (${typeof value})`);
    }
    if (depth >= maxDepth) throw new A2uiError(`${what} is nested deeper than ${maxDepth} levels`);
    if (Array.isArray(value)) {
      if (Object.getPrototypeOf(value) !== Array.prototype) throw new A2uiError(`${path} is not a plain array`);
      const length = value.length;
      spend(2 + Math.max(0, length - 1)); // brackets and commas
      const out: JsonValue[] = [];
      for (let i = 0; i < length; i++) {
        const descriptor = Object.getOwnPropertyDescriptor(value, i);
        if (!descriptor || !("value" in descriptor)) throw new A2uiError(`${path}[${i}] is not a JSON value`);
        out.push(copy(descriptor.value, depth + 1, `${path}[${i}]`));
      }
      return out;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw new A2uiError(`${path} is not a plain object`);
    const keys = Object.keys(value);
    spend(2 + Math.max(0, keys.length - 1));
    const out: JsonObject = {};
    for (const key of keys) {
      if (FORBIDDEN_KEYS.has(key)) throw new A2uiError(`${path} has the forbidden key '${key}'`);
      spend(jsonStringBytes(key) + 1);
      const descriptor = Object.getOwnPropertyDescriptor(value, key);
      if (!descriptor || !("value" in descriptor)) throw new A2uiError(`${path}.${key} is not a JSON value`);
      Object.defineProperty(out, key, {
        value: copy(descriptor.value, depth + 1, `${path}.${key}`),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  };
  return copy(raw, 0, what);
}

/** Parses a JSON string (bounded) or copies an object, into safe plain JSON values. */
export function readJsonInput(raw: unknown, maxDepth: number, maxBytes: number, what: string): JsonValue {
  if (typeof raw === "string") {
    // A UTF-16 length above the byte budget is always too large (each unit is >= 1 byte).
    if (raw.length > maxBytes) throw new A2uiError(`${what} is larger than ${maxBytes} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new A2uiError(`${what} is not valid JSON`);
    }
    return safeJsonCopy(parsed, maxDepth, maxBytes, what);
  }
  return safeJsonCopy(raw, maxDepth, maxBytes, what);
}

// ---- field readers ---------------------------------------------------------------------------

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function has(obj: JsonObject, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

function onlyKeys(obj: JsonObject, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw new A2uiError(`${where} has the unknown key '${key}'`);
  }
}

/** Reads one of two alias keys (e.g. submit_label / submitLabel); both at once is refused. */
function alias(obj: JsonObject, keys: readonly string[], where: string): JsonValue | undefined {
  const present = keys.filter((key) => has(obj, key));
  if (present.length > 1) throw new A2uiError(`${where} has both '${present.join("' and '")}'`);
  return present.length === 1 ? obj[present[0] as string] : undefined;
}

function str(value: JsonValue | undefined, where: string, limit: number, nonEmpty = false): string {
  if (typeof value !== "string") throw new A2uiError(`${where} must be a string`);
  if (value.length > limit) throw new A2uiError(`${where} has ${value.length} characters; at most ${limit} are allowed`);
  if (nonEmpty && value.trim() === "") throw new A2uiError(`${where} cannot be empty`);
  return value;
}

function optStr(value: JsonValue | undefined, where: string, limit: number, fallback: string, nonEmpty = false): string {
  return value === undefined ? fallback : str(value, where, limit, nonEmpty);
}

function identifier(value: JsonValue | undefined, where: string, limit: number): string {
  const text = str(value, where, limit, true);
  if (!IDENTIFIER.test(text)) {
    throw new A2uiError(`${where} must use letters, digits, ':', '_' and single '-' between them`);
  }
  return text;
}

function num(value: JsonValue | undefined, where: string, low: number, high: number): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new A2uiError(`${where} must be a finite number`);
  if (value < low || value > high) throw new A2uiError(`${where} is ${value}; it must be between ${low} and ${high}`);
  return value;
}

function bool(value: JsonValue | undefined, where: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new A2uiError(`${where} must be a boolean`);
  return value;
}

function arr(value: JsonValue | undefined, where: string, max: number, min = 0): JsonValue[] {
  if (!Array.isArray(value)) throw new A2uiError(`${where} must be an array`);
  if (value.length > max) throw new A2uiError(`${where} has ${value.length} entries; at most ${max} are allowed`);
  if (value.length < min) throw new A2uiError(`${where} needs at least ${min} ${min === 1 ? "entry" : "entries"}`);
  return value;
}

function oneOf<T extends string>(value: JsonValue | undefined, where: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new A2uiError(`${where} must be one of ${allowed.join(", ")}`);
  }
  return value as T;
}

/** A list item or table cell as text (the SDK already sends strings; the schema allows scalars). */
function scalarText(value: JsonValue | undefined, where: string, allowNull: boolean): string {
  if (typeof value === "string") return str(value, where, A2UI_LIMITS.string);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value === null && allowNull) return "";
  throw new A2uiError(`${where} must be a string, number or boolean`);
}

// ---- components ------------------------------------------------------------------------------

type Props = JsonObject;

function normalizeText(p: Props, where: string): Record<string, unknown> {
  onlyKeys(p, ["value", "tone"], where);
  return {
    value: str(p.value, `${where}.value`, A2UI_LIMITS.string),
    tone: oneOf(p.tone, `${where}.tone`, TONES, "normal"),
  };
}

function normalizeMarkdown(p: Props, where: string): Record<string, unknown> {
  onlyKeys(p, ["value", "markdown"], where);
  const value = alias(p, ["value", "markdown"], where);
  if (value === undefined) throw new A2uiError(`${where}.value is required`);
  return { value: str(value, `${where}.value`, A2UI_LIMITS.markdown) };
}

function normalizeList(p: Props, where: string): Record<string, unknown> {
  onlyKeys(p, ["ordered", "items"], where);
  const items = arr(p.items, `${where}.items`, A2UI_LIMITS.listItems);
  return {
    ordered: bool(p.ordered, `${where}.ordered`, false),
    items: items.map((item, i) => scalarText(item, `${where}.items[${i}]`, false)),
  };
}

function normalizeTable(p: Props, where: string): Record<string, unknown> {
  onlyKeys(p, ["columns", "rows"], where);
  const columns = arr(p.columns, `${where}.columns`, A2UI_LIMITS.tableColumns, 1).map((c, i) =>
    str(c, `${where}.columns[${i}]`, A2UI_LIMITS.columnName, true),
  );
  const rows = arr(p.rows, `${where}.rows`, A2UI_LIMITS.tableRows).map((row, r) => {
    const cells = arr(row, `${where}.rows[${r}]`, columns.length).map((cell, c) =>
      scalarText(cell, `${where}.rows[${r}][${c}]`, true),
    );
    while (cells.length < columns.length) cells.push("");
    return cells;
  });
  return { columns, rows };
}

function normalizeChart(p: Props, where: string): Record<string, unknown> {
  onlyKeys(p, ["title", "kind", "series"], where);
  const series = arr(p.series, `${where}.series`, A2UI_LIMITS.chartPoints, 1).map((point, i) => {
    const at = `${where}.series[${i}]`;
    if (!isObject(point)) throw new A2uiError(`${at} must be an object`);
    onlyKeys(point, ["label", "value"], at);
    return {
      label: optStr(point.label, `${at}.label`, A2UI_LIMITS.chartLabel, `Point ${i + 1}`, true),
      value: num(point.value, `${at}.value`, 0, A2UI_LIMITS.chartValue),
    };
  });
  return {
    title: optStr(p.title, `${where}.title`, A2UI_LIMITS.string, "Chart", true),
    kind: oneOf(p.kind, `${where}.kind`, CHART_KINDS, "bar"),
    series,
  };
}

const FIELD_COMMON = ["id", "label", "type", "hint", "required", "default", "defaultValue"] as const;
const FIELD_EXTRA: Record<A2uiFieldType, readonly string[]> = {
  text: ["placeholder"],
  email: ["placeholder"],
  number: ["min", "max", "step"],
  select: ["options"],
  checkbox: [],
};

function normalizeField(raw: JsonValue, where: string): A2uiFormField {
  if (!isObject(raw)) throw new A2uiError(`${where} must be an object`);
  const type = oneOf(raw.type, `${where}.type`, FIELD_TYPES, "text");
  if (raw.type === undefined) throw new A2uiError(`${where}.type is required`);
  onlyKeys(raw, [...FIELD_COMMON, ...FIELD_EXTRA[type]], where);
  const id = identifier(raw.id, `${where}.id`, A2UI_LIMITS.fieldId);
  const field: Record<string, unknown> = {
    id,
    type,
    label: optStr(raw.label, `${where}.label`, A2UI_LIMITS.fieldLabel, id, true),
    required: bool(raw.required, `${where}.required`, false),
  };
  if (raw.hint !== undefined) field.hint = str(raw.hint, `${where}.hint`, A2UI_LIMITS.fieldHint);
  const given = alias(raw, ["default", "defaultValue"], where);
  const defaultWhere = `${where}.default`;
  switch (type) {
    case "text":
    case "email":
      if (raw.placeholder !== undefined) {
        field.placeholder = str(raw.placeholder, `${where}.placeholder`, A2UI_LIMITS.placeholder);
      }
      field.defaultValue = optStr(given, defaultWhere, A2UI_LIMITS.string, "");
      break;
    case "number": {
      const limit = A2UI_LIMITS.numberLimit;
      const min = raw.min === undefined ? 0 : num(raw.min, `${where}.min`, -limit, limit);
      const max = raw.max === undefined ? Math.max(100, min) : num(raw.max, `${where}.max`, min, limit);
      field.min = min;
      field.max = max;
      field.step = raw.step === undefined ? 1 : num(raw.step, `${where}.step`, A2UI_LIMITS.minStep, A2UI_LIMITS.maxStep);
      field.defaultValue = given === undefined ? min : num(given, defaultWhere, min, max);
      break;
    }
    case "select": {
      const seen = new Set<string>();
      const options = arr(raw.options, `${where}.options`, A2UI_LIMITS.selectOptions, 1).map((option, i) => {
        const at = `${where}.options[${i}]`;
        if (!isObject(option)) throw new A2uiError(`${at} must be an object`);
        onlyKeys(option, ["label", "value"], at);
        const value = identifier(option.value, `${at}.value`, A2UI_LIMITS.optionValue);
        if (seen.has(value)) throw new A2uiError(`${at}.value '${value}' is used twice`);
        seen.add(value);
        return { label: optStr(option.label, `${at}.label`, A2UI_LIMITS.optionLabel, value, true), value };
      });
      field.options = options;
      if (given === undefined) {
        field.defaultValue = (options[0] as { value: string }).value;
      } else {
        const value = str(given, defaultWhere, A2UI_LIMITS.optionValue);
        if (!seen.has(value)) throw new A2uiError(`${defaultWhere} '${value}' is not one of the options`);
        field.defaultValue = value;
      }
      break;
    }
    case "checkbox":
      field.defaultValue = bool(given, defaultWhere, false);
      break;
  }
  return field as unknown as A2uiFormField;
}

function normalizeForm(p: Props, where: string): Record<string, unknown> {
  onlyKeys(p, ["title", "submit_label", "submitLabel", "submit_tool", "submitTool", "fields"], where);
  const seen = new Set<string>();
  const fields = arr(p.fields, `${where}.fields`, A2UI_LIMITS.formFields, 1).map((raw, i) => {
    const field = normalizeField(raw, `${where}.fields[${i}]`);
    if (seen.has(field.id)) throw new A2uiError(`${where}.fields[${i}].id '${field.id}' is used twice`);
    seen.add(field.id);
    return field;
  });
  const out: Record<string, unknown> = {
    title: optStr(p.title, `${where}.title`, A2UI_LIMITS.formTitle, "Form", true),
    submitLabel: optStr(alias(p, ["submit_label", "submitLabel"], where), `${where}.submitLabel`, A2UI_LIMITS.submitLabel, "Submit", true),
  };
  const tool = alias(p, ["submit_tool", "submitTool"], where);
  if (tool !== undefined) {
    if (typeof tool !== "string" || !TOOL_NAME.test(tool)) {
      throw new A2uiError(`${where}.submitTool must match [a-z][a-z0-9_]{0,63}`);
    }
    out.submitTool = tool;
  }
  out.fields = fields;
  return out;
}

const NORMALIZERS: Record<(typeof COMPONENT_TYPES)[number], (p: Props, where: string) => Record<string, unknown>> = {
  text: normalizeText,
  markdown: normalizeMarkdown,
  list: normalizeList,
  table: normalizeTable,
  chart: normalizeChart,
  form: normalizeForm,
};

function normalizeComponent(raw: JsonValue, index: number): A2uiComponent {
  const where = `components[${index}]`;
  if (!isObject(raw)) throw new A2uiError(`${where} must be an object`);
  const id = identifier(raw.id, `${where}.id`, A2UI_LIMITS.componentId);
  const type = raw.type;
  if (typeof type !== "string" || !(COMPONENT_TYPES as readonly string[]).includes(type)) {
    throw new A2uiError(`${where}.type must be one of ${COMPONENT_TYPES.join(", ")}`);
  }
  let props: Props;
  let propsWhere: string;
  if (has(raw, "props")) {
    // SDK / reference shape: {id, type, props}.
    onlyKeys(raw, ["id", "type", "props"], where);
    const given = raw.props;
    if (!isObject(given)) throw new A2uiError(`${where}.props must be an object`);
    props = given;
    propsWhere = `${where}.props`;
  } else {
    // Normalised (flat) shape: the props sit next to id and type.
    props = {};
    for (const key of Object.keys(raw)) {
      if (key !== "id" && key !== "type") props[key] = raw[key] as JsonValue;
    }
    propsWhere = where;
  }
  const normalizer = NORMALIZERS[type as (typeof COMPONENT_TYPES)[number]];
  return { id, type, ...normalizer(props, propsWhere) };
}

const GOVERNANCE_KEYS = [
  ["track_id", "trackId"],
  ["feature_flag", "featureFlag"],
  ["support_summary", "supportSummary"],
  ["rollout_stage", "rolloutStage"],
  ["ambient_mode", "ambientMode"],
  ["consent_required", "consentRequired"],
  ["security_review", "securityReview"],
  ["exit_criteria", "exitCriteria"],
] as const;

/** Validates the optional `experimental` governance object (§8.1); it is not rendered. */
function validateGovernance(raw: JsonValue | undefined): void {
  if (raw === undefined) return;
  const where = "experimental";
  if (!isObject(raw)) throw new A2uiError(`${where} must be an object`);
  onlyKeys(raw, GOVERNANCE_KEYS.flat(), where);
  const get = (keys: readonly string[]): JsonValue | undefined => alias(raw, keys, where);
  const [track, flag, summary, stage, ambient, consent, review, exit] = GOVERNANCE_KEYS.map(get);
  str(track, `${where}.track_id`, 64, true);
  if (!/^[a-zA-Z0-9:._-]+$/.test(str(flag, `${where}.feature_flag`, 96, true))) {
    throw new A2uiError(`${where}.feature_flag must use letters, digits and ':._-'`);
  }
  str(summary, `${where}.support_summary`, 240, true);
  oneOf(stage, `${where}.rollout_stage`, ["disabled", "dark_launch", "operator_preview", "limited_preview"], "dark_launch");
  const mode = oneOf(ambient, `${where}.ambient_mode`, ["disabled", "push_to_talk"], "disabled");
  const consented = bool(consent, `${where}.consent_required`, false);
  if (mode === "push_to_talk" && !consented) {
    throw new A2uiError("ambient experiments require explicit consent_required=true");
  }
  for (const [value, name] of [[review, "security_review"], [exit, "exit_criteria"]] as const) {
    arr(value, `${where}.${name}`, 6, 1).forEach((entry, i) => str(entry, `${where}.${name}[${i}]`, 160, true));
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}

/**
 * Validates an A2UI v1 document (an object, or its JSON text) and returns a fresh, frozen,
 * normalised copy. Throws `A2uiError` for anything the format does not allow.
 */
export function normalizeDocument(raw: unknown): A2uiDocument {
  const value = readJsonInput(raw, A2UI_LIMITS.maxDepth, A2UI_LIMITS.maxDocumentBytes, "document");
  if (!isObject(value)) throw new A2uiError("document must be a JSON object");
  onlyKeys(value, ["v", "surface", "title", "components", "experimental"], "document");
  if (value.v !== 1) throw new A2uiError("unsupported A2UI version (v must be 1)");
  const surface = str(value.surface, "surface", A2UI_LIMITS.surface, true);
  validateGovernance(value.experimental);
  const components = arr(value.components, "components", A2UI_LIMITS.components).map(normalizeComponent);
  const ids = new Set<string>();
  for (const component of components) {
    if (ids.has(component.id)) throw new A2uiError(`two components have the id '${component.id}'`);
    ids.add(component.id);
  }
  const doc: { v: 1; surface: string; title?: string; components: A2uiComponent[] } = { v: 1, surface, components };
  if (value.title !== undefined) doc.title = str(value.title, "title", A2UI_LIMITS.title, true);
  return deepFreeze(doc);
}

/**
 * Cheap shape test: does this tool output look like an A2UI v1 document (an object, or JSON text
 * of one, with `v: 1`, a string `surface` and a `components` array)? It does not validate the
 * components; `normalizeDocument` still has to accept it before rendering.
 */
export function isA2uiDocument(raw: unknown): boolean {
  let value: unknown = raw;
  if (typeof raw === "string") {
    const text = raw.trimStart();
    if (!text.startsWith("{") || raw.length > A2UI_LIMITS.maxDocumentBytes) return false;
    if (!/"surface"/.test(text) || !/"components"/.test(text)) return false;
    try {
      value = JSON.parse(text);
    } catch {
      return false;
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  try {
    const v = Object.getOwnPropertyDescriptor(value, "v");
    const surface = Object.getOwnPropertyDescriptor(value, "surface");
    const components = Object.getOwnPropertyDescriptor(value, "components");
    return (
      v?.value === 1 &&
      typeof surface?.value === "string" &&
      surface.value.trim() !== "" &&
      Array.isArray(components?.value)
    );
  } catch {
    return false;
  }
}
