// The graph of a run's steps, laid out by dagre (compound: parallel branches and catch clauses
// are clusters), drawn as SVG. A forEach is one node with its counts per phase; unfolded, its
// items show as a grid of cells below the graph (a thousand boxes would tell nothing).

import * as dagre from "@dagrejs/dagre";
import { h, s } from "./util";

export interface GraphNode {
  id: string;
  label: string;
  kind: string;
  phase: string;
  attempts: number;
  parent?: string;
  error?: string;
  signal?: string;
  cached?: boolean;
  lock?: { message: string; held: boolean };
  child?: { namespace: string; name: string; phase: string; progress: string };
  forEach?: {
    step: string;
    kind: string;
    total: number;
    phases: Record<string, number>;
    items: { index: number; key: string; phase: string; attempts?: number; child?: GraphNode["child"] }[];
  };
}

/** A step that asked for a lock and has not been granted it: it waits for that, not its signal. */
export function waitsForLock(node: GraphNode): boolean {
  return !!node.lock && !node.lock.held;
}

export interface GraphData {
  nodes: GraphNode[];
  edges: { from: string; to: string; kind: string }[];
  groups: { id: string; label: string; parent: string | null }[];
}

const WIDTH = 180;
const HEIGHT = 54;

export interface GraphOptions {
  selected: string | null;
  unfolded: Set<string>;
  onSelect: (key: string) => void;
  onFold: (key: string) => void;
  childHref: (child: NonNullable<GraphNode["child"]>) => string;
}

export function drawGraph(data: GraphData, options: GraphOptions): HTMLElement {
  const graph = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  graph.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 36, marginx: 12, marginy: 12 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const group of data.groups) {
    graph.setNode(group.id, { label: group.label, clusterLabelPos: "top" });
  }
  for (const group of data.groups) if (group.parent) graph.setParent(group.id, group.parent);
  for (const node of data.nodes) {
    const join = node.kind === "join";
    graph.setNode(node.id, { width: join ? 14 : WIDTH, height: join ? 14 : node.forEach ? HEIGHT + 14 : HEIGHT });
    if (node.parent) graph.setParent(node.id, node.parent);
  }
  data.edges.forEach((edge, i) => graph.setEdge(edge.from, edge.to, { kind: edge.kind }, `e${i}`));
  dagre.layout(graph);
  const size = graph.graph();
  const width = (size.width || 0) + 4;
  const height = (size.height || 0) + 4;
  const svg = s("svg", {
    class: "graph",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    "data-testid": "graph",
  });
  svg.append(
    s(
      "defs",
      {},
      s(
        "marker",
        { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }),
      ),
    ),
  );
  for (const group of data.groups) {
    const box = graph.node(group.id);
    if (!box) continue;
    svg.append(
      s(
        "g",
        { class: "cluster", "data-group": group.id },
        s("rect", { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, rx: 8 }),
        s("text", { x: box.x - box.width / 2 + 8, y: box.y - box.height / 2 + 14 }, group.label),
      ),
    );
  }
  for (const edge of graph.edges()) {
    const value = graph.edge(edge) as any;
    const points: { x: number; y: number }[] = value.points || [];
    const d = points.map((p, i) => `${i ? "L" : "M"} ${p.x} ${p.y}`).join(" ");
    svg.append(s("path", { d, class: `edge edge-${value.kind}`, "marker-end": "url(#arrow)" }));
  }
  for (const node of data.nodes) {
    const box = graph.node(node.id);
    if (!box) continue;
    svg.append(drawNode(node, box, options));
  }
  const wrap = h("div", { class: "graph-wrap" }, svg);
  const items = h("div", { class: "items" });
  for (const node of data.nodes) {
    if (node.forEach && options.unfolded.has(node.id)) items.append(itemGrid(node, options));
  }
  return h("div", {}, wrap, items);
}

function drawNode(node: GraphNode, box: { x: number; y: number; width: number; height: number }, options: GraphOptions): SVGElement {
  const x = box.x - box.width / 2;
  const y = box.y - box.height / 2;
  const phase = (node.phase || "Pending").toLowerCase();
  if (node.kind === "join") {
    return s("circle", { cx: box.x, cy: box.y, r: 6, class: `join phase-fill-${phase}` });
  }
  const classes = ["node", `phase-fill-${phase}`, node.kind === "compensation" ? "compensation" : "", options.selected === node.id ? "selected" : ""];
  const g = s("g", {
    class: classes.join(" "),
    "data-step": node.id,
    "data-phase": node.phase,
    "data-testid": "graph-node",
    tabindex: 0,
    role: "button",
  });
  g.addEventListener("click", () => options.onSelect(node.id));
  g.addEventListener("keydown", (event) => {
    if ((event as KeyboardEvent).key === "Enter") options.onSelect(node.id);
  });
  g.append(
    s("title", {}, `${node.id} (${node.kind || "step"}): ${node.phase}${node.cached ? " (output from the cache)" : ""}${node.lock ? ` — ${node.lock.message}` : ""}${node.error ? ` — ${node.error}` : ""}`),
    s("rect", { x, y, width: box.width, height: box.height, rx: 6 }),
    s("text", { x: x + 8, y: y + 18, class: "node-label" }, truncate(node.label, 22)),
    s("text", { x: x + box.width - 8, y: y + 18, class: "node-kind", "text-anchor": "end" }, node.kind),
    s(
      "text",
      { x: x + 8, y: y + 36, class: "node-phase" },
      node.phase +
        (node.cached ? " · cached" : "") +
        (node.attempts > 1 ? ` · ${node.attempts} attempts` : "") +
        (waitsForLock(node) ? " · lock" : node.signal && node.phase === "Waiting" ? ` · ${node.signal}` : ""),
    ),
  );
  if (node.child) {
    const link = s("a", { href: options.childHref(node.child), class: "child-link", "data-testid": "child-link" }, s("text", { x: x + 8, y: y + 50 }, `↳ ${truncate(node.child.name, 20)} ${node.child.phase}`));
    link.addEventListener("click", (event) => event.stopPropagation());
    g.append(link);
  }
  if (node.forEach) {
    const each = node.forEach;
    let offset = 0;
    for (const [phase, count] of Object.entries(each.phases)) {
      const w = each.total ? (count / each.total) * (box.width - 16) : 0;
      g.append(s("rect", { x: x + 8 + offset, y: y + 42, width: w, height: 6, class: `bar phase-fill-${phase.toLowerCase()}` }));
      offset += w;
    }
    const summary = Object.entries(each.phases).map(([p, n]) => `${n} ${p.toLowerCase()}`).join(", ");
    const toggle = s(
      "text",
      { x: x + 8, y: y + 62, class: "fold", "data-testid": "fold", "data-fold": node.id },
      `${options.unfolded.has(node.id) ? "▾" : "▸"} ${each.total} items: ${summary}`,
    );
    toggle.addEventListener("click", (event) => {
      event.stopPropagation();
      options.onFold(node.id);
    });
    g.append(toggle);
  }
  return g;
}

function itemGrid(node: GraphNode, options: GraphOptions): HTMLElement {
  const each = node.forEach!;
  const cells = each.items.map((item) =>
    h("button", {
      class: `cell phase-bg-${item.phase.toLowerCase()} ${options.selected === item.key ? "selected" : ""}`,
      title: `[${item.index}] ${each.step}: ${item.phase}${item.attempts && item.attempts > 1 ? `, ${item.attempts} attempts` : ""}`,
      "data-item": item.key,
      onclick: () => options.onSelect(item.key),
    }),
  );
  return h(
    "div",
    { class: "item-grid card", "data-testid": "items", "data-for": node.id },
    h("h3", {}, `${node.label}: ${each.total} items of ${each.step}`),
    h("div", { class: "cells" }, ...cells),
  );
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
