import { afterEach, describe, expect, it, vi } from "vitest";
import { normalizeDocument } from "../src/a2ui";
import type { Api } from "../src/app/api";
import { runnerView, submitToolFor } from "../src/app/views/runner";

const FORM_DOC = {
  v: 1,
  surface: "settings",
  components: [
    { id: "intro", type: "text", props: { value: "Settings" } },
    {
      id: "prefs",
      type: "form",
      props: {
        title: "Preferences",
        submit_label: "Save",
        submit_tool: "save_settings",
        fields: [{ id: "name", label: "Name", type: "text", default: "Ada" }],
      },
    },
  ],
};

const TOOL = {
  id: "acme.show",
  name: "show",
  description: "shows a form",
  input_schema: { type: "object", properties: { n: { type: "integer", minimum: 1 } }, required: ["n"] },
  output_schema: {},
  risk: { default_sensitive: false, requires_approval: false },
};

function result(output: unknown, seq: number) {
  return {
    skill_id: "acme.demo", version: "1.0.0", tool_id: "acme.show", receipt_seq: seq, approval_id: null,
    output, exit_code: 0, fuel_used: 42, duration_ms: 1.5, memory_bytes: 0, logs: [], dropped_logs: 0, egress: [],
  };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !check(); i++) await flush();
  expect(check()).toBe(true);
}

const q = <T extends Element = HTMLElement>(id: string) => document.querySelector<T>(`[data-testid="${id}"]`);

afterEach(() => document.body.replaceChildren());

describe("runner", () => {
  it("finds a form's submit tool in the raw or normalised document", () => {
    const normalized = normalizeDocument(FORM_DOC);
    expect(submitToolFor(FORM_DOC, normalized, "prefs")).toBe("save_settings");
    expect(submitToolFor({ components: [] }, normalized, "prefs")).toBe("save_settings");
    expect(submitToolFor(FORM_DOC, { components: [] }, "other")).toBe("save_settings"); // the only form
    expect(submitToolFor({ components: [] }, { components: [] }, "prefs")).toBeNull();
  });

  it("runs a tool from its schema form, renders A2UI, and submits the form to its submit tool", async () => {
    const run = vi
      .fn()
      .mockResolvedValueOnce(result(FORM_DOC, 7))
      .mockResolvedValueOnce(result({ saved: true }, 8));
    const api = {
      listSkills: vi.fn().mockResolvedValue({ count: 1, skills: [{ skill_id: "acme.demo", name: "Demo", status: "active" }] }),
      skillInfo: vi.fn().mockResolvedValue({ skill_id: "acme.demo", status: "active", manifest: { entrypoints: { tools: [TOOL] } } }),
      run,
    } as unknown as Api;
    const container = document.createElement("div");
    document.body.appendChild(container);
    const stop = runnerView.mount(container, {
      api,
      params: new URLSearchParams("skill=acme.demo"),
      navigate: () => undefined,
    });

    await until(() => q("field-n") !== null);
    expect(q<HTMLSelectElement>("run-skill")?.value).toBe("acme.demo");
    q<HTMLButtonElement>("run-button")!.click();
    expect(run).not.toHaveBeenCalled(); // n is required
    q<HTMLInputElement>("field-n")!.value = "3";
    q<HTMLButtonElement>("run-button")!.click();
    await until(() => q("run-a2ui")?.querySelector("form") != null);
    expect(run).toHaveBeenCalledWith("acme.demo", "acme.show", { n: 3 });
    expect(q("run-receipt")?.textContent).toBe("#7");
    expect(q("run-fuel")?.textContent).toBe("42");

    const form = q("run-a2ui")!.querySelector("form")!;
    form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
    await until(() => run.mock.calls.length === 2 && q("run-receipt")?.textContent === "#8");
    expect(run.mock.calls[1]).toEqual(["acme.demo", "save_settings", { componentId: "prefs", values: { name: "Ada" } }]);
    expect(JSON.parse(q("run-output")!.textContent!)).toEqual({ saved: true });
    expect(q("run-a2ui")).toBeNull();
    if (typeof stop === "function") stop();
  });
});
