/**
 * The console shell: sign-in, then a nav and one view at a time, chosen by the URL hash
 * (`#/skills`, `#/run?skill=…`). Views live in ./views and implement the View contract.
 */

import "./styles.css";
import { Api, ApiError, describeError } from "./api";
import { clear, h } from "./dom";
import { clearNotice, createLiveRegion, notify } from "./ui";
import type { View, ViewContext } from "./view";
import { approvalsView } from "./views/approvals";
import { journalView } from "./views/journal";
import { pluginsView } from "./views/plugins";
import { runnerView } from "./views/runner";
import { skillsView } from "./views/skills";

const VIEWS: readonly View[] = [skillsView, runnerView, approvalsView, journalView, pluginsView];
const DEFAULT_VIEW = "skills";

interface Route {
  id: string;
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, "");
  const [path = "", query = ""] = raw.split("?", 2);
  const id = path.split("/")[0] || DEFAULT_VIEW;
  return { id, params: new URLSearchParams(query) };
}

export function routeHash(id: string, params?: Record<string, string>): string {
  const query = params ? new URLSearchParams(params).toString() : "";
  return `#/${id}${query ? `?${query}` : ""}`;
}

class Console {
  private readonly api = new Api();
  private readonly live = createLiveRegion();
  private cleanup: (() => void) | null = null;
  private main: HTMLElement | null = null;
  private navLinks = new Map<string, HTMLAnchorElement>();
  private readonly onHash = () => this.renderRoute();

  constructor(private readonly root: HTMLElement) {
    this.api.onUnauthorized = () => {
      if (this.main) {
        this.showSignIn("Your session has ended. Sign in again.");
      }
    };
  }

  async start(): Promise<void> {
    clear(this.root);
    this.root.appendChild(h("p", { class: "loading", text: "Loading…" }));
    try {
      const session = await this.api.restoreSession();
      if (session) this.showShell();
      else this.showSignIn();
    } catch (exc) {
      this.showSignIn(`Cannot check the session: ${describeError(exc)}`);
    }
  }

  private teardown(): void {
    this.cleanup?.();
    this.cleanup = null;
    window.removeEventListener("hashchange", this.onHash);
    this.main = null;
    this.navLinks.clear();
  }

  showSignIn(message?: string): void {
    this.teardown();
    clear(this.root);
    const tokenId = "signin-token";
    const input = h("input", {
      class: "input",
      testid: "signin-token",
      attrs: { id: tokenId, type: "password", autocomplete: "current-password", required: true, maxlength: 256 },
    });
    const error = h("p", {
      class: "field-error",
      testid: "signin-error",
      attrs: { id: "signin-error", role: "alert", hidden: !message },
      text: message ?? "",
    });
    input.setAttribute("aria-describedby", "signin-error signin-hint");
    const submit = h("button", {
      class: "btn btn-primary",
      testid: "signin-button",
      attrs: { type: "submit" },
      text: "Sign in",
    });
    const form = h(
      "form",
      { class: "signin-form", attrs: { novalidate: true, "aria-labelledby": "signin-title" } },
      h("h1", { text: "Palyra console", attrs: { id: "signin-title" } }),
      h(
        "div",
        { class: "field" },
        h("label", { class: "field-label", attrs: { for: tokenId }, text: "API token" }),
        input,
        h("p", {
          class: "field-hint",
          attrs: { id: "signin-hint" },
          text: "Print it with `palyra daemon token` on the daemon's host.",
        }),
      ),
      error,
      submit,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) {
        error.textContent = "Enter the API token.";
        error.hidden = false;
        input.focus();
        return;
      }
      submit.disabled = true;
      error.hidden = true;
      try {
        await this.api.signIn(token);
        input.value = "";
        this.showShell();
      } catch (exc) {
        error.textContent =
          exc instanceof ApiError && exc.kind === "unauthorized"
            ? "That token is not right."
            : describeError(exc);
        error.hidden = false;
        submit.disabled = false;
        input.focus();
      }
    });
    this.root.appendChild(h("main", { class: "signin", attrs: { id: "main" } }, form, this.live));
    input.focus();
  }

  private showShell(): void {
    this.teardown();
    clear(this.root);
    clearNotice();
    const nav = h("nav", { class: "nav", attrs: { "aria-label": "Console sections" } });
    const list = h("ul", { class: "nav-list" });
    for (const view of VIEWS) {
      const link = h("a", {
        class: "nav-link",
        testid: `nav-${view.id}`,
        attrs: { href: routeHash(view.id) },
        text: view.title,
      });
      this.navLinks.set(view.id, link);
      list.appendChild(h("li", {}, link));
    }
    nav.appendChild(list);
    const signOut = h("button", {
      class: "btn btn-plain",
      testid: "signout",
      attrs: { type: "button" },
      text: "Sign out",
    });
    signOut.addEventListener("click", async () => {
      try {
        await this.api.signOut();
      } catch (exc) {
        notify(`Sign-out failed: ${describeError(exc)}`, "error");
        return;
      }
      this.showSignIn("You are signed out.");
    });
    const header = h(
      "header",
      { class: "topbar" },
      h("a", { class: "skip-link", attrs: { href: "#main" }, text: "Skip to content", on: { click: (e) => this.skipToMain(e) } }),
      h("span", { class: "brand", text: "Palyra" }),
      nav,
      signOut,
    );
    this.main = h("main", { class: "content", attrs: { id: "main", tabindex: -1 } });
    this.root.append(header, this.live, this.main);
    window.addEventListener("hashchange", this.onHash);
    this.renderRoute();
  }

  private skipToMain(event: MouseEvent): void {
    event.preventDefault();
    this.main?.focus();
  }

  private renderRoute(): void {
    const main = this.main;
    if (!main) return;
    const route = parseHash(window.location.hash);
    const view = VIEWS.find((v) => v.id === route.id);
    if (!view) {
      window.location.hash = routeHash(DEFAULT_VIEW);
      return;
    }
    this.cleanup?.();
    this.cleanup = null;
    clear(main);
    for (const [id, link] of this.navLinks) {
      if (id === view.id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.title = `${view.title} · Palyra console`;
    const container = h("div", { class: "view", testid: `view-${view.id}` });
    main.appendChild(h("h1", { class: "view-title", text: view.title }));
    main.appendChild(container);
    const ctx: ViewContext = {
      api: this.api,
      params: route.params,
      navigate: (id, params) => {
        window.location.hash = routeHash(id, params);
      },
    };
    try {
      this.cleanup = view.mount(container, ctx) ?? null;
    } catch (exc) {
      notify(`The ${view.title} view failed: ${describeError(exc)}`, "error");
    }
  }
}

const root = document.getElementById("app");
if (root) void new Console(root).start();
