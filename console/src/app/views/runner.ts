/**
 * Run a tool: pick a skill and a tool, fill the form generated from its input schema, run it,
 * and see the output (and fuel, duration, receipt, egress, logs). An A2UI document in the
 * output is rendered; submitting one of its forms runs the form's submit tool and the new
 * result replaces the old one in place.
 */

import { isA2uiDocument, normalizeDocument, renderDocument } from "../../a2ui";
import { describeError } from "../api";
import type { Api, ManifestTool, RunResult, SkillInfo, SkillRow } from "../api";
import { clear, h, pretty } from "../dom";
import { buildSchemaForm } from "../schemaForm";
import type { SchemaForm } from "../schemaForm";
import { notify } from "../ui";
import type { View } from "../view";
import { approvalList } from "./approvals";

interface RunnerState {
  api: Api;
  alive: boolean;
  skill: SkillInfo | null;
  tool: ManifestTool | null;
  form: SchemaForm | null;
  result: HTMLElement;
  stopApprovals: (() => void) | null;
}

export const runnerView: View = {
  id: "run",
  title: "Run a tool",
  mount(container, ctx) {
    const state: RunnerState = {
      api: ctx.api,
      alive: true,
      skill: null,
      tool: null,
      form: null,
      result: h("section", { class: "panel result-panel", testid: "run-result", attrs: { "aria-label": "Result", hidden: true } }),
      stopApprovals: null,
    };
    const skillSelect = h("select", { class: "input", testid: "run-skill", attrs: { id: "run-skill" } });
    const toolSelect = h("select", { class: "input", testid: "run-tool", attrs: { id: "run-tool", disabled: true } });
    const toolInfo = h("p", { class: "muted", testid: "run-tool-info" });
    const formHost = h("div", { class: "run-form-fields" });
    const runButton = h("button", { class: "btn btn-primary", testid: "run-button", text: "Run", attrs: { type: "submit", disabled: true } });
    const errorBox = h("div", { class: "form-errors", testid: "run-form-errors", attrs: { role: "alert", hidden: true } });
    const form = h("form", { class: "run-form", attrs: { novalidate: true } }, formHost, errorBox, runButton);

    container.append(
      h(
        "section",
        { class: "panel" },
        h("h2", { text: "Choose a tool" }),
        h(
          "div",
          { class: "row-fields" },
          h("div", { class: "field" }, h("label", { class: "field-label", attrs: { for: "run-skill" }, text: "Skill" }), skillSelect),
          h("div", { class: "field" }, h("label", { class: "field-label", attrs: { for: "run-tool" }, text: "Tool" }), toolSelect),
        ),
        toolInfo,
      ),
      h("section", { class: "panel" }, h("h2", { text: "Input" }), form),
      state.result,
    );

    const chooseTool = (name: string | null) => {
      const tools = state.skill?.manifest?.entrypoints?.tools ?? [];
      const tool = tools.find((t) => t.name === name || t.id === name) ?? tools[0] ?? null;
      state.tool = tool;
      clear(formHost);
      errorBox.hidden = true;
      if (!tool) {
        state.form = null;
        runButton.disabled = true;
        toolInfo.textContent = "This skill declares no tools.";
        return;
      }
      toolSelect.value = tool.id;
      toolInfo.textContent = [tool.description, tool.risk?.requires_approval ? "Each call waits for an operator's approval." : ""]
        .filter(Boolean)
        .join(" ");
      state.form = buildSchemaForm(tool.input_schema, { idPrefix: "run" });
      formHost.appendChild(state.form.element);
      runButton.disabled = state.skill?.status !== "active";
      if (state.skill && state.skill.status !== "active") {
        toolInfo.textContent += ` The skill is ${state.skill.status}: enable it to run its tools.`;
      }
    };

    const chooseSkill = async (skillId: string, toolName: string | null) => {
      state.skill = null;
      toolSelect.disabled = true;
      runButton.disabled = true;
      clear(toolSelect);
      clear(formHost);
      if (!skillId) return;
      try {
        const info = await ctx.api.skillInfo(skillId);
        if (!state.alive || skillSelect.value !== skillId) return;
        state.skill = info;
        for (const tool of info.manifest?.entrypoints?.tools ?? []) {
          toolSelect.appendChild(h("option", { text: tool.name, attrs: { value: tool.id } }));
        }
        toolSelect.disabled = false;
        chooseTool(toolName);
      } catch (exc) {
        notify(`Cannot load ${skillId}: ${describeError(exc)}`, "error");
      }
    };

    skillSelect.addEventListener("change", () => void chooseSkill(skillSelect.value, null));
    toolSelect.addEventListener("change", () => chooseTool(toolSelect.value));

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!state.skill || !state.tool || !state.form) return;
      const collected = state.form.collect();
      if (!collected.ok) {
        clear(errorBox);
        errorBox.append(
          h("p", { text: "Fix these fields:" }),
          h("ul", {}, ...collected.errors.map((e) => h("li", { text: `${e.path}: ${e.message}` }))),
        );
        errorBox.hidden = false;
        const invalid = formHost.querySelector<HTMLElement>("[aria-invalid='true']");
        invalid?.focus();
        return;
      }
      errorBox.hidden = true;
      runButton.disabled = true;
      await runTool(state, state.skill.skill_id, state.tool.id, collected.value, state.tool.risk?.requires_approval ?? false);
      runButton.disabled = false;
    });

    void (async () => {
      let skills: SkillRow[];
      try {
        skills = (await ctx.api.listSkills()).skills;
      } catch (exc) {
        notify(`Cannot list skills: ${describeError(exc)}`, "error");
        return;
      }
      if (!state.alive) return;
      skillSelect.appendChild(h("option", { text: skills.length ? "Choose a skill…" : "No skills installed", attrs: { value: "" } }));
      for (const skill of skills) {
        const suffix = skill.status === "active" ? "" : ` (${skill.status})`;
        skillSelect.appendChild(h("option", { text: `${skill.name || skill.skill_id}${suffix}`, attrs: { value: skill.skill_id } }));
      }
      const wanted = ctx.params.get("skill");
      if (wanted && skills.some((s) => s.skill_id === wanted)) {
        skillSelect.value = wanted;
        await chooseSkill(wanted, ctx.params.get("tool"));
      }
    })();

    return () => {
      state.alive = false;
      state.stopApprovals?.();
    };
  },
};

async function runTool(state: RunnerState, skillId: string, tool: string, input: unknown, needsApproval: boolean): Promise<void> {
  const pane = state.result;
  clear(pane);
  pane.hidden = false;
  pane.setAttribute("aria-busy", "true");
  pane.append(h("h2", { text: `Running ${tool}…` }));
  if (needsApproval) {
    const approvals = approvalList(
      state.api,
      (a) => a.skill_id === skillId && (a.tool_id === tool || tool.endsWith(`.${a.tool_id}`) || a.tool_id.endsWith(`.${tool}`)),
      "Waiting for the approval request…",
    );
    state.stopApprovals = approvals.stop;
    pane.append(h("p", { class: "muted", text: "This tool needs approval. Decide here or in Approvals:" }), approvals.element);
  }
  try {
    const result = await state.api.run(skillId, tool, input);
    if (!state.alive) return;
    renderResult(state, skillId, result);
    notify(`${tool} finished: receipt #${result.receipt_seq}, ${result.duration_ms} ms.`, "success");
  } catch (exc) {
    if (!state.alive) return;
    clear(pane);
    pane.append(
      h("h2", { text: `${tool} failed` }),
      h("p", { class: "error-text", testid: "run-error", text: describeError(exc) }),
    );
    notify(`${tool} failed: ${describeError(exc)}`, "error");
  } finally {
    state.stopApprovals?.();
    state.stopApprovals = null;
    pane.removeAttribute("aria-busy");
  }
}

function renderResult(state: RunnerState, skillId: string, result: RunResult): void {
  const pane = state.result;
  clear(pane);
  pane.hidden = false;
  pane.append(h("h2", { text: `Result of ${result.tool_id}` }));
  const meta = h("dl", { class: "facts", testid: "run-meta" });
  const fact = (term: string, value: string, testid: string) =>
    meta.append(h("dt", { text: term }), h("dd", { text: value, testid }));
  fact("Receipt", `#${result.receipt_seq}`, "run-receipt");
  fact("Fuel used", String(result.fuel_used), "run-fuel");
  fact("Duration", `${result.duration_ms} ms`, "run-duration");
  fact("Version", result.version, "run-version");
  if (result.approval_id) fact("Approval", result.approval_id, "run-approval");
  pane.append(meta);

  const output = result.output;
  if (isA2uiDocument(output)) {
    const host = h("div", { class: "a2ui-host", testid: "run-a2ui" });
    pane.append(h("h3", { text: "Rendered output" }), host);
    try {
      const doc = normalizeDocument(output);
      const rendered: unknown = renderDocument(doc, {
        onSubmit: (componentId: string, values: Record<string, unknown>) => void submitForm(state, skillId, output, doc, componentId, values),
      });
      if (rendered instanceof Node) host.appendChild(rendered);
    } catch (exc) {
      host.append(h("p", { class: "error-text", testid: "run-a2ui-error", text: `The document cannot be rendered: ${describeError(exc)}` }));
    }
  }

  const details = h("details", { class: "raw", attrs: isA2uiDocument(output) ? {} : { open: true } });
  details.append(h("summary", { text: "Output (JSON)" }), h("pre", { class: "pre", testid: "run-output", text: pretty(output) }));
  pane.append(details);

  pane.append(h("h3", { text: "Network egress" }));
  if (result.egress?.length) {
    pane.append(
      h(
        "ul",
        { class: "plain-list", testid: "run-egress" },
        ...result.egress.map((e) =>
          h("li", {
            text: `${String(e.decision ?? "?")}: ${String(e.method ?? "")} ${String(e.url ?? e.host ?? "")}${e.status ? ` → ${e.status}` : ""}${e.reason ? ` (${e.reason})` : ""}`,
          }),
        ),
      ),
    );
  } else pane.append(h("p", { class: "muted", testid: "run-egress", text: "No network calls." }));

  pane.append(h("h3", { text: "Logs" }));
  if (result.logs?.length) {
    const lines = result.logs.map((l) => {
      const level = typeof l.level === "string" ? `[${l.level}] ` : "";
      const message = typeof l.message === "string" ? l.message : pretty(l);
      return `${level}${message}`;
    });
    if (result.dropped_logs) lines.push(`… ${result.dropped_logs} more lines dropped`);
    pane.append(h("pre", { class: "pre", testid: "run-logs", text: lines.join("\n") }));
  } else pane.append(h("p", { class: "muted", testid: "run-logs", text: "No log lines." }));
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/** The tool a form submits to: `submit_tool` in the document the tool returned. */
export function submitToolFor(raw: unknown, normalized: unknown, componentId: string): string | null {
  const pick = (component: Record<string, unknown>): string | null => {
    const props = record(component.props) ?? {};
    for (const value of [component.submit_tool, component.submitTool, props.submit_tool, props.submitTool]) {
      if (typeof value === "string" && value) return value;
    }
    return null;
  };
  const forms = (doc: unknown) =>
    (Array.isArray(record(doc)?.components) ? (record(doc)?.components as unknown[]) : [])
      .map(record)
      .filter((c): c is Record<string, unknown> => c !== null && c.type === "form");
  for (const doc of [normalized, raw]) {
    const match = forms(doc).find((c) => c.id === componentId);
    const tool = match ? pick(match) : null;
    if (tool) return tool;
  }
  // Ids are sanitised by the normaliser; with a single form there is no ambiguity.
  const candidates = forms(raw).map(pick).filter((t): t is string => t !== null);
  return candidates.length === 1 ? (candidates[0] ?? null) : null;
}

async function submitForm(
  state: RunnerState,
  skillId: string,
  raw: unknown,
  normalized: unknown,
  componentId: string,
  values: Record<string, unknown>,
): Promise<void> {
  const tool = submitToolFor(raw, normalized, componentId);
  if (!tool) {
    notify(`The form ${componentId} names no submit tool.`, "error");
    return;
  }
  const needsApproval = state.skill?.manifest?.entrypoints?.tools?.find((t) => t.name === tool || t.id === tool)?.risk?.requires_approval ?? false;
  await runTool(state, skillId, tool, { componentId, values }, needsApproval);
}
