// Workflows: the list with their runs' phases, and one workflow with its graph, the runs of
// each generation, and a form that starts a run (its input checked against the inputSchema by
// the server, as the operator checks it).

import { ApiError, get, post } from "./api";
import { drawGraph, GraphData } from "./graph";
import { navigate, View } from "./main";
import { table } from "./run";
import { RunSummary, runPath } from "./runs";
import { age, h, json, phaseBadge } from "./util";

interface WorkflowRow {
  namespace: string;
  name: string;
  generation: number;
  created: string;
  steps: number;
  runs: number;
  counts: Record<string, number>;
}

export async function showWorkflows(main: HTMLElement): Promise<View> {
  const { items } = await get<{ items: WorkflowRow[] }>("/api/workflows");
  main.append(
    h("h1", {}, "Workflows"),
    table(
      ["name", "namespace", "generation", "steps", "runs", "phases", "age"],
      items.map((w) => [
        h("a", { href: `/workflows/${encodeURIComponent(w.namespace)}/${encodeURIComponent(w.name)}` }, w.name),
        w.namespace,
        String(w.generation),
        String(w.steps),
        String(w.runs),
        h("span", {}, ...Object.entries(w.counts).map(([p, n]) => h("span", { class: "count-inline" }, phaseBadge(p), ` ${n} `))),
        age(w.created),
      ]),
      "workflows",
    ),
  );
  return {};
}

export async function showWorkflow(main: HTMLElement, namespace: string, name: string): Promise<View> {
  const base = `/api/workflows/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  const detail = await get<{
    workflow: any;
    graph: GraphData;
    generation: number;
    generations: { generation: string; runs: RunSummary[]; total: number }[];
    inputSchema: any;
  }>(base);
  const input = h("textarea", { rows: 6, class: "code", "data-testid": "run-input" }, "{}");
  const runName = h("input", { placeholder: "run name (optional: generated)", "data-testid": "run-name-input" });
  const answer = h("div", { class: "action-result", "data-testid": "run-result" });
  const start = async (event: Event) => {
    event.preventDefault();
    let value: unknown;
    try {
      value = JSON.parse(input.value || "null");
    } catch (error) {
      answer.className = "action-result refused";
      answer.textContent = `input: not JSON (${(error as Error).message})`;
      return;
    }
    try {
      const created = await post<{ namespace: string; name: string }>(`${base}/runs`, {
        input: value,
        ...(runName.value.trim() ? { name: runName.value.trim() } : {}),
      });
      navigate(runPath(created));
    } catch (error) {
      answer.className = "action-result refused";
      answer.textContent = error instanceof ApiError ? `refused (${error.status}): ${error.message}` : String(error);
    }
  };
  main.append(
    h("div", { class: "title-row" }, h("h1", {}, name), h("span", { class: "muted" }, `${namespace} · generation ${detail.generation}`)),
    h("div", { class: "graph-card card" }, drawGraph(detail.graph, { selected: null, unfolded: new Set(), onSelect: () => undefined, onFold: () => undefined, childHref: runPath })),
    h(
      "form",
      { class: "card run-form", onsubmit: start },
      h("h2", {}, "Run"),
      runName,
      input,
      h("button", { type: "submit", "data-testid": "start-run" }, "Start run"),
      answer,
      detail.inputSchema ? h("details", {}, h("summary", {}, "input schema"), h("pre", { class: "code" }, json(detail.inputSchema))) : null,
    ),
    h("h2", {}, "Runs by generation"),
    ...detail.generations.map((g) =>
      h(
        "div",
        { class: "card" },
        h("h3", {}, `generation ${g.generation} — ${g.total} runs`),
        table(
          ["name", "phase", "progress", "age"],
          g.runs.map((r) => [h("a", { href: runPath(r) }, r.name), phaseBadge(r.phase), r.progress, age(r.created)]),
          "generation-runs",
        ),
      ),
    ),
  );
  return {};
}
