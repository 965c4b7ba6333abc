/// <reference types="vite/client" />
import { describe, expect, it, vi } from "vitest";
import { A2uiError, normalizeDocument, renderDocument, safeHttpUrl, type A2uiDocument } from "../src/a2ui";

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

function render(raw: unknown, onSubmit?: (id: string, values: Record<string, unknown>) => void): HTMLElement {
  const root = renderDocument(normalizeDocument(raw), onSubmit ? { onSubmit } : {});
  document.body.append(root);
  return root;
}

function allElements(root: Element): Element[] {
  return [root, ...Array.from(root.querySelectorAll("*"))];
}

function expectNoActiveContent(root: Element): void {
  expect(root.querySelectorAll("script, iframe, object, embed, img, style, link, meta, base").length).toBe(0);
  for (const el of allElements(root)) {
    for (const name of el.getAttributeNames()) {
      expect(name.toLowerCase().startsWith("on"), `${el.tagName} has ${name}`).toBe(false);
      expect(name.toLowerCase()).not.toBe("style");
      expect(name.toLowerCase()).not.toBe("srcdoc");
    }
  }
  for (const a of Array.from(root.querySelectorAll("a"))) {
    expect(a.getAttribute("href")).toMatch(/^https?:\/\//);
  }
}

describe("renderDocument: the SDK document", () => {
  it("renders every component type", () => {
    const root = render(sdkDocument());
    expect(root.tagName).toBe("SECTION");
    expect(root.className).toBe("a2ui-document");
    expect(root.getAttribute("data-surface")).toBe("main");
    const articles = Array.from(root.querySelectorAll("article.a2ui-component"));
    expect(articles.map((a) => a.getAttribute("data-component-id"))).toEqual([
      "title", "summary", "notes", "bullets", "steps", "latest", "totals", "trend", "add-expense",
    ]);
    expect(root.querySelector("[data-component-id=title] h3")?.textContent).toBe("Expense report");
    const text = root.querySelector("[data-component-id=summary] p");
    expect(text?.textContent).toBe("3 open incidents");
    expect(text?.classList.contains("a2ui-tone-critical")).toBe(true);

    const notes = root.querySelector("[data-component-id=notes]") as HTMLElement;
    expect(notes.querySelector("strong")?.textContent).toBe("bold");
    expect(notes.querySelector("em")?.textContent).toBe("em");
    expect(notes.querySelector("code")?.textContent).toBe("code");
    expect(Array.from(notes.querySelectorAll("ul li")).map((li) => li.textContent)).toEqual(["one", "two"]);
    expect(Array.from(notes.querySelectorAll("ol li")).map((li) => li.textContent)).toEqual(["first", "second"]);
    const link = notes.querySelector("a") as HTMLAnchorElement;
    expect(link.getAttribute("href")).toBe("https://example.com/docs");
    expect(link.getAttribute("rel")).toBe("noopener noreferrer");
    expect(link.getAttribute("target")).toBe("_blank");

    expect(Array.from(root.querySelectorAll("[data-component-id=bullets] ul > li")).map((li) => li.textContent)).toEqual(["a", "2", "true"]);
    expect(root.querySelectorAll("[data-component-id=steps] ol > li")).toHaveLength(1);

    const table = root.querySelector("[data-component-id=latest] table") as HTMLTableElement;
    expect(Array.from(table.querySelectorAll("thead th")).map((th) => th.textContent)).toEqual(["#", "Date", "Category", "Amount (EUR)", "Description"]);
    expect(table.tBodies[0]?.rows).toHaveLength(2);
    expect(table.tBodies[0]?.rows[0]?.cells[0]?.tagName).toBe("TH");
    expect(table.tBodies[0]?.rows[1]?.cells[4]?.textContent).toBe("");

    const bars = Array.from(root.querySelectorAll("[data-component-id=totals] svg rect"));
    expect(bars).toHaveLength(4);
    const heights = bars.map((r) => Number(r.getAttribute("height")));
    expect(Math.max(...heights)).toBeLessThanOrEqual(200);
    expect(heights[2]).toBe(0);
    expect(root.querySelector("[data-component-id=totals] figcaption")?.textContent).toBe("EUR per category");
    expect(root.querySelector("[data-component-id=totals] svg")?.getAttribute("aria-label")).toBe("EUR per category");
    expect(root.querySelector("[data-component-id=trend] svg polyline")?.getAttribute("points")?.split(" ")).toHaveLength(2);
    expect(root.querySelector("[data-component-id=totals] svg")?.namespaceURI).toBe("http://www.w3.org/2000/svg");

    const form = root.querySelector("[data-component-id=add-expense] form") as HTMLFormElement;
    expect(form.querySelector("fieldset > legend")?.textContent).toBe("Add an expense");
    for (const label of Array.from(form.querySelectorAll("label"))) {
      const control = document.getElementById(label.htmlFor);
      expect(control, label.textContent ?? "").not.toBeNull();
      expect(form.contains(control)).toBe(true);
    }
    expect((form.elements.namedItem("category") as HTMLSelectElement).value).toBe("meals");
    const amount = form.elements.namedItem("amount") as HTMLInputElement;
    expect([amount.type, amount.min, amount.max, amount.step, amount.value, amount.required]).toEqual(["number", "0.01", "5000", "0.01", "0.01", true]);
    expect((form.elements.namedItem("description") as HTMLInputElement).placeholder).toBe("What was it for?");
    expect((form.elements.namedItem("email") as HTMLInputElement).type).toBe("email");
    expect((form.elements.namedItem("urgent") as HTMLInputElement).checked).toBe(true);
    expect(form.querySelector("button[type=submit]")?.textContent).toBe("Add");
    expectNoActiveContent(root);
  });

  it("shows an empty state and the document title", () => {
    const root = render({ v: 1, surface: "chat", title: "Hello", components: [] });
    expect(root.querySelector("h2")?.textContent).toBe("Hello");
    expect(root.textContent).toContain("No renderable components");
  });

  it("re-validates whatever it is given", () => {
    const bogus = { v: 1, surface: "s", components: [{ id: "x", type: "text", value: "<b>", tone: "\" onclick=\"alert(1)" }] } as unknown as A2uiDocument;
    expect(() => renderDocument(bogus)).toThrow(A2uiError);
  });

  it("gives form controls ids that are unique across renders", () => {
    const a = render(sdkDocument());
    const b = render(sdkDocument());
    const ids = [...allElements(a), ...allElements(b)].map((el) => el.id).filter(Boolean);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe("renderDocument: hostile content is only ever text", () => {
  const SCRIPT = "<script>alert(1)</script>";
  const hostile = {
    v: 1,
    surface: "evil\"><script>alert(1)</script>",
    components: [
      { id: "t", type: "text", props: { value: SCRIPT } },
      { id: "m", type: "markdown", props: { value: [
        "# <img src=x onerror=alert(1)>",
        "<script>alert(2)</script>",
        "[bad](javascript:alert(1)) [bad2](JaVaScRiPt:alert(1)) [data](data:text/html,<script>alert(1)</script>)",
        "[vb](vbscript:msgbox(1)) [rel](//evil.example/x) [file](file:///etc/passwd) [creds](https://user:pw@example.com/)",
        "[ok](https://example.com/)",
        "- <a href=\"javascript:alert(1)\" onclick=\"alert(1)\">x</a>",
        "**<b onmouseover=alert(1)>bold</b>** `<svg onload=alert(1)>`",
      ].join("\n") } },
      { id: "l", type: "list", props: { items: ["\"><img src=x onerror=alert(1)>", SCRIPT] } },
      { id: "tb", type: "table", props: { columns: ["<th onclick=alert(1)>"], rows: [[SCRIPT], ["javascript:alert(1)"]] } },
      { id: "c", type: "chart", props: { title: SCRIPT, series: [{ label: "<script>", value: 1 }] } },
      { id: "f", type: "form", props: { title: SCRIPT, submit_label: "<b onclick=x>", fields: [
        { id: "x", type: "text", label: "\" onfocus=\"alert(1)", placeholder: "\" autofocus onfocus=\"alert(1)", default: SCRIPT, hint: SCRIPT },
        { id: "s", type: "select", label: "Pick", options: [{ value: "a", label: SCRIPT }] },
      ] } },
    ],
  };

  it("renders no script, no on* attribute, no style and only the one safe link", () => {
    const root = render(hostile);
    expectNoActiveContent(root);
    const links = Array.from(root.querySelectorAll("a"));
    expect(links.map((a) => a.getAttribute("href"))).toEqual(["https://example.com/"]);
    expect(root.innerHTML).not.toMatch(/<script/i);
    expect(root.querySelectorAll("[href], [src], [action], [formaction], [xlink\\:href]")).toHaveLength(1);
  });

  it("shows the hostile strings literally", () => {
    const root = render(hostile);
    expect(root.querySelector("[data-component-id=t] p")?.textContent).toBe(SCRIPT);
    expect(root.getAttribute("data-surface")).toBe("evil\"><script>alert(1)</script>");
    const markdown = root.querySelector("[data-component-id=m]")?.textContent ?? "";
    expect(markdown).toContain("<img src=x onerror=alert(1)>");
    expect(markdown).toContain("[bad](javascript:alert(1))");
    expect(markdown).toContain("[data](data:text/html,<script>alert(1)</script>)");
    expect(root.querySelectorAll("[data-component-id=m] .a2ui-link-refused")).toHaveLength(7);
    expect(root.querySelector("[data-component-id=tb] thead th")?.textContent).toBe("<th onclick=alert(1)>");
    expect(root.querySelector("[data-component-id=c] svg text.a2ui-chart-label")?.textContent).toBe("<script>");
    const input = root.querySelector("[data-component-id=f] input") as HTMLInputElement;
    expect(input.value).toBe(SCRIPT);
    expect(input.placeholder).toBe("\" autofocus onfocus=\"alert(1)");
    expect(input.hasAttribute("autofocus")).toBe(false);
    expect(root.querySelector("[data-component-id=f] option")?.textContent).toBe(SCRIPT);
  });

  it("accepts only absolute http(s) URLs", () => {
    expect(safeHttpUrl("https://example.com")).toBe("https://example.com/");
    expect(safeHttpUrl(" http://example.com/a?b=c ")).toBe("http://example.com/a?b=c");
    for (const bad of ["javascript:alert(1)", "data:text/html,x", "vbscript:x", "//evil.com", "/relative", "mailto:a@b", "java\tscript:alert(1)", "https:evil", "https://u:p@example.com"]) {
      expect(safeHttpUrl(bad), bad).toBeNull();
    }
  });

  it("never uses HTML-parsing or code-evaluating DOM APIs in the library source", () => {
    const sources = import.meta.glob<string>("../src/a2ui/*.ts", { query: "?raw", import: "default", eager: true });
    expect(Object.keys(sources).length).toBeGreaterThanOrEqual(4);
    for (const [file, source] of Object.entries(sources)) {
      expect(source, file).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|\.style\b|createContextualFragment|DOMParser/);
    }
  });
});

describe("renderDocument: forms", () => {
  function setup() {
    const onSubmit = vi.fn();
    const root = render(sdkDocument(), onSubmit);
    const form = root.querySelector("[data-component-id=add-expense] form") as HTMLFormElement;
    const field = <T extends Element>(name: string) => form.elements.namedItem(name) as unknown as T;
    return { onSubmit, form, field };
  }

  function submit(form: HTMLFormElement): Event {
    const event = new Event("submit", { bubbles: true, cancelable: true });
    form.dispatchEvent(event);
    return event;
  }

  it("calls onSubmit(componentId, values) with typed values and prevents navigation", () => {
    const { onSubmit, form, field } = setup();
    field<HTMLInputElement>("amount").value = "12.5";
    field<HTMLInputElement>("description").value = "Train";
    field<HTMLSelectElement>("category").value = "travel";
    field<HTMLInputElement>("urgent").checked = false;
    const event = submit(form);
    expect(event.defaultPrevented).toBe(true);
    expect(onSubmit).toHaveBeenCalledTimes(1);
    expect(onSubmit).toHaveBeenCalledWith("add-expense", { category: "travel", amount: 12.5, description: "Train", email: "", urgent: false });
    const values = onSubmit.mock.calls[0]?.[1] as Record<string, unknown>;
    expect(typeof values.amount).toBe("number");
    expect(typeof values.urgent).toBe("boolean");
    expect(values.email).toBe(""); // optional and empty text: an empty string
  });

  it("submits through the submit button as well", () => {
    const { onSubmit, form } = setup();
    (form.querySelector("button[type=submit]") as HTMLButtonElement).click();
    expect(onSubmit).toHaveBeenCalledWith("add-expense", { category: "meals", amount: 0.01, description: "", email: "", urgent: true });
  });

  it("refuses out-of-range numbers, empty required fields and bad e-mails without calling onSubmit", () => {
    const { onSubmit, form, field } = setup();
    const amount = field<HTMLInputElement>("amount");
    for (const value of ["5000.5", "-1", "", "1.005"]) {
      amount.value = value;
      expect(submit(form).defaultPrevented).toBe(true);
      expect(amount.getAttribute("aria-invalid")).toBe("true");
    }
    amount.value = "10";
    field<HTMLInputElement>("email").value = "not an email";
    submit(form);
    expect(onSubmit).not.toHaveBeenCalled();
    expect(form.querySelector("[role=status]")?.textContent).toMatch(/e-mail/);
    field<HTMLInputElement>("email").value = "a@example.com";
    submit(form);
    expect(onSubmit).toHaveBeenCalledWith("add-expense", { category: "meals", amount: 10, description: "", email: "a@example.com", urgent: true });
    expect(amount.hasAttribute("aria-invalid")).toBe(false);
  });

  it("omits an optional number field left empty and coerces nothing else", () => {
    const onSubmit = vi.fn();
    const root = render({ v: 1, surface: "s", components: [{ id: "f", type: "form", props: { fields: [
      { id: "n", type: "number", min: -5, max: 5, step: 0.5 },
      { id: "c", type: "checkbox", required: true },
    ] } }] }, onSubmit);
    const form = root.querySelector("form") as HTMLFormElement;
    (form.elements.namedItem("n") as HTMLInputElement).value = "";
    submit(form);
    expect(onSubmit).not.toHaveBeenCalled(); // required checkbox unchecked
    (form.elements.namedItem("c") as HTMLInputElement).checked = true;
    submit(form);
    expect(onSubmit).toHaveBeenLastCalledWith("f", { c: true });
    (form.elements.namedItem("n") as HTMLInputElement).value = "-2.5";
    submit(form);
    expect(onSubmit).toHaveBeenLastCalledWith("f", { n: -2.5, c: true });
  });

  it("disables submission when the host gives no onSubmit", () => {
    const root = render(sdkDocument());
    const button = root.querySelector("button[type=submit]") as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    const form = root.querySelector("form") as HTMLFormElement;
    expect(submit(form).defaultPrevented).toBe(true);
  });
});
