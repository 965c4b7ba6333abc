/** Shared widgets: the live status region, confirmation/reason dialogs, status badges. */

import { h } from "./dom";

let liveRegion: HTMLElement | null = null;
let clearTimer: number | undefined;

/** The one aria-live region every view reports success and errors through. */
export function createLiveRegion(): HTMLElement {
  liveRegion = h("div", {
    class: "notice",
    testid: "notice",
    attrs: { role: "status", "aria-live": "polite", "aria-atomic": "true" },
  });
  return liveRegion;
}

export function notify(message: string, kind: "success" | "error" | "info" = "info"): void {
  if (!liveRegion) return;
  liveRegion.textContent = message;
  liveRegion.className = `notice notice-${kind}`;
  liveRegion.dataset.kind = kind;
  window.clearTimeout(clearTimer);
  if (kind !== "error") {
    clearTimer = window.setTimeout(() => {
      if (liveRegion) {
        liveRegion.textContent = "";
        liveRegion.className = "notice";
        delete liveRegion.dataset.kind;
      }
    }, 8000);
  }
}

export function clearNotice(): void {
  if (liveRegion) {
    liveRegion.textContent = "";
    liveRegion.className = "notice";
  }
}

interface DialogOptions {
  title: string;
  message: string;
  confirmLabel: string;
  danger?: boolean;
  /** Ask for a reason (a text field); `reasonRequired` makes it mandatory. */
  reason?: { label: string; required: boolean };
}

/**
 * A modal <dialog>. Resolves with `{ reason }` when confirmed, or null when cancelled
 * (the Cancel button, Escape, or closing it any other way).
 */
export function confirmDialog(options: DialogOptions): Promise<{ reason: string } | null> {
  return new Promise((resolve) => {
    const titleId = `dlg-title-${Date.now()}`;
    const dialog = h("dialog", {
      class: "dialog",
      testid: "confirm-dialog",
      attrs: { "aria-labelledby": titleId },
    });
    const form = h("form", { class: "dialog-form", attrs: { method: "dialog", novalidate: true } });
    form.appendChild(h("h2", { text: options.title, attrs: { id: titleId } }));
    form.appendChild(h("p", { text: options.message }));
    let reasonInput: HTMLTextAreaElement | null = null;
    const error = h("p", { class: "field-error", attrs: { hidden: true, role: "alert" } });
    if (options.reason) {
      reasonInput = h("textarea", {
        class: "input",
        testid: "confirm-reason",
        attrs: { id: `${titleId}-reason`, rows: 3, maxlength: 1000 },
      });
      form.appendChild(
        h(
          "div",
          { class: "field" },
          h("label", { class: "field-label", attrs: { for: `${titleId}-reason` }, text: options.reason.label }),
          reasonInput,
          error,
        ),
      );
    }
    const cancel = h("button", {
      class: "btn btn-plain",
      testid: "confirm-cancel",
      attrs: { type: "button" },
      text: "Cancel",
    });
    const ok = h("button", {
      class: `btn ${options.danger ? "btn-danger" : "btn-primary"}`,
      testid: "confirm-ok",
      attrs: { type: "submit" },
      text: options.confirmLabel,
    });
    form.appendChild(h("div", { class: "dialog-actions" }, cancel, ok));
    dialog.appendChild(form);
    document.body.appendChild(dialog);

    let settled = false;
    const finish = (value: { reason: string } | null) => {
      if (settled) return;
      settled = true;
      if (dialog.open && typeof dialog.close === "function") dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancel.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(null);
    });
    dialog.addEventListener("close", () => finish(null));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const reason = reasonInput?.value.trim() ?? "";
      if (options.reason?.required && !reason) {
        error.textContent = "A reason is required.";
        error.hidden = false;
        reasonInput?.focus();
        return;
      }
      finish({ reason });
    });
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    (reasonInput ?? cancel).focus();
  });
}

const STATUS_CLASSES: Record<string, string> = {
  active: "badge-ok",
  enabled: "badge-ok",
  approved: "badge-ok",
  ready: "badge-ok",
  disabled: "badge-muted",
  expired: "badge-muted",
  quarantined: "badge-bad",
  denied: "badge-bad",
  blocked: "badge-bad",
  pending: "badge-warn",
  held: "badge-warn",
  needs_secrets: "badge-warn",
};

export function badge(text: string, kind?: string): HTMLElement {
  const cls = STATUS_CLASSES[kind ?? text] ?? "badge-info";
  return h("span", { class: `badge ${cls}`, text });
}

/** A titled section. */
export function section(title: string, ...children: (Node | null)[]): HTMLElement {
  const el = h("section", { class: "panel" }, h("h2", { text: title }));
  for (const child of children) if (child) el.appendChild(child);
  return el;
}
