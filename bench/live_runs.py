"""Benchmark: many live runs at once — operator memory, API requests while idle, and the time a
restarted operator takes to re-arm every timer and deliver every signal sent while it was down.

Workload, on a local control plane of its own (hack/controlplane.sh, cluster `live`), driven by
`baton operator --standalone --namespace bench` as a subprocess: N WorkflowRuns (default
10,000), half of them a `sleep` until a time far away (a timer), half a `waitForSignal` (no
timer). Then:

- **RSS**: the operator's VmRSS and VmHWM (/proc/<pid>/status) while the runs start, and once
  they have settled (every run `Running`, its timer or signal wait begun).
- **Idle API requests**: `apiserver_request_total` from the API server's /metrics, by verb and
  resource, over `--idle-seconds` with nothing happening (watches aside: a WATCH is one request
  that lasts; the counter counts it when it ends), beside the operator's own
  `baton_api_writes_total` and `baton_api_reads_total`; the control plane's own components
  (leases, node heartbeats) are reported apart by resource.
- **Restart**: `--probes` more timer runs are created whose sleeps end `--probe-after` seconds
  after the operator is started again; the operator is killed -9; while it is down a signal is
  sent to `--signals` of the waiting runs; it is started again. Measured from the new process's
  start: its first log line, `baton_runs_active` reaching every live run, `baton_timers_pending`
  reaching every armed timer, each probe's timer firing (its step's `finishedAt`, against the
  time it was due: a probe that fires on time was armed before it was due), and each signalled
  run ending `Succeeded` (the signal delivered and committed).

The control plane's own clients run without QPS limits (`--qps-limits default` keeps them):
limited, the garbage collector looks up the owner of each new ConfigMap for many minutes, and
the idle window waits until no run has been read for 10 s anyway. The operator caches its
bytecode as the image does, so a restart does not compile every module again.

Run: uv run python bench/live_runs.py [--runs 10000] [--probes 50] [--signals 200] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from baton.store.kube import ApiError, Kube, open_connection, path_of
from operator_throughput import NAMESPACE, Cluster, cluster, free_port, timestamp

WATCH_VERBS = frozenset({"WATCH"})
BATON_RESOURCES = frozenset(
    {
        "workflowruns",
        "workflowruns/status",
        "workflows",
        "workflows/status",
        "configmaps",
        "events",
        "jobs",
        "workerpools",
        "workerpools/status",
        "schedules",
        "schedules/status",
        "deployments",
        "kopfpeerings",
        "clusterkopfpeerings",
    }
)
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def workflows() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "baton.dev/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": "nap", "namespace": NAMESPACE},
            "spec": {"steps": [{"name": "nap", "sleep": {"until": "${{ input.until }}"}}]},
        },
        {
            "apiVersion": "baton.dev/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": "hold", "namespace": NAMESPACE},
            "spec": {"steps": [{"name": "hold", "waitForSignal": {"name": "go"}}]},
        },
    ]


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_manifest(name: str, workflow: str, until: float | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"workflowRef": {"name": workflow}}
    if until is not None:
        spec["input"] = {"until": rfc3339(until)}
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


# -- the operator, killed and restarted --------------------------------------------------------


@dataclass
class Operator:
    cluster: Cluster
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / f"bench-live-{os.getpid()}.log"
    )
    started_at: float = 0.0
    flags: tuple[str, ...] = ()

    def start(self) -> None:
        command = [sys.executable, "-m", "baton.cli.main", "operator", "--standalone"]
        command += ["--namespace", NAMESPACE, "--liveness", "", "--metrics-port", str(self.port)]
        command += list(self.flags)
        with self.log_path.open("a") as log:
            log.write(f"\n==== start {time.time():.3f}\n")
            log.flush()
            self.started_at = time.time()
            self.process = subprocess.Popen(
                command, env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )

    def env(self) -> dict[str, str]:
        """The cluster's environment, with bytecode cached as the image has it
        (UV_COMPILE_BYTECODE): a restart should not pay for compiling every module again,
        which a development shell with PYTHONDONTWRITEBYTECODE would."""
        env = dict(self.cluster.env)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "bench-live-pycache")
        return env

    def wait_started(self, timeout: float = 600) -> float:
        """Seconds from `start` until the operator logged its start."""
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while True:
            text = self.log_path.read_text(errors="replace")
            if "baton operator started" in text.rsplit("==== start", 1)[-1]:
                return time.time() - self.started_at
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"operator did not start; see {self.log_path}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def memory(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in bytes."""
        assert self.process is not None
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
            if ":" in line
        )
        return (
            int(fields["VmRSS"].split()[0]) * 1024,
            int(fields["VmHWM"].split()[0]) * 1024,
        )

    def cpu(self) -> float:
        """CPU-seconds (user + system) the operator process has used since it started."""
        assert self.process is not None
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self) -> dict[str, float]:
        """The operator's /metrics, summed by metric name."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        sums: Counter[str] = Counter()
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            sums[name.split("{", 1)[0]] += float(value)
        return dict(sums)


def api_requests(cluster: Cluster) -> Counter[tuple[str, str]]:
    """Requests the API server has served, by (verb, resource[/subresource])."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in cluster.kubectl("get", "--raw", "/metrics").splitlines():
        match = _SAMPLE.match(line)
        if not match or match["name"] != "apiserver_request_total":
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        resource = labels.get("resource", "") or "(non-resource)"
        if labels.get("subresource"):
            resource += f"/{labels['subresource']}"
        counts[(labels.get("verb", ""), resource)] += int(float(match["value"]))
    return counts


# -- the workload --------------------------------------------------------------------------------


async def create_all(kube: Kube, manifests: list[dict[str, Any]], parallel: int = 16) -> float:
    """Create every manifest, `parallel` at a time; seconds taken."""
    began = time.monotonic()
    queue = list(reversed(manifests))
    path = path_of("workflowruns", NAMESPACE)

    async def worker() -> None:
        while queue:
            manifest = queue.pop()
            for attempt in range(20):
                try:
                    await kube.create(path, manifest)
                    break
                except ApiError as exc:
                    if exc.status == 409:
                        break
                    await asyncio.sleep(min(5.0, 0.2 * 2**attempt))

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return time.monotonic() - began


async def list_runs(kube: Kube, selector: str | None = None) -> list[dict[str, Any]]:
    """Every run in NAMESPACE, read in pages of 500."""
    items: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": "500"}
    if selector:
        query["labelSelector"] = selector
    while True:
        page = await kube.get(path_of("workflowruns", NAMESPACE), **query) or {}
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items
        query["continue"] = token


def waiting(run: dict[str, Any]) -> bool:
    """The run has committed its start: Running, its one step begun."""
    status = run.get("status") or {}
    steps = status.get("steps") or {}
    return status.get("phase") == "Running" and any(
        (s or {}).get("phase") in {"Waiting", "Running"} for s in steps.values()
    )


async def wait_settled(
    kube: Kube, operator: Operator, count: int, prefix: str, timeout: float
) -> tuple[float, int]:
    """Wait until `count` runs named `prefix`* wait; (seconds, peak RSS seen meanwhile)."""
    began = time.monotonic()
    peak = 0
    while True:
        peak = max(peak, operator.memory()[0])
        runs = [r for r in await list_runs(kube) if r["metadata"]["name"].startswith(prefix)]
        ready = sum(1 for r in runs if waiting(r))
        print(f"    {ready}/{count} waiting, rss {peak / 2**20:.0f} MiB", file=sys.stderr)
        if ready >= count:
            return time.monotonic() - began, peak
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{ready}/{count} runs waiting after {timeout:.0f}s")
        await asyncio.sleep(5)


async def wait_quiet(cluster: Cluster, least: float, timeout: float = 900) -> float:
    """Wait at least `least` seconds, and until no run was read for 10 s: the garbage
    collector looks up the owner of every new ConfigMap, at its own pace."""
    began = time.monotonic()
    await asyncio.sleep(least)
    quiet_since, last = time.monotonic(), None
    while time.monotonic() - began < timeout:
        reads = sum(
            n for (verb, resource), n in api_requests(cluster).items() if resource == "workflowruns"
        )
        if reads != last:
            quiet_since, last = time.monotonic(), reads
        elif time.monotonic() - quiet_since >= 10:
            break
        await asyncio.sleep(2)
    return time.monotonic() - began


def report_requests(delta: Counter[tuple[str, str]], seconds: float) -> dict[str, Any]:
    baton = {
        f"{verb} {resource}": n
        for (verb, resource), n in sorted(delta.items())
        if n > 0 and verb not in WATCH_VERBS and resource in BATON_RESOURCES
    }
    others = {
        f"{verb} {resource}": n
        for (verb, resource), n in sorted(delta.items())
        if n > 0 and verb not in WATCH_VERBS and resource not in BATON_RESOURCES
    }
    return {
        "seconds": round(seconds, 1),
        "baton_resources_per_second": round(sum(baton.values()) / seconds, 3),
        "baton_resources": baton,
        "other_per_second": round(sum(others.values()) / seconds, 3),
        "other": others,
    }


async def measure(args: argparse.Namespace, running: Cluster, operator: Operator) -> dict[str, Any]:
    figures: dict[str, Any] = {"runs": args.runs, "cores": os.cpu_count()}
    figures["load_at_start"] = [round(x, 1) for x in os.getloadavg()]
    connection = await open_connection(running.kubeconfig)
    kube = connection.kube
    try:
        for workflow in workflows():
            running.kubectl("apply", "-f", "-", data=json.dumps(workflow))
        operator.start()
        figures["first_start_seconds"] = round(operator.wait_started(), 1)
        figures["rss_started_mib"] = round(operator.memory()[0] / 2**20, 1)
        far = time.time() + 30 * 86400
        half = args.runs // 2
        manifests = [run_manifest(f"nap-{i:05d}", "nap", far) for i in range(half)]
        manifests += [run_manifest(f"hold-{i:05d}", "hold") for i in range(args.runs - half)]
        print(f"  creating {len(manifests)} runs", file=sys.stderr)
        created = asyncio.create_task(create_all(kube, manifests))
        settle_timeout = 600 + args.runs * 0.5
        settled, peak = await wait_settled(kube, operator, args.runs, "", settle_timeout)
        figures["create_seconds"] = round(await created, 1)
        figures["settle_seconds"] = round(settled, 1)
        figures["quiet_seconds"] = round(await wait_quiet(running, args.quiet_seconds), 1)
        rss, hwm = operator.memory()
        figures["rss_settled_mib"] = round(rss / 2**20, 1)
        figures["rss_peak_mib"] = round(max(hwm, peak) / 2**20, 1)
        figures["rss_per_run_kib"] = round(
            (rss - figures["rss_started_mib"] * 2**20) / args.runs / 1024, 1
        )
        metrics = operator.metrics()
        figures["runs_active"] = metrics.get("baton_runs_active")
        figures["timers_pending"] = metrics.get("baton_timers_pending")
        figures["load_settled"] = [round(x, 1) for x in os.getloadavg()]

        # Idle: nothing but the operator and the control plane.
        own = operator.metrics()
        before = api_requests(running)
        writes, reads = own.get("baton_api_writes_total", 0), own.get("baton_api_reads_total", 0)
        began = time.monotonic()
        await asyncio.sleep(args.idle_seconds)
        delta = api_requests(running) - before
        seconds = time.monotonic() - began
        figures["idle"] = report_requests(delta, seconds)
        own = operator.metrics()
        figures["idle"]["operator_writes"] = own.get("baton_api_writes_total", 0) - writes
        figures["idle"]["operator_reads"] = own.get("baton_api_reads_total", 0) - reads
        figures["rss_idle_mib"] = round(operator.memory()[0] / 2**20, 1)

        # Restart: probes due after the new start, signals sent while the operator is down.
        probe_prefix = "probe-"
        # Due `probe_after` s after the planned start; created, settled, then the kill.
        plan = time.time() + args.probe_settle + args.down_seconds
        due = float(math.ceil(plan + args.probe_after))  # `until` is to the second
        probes = [run_manifest(f"{probe_prefix}{i:03d}", "nap", due) for i in range(args.probes)]
        await create_all(kube, probes)
        with contextlib.suppress(TimeoutError):
            await wait_settled(kube, operator, args.probes, probe_prefix, args.probe_settle)
        kill_at = plan - args.down_seconds
        await asyncio.sleep(max(0.0, kill_at - time.time()))
        operator.kill()
        killed = time.time()
        signalled = [f"hold-{i:05d}" for i in range(min(args.signals, args.runs - half))]
        patch = {"spec": {"signals": [{"name": "go", "payload": {"sent": killed}}]}}
        await asyncio.gather(
            *(kube.patch(path_of("workflowruns", NAMESPACE, name), patch) for name in signalled)
        )
        figures["signals_sent_seconds"] = round(time.time() - killed, 1)
        await asyncio.sleep(max(0.0, plan - time.time()))
        operator.start()
        start = operator.started_at
        figures["down_seconds"] = round(start - killed, 1)
        figures["probe_due_after_start_seconds"] = round(due - start, 1)
        figures["restart"] = await watch_restart(
            args,
            kube,
            operator=operator,
            start=start,
            due=due,
            probe_prefix=probe_prefix,
            signalled=signalled,
            timers=half + args.probes,
        )
        figures["rss_after_restart_mib"] = round(operator.memory()[0] / 2**20, 1)
        figures["rss_peak_after_restart_mib"] = round(operator.memory()[1] / 2**20, 1)
        figures["load_at_end"] = [round(x, 1) for x in os.getloadavg()]
    finally:
        await connection.close()
    return figures


async def watch_restart(
    args: argparse.Namespace,
    kube: Kube,
    *,
    operator: Operator,
    start: float,
    due: float,
    probe_prefix: str,
    signalled: list[str],
    timers: int,
) -> dict[str, Any]:
    """Poll the operator and the runs until every probe fired and every signal was delivered."""
    result: dict[str, Any] = {}
    result["logged_start_seconds"] = round(operator.wait_started(), 1)
    live = args.runs + args.probes - len(signalled)
    deadline = time.monotonic() + args.restart_timeout
    all_active = all_armed = None
    most_active = most_armed = 0.0
    # Until both counts are reached, or the probes come due (then the timers count falls).
    while (all_active is None or all_armed is None) and time.time() < due + 1:
        try:
            metrics = operator.metrics()
        except OSError:
            metrics = {}
        now = time.time() - start
        most_active = max(most_active, metrics.get("baton_runs_active", 0))
        most_armed = max(most_armed, metrics.get("baton_timers_pending", 0))
        if all_active is None and most_active >= live:
            all_active = now
        if all_armed is None and most_armed >= timers:
            all_armed = now
            result["cpu_seconds_to_all_armed"] = round(operator.cpu(), 1)
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    result["all_loops_seconds"] = None if all_active is None else round(all_active, 1)
    result["all_timers_pending_seconds"] = None if all_armed is None else round(all_armed, 1)
    result["most_runs_active_before_due"] = most_active
    result["most_timers_pending_before_due"] = most_armed
    # The probes and the signalled runs, from their statuses.
    wanted = set(signalled)
    while True:
        runs = await list_runs(kube)
        probes = [r for r in runs if r["metadata"]["name"].startswith(probe_prefix)]
        fired = [
            timestamp(r["status"]["steps"]["nap"]["finishedAt"])
            for r in probes
            if ((r.get("status") or {}).get("steps") or {}).get("nap", {}).get("finishedAt")
        ]
        delivered = [
            timestamp(r["status"]["finishedAt"])
            for r in runs
            if r["metadata"]["name"] in wanted and (r.get("status") or {}).get("finishedAt")
        ]
        print(
            f"    probes fired {len(fired)}/{len(probes)}, signals {len(delivered)}/{len(wanted)}",
            file=sys.stderr,
        )
        if (len(fired) >= len(probes) and len(delivered) >= len(wanted)) or (
            time.monotonic() > deadline
        ):
            break
        await asyncio.sleep(2)
    result["cpu_seconds_at_end"] = round(operator.cpu(), 1)
    if fired:
        result["probes_fired"] = len(fired)
        result["probe_last_fired_seconds"] = round(max(fired) - start, 1)
        result["probe_lateness_seconds_max"] = round(max(fired) - due, 1)
        result["probe_lateness_seconds_median"] = round(sorted(fired)[len(fired) // 2] - due, 1)
    if delivered:
        result["signals_delivered"] = len(delivered)
        result["signal_last_delivered_seconds"] = round(max(delivered) - start, 1)
        result["signal_median_delivered_seconds"] = round(
            sorted(delivered)[len(delivered) // 2] - start, 1
        )
    return result


@contextlib.contextmanager
def operator_of(running: Cluster, flags: tuple[str, ...]) -> Iterator[Operator]:
    operator = Operator(running, flags=flags)
    try:
        yield operator
    finally:
        operator.stop()
        print(f"  operator log: {operator.log_path}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="live runs (half timers)")
    parser.add_argument("--probes", type=int, default=50, help="timer runs due after restart")
    parser.add_argument("--signals", type=int, default=200, help="signals sent while down")
    parser.add_argument("--probe-after", type=float, default=20.0, help="s after the restart")
    parser.add_argument("--probe-settle", type=float, default=60.0)
    parser.add_argument("--down-seconds", type=float, default=5.0)
    parser.add_argument("--quiet-seconds", type=float, default=15.0)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--restart-timeout", type=float, default=900.0)
    parser.add_argument("--cluster", default="live")
    parser.add_argument(
        "--qps-limits",
        choices=["default", "disabled"],
        default="disabled",
        help="the control plane's own clients' limits (kwokctl --disable-qps-limits): limited, "
        "the garbage collector looks up the owners of new ConfigMaps for many minutes",
    )
    parser.add_argument("--operator-flag", action="append", default=[])
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    extra = "--disable-qps-limits" if args.qps_limits == "disabled" else ""
    with (
        cluster(args.cluster, extra, args.keep) as running,
        operator_of(running, tuple(args.operator_flag)) as operator,
    ):
        figures = asyncio.run(measure(args, running, operator))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
