/**
 * Property fuzzing (fast-check) of the A2UI normaliser and patch engine: whatever a skill
 * returns — random JSON, hostile keys, valid documents with random subtrees swapped in, random
 * patches — ends in a frozen normalised document or an A2uiError; any other exception fails.
 *
 * Why fast-check and not a coverage-guided fuzzer: Jazzer.js 4 (the only one installable from
 * npm without reaching GitHub) needs glibc 2.38 and Debian 12 has 2.36. The Python parsers are
 * fuzzed coverage-guided with atheris (fuzz/). Runs per property: $A2UI_FUZZ_RUNS (default 300
 * in `make test`; `make fuzz` runs many more), seeded by $A2UI_FUZZ_SEED when set so a failure
 * printed by fast-check can be replayed.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { A2uiError, applyPatch, normalizeDocument, type A2uiDocument } from "../src/a2ui";

declare const process: { env: Record<string, string | undefined> }; // node, without @types/node

const RUNS = Number(process.env.A2UI_FUZZ_RUNS ?? "300");
const SEED = process.env.A2UI_FUZZ_SEED === undefined ? undefined : Number(process.env.A2UI_FUZZ_SEED);
const OPTIONS = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };
const TIMEOUT_MS = Math.max(10_000, RUNS * 5); // long runs (make fuzz) must not hit vitest's 5 s

function validDocument(): Record<string, unknown> {
  return {
    v: 1,
    surface: "main",
    components: [
      { id: "title", type: "markdown", props: { value: "# Report\n- a\n[docs](https://example.com)" } },
      { id: "status", type: "text", props: { tone: "critical", value: "3 open" } },
      { id: "items", type: "list", props: { ordered: false, items: ["a", "b"] } },
      { id: "table", type: "table", props: { columns: ["A", "B"], rows: [["1", "2"]] } },
      { id: "chart", type: "chart", props: { title: "T", kind: "bar", series: [{ label: "x", value: 1 }] } },
      { id: "form", type: "form", props: { title: "F", submit_label: "Go", submit_tool: "add", fields: [
        { id: "n", label: "N", type: "number", required: true, min: 0, max: 10, step: 1, default: 2 },
        { id: "s", label: "S", type: "select", required: false, options: [{ label: "A", value: "a" }], default: "a" },
        { id: "c", label: "C", type: "checkbox", required: false, default: true },
      ] } },
    ],
  };
}

/** Passes when `run` returns or throws an A2uiError; rethrows anything else. */
function contained<T>(run: () => T): T | undefined {
  try {
    return run();
  } catch (error) {
    if (error instanceof A2uiError) return undefined;
    throw error;
  }
}

const hostileKey = fc.constantFrom("__proto__", "constructor", "prototype", "v", "surface", "components",
  "id", "type", "props", "value", "items", "rows", "columns", "series", "fields", "ops", "op", "path", "");
const key = fc.oneof(hostileKey, fc.string({ maxLength: 8 }));
const leaf = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
  fc.constantFrom("text", "markdown", "list", "table", "form", "chart", "bar", "line", "javascript:alert(1)",
    "<script>x</script>", "https://example.com", 1, 0, -1, 1e308, Number.NaN));
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ maxDepth: 6, depthIdentifier: "tree" }, leaf,
    fc.array(tie("tree"), { maxLength: 5 }),
    fc.dictionary(key, tie("tree"), { maxKeys: 6 })),
}));

/** Sets `value` at a random path of `doc` (a structural mutation of a valid document). */
function mutated(doc: Record<string, unknown>, steps: number[], value: unknown): unknown {
  const root = structuredClone(doc) as Record<string, unknown>;
  let node: unknown = root;
  for (const [depth, step] of steps.entries()) {
    if (node === null || typeof node !== "object") break;
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const chosen = keys[step % keys.length] as string;
    if (depth === steps.length - 1) {
      (node as Record<string, unknown>)[chosen] = value;
      break;
    }
    node = (node as Record<string, unknown>)[chosen];
  }
  return root;
}

function expectFrozenDocument(doc: A2uiDocument | undefined): void {
  if (doc === undefined) return;
  expect(Object.isFrozen(doc)).toBe(true);
  expect(Object.isFrozen(doc.components)).toBe(true);
}

describe("A2UI fuzz: the normaliser", () => {
  it("turns any JSON value into a frozen document or an A2uiError", () => {
    fc.assert(fc.property(tree, (raw) => expectFrozenDocument(contained(() => normalizeDocument(raw)))), OPTIONS);
  }, TIMEOUT_MS);

  it("survives any text, JSON or not", () => {
    fc.assert(fc.property(fc.string({ maxLength: 400 }), (raw) => {
      expectFrozenDocument(contained(() => normalizeDocument(raw)));
    }), OPTIONS);
  }, TIMEOUT_MS);

  it("survives a valid document with any subtree replaced", () => {
    const steps = fc.array(fc.nat({ max: 50 }), { minLength: 1, maxLength: 6 });
    fc.assert(fc.property(steps, tree, (path, value) => {
      expectFrozenDocument(contained(() => normalizeDocument(mutated(validDocument(), path, value))));
    }), OPTIONS);
  }, TIMEOUT_MS);
});

describe("A2UI fuzz: the patch engine", () => {
  const base = normalizeDocument(validDocument());
  const op = fc.record({
    op: fc.constantFrom("add", "replace", "remove", "move", "copy", "test", "nope", "__proto__"),
    path: fc.oneof(
      fc.constantFrom("/components/0/value", "/components/2/items/0", "/components/-", "/components/5/fields/0/defaultValue",
        "/surface", "/", "", "/__proto__/x", "/components/constructor", "/components/99", "/components/1/tone"),
      fc.array(key, { maxLength: 5 }).map((parts) => "/" + parts.join("/")),
    ),
    value: tree,
    from: fc.constantFrom("/components/0", "/components/1/value", "/x"),
  }, { requiredKeys: ["op"] });
  const patch = fc.oneof(
    fc.record({ v: fc.constantFrom(1, 2, "1"), ops: fc.array(op, { maxLength: 6 }) }),
    tree,
  );

  it("applies any patch to a valid document or refuses it with an A2uiError", () => {
    fc.assert(fc.property(patch, (p) => {
      expectFrozenDocument(contained(() => applyPatch(base, p)));
      expect(Object.isFrozen(base)).toBe(true); // the input document never changes
    }), OPTIONS);
  }, TIMEOUT_MS);
});
