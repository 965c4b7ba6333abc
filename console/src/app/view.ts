/** The contract every console view implements; add a view by adding one to VIEWS in main.ts. */

import type { Api } from "./api";

export interface ViewContext {
  api: Api;
  /** Query parameters of the route (`#/run?skill=x&tool=y`). */
  params: URLSearchParams;
  /** Navigate to another route (`navigate("run", {skill: "x"})`). */
  navigate(route: string, params?: Record<string, string>): void;
}

export interface View {
  /** The route (`#/<id>`) and the nav link's test id (`nav-<id>`). */
  readonly id: string;
  readonly title: string;
  /** Fill `container`; return a cleanup (timers, streams) run when the view is left. */
  mount(container: HTMLElement, ctx: ViewContext): (() => void) | void;
}
