/**
 * Skills: the inventory (status, version, publisher, trust, tools, missing secrets, held
 * updates), per-skill actions, artifact upload, and a detail panel.
 */

import { ApiError, describeError } from "../api";
import type { Api, RecheckResult, SkillInfo, SkillRow, SkillVersion } from "../api";
import { describeGrants } from "../capabilities";
import { button, clear, formatTime, h } from "../dom";
import { badge, confirmDialog, notify } from "../ui";
import type { View, ViewContext } from "../view";

interface State {
  api: Api;
  ctx: ViewContext;
  tableBody: HTMLTableSectionElement;
  held: HTMLElement;
  result: HTMLElement;
  detail: HTMLElement;
  detailId: string | null;
  alive: boolean;
}

export const skillsView: View = {
  id: "skills",
  title: "Skills",
  mount(container, ctx) {
    const tableBody = h("tbody");
    const state: State = {
      api: ctx.api,
      ctx,
      tableBody,
      held: h("div", { class: "held-updates", testid: "held-updates" }),
      result: h("section", {
        class: "panel result-panel",
        testid: "skill-action-result",
        attrs: { "aria-label": "Result of the last action", hidden: true },
      }),
      detail: h("section", { class: "panel", testid: "skill-detail", attrs: { hidden: true, "aria-label": "Skill details", tabindex: -1 } }),
      detailId: ctx.params.get("skill"),
      alive: true,
    };
    container.append(
      installPanel(state),
      h(
        "section",
        { class: "panel" },
        h("div", { class: "panel-head" }, h("h2", { text: "Installed skills" }), button("Refresh", () => void refresh(state), { testid: "skills-refresh" })),
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "table table-cards", testid: "skills-table" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ...["Skill", "Status", "Version", "Publisher", "Trust", "Tools", "Missing secrets", "Held updates", "Actions"].map(
                  (c) => h("th", { text: c, attrs: { scope: "col" } }),
                ),
              ),
            ),
            tableBody,
          ),
        ),
      ),
      state.held,
      state.result,
      state.detail,
    );
    void refresh(state);
    return () => {
      state.alive = false;
    };
  },
};

// ---- install ------------------------------------------------------------------------------

function installPanel(state: State): HTMLElement {
  const file = h("input", {
    class: "input",
    testid: "install-file",
    attrs: { id: "install-file", type: "file", accept: ".palyra-skill,application/octet-stream,application/zip" },
  });
  const tofu = h("input", { testid: "install-allow-tofu", attrs: { id: "install-tofu", type: "checkbox" } });
  const submit = h("button", { class: "btn btn-primary", testid: "install-button", attrs: { type: "submit" }, text: "Install" });
  const form = h(
    "form",
    { class: "install-form", attrs: { novalidate: true } },
    h("div", { class: "field" }, h("label", { class: "field-label", attrs: { for: "install-file" }, text: "Skill artifact (.palyra-skill)" }), file),
    h(
      "div",
      { class: "field field-inline" },
      tofu,
      h("label", { attrs: { for: "install-tofu" }, text: "Allow trust on first use (pin this publisher's key if it is unknown)" }),
    ),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen) {
      notify("Choose a .palyra-skill file first.", "error");
      file.focus();
      return;
    }
    submit.disabled = true;
    try {
      const bytes = await chosen.arrayBuffer();
      const installed = await state.api.install(bytes, tofu.checked);
      const held = installed.pending_capabilities ? " — held: it asks for more than the running version (see Held updates)" : "";
      const same = installed.changed === false ? " (already installed, nothing changed)" : "";
      notify(`Installed ${installed.skill_id} ${installed.version}: ${installed.status}${same}${held}`, "success");
      form.reset();
      await refresh(state);
    } catch (exc) {
      notify(`Install failed: ${describeError(exc)}`, "error");
    } finally {
      submit.disabled = false;
    }
  });
  return h("section", { class: "panel" }, h("h2", { text: "Install artifact" }), form);
}

// ---- the table ----------------------------------------------------------------------------

async function refresh(state: State): Promise<void> {
  let skills: SkillRow[];
  try {
    skills = (await state.api.listSkills()).skills;
  } catch (exc) {
    if (state.alive) notify(`Cannot list skills: ${describeError(exc)}`, "error");
    return;
  }
  if (!state.alive) return;
  clear(state.tableBody);
  if (skills.length === 0) {
    state.tableBody.appendChild(h("tr", {}, h("td", { attrs: { colspan: 9 }, class: "muted", text: "No skills installed yet." })));
  }
  for (const skill of skills) state.tableBody.appendChild(skillRow(state, skill));
  renderHeld(state, skills);
  if (state.detailId) {
    if (skills.some((s) => s.skill_id === state.detailId)) void showDetail(state, state.detailId, false);
    else {
      state.detailId = null;
      state.detail.hidden = true;
    }
  }
}

function cell(label: string, ...children: (Node | string | null)[]): HTMLTableCellElement {
  const td = h("td", { attrs: { "data-label": label } });
  for (const child of children) if (child !== null) td.append(child);
  return td;
}

function skillRow(state: State, skill: SkillRow): HTMLTableRowElement {
  const id = skill.skill_id;
  const statusCell = cell("Status", badge(skill.status));
  statusCell.querySelector(".badge")?.setAttribute("data-testid", `skill-status-${id}`);
  if (skill.status_reason) statusCell.append(h("div", { class: "muted small", text: skill.status_reason }));
  const tools = skill.tools.length;
  const actions = h("div", { class: "actions" });
  const act = (label: string, action: string, run: () => void, kind: "plain" | "danger" | "primary" = "plain") =>
    actions.appendChild(button(label, run, { testid: `skill-${action}-${id}`, kind, title: `${label} ${id}` }));
  act("Details", "details", () => void showDetail(state, id, true));
  act("Verify", "verify", () => void recheck(state, id, "verify"));
  act("Audit", "audit", () => void recheck(state, id, "audit"));
  if (skill.status !== "active") act("Enable", "enable", () => void enableSkill(state, id));
  if (skill.status === "active") act("Disable", "disable", () => void disableSkill(state, id), "danger");
  if (skill.status !== "quarantined") act("Quarantine", "quarantine", () => void quarantineSkill(state, id), "danger");
  act("Remove", "remove", () => void removeSkill(state, id), "danger");
  if (skill.status === "active" && tools > 0) {
    act("Run a tool", "run", () => state.ctx.navigate("run", { skill: id }));
  }
  const row = h(
    "tr",
    { testid: `skill-row-${id}`, attrs: { "data-status": skill.status } },
    cell("Skill", h("strong", { text: skill.name || id }), h("div", { class: "muted small mono", text: id })),
    statusCell,
    cell("Version", skill.current_version ?? "—"),
    cell("Publisher", skill.publisher),
    cell("Trust", skill.trust_decision),
    cell("Tools", String(tools)),
    cell(
      "Missing secrets",
      skill.missing_secrets.length
        ? h("ul", { class: "plain-list warn-text" }, ...skill.missing_secrets.map((s) => h("li", { text: s })))
        : h("span", { class: "muted", text: "none" }),
    ),
    cell(
      "Held updates",
      skill.held_versions.length ? badge(`${skill.held_versions.join(", ")} held`, "held") : h("span", { class: "muted", text: "none" }),
    ),
    cell("Actions", actions),
  );
  return row;
}

// ---- held updates -------------------------------------------------------------------------

function renderHeld(state: State, skills: SkillRow[]): void {
  clear(state.held);
  const held: { skill: SkillRow; version: SkillVersion }[] = [];
  for (const skill of skills) {
    for (const version of skill.versions) if (version.pending_capabilities) held.push({ skill, version });
  }
  if (held.length === 0) return;
  const panel = h("section", { class: "panel panel-warn" }, h("h2", { text: "Held updates" }));
  panel.appendChild(
    h("p", { class: "muted", text: "These versions ask for capabilities the running version does not have. They stay held until you approve them." }),
  );
  for (const { skill, version } of held) {
    const id = skill.skill_id;
    const card = h(
      "div",
      { class: "held-card", testid: `held-${id}-${version.version}` },
      h("h3", { text: `${skill.name || id} ${version.version}` }),
      h("p", { text: `Currently running: ${skill.current_version ?? "none"}. The update additionally:` }),
      h("ul", { class: "cap-list" }, ...describeGrants(version.pending_capabilities).map((line) => h("li", { text: line }))),
      button(
        "Approve capabilities",
        () => void approveCapabilities(state, id, version.version),
        { testid: `skill-approve-caps-${id}`, kind: "primary" },
      ),
      button(
        "Reject update",
        () => void rejectUpdate(state, id, version.version),
        { testid: `skill-reject-update-${id}`, kind: "danger" },
      ),
    );
    panel.appendChild(card);
  }
  state.held.appendChild(panel);
}

async function approveCapabilities(state: State, skillId: string, version: string): Promise<void> {
  const ok = await confirmDialog({
    title: `Approve new capabilities for ${skillId} ${version}?`,
    message: "The update is re-verified and re-audited, then becomes the running version with the capabilities listed.",
    confirmLabel: "Approve and enable",
  });
  if (!ok) return;
  await enableSkill(state, skillId, { version, approveCapabilities: true });
}

// ---- actions ------------------------------------------------------------------------------

function showResult(state: State, title: string, ...body: Node[]): void {
  clear(state.result);
  state.result.hidden = false;
  state.result.append(h("h2", { text: title }), ...body);
}

function auditLines(entry: SkillVersion): HTMLElement {
  const audit = entry.audit ?? {};
  const list = h("ul", { class: "plain-list" });
  list.append(
    h("li", { text: `Status: ${entry.status}${entry.status_reason ? ` (${entry.status_reason})` : ""}` }),
    h("li", { text: `Trust decision: ${entry.trust_decision}` }),
    h("li", { text: `Audit: ${audit.passed ? "passed" : "failed"}${audit.check_count !== undefined ? ` (${audit.check_count} checks)` : ""}` }),
  );
  if (audit.failed_checks?.length) list.append(h("li", { text: `Failed checks: ${audit.failed_checks.join(", ")}` }));
  if (audit.warning_checks?.length) list.append(h("li", { text: `Warnings: ${audit.warning_checks.join(", ")}` }));
  return list;
}

function checksList(result: RecheckResult["result"]): HTMLElement {
  const wrap = h("div");
  if (result.error) wrap.append(h("p", { class: "error-text", text: `Verification failed: ${result.error.message} (${result.error.kind})` }));
  const audit = result.audit;
  if (audit) {
    const table = h("ul", { class: "checks" });
    for (const check of audit.checks ?? []) {
      table.append(
        h("li", { class: `check check-${check.status}` }, badge(check.status, check.status === "pass" ? "active" : check.status === "fail" ? "quarantined" : "pending"), ` ${check.check_id}: ${check.message}`),
      );
    }
    wrap.append(h("h3", { text: "Audit checks" }), table);
    if (audit.manifest_warnings?.length) {
      wrap.append(
        h("h3", { text: "Manifest warnings" }),
        h("ul", { class: "plain-list" }, ...audit.manifest_warnings.map((w) => h("li", { text: `${w.code}: ${w.message}` }))),
      );
    }
  }
  return wrap;
}

async function recheck(state: State, skillId: string, which: "verify" | "audit"): Promise<void> {
  try {
    const outcome = which === "verify" ? await state.api.verify(skillId) : await state.api.audit(skillId);
    const ok = outcome.result?.ok;
    notify(`${which === "verify" ? "Verified" : "Audited"} ${skillId} ${outcome.version}: ${ok ? "passed" : "FAILED"} — status ${outcome.status}`, ok ? "success" : "error");
    showResult(state, `${which === "verify" ? "Verification" : "Audit"} of ${skillId} ${outcome.version}`, auditLines(outcome), checksList(outcome.result ?? { ok: false }));
  } catch (exc) {
    notify(`${which} failed: ${describeError(exc)}`, "error");
  }
  await refresh(state);
}

async function enableSkill(state: State, skillId: string, opts: { version?: string; approveCapabilities?: boolean } = {}): Promise<void> {
  try {
    const entry = await state.api.enable(skillId, opts);
    notify(`Enabled ${skillId} ${entry.version}: re-verified (trust ${entry.trust_decision}) and re-audited (${entry.audit?.passed ? "passed" : "see result"}).`, "success");
    showResult(state, `Enabled ${skillId} ${entry.version}`, h("p", { text: "Re-verification and re-audit result:" }), auditLines(entry));
  } catch (exc) {
    if (exc instanceof ApiError && exc.kind === "capability_approval_required") {
      const diff = exc.details.pending_capabilities as Record<string, string[]> | undefined;
      notify(`${skillId} needs capability approval before it can be enabled.`, "error");
      showResult(
        state,
        `${skillId}: new capabilities need your approval`,
        h("ul", { class: "cap-list" }, ...describeGrants(diff).map((line) => h("li", { text: line }))),
        button("Approve capabilities", () => void enableSkill(state, skillId, { ...opts, approveCapabilities: true }), {
          testid: `skill-approve-caps-result-${skillId}`,
          kind: "primary",
        }),
      );
    } else {
      notify(`Enable failed: ${describeError(exc)}`, "error");
      showResult(state, `Enabling ${skillId} failed`, h("p", { class: "error-text", text: describeError(exc) }));
    }
  }
  await refresh(state);
}

async function disableSkill(state: State, skillId: string): Promise<void> {
  const answer = await confirmDialog({
    title: `Disable ${skillId}?`,
    message: "Its tools stop running until it is enabled again.",
    confirmLabel: "Disable",
    danger: true,
    reason: { label: "Reason (optional)", required: false },
  });
  if (!answer) return;
  try {
    const entry = await state.api.disable(skillId, answer.reason);
    notify(`Disabled ${skillId} ${entry.version}.`, "success");
  } catch (exc) {
    notify(`Disable failed: ${describeError(exc)}`, "error");
  }
  await refresh(state);
}

async function quarantineSkill(state: State, skillId: string): Promise<void> {
  const answer = await confirmDialog({
    title: `Quarantine ${skillId}?`,
    message: "A quarantined skill cannot run until it is re-verified, re-audited and enabled again.",
    confirmLabel: "Quarantine",
    danger: true,
    reason: { label: "Reason", required: true },
  });
  if (!answer) return;
  try {
    const entry = await state.api.quarantine(skillId, answer.reason);
    notify(`Quarantined ${skillId} ${entry.version}.`, "success");
  } catch (exc) {
    notify(`Quarantine failed: ${describeError(exc)}`, "error");
  }
  await refresh(state);
}

async function rejectUpdate(state: State, skillId: string, version: string): Promise<void> {
  const ok = await confirmDialog({
    title: `Reject ${skillId} ${version}?`,
    message: "The held version and its artifact are removed; the running version stays as it is.",
    confirmLabel: "Reject and remove",
    danger: true,
  });
  if (!ok) return;
  try {
    await state.api.remove(skillId, version);
    notify(`Rejected ${skillId} ${version}.`, "success");
  } catch (exc) {
    notify(`Reject failed: ${describeError(exc)}`, "error");
  }
  await refresh(state);
}

async function removeSkill(state: State, skillId: string): Promise<void> {
  const answer = await confirmDialog({
    title: `Remove ${skillId}?`,
    message: "Every installed version and its artifact are deleted. This cannot be undone.",
    confirmLabel: "Remove",
    danger: true,
  });
  if (!answer) return;
  try {
    const removed = await state.api.remove(skillId);
    notify(`Removed ${skillId} (${removed.removed_versions?.join(", ") ?? "all versions"}).`, "success");
    if (state.detailId === skillId) {
      state.detailId = null;
      state.detail.hidden = true;
    }
  } catch (exc) {
    notify(`Remove failed: ${describeError(exc)}`, "error");
  }
  await refresh(state);
}

// ---- detail -------------------------------------------------------------------------------

async function showDetail(state: State, skillId: string, focus: boolean): Promise<void> {
  state.detailId = skillId;
  let info: SkillInfo;
  try {
    info = await state.api.skillInfo(skillId);
  } catch (exc) {
    notify(`Cannot load ${skillId}: ${describeError(exc)}`, "error");
    return;
  }
  if (!state.alive || state.detailId !== skillId) return;
  const d = state.detail;
  clear(d);
  d.hidden = false;
  d.append(
    h("div", { class: "panel-head" }, h("h2", { text: `${info.name || skillId} ${info.version}` }), button("Close", () => {
      state.detailId = null;
      d.hidden = true;
    }, { testid: "skill-detail-close" })),
  );
  const facts = h("dl", { class: "facts" });
  const fact = (term: string, value: string | Node) => facts.append(h("dt", { text: term }), h("dd", {}, value));
  fact("Skill id", info.skill_id);
  fact("Status", badge(info.status));
  if (info.status_reason) fact("Status reason", info.status_reason);
  fact("Publisher", info.publisher);
  fact("Trust decision", info.trust_decision);
  fact("Signing key", info.signature_key_id);
  fact("Source", `${info.source?.kind ?? "?"}: ${info.source?.reference ?? "?"}`);
  fact("Installed", formatTime(info.installed_at_ms));
  fact("Installed versions", (info.installed_versions ?? []).join(", "));
  fact("Artifact SHA-256", h("span", { class: "mono break", text: info.artifact_sha256 }));
  d.append(facts);

  const caps = describeGrants(info.capabilities);
  d.append(
    h("h3", { text: "Declared capabilities" }),
    caps.length
      ? h("ul", { class: "cap-list", testid: "skill-capabilities" }, ...caps.map((line) => h("li", { text: line })))
      : h("p", { class: "muted", testid: "skill-capabilities", text: "No network, secrets, storage or channels." }),
  );
  const quotas = (info.manifest?.capabilities as { quotas?: Record<string, number | null> } | undefined)?.quotas;
  if (quotas) {
    const limits: string[] = [];
    if (quotas.wall_clock_timeout_ms) limits.push(`runs for at most ${quotas.wall_clock_timeout_ms} ms`);
    if (quotas.fuel_budget) limits.push(`fuel budget ${quotas.fuel_budget}`);
    if (quotas.max_memory_bytes) limits.push(`memory up to ${Math.round(quotas.max_memory_bytes / 1024 / 1024)} MiB`);
    if (limits.length) d.append(h("p", { class: "muted", text: `Limits: ${limits.join(", ")}.` }));
  }
  if (info.missing_secrets?.length) {
    d.append(
      h("h3", { text: "Missing secrets" }),
      h("ul", { class: "plain-list warn-text" }, ...info.missing_secrets.map((s) => h("li", { text: `${s} is not set (palyra secrets set …)` }))),
    );
  }

  const audit = info.audit ?? {};
  d.append(h("h3", { text: "Audit" }));
  const auditList = h("ul", { class: "plain-list", testid: "skill-audit" });
  auditList.append(h("li", { text: `${audit.passed ? "Passed" : "Failed"}${audit.check_count !== undefined ? ` — ${audit.check_count} checks` : ""}${audit.at_ms ? `, ${formatTime(audit.at_ms)}` : ""}` }));
  for (const reason of audit.quarantine_reasons ?? []) auditList.append(h("li", { class: "error-text", text: `Finding: ${reason}` }));
  for (const check of audit.failed_checks ?? []) auditList.append(h("li", { class: "error-text", text: `Failed check: ${check}` }));
  for (const check of audit.warning_checks ?? []) auditList.append(h("li", { class: "warn-text", text: `Warning: ${check}` }));
  d.append(auditList, h("p", { class: "muted small", text: "Run Audit for every check's message and the manifest warnings." }));

  const tools = info.manifest?.entrypoints?.tools ?? [];
  d.append(
    h("h3", { text: "Tools" }),
    tools.length
      ? h(
          "ul",
          { class: "plain-list" },
          ...tools.map((t) =>
            h("li", {}, h("strong", { text: t.name }), ` (${t.id})${t.description ? ` — ${t.description}` : ""}${t.risk?.requires_approval ? " · needs approval" : ""}`),
          ),
        )
      : h("p", { class: "muted", text: "No tools." }),
  );
  if (info.artifact_error) d.append(h("p", { class: "error-text", text: `Artifact problem: ${JSON.stringify(info.artifact_error)}` }));
  if (focus) d.focus();
}
