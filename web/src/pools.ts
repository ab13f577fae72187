// WorkerPools: replicas, backlog and tasks in flight as their status reports them.

import { get } from "./api";
import { View } from "./main";
import { table } from "./run";
import { age, h } from "./util";

export async function showPools(main: HTMLElement): Promise<View> {
  const { items } = await get<{ items: { namespace: string; name: string; spec: any; status: any }[] }>("/api/pools");
  main.append(
    h("h1", {}, "Worker pools"),
    table(
      ["name", "namespace", "replicas (ready/desired)", "min–max", "backlog", "in flight", "last scaled", "ready"],
      items.map((p) => {
        const ready = (p.status.conditions || []).find((c: any) => c.type === "Ready");
        return [
          p.name,
          p.namespace,
          `${p.status.replicas ?? 0} (${p.status.readyReplicas ?? 0}/${p.status.desiredReplicas ?? 0})`,
          `${p.spec.minReplicas ?? p.spec.scaling?.minReplicas ?? ""}–${p.spec.maxReplicas ?? p.spec.scaling?.maxReplicas ?? ""}`,
          String(p.status.backlog ?? 0),
          String(p.status.inFlight ?? 0),
          p.status.lastScaleTime ? `${age(p.status.lastScaleTime)} ago` : "",
          ready ? `${ready.status}${ready.message ? `: ${ready.message}` : ""}` : "",
        ];
      }),
      "pools",
    ),
  );
  return {};
}
