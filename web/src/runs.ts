// The runs list: filters in the URL, phase counts, pages, and rows kept live by the server's
// event stream (a change refreshes the page shown, gathered over a short burst).

import { follow, get } from "./api";
import { navigate, View } from "./main";
import { age, clear, debounce, duration, h, parseTime, phaseBadge } from "./util";

export interface RunSummary {
  namespace: string;
  name: string;
  workflow: string;
  phase: string;
  step: string;
  progress: string;
  created: string;
  startedAt: string | null;
  finishedAt: string | null;
  error?: string;
}

interface Page {
  items: RunSummary[];
  total: number;
  offset: number;
  counts: Record<string, number>;
  workflows: string[];
  namespaces: string[];
  version: number;
}

const FILTERS = ["namespace", "workflow", "phase", "label", "since", "search"] as const;
const PAGE = 50;

export function runPath(run: { namespace: string; name: string }): string {
  return `/runs/${encodeURIComponent(run.namespace)}/${encodeURIComponent(run.name)}`;
}

export function runDuration(run: RunSummary): string {
  const started = parseTime(run.startedAt);
  if (started === null) return "";
  const end = parseTime(run.finishedAt) ?? Date.now() / 1000;
  return duration(end - started);
}

export async function showRuns(main: HTMLElement): Promise<View> {
  const params = new URLSearchParams(location.search);
  const counts = h("div", { class: "counts", "data-testid": "phase-counts" });
  const body = h("tbody");
  const pager = h("div", { class: "pager" });
  const live = h("span", { class: "live", "data-testid": "live" }, "connecting…");
  let selected = -1;
  let page: Page | null = null;

  const input = (name: string, placeholder: string, extra: Record<string, string> = {}) =>
    h("input", {
      name,
      placeholder,
      value: params.get(name) || "",
      "data-testid": `filter-${name}`,
      ...extra,
    });
  const namespace = h("select", { name: "namespace", "data-testid": "filter-namespace" });
  const workflow = h("select", { name: "workflow", "data-testid": "filter-workflow" });
  const phase = h("select", { name: "phase", "data-testid": "filter-phase" });
  const since = h(
    "select",
    { name: "since", "data-testid": "filter-since" },
    ...[
      ["", "any time"],
      ["15m", "last 15 minutes"],
      ["1h", "last hour"],
      ["24h", "last day"],
      ["7d", "last week"],
    ].map(([value, label]) =>
      h("option", { value, selected: params.get("since") === value }, label),
    ),
  );
  const label = input("label", "label selector (team=a,tier!=b)");
  const search = input("search", "search by name  ( / )", { "data-search": "1" });

  const apply = () => {
    const next = new URLSearchParams();
    for (const [name, el] of [
      ["namespace", namespace],
      ["workflow", workflow],
      ["phase", phase],
      ["label", label],
      ["since", since],
      ["search", search],
    ] as const) {
      if (el.value) next.set(name, el.value);
    }
    history.replaceState(null, "", `/runs${next.toString() ? `?${next}` : ""}`);
    params.delete("offset");
    for (const f of FILTERS) params.delete(f);
    next.forEach((v, k) => params.set(k, v));
    void load();
  };
  for (const el of [namespace, workflow, phase, since]) el.addEventListener("change", apply);
  const typed = debounce(apply, 250);
  for (const el of [label, search]) el.addEventListener("input", typed);

  const fillSelect = (select: HTMLSelectElement, all: string, values: string[], chosen: string) => {
    clear(select);
    select.append(h("option", { value: "" }, all));
    for (const value of values) select.append(h("option", { value, selected: value === chosen }, value));
  };

  const render = () => {
    if (!page) return;
    fillSelect(namespace, "all namespaces", page.namespaces, params.get("namespace") || "");
    fillSelect(workflow, "all workflows", page.workflows, params.get("workflow") || "");
    fillSelect(phase, "all phases", Object.keys(page.counts), params.get("phase") || "");
    clear(counts);
    for (const [name, count] of Object.entries(page.counts)) {
      if (!count && name !== "Running") continue;
      const active = params.get("phase") === name;
      counts.append(
        h(
          "button",
          {
            class: `count ${active ? "active" : ""}`,
            "data-testid": `count-${name}`,
            onclick: () => {
              phase.value = active ? "" : name;
              apply();
            },
          },
          phaseBadge(name),
          h("b", {}, String(count)),
        ),
      );
    }
    clear(body);
    page.items.forEach((run, i) => {
      body.append(
        h(
          "tr",
          {
            class: i === selected ? "selected" : "",
            "data-run": `${run.namespace}/${run.name}`,
            "data-testid": "run-row",
          },
          h("td", {}, h("a", { href: runPath(run) }, run.name)),
          h("td", {}, run.namespace),
          h("td", {}, run.workflow),
          h("td", {}, phaseBadge(run.phase)),
          h("td", { class: "muted" }, run.step),
          h("td", {}, run.progress),
          h("td", { title: run.created }, age(run.created)),
          h("td", {}, runDuration(run)),
          h("td", { class: "error-text" }, run.error || ""),
        ),
      );
    });
    if (!page.items.length) {
      body.append(h("tr", {}, h("td", { colspan: 9, class: "muted" }, "no runs match")));
    }
    clear(pager);
    const offset = page.offset;
    const last = Math.min(offset + PAGE, page.total);
    pager.append(
      h(
        "button",
        { disabled: offset === 0, onclick: () => turn(-PAGE), "data-testid": "prev" },
        "← newer",
      ),
      h("span", { "data-testid": "page-range" }, `${page.total ? offset + 1 : 0}–${last} of ${page.total}`),
      h(
        "button",
        { disabled: last >= page.total, onclick: () => turn(PAGE), "data-testid": "next" },
        "older →",
      ),
    );
  };

  const turn = (delta: number) => {
    const offset = Math.max(0, Number(params.get("offset") || 0) + delta);
    params.set("offset", String(offset));
    selected = -1;
    void load();
  };

  const load = async () => {
    const query = new URLSearchParams(params);
    query.set("limit", String(PAGE));
    page = await get<Page>(`/api/runs?${query}`);
    render();
  };
  // A refresh that fails (the server gone, the page left) changes nothing shown: the stream
  // reconnects, says hello, and the next refresh reads again.
  const refresh = debounce(() => void load().catch(() => undefined), 300);

  main.append(
    h(
      "section",
      { class: "runs" },
      h("div", { class: "title-row" }, h("h1", {}, "Runs"), live),
      counts,
      h("div", { class: "filters" }, search, namespace, workflow, phase, label, since),
      h(
        "table",
        { class: "grid", "data-testid": "runs-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...["Name", "Namespace", "Workflow", "Phase", "Step", "Progress", "Age", "Duration", "Error"].map(
              (title) => h("th", {}, title),
            ),
          ),
        ),
        body,
      ),
      pager,
    ),
  );
  await load();
  const stop = follow(
    "/api/runs/events",
    (message) => {
      if (message.hello) {
        refresh(); // what changed before the stream started (or while it reconnected)
        return;
      }
      // Rows shown are updated at once; the page (order, counts, new runs) right after.
      for (const run of (message.runs || []) as RunSummary[]) {
        const index = page?.items.findIndex((r) => r.namespace === run.namespace && r.name === run.name);
        if (page && index !== undefined && index >= 0) page.items[index] = run;
      }
      render();
      refresh();
    },
    (on) => {
      live.textContent = on ? "● live" : "○ reconnecting";
      live.classList.toggle("on", on);
    },
  );
  return {
    stop,
    key: (event) => {
      if (!page) return false;
      if (event.key === "j" || event.key === "ArrowDown") {
        selected = Math.min(selected + 1, page.items.length - 1);
      } else if (event.key === "k" || event.key === "ArrowUp") {
        selected = Math.max(selected - 1, 0);
      } else if (event.key === "Enter" && selected >= 0) {
        navigate(runPath(page.items[selected]));
        return true;
      } else if (event.key === "n") {
        turn(PAGE);
        return true;
      } else if (event.key === "p") {
        turn(-PAGE);
        return true;
      } else {
        return false;
      }
      render();
      body.querySelector("tr.selected")?.scrollIntoView({ block: "nearest" });
      return true;
    },
  };
}
