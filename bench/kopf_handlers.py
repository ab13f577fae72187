"""Benchmark: API writes and latency of kopf's handler styles for an operator like Baton's.

Style `change`: kopf's create/update handlers, which record their progress and the last handled
spec in annotations and write the handler's result into status. Style `event`: a low-level
`on.event` handler that writes status itself with one JSON patch, as Baton's run loop does.
Each style reconciles the same N objects of a throwaway CRD: created, then each spec changed
once; the API server's own request counters are read before and after (median of rounds).

Run: uv run python bench/kopf_handlers.py [--objects 50] [--rounds 3]
(starts and removes its own control plane `bench-kopf`, with operator_throughput's `cluster`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kopf

from operator_throughput import Cluster, cluster

CLUSTER = "bench-kopf"
GROUP = "bench.baton.dev"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


def operator(style: str) -> None:
    """Run a kopf operator of `style` until killed (the benchmark's child process)."""
    registry = kopf.OperatorRegistry()

    if style == "change":

        @kopf.on.create(GROUP, "v1", "widgets", id="reconcile", registry=registry)
        @kopf.on.update(GROUP, "v1", "widgets", id="reconcile", registry=registry)
        def reconcile(spec: kopf.Spec, **_: Any) -> dict[str, Any]:
            return {"value": spec.get("value")}

    else:
        from baton.store.kube import Kube, path_of

        kube: list[Kube] = []

        @kopf.on.startup(registry=registry)
        async def start(**_: Any) -> None:
            kube.append(await Kube.connect())

        @kopf.on.event(GROUP, "v1", "widgets", registry=registry)
        async def on_event(type: str | None, body: kopf.Body, **_: Any) -> None:
            if type == "DELETED":
                return
            meta, status = body["metadata"], body.get("status") or {}
            if status.get("observedGeneration") == meta["generation"]:
                return
            value = {"value": body["spec"].get("value"), "observedGeneration": meta["generation"]}
            path = path_of(
                "widgets",
                meta["namespace"],
                meta["name"],
                group=GROUP,
                version="v1",
                subresource="status",
            )
            await kube[0].patch(
                path, [{"op": "add", "path": "/status", "value": value}], kind="json"
            )

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    kopf.configure(quiet=True)
    asyncio.run(kopf.operator(registry=registry, standalone=True, clusterwide=True))


def wait_observed(
    plane: Cluster, namespace: str, count: int, key: str, expected: Any, *, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = json.loads(plane.kubectl("get", "widgets", "-n", namespace, "-o", "json"))["items"]
        done = [i for i in items if (i.get("status") or {}).get(key, {}) == expected]
        if len(done) == count:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{namespace}: widgets not reconciled within {timeout}s")


def round_of(plane: Cluster, style: str, objects: int, number: int) -> dict[str, float]:
    namespace = f"{style}-{number}"
    plane.kubectl("create", "namespace", namespace)
    log = Path(tempfile.gettempdir()) / f"bench-kopf-{style}.log"
    child = subprocess.Popen(
        [sys.executable, __file__, "--operator", style],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=plane.env,
    )
    try:
        time.sleep(3)  # kopf starts its watches
        before = plane.writes()
        started = time.monotonic()
        manifest = "\n---\n".join(
            json.dumps(
                {
                    "apiVersion": f"{GROUP}/v1",
                    "kind": "Widget",
                    "metadata": {"name": f"w{i}", "namespace": namespace},
                    "spec": {"value": 1},
                }
            )
            for i in range(objects)
        )
        plane.kubectl("apply", "-f", "-", data=manifest)
        expected: Any = {"value": 1} if style == "change" else 1
        key = "reconcile" if style == "change" else "value"
        wait_observed(plane, namespace, objects, key, expected, timeout=120)
        plane.kubectl(
            "patch",
            "widgets",
            "-n",
            namespace,
            "--type",
            "merge",
            "-p",
            '{"spec":{"value":2}}',
            *[f"w{i}" for i in range(objects)],
        )
        wait_observed(
            plane, namespace, objects, key, {"value": 2} if style == "change" else 2, timeout=120
        )
        elapsed = time.monotonic() - started
        time.sleep(2)  # let trailing writes (annotations, events) land
        delta = plane.writes() - before
    finally:
        child.terminate()
        child.wait(timeout=30)
    user = 2 * objects  # the benchmark's own creates and patches
    total = sum(delta.values()) - user
    print(f"  {style} round {number}: {dict(delta)}", file=sys.stderr)
    return {"writes_per_object": total / objects, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--operator", choices=["change", "event"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.operator:
        operator(args.operator)
        return
    with cluster(CLUSTER, "", keep=False) as plane:
        plane.kubectl("apply", "-f", "-", data=json.dumps(CRD))
        plane.kubectl("wait", "--for=condition=Established", f"crd/widgets.{GROUP}")
        results: dict[str, list[dict[str, float]]] = {"change": [], "event": []}
        for number in range(args.rounds):
            for style, rounds in results.items():
                rounds.append(round_of(plane, style, args.objects, number))
    base = statistics.median(r["writes_per_object"] for r in results["event"])
    print(f"{args.objects} objects, each created and changed once; medians of {args.rounds}")
    print("| handlers | operator writes per object | ratio to on.event | seconds |")
    print("|---|---:|---:|---:|")
    for style, rounds in results.items():
        per_object = statistics.median(r["writes_per_object"] for r in rounds)
        seconds = statistics.median(r["seconds"] for r in rounds)
        name = "on.create + on.update" if style == "change" else "on.event + own status patch"
        print(f"| {name} | {per_object:.2f} | {per_object / base:.2f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
