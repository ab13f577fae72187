"""Crash tests: the operator is killed (SIGKILL, or a failpoint's `os._exit`) while runs are in
flight, restarted, and every run still ends as it should, each side effect applied once.

- `test_runs_survive_random_kills`: many concurrent runs of a workflow with HTTP steps, a Job, a
  sleep, a signal answered while the operator is down and a saga that compensates; the operator
  is killed -9 at seeded random moments. Size and seed come from the environment:
  `BATON_CRASH_RUNS` (12), `BATON_CRASH_KILLS` (4), `BATON_CRASH_SEED` (random, printed),
  `BATON_CRASH_REPORT` (a path: the figures are written there as JSON; bench/ uses it).
- `test_crash_at_each_failpoint`: the operator dies at exact places of the run loop (see
  baton.failpoints), one process after another, and is restarted until the run ends.
- `test_finished_run_is_left_alone`: without crashes no run is resumed (no wasted writes).
- `test_a_run_reloaded_while_an_activity_is_in_flight_gets_its_result`: a loop fenced off its
  history reloads the run; the attempt it had started reports to the new loop.
- `test_two_operators_on_the_same_runs_keep_one_history`: two operators both drive the same
  runs (the moment of a peering hand-over, stretched over whole runs): appends to a run's
  history are fenced, so one writer wins each batch and the other reloads.

What "once" means here. The recorder applies an effect the first time it sees an
`Idempotency-Key` and answers a repeat with the same reply: a repeat is the operator re-issuing
a call it had committed but whose answer it lost, which is allowed and is counted. A second
*key* for the same step (attempt 2) would be the step running twice, which is not: with nothing
scripted to fail, every (run, step) has exactly one key, attempt 1, and every Job step exactly
one Job, attempt 1.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import FINAL_PHASES, Cluster, Runs
from crashkit import (
    Report,
    batches_committed,
    check_history,
    check_outcome,
    saga_run,
    saga_workflow,
    signal_all,
    wait_all,
    where_runs_are,
)
from operator_process import OperatorProcess
from recorder import Recorder, Reply
from runkit import http, run, send_signal, wait_until, workflow

from baton.failpoints import ENV as FAILPOINTS_ENV
from baton.failpoints import EXIT_STATUS

CRASH_RUNS = int(os.environ.get("BATON_CRASH_RUNS", "12"))
CRASH_KILLS = int(os.environ.get("BATON_CRASH_KILLS", "4"))

# The random-kill test at size (bench/, 1,000 runs) waits up to 60 s + 1 s per run at its end.
pytestmark = pytest.mark.timeout(600 + 3 * CRASH_RUNS)


@pytest.fixture
def crash_operator(crds: Cluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator for the test's namespace, Kubernetes Events off, logging at INFO; not
    started yet."""
    process = OperatorProcess(
        crds.env,
        tmp_path / "operator.log",
        "--namespace",
        namespace,
        "--no-kube-events",
        verbose=False,
    )
    yield process
    process.stop()


def test_runs_survive_random_kills(
    runs: Runs, recorder: Recorder, crash_operator: OperatorProcess
) -> None:
    seed = int(os.environ.get("BATON_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    report = Report(runs=CRASH_RUNS, seed=seed)
    names = [f"saga-{i}" for i in range(CRASH_RUNS)]
    # The signal goes out while the operator is down, once a run waits for it (the others
    # find it buffered), or at the last kill at the latest.
    began = time.monotonic()

    crash_operator.start()
    runs.apply([saga_workflow(recorder.url)])
    # In hundreds: one `kubectl apply` of a thousand runs outlasts its time limit on a busy machine.
    for first in range(0, CRASH_RUNS, 100):
        runs.apply([saga_run(i) for i in range(first, min(first + 100, CRASH_RUNS))])
    for kill in range(1, CRASH_KILLS + 1):
        # Kill while the operator works: once it has committed something since it started
        # (it is resuming runs, performing commands, folding results), at a random moment.
        crash_operator.wait_ready()
        committed = batches_committed(runs)
        deadline = time.monotonic() + 20
        while batches_committed(runs) == committed and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        crash_operator.kill()
        report.kills += 1
        report.at_kills.append(where_runs_are(runs))
        waiting = report.at_kills[-1].get("approval", 0)
        if not report.signalled_while_down and (waiting or kill == CRASH_KILLS):
            report.waiting_when_signalled = signal_all(runs, names)
            report.signalled_while_down = len(names)
        time.sleep(rng.uniform(0.0, 0.5))
        crash_operator.start()
    if not report.signalled_while_down:  # no kills at all (BATON_CRASH_KILLS=0)
        signal_all(runs, names)
    wait_all(runs, names, timeout=60 + CRASH_RUNS, operator=crash_operator)
    report.seconds = round(time.monotonic() - began, 1)
    check_outcome(runs, recorder, CRASH_RUNS, report)
    report.publish()


FAILPOINTS = {
    "before-history-append": 2,
    "after-history-append": 1,
    "after-status-write": 1,
    "after-perform": 1,
}
"""The run loop's failpoints and the pass on which a process dies there. The first batch after a
restart redoes the work the last crash interrupted: dying before its append would make no
progress, so that point fires on the second pass."""


def test_crash_at_each_failpoint(
    runs: Runs, recorder: Recorder, crash_operator: OperatorProcess
) -> None:
    """Operator process k dies at failpoint k mod 4, so saga-0 (every step, then the saga's
    three compensations) advances about one commit per process and meets each point at several
    different batches; restarted until the run ends, it ends right, each effect once."""
    report = Report(runs=1)
    points = list(FAILPOINTS)
    exits: Counter[str] = Counter()
    runs.apply([saga_workflow(recorder.url), saga_run(0)])
    signal_all(runs, ["saga-0"])  # buffered until the run waits for it
    began = time.monotonic()
    deadline = began + 300

    def start(k: int) -> str:
        point = points[k % len(points)]
        crash_operator.env[FAILPOINTS_ENV] = f"{point}:{FAILPOINTS[point]}"
        crash_operator.start()
        return point

    point = start(0)
    while runs.status("saga-0").get("phase") not in FINAL_PHASES:
        assert time.monotonic() < deadline, f"not finished:\n{crash_operator.log_tail(60)}"
        process = crash_operator.process
        assert process is not None
        code = process.poll()
        if code is None:
            time.sleep(0.1)
            continue
        tail = crash_operator.log_tail(3)
        assert code == EXIT_STATUS, f"exit {code}:\n{crash_operator.log_tail(60)}"
        assert f"baton failpoint {point} hit {FAILPOINTS[point]}: exiting" in tail, tail
        exits[point] += 1
        point = start(sum(exits.values()))
    report.seconds = round(time.monotonic() - began, 1)
    report.failpoint_exits = sum(exits.values())
    print(f"failpoint exits: {dict(exits)}")
    assert set(exits) == set(points), exits
    check_outcome(runs, recorder, 1, report)
    report.publish()


def test_finished_run_is_left_alone(
    runs: Runs, recorder: Recorder, crash_operator: OperatorProcess
) -> None:
    """No crash: each run is started once and, once finished, never resumed. (A loop restarted
    from a body older than its own last status write would resume a finished run and write its
    status again: one wasted write per run.)"""
    names = [f"saga-{i}" for i in range(3)]
    runs.apply([saga_workflow(recorder.url), *(saga_run(i) for i in range(3))])
    signal_all(runs, names)
    crash_operator.start()
    wait_all(runs, names, timeout=60, operator=crash_operator)
    time.sleep(2)  # the watch events of the final status writes arrive
    log = crash_operator.log_path.read_text(errors="replace").splitlines()
    resumed = [line for line in log if "baton.runs" in line and "resumed" in line]
    assert resumed == [], resumed
    report = Report(runs=3)
    check_outcome(runs, recorder, 3, report)


def test_two_operators_on_the_same_runs_keep_one_history(
    runs: Runs, recorder: Recorder, crds: Cluster, namespace: str, tmp_path: Path
) -> None:
    count = 6
    names = [f"saga-{i}" for i in range(count)]
    workflow = saga_workflow(recorder.url)
    twins = [
        OperatorProcess(
            crds.env,
            tmp_path / f"operator-{n}.log",
            "--namespace",
            namespace,
            "--no-kube-events",
            verbose=False,
        )
        for n in range(2)
    ]
    try:
        for twin in twins:
            twin.start()
        for twin in twins:
            twin.wait_ready()
        runs.apply([workflow, *(saga_run(i) for i in range(count))])
        signal_all(runs, names)
        wait_all(runs, names, timeout=180, operator=twins[0])
        report = Report(runs=count)
        check_outcome(runs, recorder, count, report)
        check_history(runs, workflow, count)
        conflicts = sum(len(twin.lines("changed under this writer")) for twin in twins)
        conflicts += sum(len(twin.lines("created by another writer")) for twin in twins)
        print(f"fenced appends: {conflicts}; {report}")
        assert conflicts > 0, "the two operators never raced: the test proved nothing"
    finally:
        for twin in twins:
            twin.stop()


def test_a_run_reloaded_while_an_activity_is_in_flight_gets_its_result(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/slow", Reply(body={"done": True}, delay=8))
    both = {
        "name": "both",
        "parallel": {
            "branches": [
                {"name": "a", "steps": [{"name": "slow", "http": http(f"{recorder.url}/slow")}]},
                {"name": "b", "steps": [{"name": "nudge", "waitForSignal": {"name": "nudge"}}]},
            ]
        },
    }
    runs.apply([workflow("reloaded", [both]), run("reloaded-1", "reloaded")])
    runs.wait("reloaded-1", step="nudge", step_phase="Waiting")
    recorder.wait_for_calls("/slow", 1)
    # Someone else appends to the history (a replica that has not yet noticed it lost the
    # peering): the loop's next append is refused, and it reloads the run from what is there.
    runs.cluster.kubectl(
        "annotate", "configmap", "reloaded-1-history-0", "-n", runs.namespace, "test/touched=1"
    )
    send_signal(runs.cluster, runs.namespace, "reloaded-1", "nudge")
    wait_until("the reload", lambda: operator.lines("changed under this writer", "reloading"))
    status = runs.wait("reloaded-1", timeout=60)
    assert status["phase"] == "Succeeded", status
    assert status["steps"]["slow"]["attempts"] == 1
    assert len(recorder.effects_on("/slow")) == 1
