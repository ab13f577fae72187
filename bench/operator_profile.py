"""Benchmark: the operator's CPU per step, and where it goes.

Workload (as bench/operator_throughput.py): M concurrent WorkflowRuns, each a chain of N no-op
HTTP steps against a local HTTP/1.1 server, driven by `baton operator` (a subprocess,
standalone, one namespace) on a local control plane of its own (cluster `bench-profile`).

Per round it measures the operator process's CPU time (user + system, /proc) over the round,
divided by M x N: the figure a single Python process on one core caps throughput with. Then
one run alone, `--alone` times in a row, once the operator is idle after the round:
orchestration overhead per step, p50 and p99 over every step of those runs (a step's time from
the previous step's end, or the run's start, to its own end, less the median latency of one
POST to the same server from this process).

With `--profile`, one more round of M x N runs under cProfile (switched on and off in the
operator by signals, so start-up is not in it) prints the functions with the most time per
step, cumulative and own. cProfile's own cost inflates functions that make many small calls:
read the profile for where the time goes, the unprofiled rounds for how much there is.

`--compare DIR` measures the operator of another checkout too (its `operator/` first on the
import path), alternating with this one round by round, for before/after figures from one
invocation: `git archive main | tar -x -C /tmp/base` gives one.

Run: uv run python bench/operator_profile.py [--runs 20] [--steps 10] [--rounds 3]
     [--alone 5] [--profile] [--top 40] [--compare DIR] [--keep] [-- operator flags...]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baton.store.kube import ApiError, Kube, open_connection
from operator_throughput import (
    NAMESPACE,
    Cluster,
    NoopServer,
    chain,
    cluster,
    cpu_seconds,
    create_runs,
    free_port,
    http_latency,
    timestamp,
    wait_finished,
)

CLUSTER_NAME = "bench-profile"
PROFILE_ENV = "BATON_BENCH_PROFILE"
"""Where the profiled operator writes its statistics (child mode)."""


# -- the operator under a switchable profiler ----------------------------------------------------


def child(argv: list[str]) -> int:
    """Run `baton` with `argv`, profiled between SIGUSR1 and SIGUSR2 (which writes the stats)."""
    # CPU time, not wall time: a coroutine waiting for the API server costs nothing.
    profiler = cProfile.Profile(time.process_time)
    out = os.environ[PROFILE_ENV]

    def begin(*_: Any) -> None:
        profiler.enable()

    def end(*_: Any) -> None:
        profiler.disable()
        profiler.dump_stats(out + ".part")
        os.replace(out + ".part", out)

    signal.signal(signal.SIGUSR1, begin)
    signal.signal(signal.SIGUSR2, end)
    from baton.cli.main import main as baton_main

    return baton_main(argv)


@dataclass
class OperatorProcess:
    pid: int
    stats: Path


@contextmanager
def operator(
    running: Cluster, flags: list[str], extra_env: dict[str, str]
) -> Iterator[OperatorProcess]:
    stats = Path(tempfile.gettempdir()) / f"bench-profile-{os.getpid()}.pstats"
    log_path = Path(tempfile.gettempdir()) / f"bench-profile-operator-{os.getpid()}.log"
    command = [sys.executable, __file__, "--child", "operator", "--standalone"]
    command += ["--namespace", NAMESPACE, "--liveness", "", "--metrics-port", str(free_port())]
    env = {**running.env, **extra_env, PROFILE_ENV: str(stats)}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, *flags], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 180
        while "baton operator started" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"operator did not start; see {log_path}")
            time.sleep(0.1)
        time.sleep(1)  # its watches start
        yield OperatorProcess(process.pid, stats)
    finally:
        process.terminate()
        process.wait(timeout=60)


# -- rounds --------------------------------------------------------------------------------------


async def cpu_round(
    running: Cluster, process: OperatorProcess, *, workflow: str, tag: str, runs: int, steps: int
) -> float:
    """Operator CPU ms per step over M concurrent runs."""
    connection = await open_connection(running.kubeconfig)
    try:
        cpu = cpu_seconds(process.pid)
        await create_runs(connection.kube, workflow, tag, runs)
        await finished_runs(connection.kube, tag, runs, 120 + runs * steps)
        await asyncio.sleep(1)  # trailing writes (Events)
        return (cpu_seconds(process.pid) - cpu) / (runs * steps) * 1000
    finally:
        await connection.close()


async def finished_runs(
    kube: Kube, tag: str, count: int, timeout: float, poll: float = 0.25
) -> list[dict[str, Any]]:
    """`wait_finished`, going on through the API server's timeouts: on a loaded machine its
    LIST of the runs answers 504 now and then, which says nothing about the runs."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await wait_finished(kube, tag, count, deadline - time.monotonic(), poll)
        except ApiError as exc:
            if exc.status < 500 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(poll)


def step_times(status: dict[str, Any]) -> list[float]:
    """Seconds from each step's predecessor's end (or the run's start) to its own end, in the
    order the steps finished."""
    ends = sorted(
        timestamp(step["finishedAt"])
        for step in (status.get("steps") or {}).values()
        if step.get("finishedAt")
    )
    previous = timestamp(status["startedAt"])
    times = []
    for end in ends:
        times.append(end - previous)
        previous = end
    return times


async def operator_idle(process: OperatorProcess, window: float = 2.0) -> None:
    """Return once the operator spent under 1% of a core over `window` seconds: what a round
    of M runs leaves to do (journal removals, trailing status writes) is not "one run alone"."""
    deadline = time.monotonic() + 60
    print("waiting for the operator to go idle after the round", file=sys.stderr)
    while True:
        before = cpu_seconds(process.pid)
        await asyncio.sleep(window)
        busy = cpu_seconds(process.pid) - before
        if busy < 0.01 * window:
            return
        if time.monotonic() > deadline:
            print(f"  still {busy / window:.0%} busy after 60 s; measuring anyway", file=sys.stderr)
            return


async def alone_round(
    running: Cluster, workflow: str, *, tag: str, count: int, steps: int, http_ms: float
) -> list[float]:
    """Overhead per step, ms, of `count` runs one after another, every step of each."""
    connection = await open_connection(running.kubeconfig)
    overheads: list[float] = []
    try:
        for i in range(count):
            name = f"{tag}a{i}"
            await create_runs(connection.kube, workflow, name, 1)
            (done,) = await finished_runs(connection.kube, name, 1, 60 + 5 * steps, 0.1)
            steps_ms = [t * 1000 - http_ms for t in step_times(done["status"])]
            slowest = max(range(len(steps_ms)), key=steps_ms.__getitem__)
            print(
                f"  lone run {i}: slowest step #{slowest + 1} of {len(steps_ms)}, "
                f"{steps_ms[slowest]:.1f} ms; the others' median "
                f"{statistics.median(steps_ms[:slowest] + steps_ms[slowest + 1 :]):.1f} ms",
                file=sys.stderr,
            )
            overheads += steps_ms
    finally:
        await connection.close()
    return overheads


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def profile_report(stats_path: Path, steps: int, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(stats_path), stream=out)
    total = sum(t for (_, _, t, _, _) in stats.stats.values())  # type: ignore[attr-defined]
    out.write(f"profiled CPU (own time, all functions): {total / steps * 1000:.2f} ms per step\n")
    for key in ("cumulative", "tottime"):
        out.write(f"\n## top {top} by {key} (seconds over {steps} steps)\n")
        stats.sort_stats(key).print_stats(top)
    return out.getvalue()


@dataclass
class Variant:
    """An operator to measure: this checkout's, or the one under `source` (`--compare`)."""

    label: str
    source: Path | None = None
    cpus: list[float] = field(default_factory=list)
    overheads: list[list[float]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        if self.source is None:
            return {}
        # Ahead of the editable install of this checkout on the import path.
        return {"PYTHONPATH": str(self.source / "operator")}


async def measure(
    running: Cluster,
    variant: Variant,
    *,
    args: argparse.Namespace,
    workflow: str,
    number: int,
    http_ms: float,
) -> None:
    with operator(running, args.flags, variant.env()) as process:
        tag = f"{variant.label}{number}-{os.getpid()}"
        # A first small round warms what is lazily built (connections, caches).
        await cpu_round(
            running, process, workflow=workflow, tag=f"w{tag}", runs=2, steps=args.steps
        )
        cpu = await cpu_round(
            running, process, workflow=workflow, tag=tag, runs=args.runs, steps=args.steps
        )
        await operator_idle(process)
        alone = await alone_round(
            running, workflow, tag=tag, count=args.alone, steps=args.steps, http_ms=http_ms
        )
        variant.cpus.append(cpu)
        variant.overheads.append(alone)
        print(
            f"{variant.label} round {number}: operator CPU {cpu:.2f} ms/step; one run alone: "
            f"overhead p50 {percentile(alone, 0.5):.1f} ms, p99 {percentile(alone, 0.99):.1f} ms",
            file=sys.stderr,
        )
        if args.profile and number == args.rounds - 1:
            os.kill(process.pid, signal.SIGUSR1)
            await cpu_round(
                running, process, workflow=workflow, tag=f"p{tag}", runs=args.runs, steps=args.steps
            )
            process.stats.unlink(missing_ok=True)
            os.kill(process.pid, signal.SIGUSR2)
            deadline = time.monotonic() + 60
            while not process.stats.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            print(f"# profile: {variant.label}")
            print(profile_report(process.stats, args.runs * args.steps, args.top))


def summary(variant: Variant) -> str:
    cpus = variant.cpus
    p50s = [percentile(o, 0.5) for o in variant.overheads]
    p99s = [percentile(o, 0.99) for o in variant.overheads]
    return (
        f"| {variant.label} | {statistics.median(cpus):.2f} ({min(cpus):.2f}-{max(cpus):.2f}) "
        f"| {statistics.median(p50s):.1f} ({min(p50s):.1f}-{max(p50s):.1f}) "
        f"| {statistics.median(p99s):.1f} ({min(p99s):.1f}-{max(p99s):.1f}) |"
    )


async def rounds(running: Cluster, args: argparse.Namespace) -> None:
    server = NoopServer()
    variants = [Variant("this")]
    if args.compare:
        variants.append(Variant("compared", Path(args.compare).resolve()))
    try:
        http_ms = await http_latency(server.url + "/probe") * 1000
        workflow = f"chain-{os.getpid()}"
        running.kubectl(
            "apply", "-f", "-", data=json.dumps(chain(workflow, server.url, args.steps))
        )
        await asyncio.sleep(1)
        for number in range(args.rounds):
            # Alternating which goes first: the machine's load drifts.
            ordered = variants if number % 2 == 0 else variants[::-1]
            for variant in ordered:
                await measure(
                    running, variant, args=args, workflow=workflow, number=number, http_ms=http_ms
                )
        print(f"# operator CPU per step: {args.runs} runs x {args.steps} HTTP steps")
        print(
            f"(flags: {' '.join(args.flags) or 'defaults'}; {args.rounds} rounds, medians "
            f"(min-max); load average at the end {os.getloadavg()[0]:.1f}; HTTP call "
            f"{http_ms:.2f} ms deducted from the overhead; {args.alone} lone runs a round)\n"
        )
        print("| operator | CPU per step, ms | one run alone: overhead p50, ms | p99, ms |")
        print("|---|---:|---:|---:|")
        for variant in variants:
            print(summary(variant))
        if args.compare:
            ratio = statistics.median(variants[0].cpus) / statistics.median(variants[1].cpus)
            print(f"\nCPU per step, this / compared: {ratio:.2f}")
    finally:
        server.stop()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="HTTP steps per run (N)")
    parser.add_argument("--runs", type=int, default=20, help="concurrent runs per round (M)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--alone", type=int, default=5, help="lone runs per round (p50, p99)")
    parser.add_argument("--profile", action="store_true", help="one more round, profiled")
    parser.add_argument("--top", type=int, default=40, help="functions in each profile table")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    parser.add_argument(
        "--cluster",
        default=CLUSTER_NAME,
        help="name of the control plane (another name for a second benchmark at once)",
    )
    parser.add_argument(
        "--compare",
        metavar="DIR",
        help="also measure the operator of another checkout (e.g. `git archive main` unpacked)"
        ", alternating rounds with this one",
    )
    parser.add_argument("flags", nargs="*", help="operator flags (after --)")
    args = parser.parse_args()
    with cluster(args.cluster, "", args.keep) as running:
        asyncio.run(rounds(running, args))


if __name__ == "__main__":
    main()
