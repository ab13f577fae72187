"""Benchmark: one WorkflowRun of a forEach of N no-op HTTP items, end to end.

A local control plane of its own (hack/controlplane.sh, cluster `bench-large`), `baton operator`
watching one namespace, and a local HTTP/1.1 server answering `{"ok": true}` (the same as
bench/operator_throughput.py). One run of a forEach over `--items` numbers (`--concurrency` at
a time, the run's `parallelism` raised to match) is applied and waited for. Reported:

- time from `kubectl apply` to the run's `finishedAt`, and items per second;
- the final WorkflowRun status in bytes (what `kubectl get -o json` carries) and the step
  instances it lists (a summary past 500);
- the run's history: ConfigMaps `<run>-history-*` and their data in bytes;
- the operator's CPU seconds over the run, and per item.

Run: uv run python bench/large_for_each.py [--items 10000] [--concurrency 100] [--keep]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from operator_throughput import (
    NAMESPACE,
    Cluster,
    NoopServer,
    cluster,
    cpu_seconds,
    operator,
    timestamp,
)

RUN = "large-1"


def manifests(url: str, items: int, concurrency: int) -> list[dict[str, Any]]:
    step = {"name": "call", "http": {"method": "POST", "url": url, "body": {"item": "${{ item }}"}}}
    each = {"name": "each", "forEach": {"items": "input", "concurrency": concurrency, "step": step}}
    workflow = {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "large", "namespace": NAMESPACE},
        "spec": {"steps": [each], "parallelism": min(concurrency, 2000)},
    }
    run = {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": RUN, "namespace": NAMESPACE},
        "spec": {"workflowRef": {"name": "large"}, "input": list(range(items))},
    }
    return [workflow, run]


def run_status(kube: Cluster) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        kube.kubectl("get", "workflowrun", RUN, "-n", NAMESPACE, "-o", "json")
    )
    return body


def history_bytes(kube: Cluster) -> tuple[int, int]:
    listing = json.loads(kube.kubectl("get", "configmaps", "-n", NAMESPACE, "-o", "json"))
    chunks = [
        cm
        for cm in listing["items"]
        if cm["metadata"]["name"].startswith(f"{RUN}-history-")
        or cm["metadata"]["name"].startswith(f"{RUN}-event-")
    ]
    size = sum(len(v.encode()) for cm in chunks for v in (cm.get("data") or {}).values())
    return len(chunks), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--keep", action="store_true", help="leave the control plane running")
    args = parser.parse_args()
    server = NoopServer()
    try:
        with cluster("bench-large", "", args.keep) as kube, operator(kube) as process:
            began_cpu = cpu_seconds(process.pid)
            applied = time.time()
            for manifest in manifests(server.url, args.items, args.concurrency):
                kube.kubectl("apply", "-f", "-", data=json.dumps(manifest))
            deadline = time.monotonic() + args.timeout
            while True:
                status = run_status(kube).get("status") or {}
                if status.get("finishedAt") or time.monotonic() > deadline:
                    break
                time.sleep(2)
            cpu = cpu_seconds(process.pid) - began_cpu
            body = run_status(kube)
            status = body.get("status") or {}
            chunks, history = history_bytes(kube)
    finally:
        server.stop()
    finished = timestamp(status["finishedAt"]) if status.get("finishedAt") else time.time()
    seconds = finished - applied
    counts = ((status.get("steps") or {}).get("each") or {}).get("itemCounts") or {}
    print(f"items {args.items}, concurrency {args.concurrency}: phase {status.get('phase')}")
    print(f"  time {seconds:.1f} s, {args.items / seconds:.1f} items/s, calls {server.requests}")
    print(f"  status {len(json.dumps(body, separators=(',', ':')).encode())} bytes, "
          f"{len(status.get('steps') or {})} instances listed, counts {counts}")  # fmt: skip
    print(f"  history {history} bytes in {chunks} ConfigMaps")
    print(f"  operator CPU {cpu:.1f} s, {cpu * 1000 / args.items:.2f} ms per item")


if __name__ == "__main__":
    main()
