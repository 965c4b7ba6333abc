/** Approvals: pending tool calls waiting for an operator, refreshed every 2 seconds. */

import { describeError } from "../api";
import type { Api, Approval } from "../api";
import { clear, formatTime, h } from "../dom";
import { notify } from "../ui";
import type { View } from "../view";

export const REFRESH_MS = 2000;

const WINDOWS: readonly { label: string; seconds: number }[] = [
  { label: "5 minutes", seconds: 300 },
  { label: "1 hour", seconds: 3600 },
];

/**
 * A self-refreshing list of pending approvals (optionally only those matching `filter`),
 * keyed by approval id so a refresh never resets a row the operator is using.
 * Returns the element and a stop function.
 */
export function approvalList(
  api: Api,
  filter: (approval: Approval) => boolean = () => true,
  emptyText = "Nothing is waiting for approval.",
): { element: HTMLElement; stop: () => void; refresh: () => Promise<void> } {
  const list = h("ul", { class: "approval-list", testid: "approval-list" });
  const empty = h("p", { class: "muted", testid: "approvals-empty", text: emptyText });
  const element = h("div", { class: "approvals" }, empty, list);
  const rows = new Map<string, HTMLElement>();
  let busy = false;
  let stopped = false;

  const decide = async (approval: Approval, action: "once" | "window" | "deny", windowS?: number) => {
    const row = rows.get(approval.approval_id);
    row?.querySelectorAll("button, select").forEach((el) => ((el as HTMLButtonElement).disabled = true));
    try {
      if (action === "deny") await api.deny(approval.approval_id);
      else await api.approve(approval.approval_id, action === "window" ? windowS : undefined);
      const what =
        action === "deny"
          ? "Denied"
          : action === "window"
            ? `Approved for ${WINDOWS.find((w) => w.seconds === windowS)?.label ?? `${windowS} s`}`
            : "Approved once";
      notify(`${what}: ${approval.skill_id} ${approval.tool_id}.`, "success");
    } catch (exc) {
      notify(`Decision failed: ${describeError(exc)}`, "error");
      row?.querySelectorAll("button, select").forEach((el) => ((el as HTMLButtonElement).disabled = false));
    }
    await refresh();
  };

  const renderRow = (approval: Approval): HTMLElement => {
    const id = approval.approval_id;
    const selectId = `approval-window-${id}`;
    const select = h("select", { class: "input input-inline", testid: `approval-window-${id}`, attrs: { id: selectId } });
    for (const w of WINDOWS) select.appendChild(h("option", { text: w.label, attrs: { value: w.seconds } }));
    const btn = (label: string, testid: string, kind: string, run: () => void) =>
      h("button", { class: `btn btn-${kind}`, testid, text: label, attrs: { type: "button" }, on: { click: run } });
    return h(
      "li",
      { class: "approval", testid: `approval-${id}` },
      h("div", { class: "approval-head" }, h("strong", { text: `${approval.skill_id} ${approval.version} · ${approval.tool_id}` })),
      h("div", { class: "muted small", text: `Requested by ${approval.requested_by} at ${formatTime(approval.requested_at_ms)}; expires ${formatTime(approval.expires_at_ms)}` }),
      h("pre", { class: "pre small", text: approval.input_preview }),
      h(
        "div",
        { class: "actions" },
        btn("Approve once", `approval-approve-${id}`, "primary", () => void decide(approval, "once")),
        h("label", { class: "visually-hidden", attrs: { for: selectId }, text: "Approval window" }),
        select,
        btn("Approve for window", `approval-approve-window-${id}`, "plain", () => void decide(approval, "window", Number(select.value))),
        btn("Deny", `approval-deny-${id}`, "danger", () => void decide(approval, "deny")),
      ),
    );
  };

  const refresh = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      const pending = (await api.approvals("pending")).approvals.filter(filter);
      if (stopped) return;
      const seen = new Set<string>();
      for (const approval of pending) {
        seen.add(approval.approval_id);
        if (!rows.has(approval.approval_id)) {
          const row = renderRow(approval);
          rows.set(approval.approval_id, row);
          list.appendChild(row);
        }
      }
      for (const [id, row] of rows) {
        if (!seen.has(id)) {
          row.remove();
          rows.delete(id);
        }
      }
      empty.hidden = rows.size > 0;
    } catch (exc) {
      if (!stopped) notify(`Cannot list approvals: ${describeError(exc)}`, "error");
    } finally {
      busy = false;
    }
  };

  const timer = window.setInterval(() => void refresh(), REFRESH_MS);
  void refresh();
  return {
    element,
    refresh,
    stop: () => {
      stopped = true;
      window.clearInterval(timer);
      clear(list);
    },
  };
}

export const approvalsView: View = {
  id: "approvals",
  title: "Approvals",
  mount(container, ctx) {
    const pending = approvalList(ctx.api);
    container.append(
      h(
        "section",
        { class: "panel" },
        h("h2", { text: "Pending approvals" }),
        h("p", { class: "muted", text: "A tool marked as needing approval waits here. Approve it once, for a window of time (calls of the same tool run without asking until it ends), or deny it." }),
        pending.element,
      ),
    );
    return pending.stop;
  },
};
