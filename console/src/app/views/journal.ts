/** Journal: the latest events (optionally of one kind), the hash chain's status, and live
 * events from the server-sent stream added at the top. */

import { describeError } from "../api";
import type { Api, ChainReport, JournalEvent } from "../api";
import { button, clear, formatTime, h, pretty } from "../dom";
import { badge, notify } from "../ui";
import type { View } from "../view";

const SHOWN = 100;
const PAGE = 1000;
const MAX_PAGES = 20;

/** The newest `SHOWN` events (oldest first): the API pages forward only. */
async function latestEvents(api: Api, kind: string): Promise<{ events: JournalEvent[]; last: number }> {
  const status = await api.status();
  const last = status.journal_last_seq ?? 0;
  if (!kind) {
    return { events: (await api.journal(Math.max(0, last - SHOWN), SHOWN)).events, last };
  }
  let after = Math.max(0, last - PAGE * MAX_PAGES);
  let kept: JournalEvent[] = [];
  for (let page = 0; page < MAX_PAGES; page++) {
    const events = (await api.journal(after, PAGE, kind)).events;
    kept = kept.concat(events).slice(-SHOWN);
    if (events.length < PAGE) break;
    after = events[events.length - 1]?.seq ?? after;
  }
  return { events: kept.filter((e) => e.seq <= last), last };
}

function eventItem(event: JournalEvent): HTMLElement {
  return h(
    "li",
    { class: "event", testid: `journal-event-${event.seq}`, attrs: { "data-kind": event.kind } },
    h(
      "div",
      { class: "event-head" },
      h("span", { class: "mono", text: `#${event.seq}` }),
      badge(event.kind, "info"),
      h("span", { class: "muted small", text: `${formatTime(event.at_ms)} · ${event.actor}` }),
    ),
    h("details", {}, h("summary", { text: "Payload" }), h("pre", { class: "pre small", text: pretty(event.payload) })),
  );
}

export const journalView: View = {
  id: "journal",
  title: "Journal",
  mount(container, ctx) {
    const api = ctx.api;
    let alive = true;
    let source: EventSource | null = null;
    let lastSeq = 0;
    let kindFilter = ctx.params.get("kind") ?? "";

    const chain = h("div", { class: "chain", testid: "journal-chain", attrs: { "aria-live": "polite" } });
    const liveState = h("span", { class: "muted small", testid: "journal-live", text: "connecting…" });
    const list = h("ol", { class: "event-list", testid: "journal-events", attrs: { reversed: true } });
    const kindInput = h("input", { class: "input", testid: "journal-kind", attrs: { id: "journal-kind", type: "text", maxlength: 64, placeholder: "e.g. tool.called", list: "journal-kinds" } });
    kindInput.value = kindFilter;
    const kinds = h("datalist", { attrs: { id: "journal-kinds" } });
    const knownKinds = new Set<string>();
    const filterForm = h(
      "form",
      { class: "row-fields", attrs: { novalidate: true } },
      h("div", { class: "field" }, h("label", { class: "field-label", attrs: { for: "journal-kind" }, text: "Kind" }), kindInput, kinds),
      h("div", { class: "field field-end" }, h("button", { class: "btn btn-primary", testid: "journal-apply", attrs: { type: "submit" }, text: "Show" })),
    );

    const noteKind = (kind: string) => {
      if (knownKinds.has(kind)) return;
      knownKinds.add(kind);
      kinds.appendChild(h("option", { attrs: { value: kind } }));
    };

    const verify = async () => {
      clear(chain);
      chain.append(h("span", { class: "muted", text: "Verifying…" }));
      let report: ChainReport;
      try {
        report = await api.verifyJournal();
      } catch (exc) {
        clear(chain);
        chain.append(h("span", { class: "error-text", text: `Cannot verify: ${describeError(exc)}` }));
        return;
      }
      if (!alive) return;
      clear(chain);
      chain.dataset.ok = String(report.ok);
      chain.append(
        report.ok ? badge("chain intact", "active") : badge("chain broken", "quarantined"),
        h("span", {
          text: report.ok
            ? ` ${report.events} events, last #${report.last_seq}`
            : ` at #${report.first_bad_seq ?? "?"}: ${report.problem ?? "unknown problem"}`,
        }),
      );
    };

    const prepend = (event: JournalEvent) => {
      lastSeq = Math.max(lastSeq, event.seq);
      noteKind(event.kind);
      if (kindFilter && event.kind !== kindFilter) return;
      if (list.querySelector(`[data-testid="journal-event-${event.seq}"]`)) return;
      list.querySelector('[data-testid="journal-empty"]')?.remove();
      list.insertBefore(eventItem(event), list.firstChild);
      while (list.children.length > SHOWN * 5) list.lastElementChild?.remove();
    };

    const connect = () => {
      source?.close();
      if (typeof EventSource === "undefined") {
        liveState.textContent = "live updates unavailable in this browser";
        return;
      }
      source = new EventSource(api.journalStreamUrl(lastSeq), { withCredentials: false });
      source.addEventListener("open", () => {
        liveState.textContent = "live";
      });
      source.addEventListener("journal", (message) => {
        try {
          prepend(JSON.parse((message as MessageEvent<string>).data) as JournalEvent);
        } catch {
          // a malformed event is skipped; the next one still arrives
        }
      });
      source.addEventListener("error", () => {
        // EventSource reconnects by itself (sending Last-Event-ID); say so.
        liveState.textContent = source?.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…";
      });
    };

    const load = async () => {
      clear(list);
      try {
        const { events, last } = await latestEvents(api, kindFilter);
        if (!alive) return;
        for (const event of events) prepend(event);
        if (events.length === 0) list.append(h("li", { class: "muted", testid: "journal-empty", text: "No events." }));
        lastSeq = Math.max(lastSeq, last);
      } catch (exc) {
        notify(`Cannot read the journal: ${describeError(exc)}`, "error");
      }
      if (alive) connect();
    };

    filterForm.addEventListener("submit", (event) => {
      event.preventDefault();
      kindFilter = kindInput.value.trim();
      lastSeq = 0;
      void load();
    });

    container.append(
      h(
        "section",
        { class: "panel" },
        h("div", { class: "panel-head" }, h("h2", { text: "Chain" }), button("Verify again", () => void verify(), { testid: "journal-verify" })),
        chain,
      ),
      h(
        "section",
        { class: "panel" },
        h("div", { class: "panel-head" }, h("h2", { text: "Events (newest first)" }), liveState),
        filterForm,
        list,
      ),
    );
    void verify();
    void load();
    return () => {
      alive = false;
      source?.close();
    };
  },
};
