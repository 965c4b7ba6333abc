import { describe, expect, it } from "vitest";
import { A2uiError, applyPatch, normalizeDocument, type A2uiDocument } from "../src/a2ui";

// SDK-shaped input (palyra_sdk.a2ui): text, list, chart and a form with defaults.
function baseDocument(): A2uiDocument {
  return normalizeDocument({
    v: 1,
    surface: "main",
    components: [
      { id: "status", type: "text", props: { tone: "normal", value: "Draft" } },
      { id: "items", type: "list", props: { ordered: false, items: ["one", "two"] } },
      { id: "totals", type: "chart", props: { title: "Totals", kind: "bar", series: [{ label: "A", value: 3 }, { label: "B", value: 5 }] } },
      { id: "settings", type: "form", props: { title: "Settings", submit_label: "Save", submit_tool: "save_settings", fields: [
        { id: "limit", label: "Limit", type: "number", required: true, min: 1, max: 50, step: 1, default: 20 },
        { id: "mode", label: "Mode", type: "select", required: false, options: [{ label: "Fast", value: "fast" }, { label: "Safe", value: "safe" }], default: "safe" },
        { id: "notify", label: "Notify", type: "checkbox", required: false, default: true },
        { id: "name", label: "Name", type: "text", required: false, default: "Ada" },
      ] } },
    ],
  });
}

function patch(...ops: Record<string, unknown>[]): Record<string, unknown> {
  return { v: 1, ops };
}

function rejected(doc: A2uiDocument, p: unknown, message?: RegExp): void {
  let caught: unknown;
  try {
    applyPatch(doc, p);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(A2uiError);
  if (message) expect((caught as Error).message).toMatch(message);
}

const defaults = (doc: A2uiDocument): unknown[] =>
  ((doc.components[3]?.fields ?? []) as { defaultValue: unknown }[]).map((f) => f.defaultValue);

describe("applyPatch: semantics (reference §8.3)", () => {
  it("replaces text, appends with '-', replaces a chart value (U6)", () => {
    const doc = baseDocument();
    const next = applyPatch(doc, patch(
      { op: "replace", path: "/components/0/value", value: "Published" },
      { op: "add", path: "/components/1/items/-", value: "three" },
      { op: "replace", path: "/components/2/series/1/value", value: 14 },
    ));
    expect(next.components[0]?.value).toBe("Published");
    expect(next.components[1]?.items).toEqual(["one", "two", "three"]);
    expect((next.components[2]?.series as { value: number }[])[1]?.value).toBe(14);
  });

  it("is pure: the input document is unchanged and the result is a new frozen document", () => {
    const doc = baseDocument();
    const before = JSON.stringify(doc);
    const next = applyPatch(doc, patch({ op: "add", path: "/components/1/items/0", value: "zero" }));
    expect(JSON.stringify(doc)).toBe(before);
    expect(next).not.toBe(doc);
    expect(next.components[1]?.items).toEqual(["zero", "one", "two"]);
    expect(Object.isFrozen(next)).toBe(true);
  });

  it("keeps form defaults across unrelated patches (default-reset bug fixed)", () => {
    const doc = baseDocument();
    expect(defaults(doc)).toEqual([20, "safe", true, "Ada"]);
    const next = applyPatch(doc, patch({ op: "replace", path: "/components/0/value", value: "x" }));
    expect(defaults(next)).toEqual([20, "safe", true, "Ada"]);
    const again = applyPatch(next, patch({ op: "replace", path: "/components/1/ordered", value: true }));
    expect(defaults(again)).toEqual([20, "safe", true, "Ada"]);
  });

  it("applies patches to the normalised defaultValue key", () => {
    const next = applyPatch(baseDocument(), patch(
      { op: "replace", path: "/components/3/fields/0/defaultValue", value: 7 },
      { op: "replace", path: "/components/3/fields/1/defaultValue", value: "fast" },
      { op: "replace", path: "/components/3/fields/2/defaultValue", value: false },
      { op: "replace", path: "/components/3/submitLabel", value: "Apply" },
    ));
    expect(defaults(next)).toEqual([7, "fast", false, "Ada"]);
    expect(next.components[3]?.submitLabel).toBe("Apply");
    expect(next.components[3]?.submitTool).toBe("save_settings");
  });

  it("adds, removes and replaces components and object keys", () => {
    const doc = baseDocument();
    const next = applyPatch(doc, patch(
      { op: "add", path: "/components/0", value: { id: "hello", type: "text", props: { value: "Hi" } } },
      { op: "remove", path: "/components/2" },
      { op: "add", path: "/title", value: "Report" },
      { op: "add", path: "/components/0/props/tone", value: "success" },
    ));
    expect(next.components.map((c) => c.id)).toEqual(["hello", "status", "totals", "settings"]);
    expect(next.components[0]).toEqual({ id: "hello", type: "text", value: "Hi", tone: "success" });
    expect(next.title).toBe("Report");
  });

  it("replaces and adds the root; accepts JSON text patches", () => {
    const replaced = applyPatch(baseDocument(), patch({ op: "replace", path: "", value: { v: 1, surface: "other", components: [] } }));
    expect(replaced.surface).toBe("other");
    const empty = normalizeDocument({ v: 1, surface: "chat", components: [] });
    const text = JSON.stringify(patch({ op: "add", path: "/components/-", value: { id: "a", type: "markdown", props: { value: "*hi*" } } }));
    expect(applyPatch(empty, text).components).toEqual([{ id: "a", type: "markdown", value: "*hi*" }]);
  });

  it("decodes ~0 and ~1 and refuses other escapes (A8)", () => {
    const doc = baseDocument();
    rejected(doc, patch({ op: "add", path: "/components/0/a~2b", value: 1 }), /escape/);
    rejected(doc, patch({ op: "add", path: "/components/0/a~", value: 1 }), /escape/);
    // ~1 decodes to "/": a key "a/b" is not a text prop, so normalisation refuses it.
    rejected(doc, patch({ op: "add", path: "/components/0/a~1b", value: 1 }), /unknown key 'a\/b'/);
  });

  it.each([
    ["replace of a missing array index (A7)", patch({ op: "replace", path: "/components/99/value", value: "x" }), /exceeds length/],
    ["remove of the root (A10)", patch({ op: "remove", path: "" }), /root/],
    ["replace of a missing key", patch({ op: "replace", path: "/components/0/nope", value: "x" }), /does not exist/],
    ["remove of a missing key", patch({ op: "remove", path: "/title" }), /does not exist/],
    ["'-' with replace", patch({ op: "replace", path: "/components/-", value: {} }), /only valid for add/],
    ["non-canonical index", patch({ op: "replace", path: "/components/01/value", value: "x" }), /canonical/],
    ["'+' index", patch({ op: "remove", path: "/components/+1" }), /canonical/],
    ["add past the end", patch({ op: "add", path: "/components/5", value: {} }), /exceeds length/],
    ["traversal through a scalar", patch({ op: "add", path: "/components/0/value/x", value: 1 }), /scalar/],
    ["missing parent", patch({ op: "add", path: "/nope/x", value: 1 }), /does not exist/],
    ["path without leading slash", patch({ op: "add", path: "components", value: 1 }), /start with/],
    ["move op", patch({ op: "move", from: "/a", path: "/b" }), /unknown key|add, replace or remove/],
    ["test op", patch({ op: "test", path: "/v", value: 1 }), /add, replace or remove/],
    ["add without value", patch({ op: "add", path: "/title" }), /requires a value/],
    ["remove with value", patch({ op: "remove", path: "/components/0", value: 1 }), /must not have a value/],
    ["empty ops", { v: 1, ops: [] }, /non-empty/],
    ["wrong version", { v: 2, ops: [{ op: "remove", path: "/components/0" }] }, /version/],
    ["not an object", [1], /object/],
    ["invalid JSON text", "{\"v\":1,\"ops\":[", /JSON/],
    ["result not a valid document", patch({ op: "replace", path: "/components/0/tone", value: "<script>" }), /tone/],
    ["result with a duplicate id", patch({ op: "replace", path: "/components/1/id", value: "status" }), /two components/],
  ])("refuses %s", (_name, p, message) => {
    rejected(baseDocument(), p, message);
  });

  it("is atomic: a failing later op leaves nothing applied", () => {
    const doc = baseDocument();
    rejected(doc, patch(
      { op: "replace", path: "/components/0/value", value: "changed" },
      { op: "remove", path: "/components/42" },
    ));
    expect(doc.components[0]?.value).toBe("Draft");
  });
});

describe("applyPatch: hostile patches", () => {
  it.each([
    "/__proto__/polluted",
    "/components/0/props/__proto__/polluted",
    "/components/0/__proto__",
    "/constructor/prototype/polluted",
    "/components/0/constructor",
    "/components/prototype",
    "/title~1x/__proto__",
  ])("refuses the path %s and leaves Object.prototype clean", (path) => {
    rejected(baseDocument(), patch({ op: "add", path, value: true }), /forbidden/);
    rejected(baseDocument(), patch({ op: "replace", path, value: { polluted: true } }), /forbidden/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted")).toBe(false);
  });

  it("refuses forbidden keys inside values", () => {
    const value = JSON.parse('{"id":"x","type":"text","props":{"value":"v","__proto__":{"polluted":true}}}');
    rejected(baseDocument(), patch({ op: "add", path: "/components/-", value }), /forbidden/);
    rejected(baseDocument(), JSON.stringify({ v: 1, ops: [{ op: "add", path: "/components/-", value }] }), /forbidden/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("bounds paths, ops, values and the result", () => {
    const doc = baseDocument();
    rejected(doc, patch({ op: "add", path: "/" + "a".repeat(600), value: 1 }), /longer than 512/);
    rejected(doc, patch({ op: "add", path: "/a".repeat(40), value: 1 }), /segments/);
    rejected(doc, { v: 1, ops: Array.from({ length: 257 }, () => ({ op: "add", path: "/components/1/items/-", value: "x" })) }, /256 ops/);
    rejected(doc, patch({ op: "replace", path: "/components/0/value", value: "x".repeat(2 * 1024 * 1024) }), /larger than/);
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    rejected(doc, patch({ op: "add", path: "/components/-", value: deep }), /deeper/);
    rejected(doc, { v: 1, ops: Array.from({ length: 255 }, () => ({ op: "add", path: "/components/1/items/-", value: "x" })) }, /at most 256/);
    expect(applyPatch(doc, { v: 1, ops: Array.from({ length: 200 }, () => ({ op: "add", path: "/components/1/items/-", value: "x" })) })
      .components[1]?.items).toHaveLength(202);
    rejected(doc, patch({ op: "add", path: "/components/1/items/-", value: "x" }, { op: "add", path: "/components/1/items/-", value: 5n }), /JSON value/);
  });
});
