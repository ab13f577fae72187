// The timeline of a run: a row per step instance (forEach items folded into their forEach
// unless unfolded), bars for attempts, backoffs, sleeps, signal waits and compensations, in
// seconds since the run started; signals received as marks.

import { duration, h, s } from "./util";

export interface Bar {
  kind: string;
  from: number;
  to: number;
  attempt?: number;
  outcome?: string;
  error?: string;
}

export interface TimelineData {
  start: number | null;
  end: number;
  rows: { key: string; kind: string; bars: Bar[]; group: string | null }[];
  marks: { kind: string; at: number; label: string }[];
}

const LABEL = 200;
const ROW = 22;

export function drawTimeline(
  data: TimelineData,
  unfolded: Set<string>,
  onSelect: (key: string) => void,
): HTMLElement {
  if (data.start === null) return h("p", { class: "muted" }, "the run has not started");
  const rows: { key: string; kind: string; bars: Bar[]; folded?: number }[] = [];
  const folded = new Map<string, { key: string; kind: string; bars: Bar[]; folded: number }>();
  for (const row of data.rows) {
    if (row.group && !unfolded.has(row.group)) {
      let summary = folded.get(row.group);
      if (!summary) {
        summary = { key: row.group, kind: "items", bars: [], folded: 0 };
        folded.set(row.group, summary);
        rows.push(summary);
      }
      summary.folded += 1;
      summary.bars.push(...row.bars);
    } else {
      rows.push(row);
    }
  }
  const width = 900;
  const span = Math.max(data.end, 0.001);
  const scale = (t: number) => LABEL + (Math.max(0, t) / span) * (width - LABEL - 40);
  const height = rows.length * ROW + 30;
  const svg = s("svg", { class: "gantt", width, height, viewBox: `0 0 ${width} ${height}`, "data-testid": "timeline" });
  for (let i = 0; i <= 5; i++) {
    const t = (span * i) / 5;
    svg.append(
      s("line", { x1: scale(t), x2: scale(t), y1: 16, y2: height, class: "tick" }),
      s("text", { x: scale(t), y: 12, class: "tick-label", "text-anchor": "middle" }, `+${duration(t)}`),
    );
  }
  rows.forEach((row, i) => {
    const y = 20 + i * ROW;
    const label = row.folded ? `${row.key} (${row.folded} items)` : row.key;
    const g = s("g", { class: "gantt-row", "data-row": row.key });
    g.addEventListener("click", () => onSelect(row.key));
    g.append(s("rect", { x: 0, y, width, height: ROW, class: "row-bg" }));
    g.append(s("text", { x: 4, y: y + 14, class: "row-label" }, label.length > 28 ? `${label.slice(0, 27)}…` : label));
    for (const bar of row.bars) {
      const x = scale(bar.from);
      const w = Math.max(2, scale(bar.to) - x);
      const kind = row.kind === "compensation" && bar.kind === "attempt" ? "compensation" : bar.kind;
      g.append(
        s(
          "rect",
          { x, y: y + 3, width: w, height: ROW - 8, rx: 3, class: `gbar gbar-${kind} outcome-${bar.outcome || "none"}`, "data-kind": kind },
          s(
            "title",
            {},
            `${row.key} ${kind}${bar.attempt ? ` ${bar.attempt}` : ""}: +${duration(bar.from)} → +${duration(bar.to)} (${duration(bar.to - bar.from)})${bar.error ? `\n${bar.error}` : ""}`,
          ),
        ),
      );
    }
    svg.append(g);
  });
  for (const mark of data.marks) {
    const x = scale(mark.at);
    svg.append(
      s("line", { x1: x, x2: x, y1: 16, y2: height, class: "mark" }),
      s("text", { x: x + 3, y: height - 4, class: "mark-label" }, `⚑ ${mark.label}`),
    );
  }
  const legend = h(
    "div",
    { class: "legend" },
    ...["attempt", "backoff", "sleep", "wait", "span", "compensation"].map((kind) =>
      h("span", {}, h("i", { class: `swatch gbar-${kind}` }), kind),
    ),
    h("span", {}, h("i", { class: "swatch failed" }), "failed"),
  );
  return h("div", { class: "gantt-wrap" }, legend, svg);
}
