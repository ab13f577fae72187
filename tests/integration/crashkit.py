"""Helpers of the crash and peering tests (tests/integration/test_crash.py, test_crash_windows.py,
test_peering.py): the saga workflow every run follows, the checks that each effect happened once,
that each run's history alone accounts for its status, and `Lives`, an operator killed at chosen
failpoints and started again.

The saga: `reserve` and `charge` (HTTP, each with an HTTP compensation), `build` (a Job),
`nap` (a 1 s sleep), `approval` (waitForSignal), `ship` (HTTP, compensated), and `abort`, a
`fail` step that runs when `input.abort` is true (every third run): those runs compensate ship,
charge and reserve, in that order, and end Compensated; the others end Succeeded.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusterkit import FINAL_PHASES, Runs
from kubernetes import client
from operator_process import OperatorProcess
from recorder import Recorder

from baton.api.labels import ACTIVITY_KEY, ATTEMPT, PART, RUN_UID
from baton.api.workflow import WorkflowSpec
from baton.engine import compile_definition, replay, status_of
from baton.engine.events import HistoryEntry
from baton.failpoints import ENV as FAILPOINTS_ENV
from baton.failpoints import EXIT_STATUS
from baton.handlers.runs import split_status
from baton.store.history import HISTORY, decode_chunk
from baton.store.journal import NAME as JOURNAL_NAME
from baton.store.journal import parse_key
from baton.store.snapshots import REF

FORWARD = ["reserve", "charge", "ship"]
"""HTTP steps in the order they run; each has a compensation."""
UNDO = {"reserve": "release", "charge": "refund", "ship": "unship"}


def saga_workflow(url: str, nap: str = "1s") -> dict[str, Any]:
    """HTTP, Job, sleep, signal, HTTP, and a `fail` (for runs with `input.abort`) that makes
    the saga compensate ship, charge and reserve, in that order."""

    def http(path: str, body: Any = None) -> dict[str, Any]:
        return {"method": "POST", "url": f"{url}/{path}", "body": body}

    def compensated(name: str, body: Any = None) -> dict[str, Any]:
        return {
            "name": name,
            "http": http(name, body),
            "compensate": {"http": http(UNDO[name], {"undo": name})},
        }

    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "saga"},
        "spec": {
            "steps": [
                compensated("reserve", {"run": "${{ run.name }}"}),
                compensated("charge", {"amount": "${{ input.amount }}"}),
                {"name": "build", "job": {"image": "registry.example/build:1", "args": ["go"]}},
                {"name": "nap", "sleep": {"duration": nap}},
                {"name": "approval", "waitForSignal": {"name": "approve", "timeout": "10m"}},
                compensated("ship", "${{ steps.approval.output }}"),
                {
                    "name": "abort",
                    "when": "input.abort",
                    "fail": {"error": "Aborted", "message": "the input asked for it"},
                },
            ],
            "output": {"shipped": "${{ steps.ship.output }}"},
        },
    }


def saga_run(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": f"saga-{index}"},
        "spec": {
            "workflowRef": {"name": "saga"},
            "input": {"amount": index, "abort": index % 3 == 0},
            "signals": [],
        },
    }


def expected_phase(index: int) -> str:
    return "Compensated" if index % 3 == 0 else "Succeeded"


def expected_effects(index: int) -> list[str]:
    """Paths of the effects of run `index`, in order."""
    if index % 3 == 0:
        return [*FORWARD, *(UNDO[s] for s in reversed(FORWARD))]
    return list(FORWARD)


@dataclass
class Report:
    """What a crash test saw; printed, and written to $BATON_CRASH_REPORT when set."""

    runs: int
    seed: int | None = None
    kills: int = 0
    failpoint_exits: int = 0
    signalled_while_down: int = 0
    waiting_when_signalled: int = 0
    calls: int = 0
    effects: int = 0
    repeated_keys: dict[str, int] = field(default_factory=dict)
    jobs: int = 0
    seconds: float = 0.0
    at_kills: list[dict[str, int]] = field(default_factory=list)
    """Where the runs were at each kill: step name (running) or phase -> number of runs."""

    def publish(self) -> None:
        text = json.dumps(self.__dict__, indent=1, sort_keys=True)
        print(f"crash report: {text}")
        path = os.environ.get("BATON_CRASH_REPORT")
        if path:
            Path(path).write_text(text)


def signal_all(runs: Runs, names: list[str]) -> int:
    """Send `approve` to every run (a merge patch, as `baton signal` or kubectl would); returns
    how many of them were waiting for it at that moment."""
    waiting = 0
    for name in names:
        status = runs.status(name)
        if (status.get("steps") or {}).get("approval", {}).get("phase") == "Waiting":
            waiting += 1
        runs.api.patch_namespaced_custom_object(
            "baton.dev",
            "v1alpha1",
            runs.namespace,
            "workflowruns",
            name,
            {"spec": {"signals": [{"name": "approve", "payload": {"by": "test"}}]}},
        )
    return waiting


def wait_all(runs: Runs, names: list[str], timeout: float, operator: OperatorProcess) -> None:
    """Wait until every run is in a final phase (the operator must stay up meanwhile)."""
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for item in runs.listed():
            if (item.get("status") or {}).get("phase") in FINAL_PHASES:
                pending.discard(item["metadata"]["name"])
        if not pending:
            return
        if time.monotonic() > deadline:
            stuck = {n: runs.status(n).get("phase") for n in sorted(pending)[:5]}
            raise AssertionError(
                f"{len(pending)} runs not finished in {timeout}s, e.g. {stuck}\n"
                f"--- operator log ---\n{operator.log_tail(80)}"
            )
        assert operator.alive, f"the operator died:\n{operator.log_tail(80)}"
        time.sleep(0.2)


def check_outcome(
    runs: Runs, recorder: Recorder, count: int, report: Report, *, waits: bool = True
) -> None:
    """Every run in its expected phase; each effect once, in order; one Job per run."""
    uids: dict[str, int] = {}
    for index in range(count):
        run = runs.get(f"saga-{index}")
        status = run.get("status") or {}
        assert status.get("phase") == expected_phase(index), (index, status)
        uids[run["metadata"]["uid"]] = index
        for path, step in (status.get("steps") or {}).items():
            assert int(step.get("attempts") or 0) <= 1, (index, path, step)
        if expected_phase(index) == "Succeeded" and waits:
            assert status.get("output") == {"shipped": {"ok": True}}, status

    # Effects: one key per (run, path), attempt 1, in the expected order per run.
    per_run: dict[int, list[str]] = defaultdict(list)
    for key, call in recorder.effects.items():
        uid, _, rest = key.partition("/")
        assert uid in uids, f"an effect for an unknown run: {key}"
        index = uids[uid]
        step_path, _, attempt = rest.rpartition("/")
        assert attempt == "1", f"a step ran a second attempt: {key}"
        step = step_path.split("/")[0]
        expected_path = f"/{step}" if step_path == step else f"/{UNDO[step]}"
        assert call.path == expected_path, (key, call.path)
        per_run[index].append(call.path.lstrip("/"))
    for index in range(count):
        assert per_run[index] == expected_effects(index), (index, per_run[index])

    calls_per_key = Counter(c.key for c in recorder.calls)
    assert None not in calls_per_key, "a call without an Idempotency-Key"
    assert set(calls_per_key) == set(recorder.effects), "a key that had no effect"
    report.calls = len(recorder.calls)
    report.effects = len(recorder.effects)
    report.repeated_keys = {
        f"{uids[str(k).partition('/')[0]]}:{str(k).partition('/')[2]}": n - 1
        for k, n in sorted(calls_per_key.items(), key=str)
        if n > 1
    }

    # Jobs: exactly one per run, for step `build`, attempt 1, one pod each.
    batch = client.BatchV1Api(runs.cluster.api_client)
    core = client.CoreV1Api(runs.cluster.api_client)
    jobs = batch.list_namespaced_job(runs.namespace).items
    seen = Counter(
        (
            uids[j.metadata.labels[RUN_UID]],
            j.metadata.annotations[ACTIVITY_KEY],
            j.metadata.annotations[ATTEMPT],
        )
        for j in jobs
    )
    assert seen == Counter({(i, "build", "1"): 1 for i in range(count)}), seen
    pods = Counter(
        p.metadata.labels.get("job-name") for p in core.list_namespaced_pod(runs.namespace).items
    )
    assert all(n == 1 for n in pods.values()), pods
    report.jobs = len(jobs)


def batches_committed(runs: Runs) -> int:
    """Batches committed so far by all runs of the namespace (their status's history position)."""
    return sum(
        int(((item.get("status") or {}).get("history") or {}).get("batches") or 0)
        for item in runs.listed()
    )


def where_runs_are(runs: Runs) -> dict[str, int]:
    """How many runs are at which step (or final phase), for the report."""
    places: Counter[str] = Counter()
    for item in runs.listed():
        status = item.get("status") or {}
        phase = status.get("phase") or "new"
        places[phase if phase != "Running" else str(status.get("currentStep"))] += 1
    return dict(sorted(places.items()))


def check_history(runs: Runs, workflow: dict[str, Any], count: int) -> None:
    """Each saga run's history is one log that replays to its status (`check_replay`)."""
    for index in range(count):
        check_replay(runs, workflow, f"saga-{index}")


def check_replay(runs: Runs, workflow: dict[str, Any], name: str) -> int:
    """The run's history is one log, batches numbered 0, 1, 2... once each, and replaying it
    alone gives the status the run shows (offloaded outputs read back); returns how many
    history ConfigMaps (chunks) it spans."""
    definition = compile_definition(WorkflowSpec.model_validate(workflow["spec"]))
    core = client.CoreV1Api(runs.cluster.api_client)
    run = runs.get(name)
    selector = f"{RUN_UID}={run['metadata']['uid']},{PART}={HISTORY}"
    chunks = core.list_namespaced_config_map(runs.namespace, label_selector=selector).items
    batches = sorted(batch for chunk in chunks for batch in decode_chunk(chunk.data))
    # Batches of a run in motion may still be in the namespace's journal only.
    numbers = {number for number, _ in batches}
    batches += [b for b in journal_batches(runs, run["metadata"]["uid"]) if b[0] not in numbers]
    batches.sort()
    numbers = [number for number, _ in batches]
    assert numbers == list(range(len(numbers))), (name, numbers)
    state = replay(definition, [entry for _, entries in batches for entry in entries])
    shown, _ = split_status(run["status"])
    assert status_of(definition, state) == _inlined(core, runs.namespace, shown), name
    return len(chunks)


def journal_batches(runs: Runs, uid: str) -> list[tuple[int, list[HistoryEntry]]]:
    """The batches of run `uid` in the namespace's history journal (baton.store.journal)."""
    try:
        journal = client.CoreV1Api(runs.cluster.api_client).read_namespaced_config_map(
            JOURNAL_NAME, runs.namespace
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return []
        raise
    found = []
    for key, text in (journal.data or {}).items():
        parsed = parse_key(key)
        if parsed is not None and parsed[1] == uid:
            found.extend((parsed[2], entries) for _, entries in decode_chunk({"0": text}))
    return found


def _inlined(core: client.CoreV1Api, namespace: str, node: Any) -> Any:
    """`node` with each offloaded output (`{"$ref": configmap}`) replaced by its content."""
    if isinstance(node, dict):
        if set(node) == {REF}:
            data = core.read_namespaced_config_map(node[REF], namespace).data or {}
            return json.loads(data["json"])
        return {k: _inlined(core, namespace, v) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(core, namespace, v) for v in node]
    return node


class Lives:
    """One operator process over the lives of a crash test: started plain or armed with
    failpoints (`BATON_FAILPOINTS`), ended by its failpoint (`os._exit(137)`, as abrupt as
    SIGKILL) or by `kill` (SIGKILL), started again. `deaths` lists how each life ended."""

    def __init__(self, process: OperatorProcess) -> None:
        self.process = process
        self.deaths: list[str] = []

    def start(self, failpoints: str = "") -> None:
        """Start the operator, armed with `failpoints` (`name[:hit],...`) or not at all."""
        if failpoints:
            self.process.env[FAILPOINTS_ENV] = failpoints
        else:
            self.process.env.pop(FAILPOINTS_ENV, None)
        self.process.start()

    def die_at(self, failpoints: str, timeout: float = 90.0) -> str:
        """Start armed with `failpoints` and wait until the process exits at one of them;
        returns its name."""
        self.start(failpoints)
        return self.wait_death(failpoints, timeout)

    def wait_death(self, failpoints: str, timeout: float = 90.0) -> str:
        """Wait until the running process exits at one of its `failpoints`; returns its name."""
        process = self.process.process
        assert process is not None
        deadline = time.monotonic() + timeout
        while (code := process.poll()) is None:
            assert time.monotonic() < deadline, (
                f"failpoint {failpoints} not hit in {timeout}s:\n{self.process.log_tail(60)}"
            )
            time.sleep(0.05)
        tail = self.process.log_tail(5).splitlines()
        hits = [line for line in tail if line.startswith("baton failpoint ")]
        assert code == EXIT_STATUS, f"exit {code}:\n{self.process.log_tail(60)}"
        assert hits, f"no failpoint exit:\n{self.process.log_tail(60)}"
        point = hits[-1].split()[2]
        self.deaths.append(point)
        return point

    def kill(self) -> None:
        """SIGKILL the running operator once it is through its start-up."""
        self.process.wait_ready()
        self.process.kill()
        self.deaths.append("kill -9")


LivesFactory = Callable[..., Lives]
"""Makes a test's Lives (the `make_lives` fixture), with extra operator arguments."""
