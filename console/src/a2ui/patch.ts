/**
 * A2UI patch engine (reference runtime.md §8.3): `{"v":1,"ops":[{op, path, value?}]}` with
 * add / replace / remove on RFC 6901 pointers into the *normalised* document.
 *
 * - Pure and atomic: ops run in order on a private copy; any failure throws `A2uiError` and the
 *   input document is untouched. The result is normalised again (and so fully re-validated).
 * - Default-reset bug fixed: the normaliser reads the normalised `defaultValue` key, so a patch
 *   no longer resets form defaults (and a patch of `.../defaultValue` takes effect).
 * - Refused: `__proto__` / `constructor` / `prototype` tokens (at parse time), paths over 512
 *   characters or 16 segments, more than 256 ops, patch JSON above 1 MiB or nested too deeply.
 */
import { A2uiError, type A2uiDocument } from "./types";
import { A2UI_LIMITS, FORBIDDEN_KEYS, normalizeDocument, readJsonInput, safeJsonCopy, type JsonValue } from "./normalize";

export const A2UI_PATCH_LIMITS = Object.freeze({
  maxOps: 256,
  maxPathLength: 512,
  maxPathSegments: 16,
  maxPatchBytes: A2UI_LIMITS.maxDocumentBytes,
  /** patch -> ops -> op -> value (a whole document at most). */
  maxDepth: A2UI_LIMITS.maxDepth + 3,
});

type Op = { op: "add" | "replace" | "remove"; tokens: string[]; path: string; value?: JsonValue };
type Container = JsonValue[] | { [key: string]: JsonValue };

const CANONICAL_INDEX = /^(0|[1-9][0-9]*)$/;

function parsePointer(path: string, index: number): string[] {
  if (path.length > A2UI_PATCH_LIMITS.maxPathLength) {
    throw new A2uiError(`ops[${index}].path is longer than ${A2UI_PATCH_LIMITS.maxPathLength} characters`);
  }
  if (path === "") return [];
  if (!path.startsWith("/")) throw new A2uiError(`ops[${index}].path '${path}' must be empty or start with '/'`);
  const raw = path.slice(1).split("/");
  if (raw.length > A2UI_PATCH_LIMITS.maxPathSegments) {
    throw new A2uiError(`ops[${index}].path has more than ${A2UI_PATCH_LIMITS.maxPathSegments} segments`);
  }
  return raw.map((segment) => {
    if (/~(?![01])/.test(segment)) throw new A2uiError(`ops[${index}].path '${path}' has an invalid '~' escape`);
    const token = segment.replace(/~1/g, "/").replace(/~0/g, "~");
    if (FORBIDDEN_KEYS.has(token)) throw new A2uiError(`ops[${index}].path uses the forbidden token '${token}'`);
    return token;
  });
}

function parsePatch(raw: unknown): Op[] {
  const patch = readJsonInput(raw, A2UI_PATCH_LIMITS.maxDepth, A2UI_PATCH_LIMITS.maxPatchBytes, "patch");
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) throw new A2uiError("patch must be a JSON object");
  for (const key of Object.keys(patch)) {
    if (key !== "v" && key !== "ops") throw new A2uiError(`patch has the unknown key '${key}'`);
  }
  if (patch.v !== 1) throw new A2uiError("unsupported A2UI patch version (v must be 1)");
  const ops = patch.ops;
  if (!Array.isArray(ops) || ops.length === 0) throw new A2uiError("patch.ops must be a non-empty array");
  if (ops.length > A2UI_PATCH_LIMITS.maxOps) throw new A2uiError(`patch has more than ${A2UI_PATCH_LIMITS.maxOps} ops`);
  return ops.map((entry, index): Op => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new A2uiError(`ops[${index}] must be an object`);
    for (const key of Object.keys(entry)) {
      if (key !== "op" && key !== "path" && key !== "value") throw new A2uiError(`ops[${index}] has the unknown key '${key}'`);
    }
    const op = entry.op;
    if (op !== "add" && op !== "replace" && op !== "remove") {
      throw new A2uiError(`ops[${index}].op must be add, replace or remove`);
    }
    if (typeof entry.path !== "string") throw new A2uiError(`ops[${index}].path must be a string`);
    const tokens = parsePointer(entry.path, index);
    const hasValue = Object.prototype.hasOwnProperty.call(entry, "value");
    if (op === "remove") {
      if (hasValue) throw new A2uiError(`ops[${index}]: remove must not have a value`);
      return { op, tokens, path: entry.path };
    }
    if (!hasValue) throw new A2uiError(`ops[${index}]: ${op} requires a value`);
    return { op, tokens, path: entry.path, value: entry.value as JsonValue };
  });
}

function isContainer(value: JsonValue | undefined): value is Container {
  return typeof value === "object" && value !== null;
}

function hasKey(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

function arrayIndex(token: string, length: number, where: string): number {
  if (!CANONICAL_INDEX.test(token)) throw new A2uiError(`${where}: array index must be a canonical base-10 integer`);
  const index = Number(token);
  if (index >= length) throw new A2uiError(`${where}: array index ${index} exceeds length ${length}`);
  return index;
}

function setKey(obj: { [key: string]: JsonValue }, key: string, value: JsonValue): void {
  // Tokens are already free of forbidden names; defineProperty avoids any setter semantics.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function applyOp(root: JsonValue, op: Op, index: number): JsonValue {
  const where = `ops[${index}] (${op.op} '${op.path}')`;
  if (op.tokens.length === 0) {
    if (op.op === "remove") throw new A2uiError(`${where}: cannot remove the document root`);
    return op.value as JsonValue;
  }
  let parent: JsonValue = root;
  for (const token of op.tokens.slice(0, -1)) {
    if (Array.isArray(parent)) {
      parent = parent[arrayIndex(token, parent.length, where)] as JsonValue;
    } else if (isContainer(parent)) {
      if (!hasKey(parent, token)) throw new A2uiError(`${where}: path segment '${token}' does not exist`);
      parent = parent[token] as JsonValue;
    } else {
      throw new A2uiError(`${where}: path traverses through a scalar value`);
    }
  }
  if (!isContainer(parent)) throw new A2uiError(`${where}: path traverses through a scalar value`);
  const leaf = op.tokens[op.tokens.length - 1] as string;
  if (Array.isArray(parent)) {
    if (leaf === "-") {
      if (op.op !== "add") throw new A2uiError(`${where}: array '-' token is only valid for add operations`);
      parent.push(op.value as JsonValue);
    } else if (op.op === "add") {
      parent.splice(arrayIndex(leaf, parent.length + 1, where), 0, op.value as JsonValue);
    } else if (op.op === "replace") {
      parent[arrayIndex(leaf, parent.length, where)] = op.value as JsonValue;
    } else {
      parent.splice(arrayIndex(leaf, parent.length, where), 1);
    }
    return root;
  }
  if (op.op !== "add" && !hasKey(parent, leaf)) throw new A2uiError(`${where}: ${op.op} target does not exist`);
  if (op.op === "remove") delete parent[leaf];
  else setKey(parent, leaf, op.value as JsonValue);
  return root;
}

/**
 * Applies an A2UI patch (an object, or its JSON text) to a normalised document and returns a
 * new normalised document. Throws `A2uiError` (and changes nothing) if any op fails or the
 * result is not a valid document.
 */
export function applyPatch(doc: A2uiDocument, patch: unknown): A2uiDocument {
  const ops = parsePatch(patch);
  let working = safeJsonCopy(doc, A2UI_LIMITS.maxDepth, A2UI_LIMITS.maxDocumentBytes);
  ops.forEach((op, index) => {
    working = applyOp(working, op, index);
  });
  return normalizeDocument(working);
}
