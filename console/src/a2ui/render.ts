/**
 * A2UI renderer: builds DOM nodes only through createElement/createElementNS, textContent and
 * an attribute allowlist. No HTML string from a document is ever parsed, no `on*` attribute or
 * inline style is ever set, and only absolute http(s) links become anchors.
 */
import { A2uiError, type A2uiComponent, type A2uiDocument, type RenderOptions } from "./types";
import { normalizeDocument, type A2uiFormField } from "./normalize";

const SVG_NS = "http://www.w3.org/2000/svg";

const ALLOWED_ATTRIBUTES: ReadonlySet<string> = new Set([
  "class", "id", "for", "name", "type", "value", "placeholder", "min", "max", "step", "required",
  "href", "target", "rel", "role", "scope", "aria-label", "aria-describedby", "aria-invalid",
  "aria-live", "data-surface", "data-component-id", "data-component-type", "viewBox", "width",
  "height", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "points", "text-anchor",
  "preserveAspectRatio", "focusable", "aria-hidden", "start", "disabled", "title",
]);

/** The only way this module sets attributes. */
function attr(el: Element, name: string, value: string | number): void {
  if (!ALLOWED_ATTRIBUTES.has(name) || /^on/i.test(name)) throw new A2uiError(`attribute '${name}' is not allowed`);
  el.setAttribute(name, String(value));
}

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (className) attr(el, "class", className);
  if (text !== undefined) el.textContent = text;
  return el;
}

function svg(tag: string, attrs: Record<string, string | number> = {}): SVGElement {
  const el = document.createElementNS(SVG_NS, tag) as SVGElement;
  for (const [name, value] of Object.entries(attrs)) attr(el, name, value);
  return el;
}

let instanceCounter = 0;

/** An absolute http(s) URL (normalised), or null for anything else. */
export function safeHttpUrl(raw: string): string | null {
  const text = raw.trim();
  if (!/^https?:\/\//i.test(text)) return null;
  try {
    const url = new URL(text);
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    if (url.username || url.password) return null;
    return url.href;
  } catch {
    return null;
  }
}

// ---- markdown (safe subset) ------------------------------------------------------------------

const INLINE = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;

function appendInline(parent: HTMLElement, text: string): void {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    const at = match.index ?? 0;
    if (at > last) parent.append(document.createTextNode(text.slice(last, at)));
    const [whole, code, strong, em, label, href] = match;
    if (code !== undefined) parent.append(h("code", "a2ui-md-code", code));
    else if (strong !== undefined) parent.append(h("strong", undefined, strong));
    else if (em !== undefined) parent.append(h("em", undefined, em));
    else if (label !== undefined && href !== undefined) {
      const url = safeHttpUrl(href);
      if (url) {
        const a = h("a", "a2ui-link", label);
        attr(a, "href", url);
        attr(a, "target", "_blank");
        attr(a, "rel", "noopener noreferrer");
        parent.append(a);
      } else {
        parent.append(h("span", "a2ui-link-refused", whole));
      }
    }
    last = at + whole.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function renderMarkdown(source: string): HTMLElement {
  const root = h("div", "a2ui-markdown");
  let list: HTMLOListElement | HTMLUListElement | null = null;
  let listKind = "";
  for (const line of source.replace(/\r\n?/g, "\n").split("\n")) {
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    const bullet = /^\s*[-*]\s+(.*)$/.exec(line);
    const numbered = /^\s*\d{1,9}[.)]\s+(.*)$/.exec(line);
    const item = bullet ?? numbered;
    if (item) {
      const kind = bullet ? "ul" : "ol";
      if (!list || listKind !== kind) {
        list = h(kind, "a2ui-md-list");
        listKind = kind;
        root.append(list);
      }
      const li = h("li");
      appendInline(li, item[1] ?? "");
      list.append(li);
      continue;
    }
    list = null;
    if (line.trim() === "") continue;
    if (heading) {
      const level = (heading[1] ?? "#").length;
      const el = h(`h${Math.min(level + 2, 6)}` as "h3", `a2ui-md-h${level}`);
      appendInline(el, heading[2] ?? "");
      root.append(el);
    } else {
      const p = h("p", "a2ui-md-p");
      appendInline(p, line);
      root.append(p);
    }
  }
  if (!root.firstChild) root.append(h("p", "a2ui-empty", "No content."));
  return root;
}

// ---- components ------------------------------------------------------------------------------

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function renderTable(c: A2uiComponent): HTMLElement {
  const wrap = h("div", "a2ui-table-wrap");
  const table = h("table", "a2ui-table");
  attr(table, "aria-label", c.id);
  const columns = strings(c.columns);
  const headRow = h("tr");
  for (const name of columns) {
    const th = h("th", undefined, name);
    attr(th, "scope", "col");
    headRow.append(th);
  }
  table.append(h("thead"));
  table.tHead?.append(headRow);
  const body = h("tbody");
  for (const row of Array.isArray(c.rows) ? c.rows : []) {
    const tr = h("tr");
    strings(row).forEach((cell, i) => {
      const td = h(i === 0 ? "th" : "td", undefined, cell);
      if (i === 0) attr(td, "scope", "row");
      tr.append(td);
    });
    body.append(tr);
  }
  table.append(body);
  wrap.append(table);
  return wrap;
}

function renderChart(c: A2uiComponent): HTMLElement {
  const title = String(c.title);
  const series = (Array.isArray(c.series) ? c.series : []) as { label: string; value: number }[];
  const figure = h("figure", `a2ui-chart a2ui-chart-${c.kind === "line" ? "line" : "bar"}`);
  figure.append(h("figcaption", "a2ui-chart-title", title));
  const width = 640;
  const height = 260;
  const top = 20;
  const bottom = 40;
  const plot = height - top - bottom;
  const max = Math.max(1, ...series.map((p) => p.value));
  const slot = width / Math.max(1, series.length);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "a2ui-chart-svg" });
  chart.append(svg("line", { x1: 0, y1: top + plot, x2: width, y2: top + plot, class: "a2ui-chart-axis" }));
  const coords = series.map((p, i) => {
    const barHeight = Math.min(1, p.value / max) * plot;
    return { ...p, x: slot * i + slot / 2, y: top + plot - barHeight, barHeight };
  });
  if (c.kind === "line") {
    chart.append(
      svg("polyline", {
        points: coords.map((p) => `${p.x.toFixed(2)},${p.y.toFixed(2)}`).join(" "),
        class: "a2ui-chart-line",
      }),
    );
  }
  for (const p of coords) {
    const mark =
      c.kind === "line"
        ? svg("circle", { cx: p.x.toFixed(2), cy: p.y.toFixed(2), r: 4, class: "a2ui-chart-point" })
        : svg("rect", {
            x: (p.x - slot * 0.35).toFixed(2),
            y: p.y.toFixed(2),
            width: (slot * 0.7).toFixed(2),
            height: p.barHeight.toFixed(2),
            class: "a2ui-chart-bar",
          });
    const tip = svg("title");
    tip.textContent = `${p.label}: ${p.value}`;
    mark.append(tip);
    chart.append(mark);
    const value = svg("text", { x: p.x.toFixed(2), y: (p.y - 6).toFixed(2), "text-anchor": "middle", class: "a2ui-chart-value" });
    value.textContent = String(p.value);
    const label = svg("text", { x: p.x.toFixed(2), y: height - bottom + 18, "text-anchor": "middle", class: "a2ui-chart-label" });
    label.textContent = p.label;
    chart.append(value, label);
  }
  figure.append(chart);
  return figure;
}

type FieldControl = { field: A2uiFormField; input: HTMLInputElement | HTMLSelectElement };

function fieldError(field: A2uiFormField, control: FieldControl["input"]): string | null {
  const { label } = field;
  if (field.type === "checkbox") {
    return field.required && !(control as HTMLInputElement).checked ? `${label} must be checked` : null;
  }
  const raw = control.value;
  if (raw.trim() === "") return field.required ? `${label} is required` : null;
  if (field.type === "number") {
    const value = Number(raw);
    const min = field.min ?? -Infinity;
    const max = field.max ?? Infinity;
    if (!Number.isFinite(value)) return `${label} must be a number`;
    if (value < min || value > max) return `${label} must be between ${min} and ${max}`;
    const step = field.step ?? 0;
    if (step > 0) {
      const q = (value - (Number.isFinite(min) ? min : 0)) / step;
      if (Math.abs(q - Math.round(q)) > 1e-6) return `${label} must be a multiple of ${step}`;
    }
  } else if (field.type === "email" && !/^[^\s@]+@[^\s@]+$/.test(raw.trim())) {
    return `${label} must be an e-mail address`;
  } else if (field.type === "select" && !(field.options ?? []).some((o) => o.value === raw)) {
    return `${label} must be one of the options`;
  }
  return null;
}

function renderForm(c: A2uiComponent, options: RenderOptions): HTMLElement {
  const prefix = `a2ui-${++instanceCounter}-${c.id}`;
  const form = h("form", "a2ui-form");
  attr(form, "aria-label", String(c.title));
  const fieldset = h("fieldset", "a2ui-fieldset");
  fieldset.append(h("legend", "a2ui-legend", String(c.title)));
  const controls: FieldControl[] = [];
  for (const field of (Array.isArray(c.fields) ? c.fields : []) as A2uiFormField[]) {
    const row = h("div", `a2ui-field a2ui-field-${field.type}`);
    const id = `${prefix}-${field.id}`;
    const label = h("label", "a2ui-label", field.label);
    attr(label, "for", id);
    let input: HTMLInputElement | HTMLSelectElement;
    if (field.type === "select") {
      const select = h("select", "a2ui-input");
      for (const option of field.options ?? []) {
        const el = h("option", undefined, option.label);
        attr(el, "value", option.value);
        select.append(el);
      }
      select.value = String(field.defaultValue);
      input = select;
    } else {
      const el = h("input", field.type === "checkbox" ? "a2ui-checkbox" : "a2ui-input");
      attr(el, "type", field.type);
      if (field.type === "checkbox") {
        el.checked = field.defaultValue === true;
      } else {
        el.value = String(field.defaultValue);
        if (field.placeholder) attr(el, "placeholder", field.placeholder);
        if (field.type === "number") {
          attr(el, "min", String(field.min));
          attr(el, "max", String(field.max));
          attr(el, "step", String(field.step));
        }
      }
      input = el;
    }
    attr(input, "id", id);
    attr(input, "name", field.id);
    if (field.required) attr(input, "required", "");
    if (field.hint) {
      const hint = h("p", "a2ui-hint", field.hint);
      attr(hint, "id", `${id}-hint`);
      attr(input, "aria-describedby", `${id}-hint`);
      if (field.type === "checkbox") row.append(input, label, hint);
      else row.append(label, input, hint);
    } else if (field.type === "checkbox") {
      row.append(input, label);
    } else {
      row.append(label, input);
    }
    controls.push({ field, input });
    fieldset.append(row);
  }
  const status = h("p", "a2ui-form-status");
  attr(status, "role", "status");
  attr(status, "aria-live", "polite");
  const submit = h("button", "a2ui-submit", String(c.submitLabel));
  attr(submit, "type", "submit");
  if (!options.onSubmit) {
    submit.disabled = true;
    attr(submit, "title", "Submitting is not available here");
  }
  fieldset.append(submit, status);
  form.append(fieldset);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const errors: string[] = [];
    const values: Record<string, unknown> = {};
    for (const { field, input } of controls) {
      const error = fieldError(field, input);
      if (error) {
        attr(input, "aria-invalid", "true");
        errors.push(error);
        continue;
      }
      input.removeAttribute("aria-invalid");
      if (field.type === "checkbox") values[field.id] = (input as HTMLInputElement).checked;
      else if (field.type === "number") {
        if (input.value.trim() !== "") values[field.id] = Number(input.value); // optional and empty: omitted
      } else values[field.id] = input.value;
    }
    status.textContent = errors.join(". ");
    if (errors.length === 0 && options.onSubmit) options.onSubmit(c.id, values);
  });
  return form;
}

function renderComponent(c: A2uiComponent, options: RenderOptions): HTMLElement {
  switch (c.type) {
    case "text":
      return h("p", `a2ui-text a2ui-tone-${String(c.tone)}`, String(c.value));
    case "markdown":
      return renderMarkdown(String(c.value));
    case "list": {
      const list = h(c.ordered ? "ol" : "ul", "a2ui-list");
      for (const item of strings(c.items)) list.append(h("li", undefined, item));
      return list;
    }
    case "table":
      return renderTable(c);
    case "chart":
      return renderChart(c);
    case "form":
      return renderForm(c, options);
    default:
      throw new A2uiError(`unknown component type '${c.type}'`);
  }
}

/**
 * Renders a document into a detached `<section class="a2ui-document">`. The document is
 * normalised again first, so whatever is passed in is validated (throws `A2uiError`).
 */
export function renderDocument(doc: A2uiDocument, options: RenderOptions = {}): HTMLElement {
  const normalized = normalizeDocument(doc);
  const root = h("section", "a2ui-document");
  attr(root, "data-surface", normalized.surface);
  attr(root, "aria-label", normalized.title ?? normalized.surface);
  if (normalized.title !== undefined) root.append(h("h2", "a2ui-title", normalized.title));
  if (normalized.components.length === 0) root.append(h("p", "a2ui-empty", "No renderable components"));
  for (const component of normalized.components) {
    const article = h("article", `a2ui-component a2ui-component-${component.type}`);
    attr(article, "data-component-id", component.id);
    attr(article, "data-component-type", component.type);
    article.append(renderComponent(component, options));
    root.append(article);
  }
  return root;
}
