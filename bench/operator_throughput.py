"""Benchmark: the operator's throughput and API writes per step, against the raw rate at which the
same machine can write a custom resource's status, measured in the same run.

Workload: M concurrent WorkflowRuns, each a chain of N no-op HTTP steps against a local HTTP/1.1
server that answers `{"ok": true}` at once, driven by `baton operator` (a subprocess, standalone,
watching one namespace) on a local control plane of its own (hack/controlplane.sh, cluster
`bench`, or `bench-noqps` created with `BATON_KWOKCTL_ARGS=--disable-qps-limits`).

Per round it measures:
- API writes per step: `apiserver_request_total` (from `kubectl get --raw /metrics`) before and
  after, write verbs (POST, PUT, PATCH, DELETE, APPLY) on the resources Baton writes
  (workflowruns and their status, configmaps, events), less the benchmark's own creates, per
  step; and the operator's own count (`baton_api_writes_total` on its /metrics).
- steps per second: M x N over the time from the first run's create (all M are POSTed at once)
  to the last run's `finishedAt`.
- orchestration overhead per step: the median run's duration (`finishedAt - startedAt`) / N,
  minus the median latency of one call to the same HTTP server from this process (httpx).
- the raw ceiling: JSON patches `add /status` (the status of a finished run of the round, so
  the same size) through baton's Kube client on WorkflowRuns in a namespace no operator
  watches: one writer in a tight loop, and `--writers` concurrent ones on objects of their own.

Figures are medians over `--rounds`; ratios compare steps per second with the ceiling divided by
the writes a step costs. `--crash-runs K` then runs tests/integration/test_crash.py's random-kill
test with K runs on the same cluster.

Run: uv run python bench/operator_throughput.py [--steps 10] [--runs 20] [--rounds 3]
     [--qps-limits default|disabled|both] [--crash-runs 60] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from baton.store.kube import ApiError, Kube, open_connection, path_of

REPO = Path(__file__).resolve().parents[1]
CONTROLPLANE = REPO / "hack" / "controlplane.sh"
NAMESPACE = "bench"
RAW_NAMESPACE = "bench-raw"
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY"})
BATON_RESOURCES = frozenset({"workflowruns", "workflowruns/status", "configmaps", "events"})
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


# -- a no-op HTTP service ------------------------------------------------------------------------


class NoopServer:
    """HTTP/1.1 (keep-alive) on 127.0.0.1, answering every request with `{"ok": true}`."""

    def __init__(self) -> None:
        counter = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle's algorithm on, the second
            # waits for the client's delayed ACK, 40 ms per call on Linux.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                counter.requests += 1
                payload = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def http_latency(url: str, count: int = 200) -> float:
    """Median seconds of one POST to `url` from httpx (as the operator calls), connection kept."""
    async with httpx.AsyncClient() as http:
        await http.post(url, json={})
        samples = []
        for _ in range(count):
            began = time.perf_counter()
            await http.post(url, json={"step": 1})
            samples.append(time.perf_counter() - began)
    return statistics.median(samples)


# -- the cluster ---------------------------------------------------------------------------------


@dataclass
class Cluster:
    name: str
    env: dict[str, str]
    kubeconfig: str

    def kubectl(self, *args: str, data: str | None = None) -> str:
        done = subprocess.run(
            ["kubectl", *args],
            input=data,
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def writes(self) -> Counter[str]:
        """Write requests the API server has served, by resource[/subresource]."""
        counts: Counter[str] = Counter()
        for line in self.kubectl("get", "--raw", "/metrics").splitlines():
            match = _SAMPLE.match(line)
            if not match or match["name"] != "apiserver_request_total":
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            if labels.get("verb") not in WRITE_VERBS:
                continue
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += f"/{labels['subresource']}"
            counts[resource] += int(float(match["value"]))
        return counts


@contextmanager
def cluster(name: str, extra_args: str, keep: bool) -> Iterator[Cluster]:
    env = {**os.environ, "BATON_CLUSTER": name, "BATON_KWOKCTL_ARGS": extra_args}
    print(f"starting control plane {name!r} {extra_args}".rstrip(), file=sys.stderr)
    exports = subprocess.run(
        [str(CONTROLPLANE), "up"], env=env, capture_output=True, text=True, check=True
    ).stdout
    found = dict(re.findall(r"export (\w+)=(\S+)", exports))
    kubeconfig = found["KUBECONFIG"].strip('"')
    bin_dir = found["PATH"].split(":")[0].strip('"')
    env.update(KUBECONFIG=kubeconfig, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    try:
        result = Cluster(name, env, kubeconfig)
        result.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
        result.kubectl("wait", "--for=condition=Established", "-f", str(REPO / "crds"))
        for namespace in (NAMESPACE, RAW_NAMESPACE):
            manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            result.kubectl("apply", "-f", "-", data=json.dumps(manifest))
        yield result
    finally:
        if not keep:
            subprocess.run([str(CONTROLPLANE), "down"], env=env, capture_output=True, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class OperatorProcess:
    port: int
    pid: int


@contextmanager
def operator(cluster: Cluster, *flags: str) -> Iterator[OperatorProcess]:
    """`baton operator` on NAMESPACE, once it logged its start."""
    port = free_port()
    log_path = Path(tempfile.gettempdir()) / f"bench-operator-{cluster.name}.log"
    command = [sys.executable, "-m", "baton.cli.main", "operator", "--standalone"]
    command += ["--namespace", NAMESPACE, "--liveness", "", "--metrics-port", str(port), *flags]
    with log_path.open("w") as log:
        child = subprocess.Popen(command, env=cluster.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "baton operator started" not in log_path.read_text(errors="replace"):
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"operator did not start; see {log_path}")
            time.sleep(0.1)
        time.sleep(1)  # its watches start
        yield OperatorProcess(port, child.pid)
    finally:
        child.terminate()
        child.wait(timeout=30)


def operator_writes(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return int(
        sum(
            float(m["value"])
            for m in map(_SAMPLE.match, text.splitlines())
            if m and m["name"] == "baton_api_writes_total"
        )
    )


# -- one round -----------------------------------------------------------------------------------


ROUND_LABEL = "bench.baton.dev/round"


async def create_runs(kube: Kube, workflow: str, tag: str, runs: int) -> None:
    """Create the runs `<tag>-0` .. `<tag>-<runs - 1>` of `workflow`, all at once, each its own
    POST from this process: as a Temporal client starts workflows (the peer benchmark's other
    side), not one after another as `kubectl create -f` does. Each run carries the round's
    label, which is what `wait_finished` lists."""
    await asyncio.gather(
        *(
            kube.create(
                path_of("workflowruns", NAMESPACE),
                {
                    "apiVersion": "baton.dev/v1alpha1",
                    "kind": "WorkflowRun",
                    "metadata": {
                        "name": f"{tag}-{i}",
                        "namespace": NAMESPACE,
                        "labels": {ROUND_LABEL: tag},
                    },
                    "spec": {"workflowRef": {"name": workflow}},
                },
            )
            for i in range(runs)
        )
    )


def chain(name: str, url: str, steps: int) -> dict[str, Any]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "steps": [
                {"name": f"s{i}", "http": {"method": "POST", "url": url, "body": {"step": i}}}
                for i in range(steps)
            ]
        },
    }


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def wait_finished(
    kube: Kube, tag: str, count: int, timeout: float, poll: float = 0.25
) -> list[dict[str, Any]]:
    """The `count` runs of round `tag` once every one has finished. Only the round's runs are
    listed: the earlier rounds' would make each poll dearer as the benchmark goes on, and the
    API server's CPU is part of what it measures."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            listing = await kube.list(
                path_of("workflowruns", NAMESPACE), label_selector=f"{ROUND_LABEL}={tag}"
            )
        except (ApiError, aiohttp.ClientError) as exc:
            # An API server on a loaded machine drops a list now and then (504, a cut
            # response): the round goes on; the figures come from the runs' own timestamps.
            if time.monotonic() > deadline:
                raise
            print(f"  (poll failed: {exc}; again)", file=sys.stderr)
            await asyncio.sleep(poll)
            continue
        done = [i for i in listing if (i.get("status") or {}).get("finishedAt")]
        if len(done) == count:
            return done
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(done)}/{count} runs finished within {timeout}s")
        await asyncio.sleep(poll)


@dataclass
class Round:
    steps: int
    runs: int
    seconds: float = 0.0
    steps_per_second: float = 0.0
    api_writes_per_step: float = 0.0
    operator_writes_per_step: float = 0.0
    by_resource: dict[str, float] = field(default_factory=dict)
    other_writes: int = 0
    overhead_ms: float = 0.0
    operator_cpu_ms: float = 0.0
    run_ms: float = 0.0
    http_ms: float = 0.0
    raw_one: float = 0.0
    raw_many: float = 0.0
    raw_client_cpu: float = 0.0
    raw_configmap: float = 0.0
    raw_event: float = 0.0
    writers: int = 0


async def measure_round(
    cluster: Cluster,
    process: OperatorProcess,
    server: NoopServer,
    tag: str,
    *,
    steps: int,
    runs: int,
    writers: int,
) -> Round:
    result = Round(steps, runs, writers=writers)
    connection = await open_connection(cluster.kubeconfig)
    kube = connection.kube
    try:
        result.http_ms = await http_latency(server.url + "/probe") * 1000
        workflow = f"chain-{tag}"
        cluster.kubectl("apply", "-f", "-", data=json.dumps(chain(workflow, server.url, steps)))
        await asyncio.sleep(1)  # the Workflow's own reconcile is not part of the round
        port = process.port
        before, before_operator = cluster.writes(), operator_writes(port)
        cpu = cpu_seconds(process.pid)
        began = time.time()
        await create_runs(kube, workflow, tag, runs)
        done = await wait_finished(kube, tag, runs, timeout=120 + runs * steps)
        finished = max(timestamp(i["status"]["finishedAt"]) for i in done)
        await asyncio.sleep(2)  # trailing writes (Events) land
        cpu = cpu_seconds(process.pid) - cpu
        delta = cluster.writes() - before
        operator_delta = operator_writes(port) - before_operator
        total = runs * steps
        result.seconds = finished - began
        result.steps_per_second = total / result.seconds
        delta["workflowruns"] -= runs  # the benchmark's own creates
        baton = {k: v for k, v in delta.items() if k in BATON_RESOURCES and v > 0}
        result.by_resource = {k: v / total for k, v in sorted(baton.items())}
        result.api_writes_per_step = sum(baton.values()) / total
        result.other_writes = sum(v for k, v in delta.items() if k not in BATON_RESOURCES)
        result.operator_writes_per_step = operator_delta / total
        result.operator_cpu_ms = cpu / total * 1000
        durations = [
            timestamp(i["status"]["finishedAt"]) - timestamp(i["status"]["startedAt"]) for i in done
        ]
        result.run_ms = statistics.median(durations) * 1000
        result.overhead_ms = result.run_ms / steps - result.http_ms
        status = done[0]["status"]
        result.raw_one, result.raw_many, result.raw_client_cpu = await raw_ceiling(
            kube, tag, status, writers
        )
        result.raw_configmap, result.raw_event = await raw_other(kube, tag)
    finally:
        await connection.close()
    return result


async def raw_ceiling(
    kube: Kube, tag: str, status: Mapping[str, Any], writers: int, seconds: float = 5.0
) -> tuple[float, float, float]:
    """Status writes per second: one writer in a tight loop, then `writers` at once; and the
    share of the time this process spent on CPU meanwhile (near 1: the client is the limit)."""
    names = [f"raw-{tag}-{i}" for i in range(writers)]
    for name in names:
        await kube.create(
            path_of("workflowruns", RAW_NAMESPACE),
            {
                "apiVersion": "baton.dev/v1alpha1",
                "kind": "WorkflowRun",
                "metadata": {"name": name},
                "spec": {"workflowRef": {"name": "none"}},
            },
        )

    async def loop(name: str, until: float) -> int:
        path = path_of("workflowruns", RAW_NAMESPACE, name, subresource="status")
        count = 0
        while time.monotonic() < until:
            body = {**status, "observedGeneration": count}  # every write changes the object
            await kube.patch(path, [{"op": "add", "path": "/status", "value": body}], kind="json")
            count += 1
        return count

    began, cpu = time.monotonic(), time.process_time()
    one = await loop(names[0], began + seconds) / (time.monotonic() - began)
    began = time.monotonic()
    counts = await asyncio.gather(*(loop(n, began + seconds) for n in names))
    many = sum(counts) / (time.monotonic() - began)
    share = (time.process_time() - cpu) / (2 * seconds)
    return one, many, share


async def raw_other(kube: Kube, tag: str, seconds: float = 3.0) -> tuple[float, float]:
    """One writer's rate of the operator's other writes: a ConfigMap merge patch adding a key
    of about a history batch's size, and an Event create."""
    name = f"raw-{tag}"
    configmaps = path_of("configmaps", RAW_NAMESPACE, group="", version="v1")
    await kube.create(configmaps, {"metadata": {"name": name}, "data": {}})
    line = json.dumps({"at": 1.0, "type": "ActivityCompleted", "key": "s1", "output": {"ok": 1}})
    began, count = time.monotonic(), 0
    while time.monotonic() < began + seconds:
        patch = {"data": {f"{count:012d}": line}}
        await kube.patch(path_of("configmaps", RAW_NAMESPACE, name, group="", version="v1"), patch)
        count += 1
    configmap = count / (time.monotonic() - began)
    events = path_of("events", RAW_NAMESPACE, group="", version="v1")
    body = {
        "metadata": {"generateName": f"{name}."},
        "involvedObject": {"kind": "ConfigMap", "name": name, "namespace": RAW_NAMESPACE},
        "type": "Normal",
        "reason": "StepSucceeded",
        "message": "step s1 succeeded",
        "source": {"component": "baton"},
    }
    began, count = time.monotonic(), 0
    while time.monotonic() < began + seconds:
        await kube.create(events, body)
        count += 1
    return configmap, count / (time.monotonic() - began)


# -- the crash test at size ------------------------------------------------------------------------


def crash_test(cluster: Cluster, runs: int, kills: int) -> dict[str, Any]:
    report = Path(tempfile.gettempdir()) / f"bench-crash-{os.getpid()}.json"
    env = {
        **cluster.env,
        "BATON_TEST_KUBECONFIG": cluster.kubeconfig,
        "BATON_CRASH_RUNS": str(runs),
        "BATON_CRASH_KILLS": str(kills),
        "BATON_CRASH_REPORT": str(report),
    }
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(REPO / "tests/integration/test_crash.py::test_runs_survive_random_kills"),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    figures: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    figures["passed"] = done.returncode == 0
    figures["wall_seconds"] = round(time.monotonic() - began, 1)
    if done.returncode != 0:
        print(done.stdout[-3000:], file=sys.stderr)
    return figures


# -- main ------------------------------------------------------------------------------------------


def median(rounds: list[Round], name: str) -> float:
    return statistics.median(float(getattr(r, name)) for r in rounds)


def table(title: str, rounds: list[Round]) -> str:
    raw_one, raw_many = median(rounds, "raw_one"), median(rounds, "raw_many")
    sps = median(rounds, "steps_per_second")
    resources: Counter[str] = Counter()
    for r in rounds:
        resources.update(r.by_resource)
    split = ", ".join(f"{k} {v / len(rounds):.2f}" for k, v in sorted(resources.items()))
    rows = [
        f"#### {title}",
        "",
        "| figure | median | min | max |",
        "|---|---:|---:|---:|",
    ]
    for label, name, fmt in [
        ("steps per second", "steps_per_second", ".1f"),
        ("API writes per step (Baton's resources)", "api_writes_per_step", ".2f"),
        ("operator's own writes per step", "operator_writes_per_step", ".2f"),
        ("run duration, ms (median run)", "run_ms", ".0f"),
        ("HTTP call, ms (from this process)", "http_ms", ".2f"),
        ("orchestration overhead per step, ms", "overhead_ms", ".1f"),
        ("operator CPU per step, ms", "operator_cpu_ms", ".1f"),
        ("raw status writes/s, 1 writer", "raw_one", ".0f"),
        ("raw status writes/s, concurrent writers", "raw_many", ".0f"),
        ("CPU share of the raw writers' process", "raw_client_cpu", ".2f"),
        ("raw ConfigMap patches/s (history append), 1 writer", "raw_configmap", ".0f"),
        ("raw Event creates/s, 1 writer", "raw_event", ".0f"),
        ("other API writes during the round", "other_writes", ".0f"),
    ]:
        values = [float(getattr(r, name)) for r in rounds]
        rows.append(
            f"| {label} | {statistics.median(values):{fmt}} | {min(values):{fmt}} "
            f"| {max(values):{fmt}} |"
        )
    # The ceiling: a step's writes done one after another at the raw rates of their kinds
    # (status patches at the better of one and several writers), per second.
    per_step = {k: v / len(rounds) for k, v in resources.items()}
    rates = {
        "workflowruns/status": max(raw_one, raw_many),
        "configmaps": median(rounds, "raw_configmap"),
        "events": median(rounds, "raw_event"),
    }
    seconds = sum(per_step.get(k, 0.0) / rate for k, rate in rates.items() if rate)
    ceiling = 1 / seconds if seconds else 0.0
    rows += [
        "",
        f"Writes per step by resource: {split}.",
        f"Ceiling: a step's writes at the raw rates of their kinds (status "
        f"{rates['workflowruns/status']:.0f}/s, ConfigMap {rates['configmaps']:.0f}/s, Event "
        f"{rates['events']:.0f}/s) allow {ceiling:.1f} steps/s; measured {sps:.1f} steps/s, "
        f"a ratio of {sps / ceiling if ceiling else 0:.2f}.",
        "",
    ]
    return "\n".join(rows)


async def rounds_of(
    cluster: Cluster, flags: tuple[str, ...], args: argparse.Namespace, label: str
) -> list[Round]:
    server = NoopServer()
    results = []
    try:
        with operator(cluster, *flags) as process:
            for number in range(args.rounds):
                tag = f"{label}{number}-{os.getpid()}"
                result = await measure_round(
                    cluster,
                    process,
                    server,
                    tag,
                    steps=args.steps,
                    runs=args.runs,
                    writers=args.writers,
                )
                print(f"  {label} round {number}: {result}", file=sys.stderr)
                results.append(result)
    finally:
        server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="HTTP steps per run (N)")
    parser.add_argument("--runs", type=int, default=20, help="concurrent runs per round (M)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", type=int, default=8, help="concurrent raw writers")
    parser.add_argument("--qps-limits", choices=["default", "disabled", "both"], default="both")
    parser.add_argument("--crash-runs", type=int, default=0, help="crash test size (0: skip)")
    parser.add_argument("--crash-kills", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="leave the clusters running")
    parser.add_argument(
        "--cluster", default="bench", help="control plane name (beside another benchmark's)"
    )
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"# operator throughput: {args.runs} runs x {args.steps} HTTP steps, {args.rounds} rounds"
    )
    print(f"(cores: {os.cpu_count()}, load average at start: {load[0]:.1f})\n")
    variants = {
        "default": (args.cluster, ""),
        "disabled": (f"{args.cluster}-noqps", "--disable-qps-limits"),
    }
    chosen = list(variants) if args.qps_limits == "both" else [args.qps_limits]
    for variant in chosen:
        name, extra = variants[variant]
        with cluster(name, extra, args.keep) as running:
            title = f"API server QPS limits {variant}"
            defaults = asyncio.run(rounds_of(running, (), args, "df"))
            print(table(f"{title}; operator defaults (Events for run phases only)", defaults))
            if variant == "default":
                steps = asyncio.run(rounds_of(running, ("--step-events",), args, "ev"))
                print(table(f"{title}; --step-events (an Event per step too)", steps))
                quiet = asyncio.run(rounds_of(running, ("--no-kube-events",), args, "qt"))
                print(table(f"{title}; --no-kube-events", quiet))
                single = argparse.Namespace(**{**vars(args), "runs": 1})
                latency = asyncio.run(rounds_of(running, (), single, "one"))
                print(table(f"{title}; one run at a time (latency)", latency))
            if args.crash_runs and variant == chosen[0]:
                figures = crash_test(running, args.crash_runs, args.crash_kills)
                print(f"#### crash test, {args.crash_runs} runs, {args.crash_kills} kills\n")
                print("```json\n" + json.dumps(figures, indent=1, sort_keys=True) + "\n```\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
