"""Benchmark: what one WorkflowRun status write costs the API server, with the status schema
Baton publishes (top-level fields and conditions typed, nested objects and lists opaque) against
the same status typed all the way down.

On a local control plane of its own (hack/controlplane.sh, cluster `status-cost`) it installs
WorkflowRun twice under benchmark groups, `typed.bench.baton.dev` (`openapi_schema(...,
flat_status=False)`) and `flat.bench.baton.dev` (the published schema), creates one run of each
and writes the status of a finished 10-step chain to them: `--writes` JSON patches `add
/status` per round, each moving every step's times as a run's writes do, one after another
through baton's Kube client. Rounds alternate which schema goes first. Per round: the API
server's CPU (user + system, /proc) per write and the wall time per write; medians over
`--rounds`, and the ratio flat / typed.

Run: uv run python bench/status_write_cost.py [--writes 150] [--rounds 8] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from baton.api.crd import KINDS, custom_resource_definition, openapi_schema, render
from baton.store.kube import Kube, open_connection, path_of
from operator_throughput import cluster, cpu_seconds
from peer_throughput import control_plane_pids

CLUSTER_NAME = "status-cost"
NAMESPACE = "status-cost"
SCHEMAS = {"typed": False, "flat": True}
"""Benchmark group prefix -> `flat_status`."""


def group(schema: str) -> str:
    return f"{schema}.bench.baton.dev"


def definition(schema: str) -> dict[str, Any]:
    """The WorkflowRun CRD under the benchmark group of `schema`."""
    (kind,) = [k for k in KINDS if k.name == "WorkflowRun"]
    crd = custom_resource_definition(kind)
    crd["metadata"] = {"name": f"{kind.plural}.{group(schema)}"}
    crd["spec"]["group"] = group(schema)
    version = crd["spec"]["versions"][0]
    version["schema"]["openAPIV3Schema"] = openapi_schema(
        kind.model, kind.max_name_length, flat_status=SCHEMAS[schema]
    )
    return crd


def finished_status(write: int) -> dict[str, Any]:
    """The status of a finished chain of 10 HTTP steps, as the operator writes it; `write`
    moves every time in it, so no two writes are the same."""

    def at(second: int, ms: int) -> str:
        return f"2026-12-03T06:{(write // 60) % 60:02d}:{second % 60:02d}.{ms:03d}Z"

    steps = {
        f"s{i}": {
            "acknowledged": True,
            "attemptStartedAt": at(write + i, 820),
            "attempts": 1,
            "finishedAt": at(write + i, 823),
            "output": {"ok": True},
            "phase": "Succeeded",
            "scheduledAt": at(write + i, 716),
            "startedAt": at(write + i, 716),
        }
        for i in range(10)
    }
    condition = {
        "lastTransitionTime": at(write + 10, 0)[:19] + "Z",
        "message": "the run succeeded",
        "observedGeneration": 1,
        "reason": "Succeeded",
        "status": "True",
    }
    return {
        "conditions": [{**condition, "type": "Succeeded"}, {**condition, "type": "Completed"}],
        "definition": {"configMap": "r-history-0", "generation": 1, "workflow": "chain"},
        "duration": "2s",
        "finishedAt": at(write + 10, 271),
        "history": {"batches": 11, "chunk": 0, "chunkBytes": 3637, "events": 21},
        "observedGeneration": 1,
        "phase": "Succeeded",
        "progress": "10/10",
        "run": {"name": "r", "namespace": NAMESPACE, "uid": "e2274a78-df30-404d-bc8c-e0138ccfbe83"},
        "startedAt": at(write, 48),
        "steps": steps,
        "updatesSeen": 0,
        "workflowGeneration": 1,
    }


async def measure(kube: Kube, apiserver: int, writes: int, rounds: int) -> dict[str, list[Any]]:
    for schema in SCHEMAS:
        run = {
            "apiVersion": f"{group(schema)}/v1alpha1",
            "kind": "WorkflowRun",
            "metadata": {"name": "r", "namespace": NAMESPACE},
            "spec": {"workflowRef": {"name": "chain"}},
        }
        await kube.create(path_of("workflowruns", NAMESPACE, group=group(schema)), run)
    figures: dict[str, list[Any]] = {schema: [] for schema in SCHEMAS}
    for number in range(rounds):
        order = list(SCHEMAS) if number % 2 == 0 else list(SCHEMAS)[::-1]
        for schema in order:
            path = path_of(
                "workflowruns", NAMESPACE, "r", group=group(schema), subresource="status"
            )
            cpu, began = cpu_seconds(apiserver), time.monotonic()
            for write in range(writes):
                patch = [{"op": "add", "path": "/status", "value": finished_status(write)}]
                await kube.patch(path, patch, kind="json")
            figures[schema].append(
                (
                    (cpu_seconds(apiserver) - cpu) / writes * 1000,
                    (time.monotonic() - began) / writes * 1000,
                )
            )
            print(f"  round {number} {schema}: {figures[schema][-1]}", file=sys.stderr)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=150, help="status writes per round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="leave the control plane running")
    args = parser.parse_args()
    with cluster(CLUSTER_NAME, "", args.keep) as running:
        running.kubectl(
            "apply", "-f", "-", data="---\n".join(render(definition(s)) for s in SCHEMAS)
        )
        for schema in SCHEMAS:
            crd = f"crd/workflowruns.{group(schema)}"
            running.kubectl("wait", "--for=condition=Established", crd)
        manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        running.kubectl("apply", "-f", "-", data=json.dumps(manifest))
        apiserver = control_plane_pids(CLUSTER_NAME)["kube-apiserver"]

        async def go() -> dict[str, list[Any]]:
            connection = await open_connection(running.kubeconfig)
            try:
                return await measure(connection.kube, apiserver, args.writes, args.rounds)
            finally:
                await connection.close()

        figures = asyncio.run(go())
    cpu = {s: statistics.median(f[0] for f in figures[s]) for s in SCHEMAS}
    wall = {s: statistics.median(f[1] for f in figures[s]) for s in SCHEMAS}
    print(f"# One WorkflowRun status write: {args.writes} writes x {args.rounds} rounds\n")
    print("| status schema | API server CPU per write, ms | wall time per write, ms |")
    print("|---|---:|---:|")
    for schema in SCHEMAS:
        spread = sorted(f[0] for f in figures[schema])
        print(
            f"| {schema} | {cpu[schema]:.1f} ({spread[0]:.1f}-{spread[-1]:.1f}) "
            f"| {wall[schema]:.1f} |"
        )
    ratio_cpu, ratio_wall = cpu["flat"] / cpu["typed"], wall["flat"] / wall["typed"]
    print(f"\nflat / typed: CPU {ratio_cpu:.2f}, wall {ratio_wall:.2f}")


if __name__ == "__main__":
    main()
