// WorkerPools: replicas, backlog and tasks in flight from their status, read again every few
// seconds while the page is open and drawn over that time.

import { get } from "./api";
import { View } from "./main";
import { table } from "./run";
import { age, clear, h, s } from "./util";

interface Pool {
  namespace: string;
  name: string;
  spec: any;
  status: any;
}

const EVERY_MS = 5000;
const KEPT = 120;
/** Samples kept per pool: ten minutes at one every five seconds. */

interface Sample {
  replicas: number;
  backlog: number;
  inFlight: number;
}

function sparkline(samples: Sample[]): SVGElement {
  const width = 160;
  const height = 32;
  const top = Math.max(1, ...samples.flatMap((x) => [x.replicas, x.backlog, x.inFlight]));
  const line = (pick: (x: Sample) => number, cls: string) => {
    const step = samples.length > 1 ? width / (KEPT - 1) : 0;
    const points = samples.map((x, i) => `${i * step},${height - 2 - (pick(x) / top) * (height - 4)}`).join(" ");
    return s("polyline", { points, class: `spark ${cls}` });
  };
  return s(
    "svg",
    { width, height, class: "sparkline", viewBox: `0 0 ${width} ${height}` },
    s("title", {}, "replicas (blue), backlog (amber), in flight (green), since the page opened"),
    line((x) => x.replicas, "spark-replicas"),
    line((x) => x.backlog, "spark-backlog"),
    line((x) => x.inFlight, "spark-inflight"),
  );
}

export async function showPools(main: HTMLElement): Promise<View> {
  const history = new Map<string, Sample[]>();
  const box = h("div", {});
  main.append(h("h1", {}, "Worker pools"), box);
  const load = async () => {
    const { items } = await get<{ items: Pool[] }>("/api/pools");
    for (const p of items) {
      const key = `${p.namespace}/${p.name}`;
      const samples = history.get(key) || [];
      samples.push({ replicas: p.status.replicas ?? 0, backlog: p.status.backlog ?? 0, inFlight: p.status.inFlight ?? 0 });
      history.set(key, samples.slice(-KEPT));
    }
    clear(box);
    box.append(
      table(
        ["name", "namespace", "replicas (ready/desired)", "min–max", "backlog", "in flight", "over time", "last scaled", "ready"],
        items.map((p) => {
          const ready = (p.status.conditions || []).find((c: any) => c.type === "Ready");
          return [
            p.name,
            p.namespace,
            `${p.status.replicas ?? 0} (${p.status.readyReplicas ?? 0}/${p.status.desiredReplicas ?? 0})`,
            `${p.spec.minReplicas ?? 0}–${p.spec.maxReplicas ?? 10}${p.spec.scaling === "external" ? " (external)" : ""}`,
            String(p.status.backlog ?? 0),
            String(p.status.inFlight ?? 0),
            sparkline(history.get(`${p.namespace}/${p.name}`) || []) as unknown as Node,
            p.status.lastScaleTime ? `${age(p.status.lastScaleTime)} ago` : "",
            ready ? `${ready.status}${ready.message ? `: ${ready.message}` : ""}` : "",
          ];
        }),
        "pools",
      ),
    );
  };
  await load();
  const timer = window.setInterval(() => void load().catch(() => undefined), EVERY_MS);
  return { stop: () => window.clearInterval(timer) };
}
