import { describe, expect, it } from "vitest";
import { A2uiError, A2UI_LIMITS, isA2uiDocument, normalizeDocument } from "../src/a2ui";

// Output of palyra_sdk.a2ui Document.to_json() (generated with the SDK builders: document(
// text, markdown, bullet_list, numbered_list, table, chart(bar), chart(line), form(select,
// number, text, email, checkbox), title="Expense report")).
function sdkDocument(): Record<string, unknown> {
  return {
    v: 1,
    surface: "main",
    components: [
      {"id": "title", "type": "markdown", "props": {"value": "# Expense report"}},
      {"id": "summary", "type": "text", "props": {"tone": "critical", "value": "3 open incidents"}},
      {"id": "notes", "type": "markdown", "props": {"value": "Some **bold** and *em* and `code`\n- one\n- two\n\n1. first\n2. second\n[docs](https://example.com/docs)"}},
      {"id": "bullets", "type": "list", "props": {"ordered": false, "items": ["a", "2", "true"]}},
      {"id": "steps", "type": "list", "props": {"ordered": true, "items": ["x"]}},
      {"id": "latest", "type": "table", "props": {"columns": ["#", "Date", "Category", "Amount (EUR)", "Description"], "rows": [["1", "2024-01-01", "Travel", "12.50", "Train"], ["2", "2024-01-02", "Meals", "8.00", ""]]}},
      {"id": "totals", "type": "chart", "props": {"title": "EUR per category", "kind": "bar", "series": [{"label": "Travel", "value": 12.5}, {"label": "Meals", "value": 8}, {"label": "Software", "value": 0}, {"label": "Office", "value": 1000000}]}},
      {"id": "trend", "type": "chart", "props": {"title": "Chart", "kind": "line", "series": [{"label": "Mon", "value": 1}, {"label": "Tue", "value": 2}]}},
      {"id": "add-expense", "type": "form", "props": {"title": "Add an expense", "submit_label": "Add", "submit_tool": "add_entry", "fields": [
        {"id": "category", "label": "Category", "type": "select", "required": true, "options": [{"label": "Travel", "value": "travel"}, {"label": "Meals", "value": "meals"}], "default": "meals"},
        {"id": "amount", "label": "Amount (EUR)", "type": "number", "required": true, "min": 0.01, "max": 5000, "step": 0.01},
        {"id": "description", "label": "Description", "type": "text", "hint": "Short", "required": false, "placeholder": "What was it for?"},
        {"id": "email", "label": "email", "type": "email", "required": false},
        {"id": "urgent", "label": "Urgent", "type": "checkbox", "required": false, "default": true},
      ]}},
    ],
  };
}

function withComponent(component: Record<string, unknown>): Record<string, unknown> {
  return { v: 1, surface: "main", components: [component] };
}

function refused(raw: unknown, message?: RegExp): A2uiError {
  let caught: unknown;
  try {
    normalizeDocument(raw);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(A2uiError);
  if (message) expect((caught as Error).message).toMatch(message);
  return caught as A2uiError;
}

describe("normalizeDocument: what the SDK produces", () => {
  it("accepts the SDK document and flattens it into the normalised shape", () => {
    const doc = normalizeDocument(sdkDocument());
    expect(doc.v).toBe(1);
    expect(doc.surface).toBe("main");
    expect(doc.components.map((c) => c.id)).toEqual([
      "title", "summary", "notes", "bullets", "steps", "latest", "totals", "trend", "add-expense",
    ]);
    const byId = Object.fromEntries(doc.components.map((c) => [c.id, c]));
    expect(byId.title).toEqual({ id: "title", type: "markdown", value: "# Expense report" });
    expect(byId.summary).toEqual({ id: "summary", type: "text", value: "3 open incidents", tone: "critical" });
    expect(byId.bullets).toEqual({ id: "bullets", type: "list", ordered: false, items: ["a", "2", "true"] });
    expect(byId.latest?.rows).toEqual([
      ["1", "2024-01-01", "Travel", "12.50", "Train"],
      ["2", "2024-01-02", "Meals", "8.00", ""],
    ]);
    expect(byId.totals).toMatchObject({ title: "EUR per category", kind: "bar" });
    expect(byId.trend).toMatchObject({ title: "Chart", kind: "line", series: [{ label: "Mon", value: 1 }, { label: "Tue", value: 2 }] });
    expect(byId["add-expense"]).toMatchObject({ title: "Add an expense", submitLabel: "Add", submitTool: "add_entry" });
    expect(byId["add-expense"]?.fields).toEqual([
      { id: "category", type: "select", label: "Category", required: true, options: [{ label: "Travel", value: "travel" }, { label: "Meals", value: "meals" }], defaultValue: "meals" },
      { id: "amount", type: "number", label: "Amount (EUR)", required: true, min: 0.01, max: 5000, step: 0.01, defaultValue: 0.01 },
      { id: "description", type: "text", label: "Description", required: false, hint: "Short", placeholder: "What was it for?", defaultValue: "" },
      { id: "email", type: "email", label: "email", required: false, defaultValue: "" },
      { id: "urgent", type: "checkbox", label: "Urgent", required: false, defaultValue: true },
    ]);
  });

  it("accepts the JSON text (Document.to_json) as well as the object", () => {
    expect(normalizeDocument(JSON.stringify(sdkDocument()))).toEqual(normalizeDocument(sdkDocument()));
  });

  it("is idempotent: a normalised document normalises to itself", () => {
    const once = normalizeDocument(sdkDocument());
    expect(normalizeDocument(once)).toEqual(once);
    expect(normalizeDocument(JSON.parse(JSON.stringify(once)))).toEqual(once);
  });

  it("returns fresh frozen objects, never the input objects", () => {
    const raw = sdkDocument();
    const doc = normalizeDocument(raw);
    const rawComponents = raw.components as Record<string, unknown>[];
    expect(doc.components).not.toBe(rawComponents);
    expect(doc.components[3]?.items).not.toBe((rawComponents[3]?.props as Record<string, unknown>).items);
    expect(Object.isFrozen(doc)).toBe(true);
    expect(Object.isFrozen(doc.components[3]?.items)).toBe(true);
    expect(Object.getPrototypeOf(doc)).toBe(Object.prototype);
  });

  it("accepts the reference known-good fixture, aliases and an empty document", () => {
    expect(normalizeDocument({ v: 1, surface: "bootstrap", components: [{ id: "welcome", type: "text", props: { value: "Palyra bootstrap" } }] }).components[0])
      .toEqual({ id: "welcome", type: "text", value: "Palyra bootstrap", tone: "normal" });
    expect(normalizeDocument(withComponent({ id: "m", type: "markdown", props: { markdown: "hi" } })).components[0]).toEqual({ id: "m", type: "markdown", value: "hi" });
    const form = normalizeDocument(withComponent({ id: "f", type: "form", props: { submitLabel: "Go", fields: [{ id: "a", type: "number" }] } })).components[0];
    expect(form).toEqual({ id: "f", type: "form", title: "Form", submitLabel: "Go", fields: [{ id: "a", type: "number", label: "a", required: false, min: 0, max: 100, step: 1, defaultValue: 0 }] });
    expect(normalizeDocument({ v: 1, surface: "chat", components: [] }).components).toEqual([]);
    expect(normalizeDocument({ v: 1, surface: "chat", title: "Hello", components: [] }).title).toBe("Hello");
  });

  it("validates and accepts an experimental governance object (not rendered)", () => {
    const experimental = {
      track_id: "native-canvas-preview", feature_flag: "canvas_host.enabled", support_summary: "Preview",
      rollout_stage: "operator_preview", ambient_mode: "push_to_talk", consent_required: true,
      security_review: ["reviewed"], exit_criteria: ["done"],
    };
    expect(normalizeDocument({ v: 1, surface: "s", components: [], experimental }).surface).toBe("s");
    refused({ v: 1, surface: "s", components: [], experimental: { ...experimental, consent_required: false } }, /consent_required=true/);
    refused({ v: 1, surface: "s", components: [], experimental: { ...experimental, security_review: [] } });
  });
});

describe("normalizeDocument: refusals", () => {
  it.each([
    ["not an object", 42],
    ["an array", []],
    ["null", null],
    ["wrong version", { v: 2, surface: "s", components: [] }],
    ["string version", { v: "1", surface: "s", components: [] }],
    ["empty surface", { v: 1, surface: "  ", components: [] }],
    ["long surface", { v: 1, surface: "s".repeat(129), components: [] }],
    ["components not array", { v: 1, surface: "s", components: {} }],
    ["unknown top-level key", { v: 1, surface: "s", components: [], html: "<b>" }],
    ["invalid JSON text", "{\"v\":1,"],
    ["unknown component type", withComponent({ id: "a", type: "iframe", props: {} })],
    ["upper-case type", withComponent({ id: "a", type: "TEXT", props: { value: "x" } })],
    ["bad component id", withComponent({ id: "a b\"><script>", type: "text", props: { value: "x" } })],
    ["missing id", withComponent({ type: "text", props: { value: "x" } })],
    ["props and flat keys", withComponent({ id: "a", type: "text", props: { value: "x" }, value: "y" })],
    ["unknown prop", withComponent({ id: "a", type: "text", props: { value: "x", onclick: "alert(1)" } })],
    ["unknown tone", withComponent({ id: "a", type: "text", props: { value: "x", tone: "loud" } })],
    ["text too long", withComponent({ id: "a", type: "text", props: { value: "x".repeat(513) } })],
    ["markdown too long", withComponent({ id: "a", type: "markdown", props: { value: "x".repeat(12_001) } })],
    ["both markdown keys", withComponent({ id: "a", type: "markdown", props: { value: "x", markdown: "y" } })],
    ["list item object", withComponent({ id: "a", type: "list", props: { items: [{}] } })],
    ["too many list items", withComponent({ id: "a", type: "list", props: { items: Array(257).fill("x") } })],
    ["too many columns", withComponent({ id: "a", type: "table", props: { columns: Array(17).fill("c"), rows: [] } })],
    ["no columns", withComponent({ id: "a", type: "table", props: { columns: [], rows: [] } })],
    ["row longer than columns", withComponent({ id: "a", type: "table", props: { columns: ["a"], rows: [["1", "2"]] } })],
    ["non-array row", withComponent({ id: "a", type: "table", props: { columns: ["a"], rows: ["1"] } })],
    ["too many rows", withComponent({ id: "a", type: "table", props: { columns: ["a"], rows: Array(257).fill(["1"]) } })],
    ["too many chart points", withComponent({ id: "a", type: "chart", props: { series: Array(65).fill({ value: 1 }) } })],
    ["negative chart value", withComponent({ id: "a", type: "chart", props: { series: [{ value: -1 }] } })],
    ["huge chart value", withComponent({ id: "a", type: "chart", props: { series: [{ value: 1e7 }] } })],
    ["non-finite chart value", withComponent({ id: "a", type: "chart", props: { series: [{ value: Infinity }] } })],
    ["unknown chart kind", withComponent({ id: "a", type: "chart", props: { kind: "pie", series: [{ value: 1 }] } })],
    ["form without fields", withComponent({ id: "a", type: "form", props: { fields: [] } })],
    ["too many fields", withComponent({ id: "a", type: "form", props: { fields: Array.from({ length: 33 }, (_, i) => ({ id: `f${i}`, type: "text" })) } })],
    ["duplicate field ids", withComponent({ id: "a", type: "form", props: { fields: [{ id: "x", type: "text" }, { id: "x", type: "text" }] } })],
    ["unknown field type", withComponent({ id: "a", type: "form", props: { fields: [{ id: "x", type: "file" }] } })],
    ["field without type", withComponent({ id: "a", type: "form", props: { fields: [{ id: "x" }] } })],
    ["option on a text field", withComponent({ id: "a", type: "form", props: { fields: [{ id: "x", type: "text", options: [] }] } })],
    ["number default out of range", withComponent({ id: "a", type: "form", props: { fields: [{ id: "x", type: "number", min: 0, max: 10, default: 11 }] } })],
    ["max below min", withComponent({ id: "a", type: "form", props: { fields: [{ id: "x", type: "number", min: 10, max: 5 }] } })],
    ["select without options", withComponent({ id: "a", type: "form", props: { fields: [{ id: "x", type: "select" }] } })],
    ["select default not an option", withComponent({ id: "a", type: "form", props: { fields: [{ id: "x", type: "select", options: [{ value: "a" }], default: "b" }] } })],
    ["bad submit tool", withComponent({ id: "a", type: "form", props: { submit_tool: "../x", fields: [{ id: "x", type: "text" }] } })],
    ["duplicate component ids", { v: 1, surface: "s", components: [{ id: "a", type: "text", props: { value: "1" } }, { id: "a", type: "text", props: { value: "2" } }] }],
    ["a function value", withComponent({ id: "a", type: "text", props: { value: () => "x" } })],
    ["a Date", withComponent({ id: "a", type: "text", props: { value: new Date() } })],
    ["NaN", withComponent({ id: "a", type: "chart", props: { series: [{ value: NaN }] } })],
  ])("refuses %s", (_name, raw) => {
    refused(raw);
  });

  it("refuses too many components", () => {
    const components = Array.from({ length: A2UI_LIMITS.components + 1 }, (_, i) => ({ id: `c${i}`, type: "text", props: { value: "x" } }));
    refused({ v: 1, surface: "s", components }, /at most 128/);
    expect(normalizeDocument({ v: 1, surface: "s", components: components.slice(1) }).components).toHaveLength(128);
  });

  it("refuses __proto__, constructor and prototype keys anywhere and leaves Object.prototype clean", () => {
    refused(JSON.parse('{"v":1,"surface":"s","components":[],"__proto__":{"polluted":true}}'), /__proto__/);
    refused(JSON.parse('{"v":1,"surface":"s","components":[{"id":"a","type":"text","props":{"value":"x","__proto__":{"polluted":true}}}]}'), /__proto__/);
    refused(withComponent({ id: "a", type: "form", props: { fields: [{ id: "x", type: "text", constructor: { prototype: { polluted: true } } }] } }), /constructor/);
    refused(withComponent({ id: "a", type: "list", props: { items: [], prototype: 1 } }), /prototype/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted")).toBe(false);
  });

  it("refuses a 10 MB document quickly (object and JSON text)", () => {
    const big = "x".repeat(10 * 1024 * 1024);
    const start = performance.now();
    refused(withComponent({ id: "a", type: "text", props: { value: big } }), /larger than/);
    refused(JSON.stringify(withComponent({ id: "a", type: "text", props: { value: big } })), /larger than/);
    const many = { v: 1, surface: "s", components: Array.from({ length: 200_000 }, () => ({ id: "abcdefghijklmnopqrstuvwxyz", type: "markdown", props: { value: "y".repeat(40) } })) };
    refused(many, /larger than/);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it("refuses a sparse array with a huge length without walking it", () => {
    const items: unknown[] = [];
    items.length = 50_000_000;
    const start = performance.now();
    refused(withComponent({ id: "a", type: "list", props: { items } }), /larger than/);
    expect(performance.now() - start).toBeLessThan(100);
  });

  it("refuses deeply nested values without a stack overflow", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 200_000; i++) deep = [deep];
    refused(withComponent({ id: "a", type: "list", props: { items: deep } }), /deeper/);
    const text = `{"v":1,"surface":"s","components":${"[".repeat(500_000)}${"]".repeat(500_000)}}`;
    const error = refused(text);
    expect(error.message).toMatch(/deeper|larger|JSON/);
  });

  it("refuses cyclic objects", () => {
    const cyclic: Record<string, unknown> = { v: 1, surface: "s", components: [] };
    cyclic.self = cyclic;
    refused(cyclic);
  });

  it("refuses accessor properties without calling them", () => {
    let called = false;
    const component = { id: "a", type: "text", props: {} as Record<string, unknown> };
    Object.defineProperty(component.props, "value", { enumerable: true, get: () => { called = true; return "x"; } });
    refused(withComponent(component));
    expect(called).toBe(false);
  });
});

describe("isA2uiDocument", () => {
  it("recognises document shapes cheaply", () => {
    expect(isA2uiDocument(sdkDocument())).toBe(true);
    expect(isA2uiDocument(JSON.stringify(sdkDocument()))).toBe(true);
    expect(isA2uiDocument({ v: 1, surface: "chat", components: [] })).toBe(true);
  });

  it.each([
    null, undefined, 1, "text", "[1]", "{\"v\":1", [], {}, { v: 2, surface: "s", components: [] },
    { v: 1, surface: "", components: [] }, { v: 1, surface: "s", components: {} }, { v: 1, components: [] },
  ])("rejects %j", (raw) => {
    expect(isA2uiDocument(raw)).toBe(false);
  });
});
