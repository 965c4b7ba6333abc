import { describe, expect, it } from "vitest";
import { buildSchemaForm } from "../src/app/schemaForm";

function mount(schema: unknown) {
  const form = buildSchemaForm(schema, { idPrefix: "t" });
  document.body.replaceChildren(form.element);
  return form;
}

function field<T extends HTMLElement = HTMLInputElement>(path: string): T {
  const el = document.querySelector<T>(`[data-testid="field-${path}"]`);
  if (!el) throw new Error(`no field ${path}`);
  return el;
}

function set(path: string, value: string): void {
  const el = field<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>(path);
  el.value = value;
  el.dispatchEvent(new Event("input", { bubbles: true }));
}

function labelOf(el: HTMLElement): string {
  return document.querySelector(`label[for="${el.id}"]`)?.textContent ?? "";
}

describe("schemaForm: strings", () => {
  const schema = {
    type: "object",
    properties: {
      city: { type: "string", description: "City name", minLength: 1, maxLength: 10, pattern: "\\S" },
      note: { type: "string" },
    },
    required: ["city"],
  };

  it("renders labelled inputs with hints and a required marker", () => {
    mount(schema);
    const city = field("city");
    expect(city.tagName).toBe("INPUT");
    expect(city.maxLength).toBe(10);
    expect(city.required).toBe(true);
    expect(city.getAttribute("aria-required")).toBe("true");
    expect(labelOf(city)).toContain("city");
    expect(labelOf(city)).toContain("*");
    expect(labelOf(field("note"))).not.toContain("*");
    const hint = document.getElementById(city.getAttribute("aria-describedby")!.split(" ")[0]!);
    expect(hint?.textContent).toContain("City name");
    expect(hint?.textContent).toContain("1–10 characters");
    expect(hint?.textContent).toContain("must match \\S");
  });

  it("requires required strings and omits empty optional ones", () => {
    const form = mount(schema);
    const bad = form.collect();
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors[0]).toEqual({ path: "city", message: "city is required" });
    expect(field("city").getAttribute("aria-invalid")).toBe("true");
    set("city", "Oslo");
    expect(form.collect()).toEqual({ ok: true, value: { city: "Oslo" } });
    expect(field("city").hasAttribute("aria-invalid")).toBe(false);
  });

  it("checks maxLength and pattern", () => {
    const form = mount(schema);
    set("city", "a very long city");
    let result = form.collect();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]?.message).toMatch(/at most 10 characters/);
    set("city", "   ");
    result = form.collect();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]?.message).toMatch(/pattern/);
  });

  it("prefills defaults", () => {
    const form = mount({ type: "object", properties: { units: { type: "string", default: "metric" } } });
    expect(form.collect()).toEqual({ ok: true, value: { units: "metric" } });
  });
});

describe("schemaForm: numbers", () => {
  const schema = {
    type: "object",
    properties: {
      limit: { type: "integer", minimum: 1, maximum: 20, default: 10 },
      ratio: { type: "number", exclusiveMinimum: 0, maximum: 1 },
    },
    required: ["limit"],
  };

  it("sets min/max/step and collects typed numbers", () => {
    const form = mount(schema);
    const limit = field("limit");
    expect(limit.type).toBe("number");
    expect(limit.min).toBe("1");
    expect(limit.max).toBe("20");
    expect(limit.step).toBe("1");
    expect(field("ratio").step).toBe("any");
    expect(form.collect()).toEqual({ ok: true, value: { limit: 10 } });
    set("ratio", "0.5");
    expect(form.collect()).toEqual({ ok: true, value: { limit: 10, ratio: 0.5 } });
  });

  it("enforces bounds and integers", () => {
    const form = mount(schema);
    for (const [value, message] of [
      ["0", /at least 1/],
      ["21", /at most 20/],
      ["2.5", /whole number/],
    ] as const) {
      set("limit", value);
      const result = form.collect();
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.errors[0]?.message).toMatch(message);
    }
    set("limit", "3");
    set("ratio", "0");
    const result = form.collect();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toEqual([{ path: "ratio", message: "must be greater than 0" }]);
  });

  it("requires a required number", () => {
    const form = mount(schema);
    set("limit", "");
    const result = form.collect();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]?.path).toBe("limit");
  });
});

describe("schemaForm: booleans and enums", () => {
  it("collects a checkbox as a boolean", () => {
    const form = mount({ type: "object", properties: { loud: { type: "boolean", default: true } } });
    const box = field("loud");
    expect(box.type).toBe("checkbox");
    expect(form.collect()).toEqual({ ok: true, value: { loud: true } });
    box.checked = false;
    expect(form.collect()).toEqual({ ok: true, value: { loud: false } });
  });

  it("renders an enum as a select and returns the typed value", () => {
    const form = mount({
      type: "object",
      properties: {
        units: { type: "string", enum: ["metric", "imperial"], default: "metric" },
        level: { enum: [1, 2, 3] },
      },
      required: ["units"],
    });
    const units = field<HTMLSelectElement>("units");
    expect(units.tagName).toBe("SELECT");
    expect([...units.options].map((o) => o.textContent)).toEqual(["metric", "imperial"]);
    const level = field<HTMLSelectElement>("level");
    expect([...level.options].map((o) => o.textContent)).toEqual(["(not set)", "1", "2", "3"]);
    expect(form.collect()).toEqual({ ok: true, value: { units: "metric" } });
    units.value = "1";
    level.value = "2";
    expect(form.collect()).toEqual({ ok: true, value: { units: "imperial", level: 3 } });
  });

  it("treats anyOf [X, null] as an optional X", () => {
    const form = mount({
      type: "object",
      properties: { tag: { anyOf: [{ type: "string", pattern: "^[a-z]+$" }, { type: "null" }] } },
    });
    expect(field("tag").tagName).toBe("INPUT");
    expect(form.collect()).toEqual({ ok: true, value: {} });
    set("tag", "UPPER");
    expect(form.collect().ok).toBe(false);
    set("tag", "lower");
    expect(form.collect()).toEqual({ ok: true, value: { tag: "lower" } });
  });
});

describe("schemaForm: arrays", () => {
  const schema = {
    type: "object",
    properties: {
      tags: { type: "array", items: { type: "string", pattern: "^[a-z]+$" }, maxItems: 2, uniqueItems: true },
    },
  };

  it("adds and removes rows and collects the items", () => {
    const form = mount(schema);
    expect(form.collect()).toEqual({ ok: true, value: {} });
    const add = field<HTMLButtonElement>("tags-add");
    add.click();
    add.click();
    expect(add.disabled).toBe(true); // maxItems
    set("tags.0", "a");
    set("tags.1", "b");
    expect(form.collect()).toEqual({ ok: true, value: { tags: ["a", "b"] } });
    field<HTMLButtonElement>("tags.0-remove").click();
    expect(add.disabled).toBe(false);
    expect(form.collect()).toEqual({ ok: true, value: { tags: ["b"] } });
  });

  it("validates items and uniqueness", () => {
    const form = mount(schema);
    const add = field<HTMLButtonElement>("tags-add");
    add.click();
    add.click();
    set("tags.0", "BAD");
    set("tags.1", "ok");
    let result = form.collect();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]?.path).toBe("tags.0");
    set("tags.0", "ok");
    result = form.collect();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]?.message).toMatch(/distinct/);
  });

  it("starts with minItems rows and array defaults; numbers in arrays are typed", () => {
    const form = mount({
      type: "object",
      properties: {
        ns: { type: "array", items: { type: "integer", maximum: 5 }, minItems: 1 },
        words: { type: "array", items: { type: "string" }, default: ["x"] },
      },
      required: ["ns"],
    });
    set("ns.0", "4");
    expect(form.collect()).toEqual({ ok: true, value: { ns: [4], words: ["x"] } });
    field<HTMLButtonElement>("ns.0-remove").click();
    const result = form.collect();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]?.message).toMatch(/at least 1/);
  });
});

describe("schemaForm: nested objects", () => {
  const schema = {
    type: "object",
    properties: {
      address: {
        type: "object",
        title: "Address",
        properties: { street: { type: "string" }, zip: { type: "integer" } },
        required: ["street"],
      },
      extra: { type: "object", properties: { note: { type: "string" } }, required: ["note"] },
    },
    required: ["address"],
  };

  it("renders fieldsets with legends and collects nested values", () => {
    const form = mount(schema);
    const fieldset = field<HTMLFieldSetElement>("address");
    expect(fieldset.tagName).toBe("FIELDSET");
    expect(fieldset.querySelector("legend")?.textContent).toContain("Address");
    set("address.street", "Main St 1");
    set("address.zip", "1234");
    expect(form.collect()).toEqual({ ok: true, value: { address: { street: "Main St 1", zip: 1234 } } });
  });

  it("reports nested required fields by path", () => {
    const form = mount(schema);
    const result = form.collect();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.map((e) => e.path)).toEqual(["address.street"]);
  });

  it("leaves out an optional object until it is included", () => {
    const form = mount(schema);
    set("address.street", "x");
    expect(form.collect()).toEqual({ ok: true, value: { address: { street: "x" } } });
    const include = field("extra-include");
    include.checked = true;
    include.dispatchEvent(new Event("change"));
    expect(form.collect().ok).toBe(false); // extra.note is required once included
    set("extra.note", "hi");
    expect(form.collect()).toEqual({ ok: true, value: { address: { street: "x" }, extra: { note: "hi" } } });
  });
});

describe("schemaForm: fallbacks", () => {
  it("uses a JSON text area for a schema it cannot map", () => {
    const form = mount({ type: "object", properties: { values: { type: "object", additionalProperties: true } } });
    const area = field<HTMLTextAreaElement>("values");
    expect(area.tagName).toBe("TEXTAREA");
    set("values", "{\"a\": 1}");
    expect(form.collect()).toEqual({ ok: true, value: { values: { a: 1 } } });
    set("values", "{nope");
    const result = form.collect();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]?.message).toMatch(/not valid JSON/);
  });

  it("gives an empty object for a tool without input properties", () => {
    const form = mount({ type: "object", properties: {}, additionalProperties: false });
    expect(form.element.textContent).toContain("takes no input");
    expect(form.collect()).toEqual({ ok: true, value: {} });
  });

  it("falls back to raw JSON when there is no schema", () => {
    const form = mount(undefined);
    expect(form.collect()).toEqual({ ok: true, value: {} });
    set("input", "[1, 2]");
    expect(form.collect()).toEqual({ ok: true, value: [1, 2] });
  });

  it("never builds HTML from schema strings", () => {
    mount({ type: "object", properties: { x: { type: "string", title: "<img src=x onerror=alert(1)>", description: "<b>hi</b>" } } });
    expect(document.querySelector("img")).toBeNull();
    expect(document.querySelector("b")).toBeNull();
    expect(document.body.textContent).toContain("<img src=x onerror=alert(1)>");
  });
});
