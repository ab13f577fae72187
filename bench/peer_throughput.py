"""Benchmark: Baton against Temporal on the same machine, in the same invocation.

Workload, the same for both: M concurrent runs, each a chain of N no-op HTTP steps (a POST to a
local HTTP/1.1 server that answers `{"ok": true}` at once), then one run alone.

- Temporal: the Temporal CLI's dev server (`temporal server start-dev`: in-memory SQLite,
  headless, no UI), built from Go modules (`go install
  github.com/temporalio/cli/cmd/temporal@v1.5.1`, run under `nice -n 15`) into
  ~/.cache/baton-bench/temporal-cli-v1.5.1/bin and reused from there; a `temporalio` Python
  worker (bench/temporal_chain.py, its own process) runs the workflow `Chain`, one activity per
  step.
- Baton: `baton operator --standalone` on a local control plane of its own
  (hack/controlplane.sh, cluster `peer-<pid>`), the machinery of bench/operator_throughput.py.

Rounds alternate between the systems (Baton first in even rounds, Temporal first in odd ones), so
a change in the machine's load touches both. Per round and system:
- steps per second: M x N over the time from the first start request to the last run's end
  (Baton: the first of M WorkflowRun creates, all sent at once from this process, to the last
  `status.finishedAt`; Temporal: the first of M `start_workflow` calls, sent at once the same
  way, to the last workflow's close time);
- CPU per step: user + system time (/proc/<pid>/stat) over the round of each system's processes,
  divided by M x N: Baton's operator, kube-apiserver and etcd; Temporal's server and worker;
- per-step overhead of one run alone: that run's duration (Baton: `finishedAt - startedAt`;
  Temporal: close time - start time) / N, less the median latency of one POST to the same server
  from this process.
Printed: medians over the rounds (min-max), and the ratio Baton / Temporal of each median.

Run: uv run --group bench python bench/peer_throughput.py [--runs 100] [--steps 10]
     [--rounds 3] [--operator-flag=--step-events] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton.store.kube import open_connection
from operator_throughput import (
    BATON_RESOURCES,
    Cluster,
    NoopServer,
    chain,
    cluster,
    cpu_seconds,
    create_runs,
    free_port,
    http_latency,
    operator,
    timestamp,
    wait_finished,
)

BENCH = Path(__file__).resolve().parent
TEMPORAL_CLI = "github.com/temporalio/cli/cmd/temporal"
TEMPORAL_VERSION = "v1.5.1"
CLUSTER_NAME = f"peer-{os.getpid()}"
"""Named per process: two benchmarks on one machine must not share (nor remove) one control
plane, and the last to finish runs `hack/controlplane.sh down` on its own."""


# -- the Temporal CLI, built once ----------------------------------------------------------------


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "baton-bench"


def temporal_binary() -> Path:
    """The cached `temporal` binary, built from Go modules when it is not there yet (10+ minutes
    on 2 cores; `nice -n 15` leaves the machine to its other users)."""
    home = cache_root() / f"temporal-cli-{TEMPORAL_VERSION}"
    binary = home / "bin" / "temporal"
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        raise SystemExit("the Temporal CLI is built from Go modules: install Go first")
    partial = home / "bin.partial"  # a build killed half way leaves no binary behind
    print(f"building {TEMPORAL_CLI}@{TEMPORAL_VERSION} into {binary} ...", file=sys.stderr)
    subprocess.run(
        ["nice", "-n", "15", "go", "install", f"{TEMPORAL_CLI}@{TEMPORAL_VERSION}"],
        env={**os.environ, "GOBIN": str(partial)},
        check=True,
    )
    binary.parent.mkdir(parents=True, exist_ok=True)
    (partial / "temporal").replace(binary)
    return binary


@dataclass
class TemporalServer:
    address: str
    pid: int
    worker_pid: int = 0


@contextmanager
def temporal_dev_server(binary: Path) -> Iterator[TemporalServer]:
    """`temporal server start-dev`, headless, in-memory SQLite, on free ports, and a worker."""
    port, http_port, metrics_port = free_port(), free_port(), free_port()
    log_path = Path(tempfile.gettempdir()) / f"bench-temporal-{os.getpid()}.log"
    command = [str(binary), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
    command += ["--port", str(port), "--http-port", str(http_port)]
    command += ["--metrics-port", str(metrics_port), "--log-level", "error"]
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    worker: subprocess.Popen[str] | None = None
    address = f"127.0.0.1:{port}"
    try:
        asyncio.run(_wait_for_frontend(address, server, log_path))
        worker_log = log_path.with_suffix(".worker.log")
        with worker_log.open("w") as log:
            worker = subprocess.Popen(
                [sys.executable, str(BENCH / "temporal_chain.py"), "--address", address],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = time.monotonic() + 120
        while "worker started" not in worker_log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"temporal worker did not start; see {worker_log}")
            time.sleep(0.1)
        yield TemporalServer(address, server.pid, worker.pid)
    finally:
        for child in (worker, server):
            if child is not None:
                child.terminate()
                child.wait(timeout=30)


async def _wait_for_frontend(address: str, server: subprocess.Popen[Any], log: Path) -> None:
    from temporalio.client import Client

    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"temporal dev server exited; see {log}")
        try:
            await Client.connect(address)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


# -- one round of each system --------------------------------------------------------------------


@dataclass
class Figures:
    steps_per_second: float
    cpu_ms_per_step: dict[str, float]
    overhead_ms: float = 0.0
    api_writes_per_step: float = 0.0
    writes_by_resource: dict[str, float] | None = None
    """Baton's API writes per step by resource (`workflowruns/status`, `configmaps`, ...)."""


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def cpu_per_step(before: dict[str, float], pids: dict[str, int], steps: int) -> dict[str, float]:
    after = cpu_of(pids)
    return {name: (after[name] - before[name]) / steps * 1000 for name in pids}


def control_plane_pids(name: str) -> dict[str, int]:
    """kube-apiserver and etcd of the local control plane `name` (kwokctl's binary runtime)."""
    found: dict[str, int] = {}
    marker = f"/kwok/clusters/{name}/bin/"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv0 = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if marker in argv0 and argv0.rsplit("/", 1)[1] in {"kube-apiserver", "etcd"}:
            found[argv0.rsplit("/", 1)[1]] = int(proc.name)
    if set(found) != {"kube-apiserver", "etcd"}:
        raise RuntimeError(f"control plane {name!r}: found only {sorted(found)}")
    return found


async def baton_round(
    running: Cluster, pids: dict[str, int], url: str, tag: str, *, runs: int, steps: int
) -> Figures:
    connection = await open_connection(running.kubeconfig)
    try:
        workflow = f"chain-{tag}"
        running.kubectl("apply", "-f", "-", data=json.dumps(chain(workflow, url, steps)))
        await asyncio.sleep(1)  # the Workflow's own reconcile is not part of the round
        writes = running.writes()
        cpu = cpu_of(pids)
        began = time.time()
        await create_runs(connection.kube, workflow, tag, runs)
        # Polled once a second: the lists are API server CPU that the benchmark, not Baton,
        # causes; the figures come from the runs' own timestamps, not from the polls.
        done = await wait_finished(connection.kube, tag, runs, timeout=300 + runs * steps, poll=1.0)
        finished = max(timestamp(i["status"]["finishedAt"]) for i in done)
        await asyncio.sleep(2)  # trailing writes (Events) land
        delta = running.writes() - writes
        delta["workflowruns"] -= runs  # the benchmark's own creates
        total = runs * steps
        durations = [
            timestamp(i["status"]["finishedAt"]) - timestamp(i["status"]["startedAt"]) for i in done
        ]
        return Figures(
            steps_per_second=total / (finished - began),
            cpu_ms_per_step=cpu_per_step(cpu, pids, total),
            overhead_ms=statistics.median(durations) * 1000 / steps,
            api_writes_per_step=sum(v for k, v in delta.items() if k in BATON_RESOURCES) / total,
            writes_by_resource={k: v / total for k, v in delta.items() if k in BATON_RESOURCES},
        )
    finally:
        await connection.close()


async def temporal_round(
    server: TemporalServer, url: str, tag: str, runs: int, steps: int
) -> Figures:
    from temporalio.client import Client

    from temporal_chain import TASK_QUEUE

    client = await Client.connect(server.address)
    pids = {"temporal server": server.pid, "temporalio worker": server.worker_pid}
    cpu = cpu_of(pids)
    began = time.time()
    handles = await asyncio.gather(
        *(
            client.start_workflow(
                "Chain", args=[url, steps], id=f"{tag}-{i}", task_queue=TASK_QUEUE
            )
            for i in range(runs)
        )
    )
    await asyncio.gather(*(h.result() for h in handles))
    total = runs * steps
    cpu_ms = cpu_per_step(cpu, pids, total)
    descriptions = await asyncio.gather(*(h.describe() for h in handles))
    closes = [d.close_time.timestamp() for d in descriptions if d.close_time]
    durations = [
        d.close_time.timestamp() - d.start_time.timestamp() for d in descriptions if d.close_time
    ]
    return Figures(
        steps_per_second=total / (max(closes) - began),
        cpu_ms_per_step=cpu_ms,
        overhead_ms=statistics.median(durations) * 1000 / steps,
    )


# -- main ----------------------------------------------------------------------------------------


@dataclass
class Side:
    """One system's figures over the rounds."""

    throughput: list[Figures]
    alone: list[Figures]


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def report(args: argparse.Namespace, http_ms: list[float], baton: Side, temporal: Side) -> str:
    def column(side: Side, pick: Callable[[Side], list[float]]) -> list[float]:
        return pick(side)

    picks: list[tuple[str, Callable[[Side], list[float]]]] = [
        (
            f"steps per second, {args.runs} runs x {args.steps} steps",
            lambda s: [f.steps_per_second for f in s.throughput],
        ),
        (
            "CPU per step, ms (all the system's processes)",
            lambda s: [sum(f.cpu_ms_per_step.values()) for f in s.throughput],
        ),
        (
            "one run alone: overhead per step, ms",
            lambda s: [f.overhead_ms - statistics.median(http_ms) for f in s.alone],
        ),
        (
            "one run alone: CPU per step, ms",
            lambda s: [sum(f.cpu_ms_per_step.values()) for f in s.alone],
        ),
    ]
    rows = ["| figure | Baton | Temporal | Baton / Temporal |", "|---|---:|---:|---:|"]
    for label, pick in picks:
        b, t = column(baton, pick), column(temporal, pick)
        ratio = statistics.median(b) / statistics.median(t) if statistics.median(t) else 0.0
        rows.append(f"| {label} | {med(b)} | {med(t)} | {ratio:.2f} |")
    rows += ["", "CPU per step by process, ms (medians, the M x N rounds):", ""]
    for name, side in (("Baton", baton), ("Temporal", temporal)):
        processes = side.throughput[0].cpu_ms_per_step
        split = ", ".join(
            f"{p} {statistics.median(f.cpu_ms_per_step[p] for f in side.throughput):.2f}"
            for p in processes
        )
        rows.append(f"- {name}: {split}")
    writes = [f.api_writes_per_step for f in baton.throughput]
    by_kind = {
        resource: [(f.writes_by_resource or {}).get(resource, 0.0) for f in baton.throughput]
        for resource in BATON_RESOURCES
    }
    rows += [
        f"- Baton API writes per step (API server's count): {med(writes)}",
        *(
            f"  - {resource}: {statistics.median(by_kind[resource]):.2f}"
            for resource in sorted(BATON_RESOURCES)
        ),
        f"- HTTP call from this process, ms: {med(http_ms)}",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="concurrent runs per round (M)")
    parser.add_argument("--steps", type=int, default=10, help="HTTP steps per run (N)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--operator-flag",
        action="append",
        default=[],
        help="extra flag for `baton operator` (repeatable), e.g. --operator-flag=--step-events",
    )
    parser.add_argument("--keep", action="store_true", help="leave the control plane running")
    args = parser.parse_args()
    binary = temporal_binary()
    load = os.getloadavg()
    print(f"# Baton / Temporal: {args.runs} runs x {args.steps} HTTP steps, {args.rounds} rounds")
    print(f"(cores: {os.cpu_count()}, load average at start: {load[0]:.1f})\n", flush=True)
    noop = NoopServer()
    baton, temporal = Side([], []), Side([], [])
    http_ms: list[float] = []
    try:
        with (
            cluster(CLUSTER_NAME, "", args.keep) as running,
            operator(running, *args.operator_flag) as process,
            temporal_dev_server(binary) as server,
        ):
            pids = {"operator": process.pid, **control_plane_pids(CLUSTER_NAME)}
            for number in range(args.rounds):
                order = ["baton", "temporal"] if number % 2 == 0 else ["temporal", "baton"]
                http_ms.append(asyncio.run(http_latency(noop.url + "/probe")) * 1000)
                for system in order:
                    tag = f"r{number}-{os.getpid()}"
                    if system == "baton":
                        many = asyncio.run(
                            baton_round(
                                running, pids, noop.url, tag, runs=args.runs, steps=args.steps
                            )
                        )
                        one = asyncio.run(
                            baton_round(
                                running, pids, noop.url, f"{tag}-one", runs=1, steps=args.steps
                            )
                        )
                        baton.throughput.append(many)
                        baton.alone.append(one)
                    else:
                        many = asyncio.run(
                            temporal_round(server, noop.url, tag, args.runs, args.steps)
                        )
                        one = asyncio.run(
                            temporal_round(server, noop.url, f"{tag}-one", 1, args.steps)
                        )
                        temporal.throughput.append(many)
                        temporal.alone.append(one)
                    print(f"  round {number} {system}: {many} / alone {one}", file=sys.stderr)
    finally:
        noop.stop()
    print(report(args, http_ms, baton, temporal))
    print(f"\n(load average at the end: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
