/** Plugins & hooks: the bindings, each with an enable/disable button. */

import { describeError } from "../api";
import type { HookBinding, PluginBinding, PluginCheck } from "../api";
import { button, clear, h } from "../dom";
import { badge, notify } from "../ui";
import type { View, ViewContext } from "../view";

function table(headers: string[], testid: string): { table: HTMLElement; body: HTMLTableSectionElement } {
  const body = h("tbody");
  const el = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "table table-cards", testid },
      h("thead", {}, h("tr", {}, ...headers.map((c) => h("th", { text: c, attrs: { scope: "col" } })))),
      body,
    ),
  );
  return { table: el, body };
}

function td(label: string, content: string | Node): HTMLTableCellElement {
  const cell = h("td", { attrs: { "data-label": label } });
  cell.append(content);
  return cell;
}

function checkSummary(check: PluginCheck | Record<string, unknown>): string {
  const ready = check.ready;
  const reasons = Array.isArray(check.reasons) ? (check.reasons as string[]) : [];
  const warnings = Array.isArray(check.warnings) ? (check.warnings as string[]) : [];
  const parts: string[] = [];
  if (typeof ready === "boolean") parts.push(ready ? "ready" : "not ready");
  if (reasons.length) parts.push(reasons.join("; "));
  if (warnings.length) parts.push(`warnings: ${warnings.join("; ")}`);
  return parts.join(" — ");
}

export const pluginsView: View = {
  id: "plugins",
  title: "Plugins & hooks",
  mount(container, ctx: ViewContext) {
    const api = ctx.api;
    let alive = true;
    const plugins = table(["Plugin", "Skill / tool", "Version", "State", "Capability profile", "Actions"], "plugins-table");
    const hooks = table(["Hook", "Event", "Plugin", "State", "Actions"], "hooks-table");

    const toggle = async (kind: "plugin" | "hook", id: string, enabled: boolean) => {
      try {
        const check =
          kind === "plugin" ? await api.setPluginEnabled(id, enabled) : await api.setHookEnabled(id, enabled);
        const summary = checkSummary(check);
        notify(`${enabled ? "Enabled" : "Disabled"} ${kind} ${id}${summary ? `: ${summary}` : ""}.`, "success");
      } catch (exc) {
        notify(`Could not ${enabled ? "enable" : "disable"} ${kind} ${id}: ${describeError(exc)}`, "error");
      }
      await load();
    };

    const stateCell = (enabled: boolean) => td("State", badge(enabled ? "enabled" : "disabled"));
    const toggleCell = (kind: "plugin" | "hook", id: string, enabled: boolean) =>
      td(
        "Actions",
        enabled
          ? button("Disable", () => void toggle(kind, id, false), { testid: `${kind}-disable-${id}`, kind: "danger" })
          : button("Enable", () => void toggle(kind, id, true), { testid: `${kind}-enable-${id}`, kind: "primary" }),
      );

    const load = async () => {
      let pluginRows: PluginBinding[];
      let hookRows: HookBinding[];
      try {
        [pluginRows, hookRows] = await Promise.all([
          api.plugins().then((r) => r.plugins),
          api.hooks().then((r) => r.hooks),
        ]);
      } catch (exc) {
        notify(`Cannot list plugins and hooks: ${describeError(exc)}`, "error");
        return;
      }
      if (!alive) return;
      clear(plugins.body);
      clear(hooks.body);
      if (pluginRows.length === 0) plugins.body.append(h("tr", {}, h("td", { class: "muted", attrs: { colspan: 6 }, text: "No plugin bindings (palyra plugins bind …)." })));
      for (const p of pluginRows) {
        const profile = Object.entries(p.capability_profile ?? {})
          .filter(([, items]) => items.length)
          .map(([k, items]) => `${k}: ${items.join(", ")}`)
          .join("; ");
        plugins.body.append(
          h(
            "tr",
            { testid: `plugin-row-${p.plugin_id}`, attrs: { "data-enabled": String(p.enabled) } },
            td("Plugin", h("span", { class: "mono", text: p.plugin_id })),
            td("Skill / tool", `${p.skill_id} · ${p.tool_id}`),
            td("Version", p.skill_version ?? "follows current"),
            stateCell(p.enabled),
            td("Capability profile", profile || "everything the skill declares"),
            toggleCell("plugin", p.plugin_id, p.enabled),
          ),
        );
      }
      if (hookRows.length === 0) hooks.body.append(h("tr", {}, h("td", { class: "muted", attrs: { colspan: 5 }, text: "No hooks bound (palyra hooks bind …)." })));
      for (const hk of hookRows) {
        hooks.body.append(
          h(
            "tr",
            { testid: `hook-row-${hk.hook_id}`, attrs: { "data-enabled": String(hk.enabled) } },
            td("Hook", h("span", { class: "mono", text: hk.hook_id })),
            td("Event", hk.event),
            td("Plugin", hk.plugin_id),
            stateCell(hk.enabled),
            toggleCell("hook", hk.hook_id, hk.enabled),
          ),
        );
      }
    };

    container.append(
      h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", { text: "Plugin bindings" }), button("Refresh", () => void load(), { testid: "plugins-refresh" })), plugins.table),
      h("section", { class: "panel" }, h("h2", { text: "Hooks" }), hooks.table),
    );
    void load();
    return () => {
      alive = false;
    };
  },
};
