"""Active/standby replicas through kopf peering: two `baton operator` processes without
--standalone share a peering name; only the one with the highest priority drives runs.

kopf keeps each replica's keep-alive in a peering object, which it never creates: a namespaced
operator (`--namespace`) uses a `KopfPeering` of that name in the namespace (a cluster-wide one
a `ClusterKopfPeering`), so the test creates it first. In mandatory mode (Baton's, whenever it is
not --standalone) a replica starts paused and resumes once the peering shows no live replica of
higher priority. A replica killed -9 cannot leave the peering: the standby takes over when the
dead one's keep-alive expires, `--peering-lifetime` seconds after its last one (15 here).

What "acting" means: the operator's own count of API writes (`baton_api_writes_total` on its
/metrics). A standby must write nothing; kopf's own keep-alives are not counted there.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Cluster, Runs
from crashkit import (
    Report,
    check_outcome,
    saga_run,
    saga_workflow,
    signal_all,
    wait_all,
    where_runs_are,
)
from operator_process import OperatorProcess
from recorder import Recorder
from scrape import free_port, total

pytestmark = pytest.mark.timeout(300)

PEERING = "baton-test"
LIFETIME = 15
"""kopf touches its keep-alive every lifetime minus 5-10 s: below 15 s a busy replica's late
keep-alive would hand its runs to the standby while it still works (see docs/performance.md)."""
PAUSE_OR_RESUME = re.compile(r"(Pausing|Resuming) operations")
RUNS = 6


class Replica(OperatorProcess):
    """A peered operator with its own /metrics port."""

    def __init__(self, cluster: Cluster, namespace: str, log: Path, priority: int) -> None:
        super().__init__(
            cluster.env,
            log,
            "--namespace",
            namespace,
            "--no-kube-events",
            "--peering",
            PEERING,
            "--priority",
            str(priority),
            "--peering-lifetime",
            str(LIFETIME),
            standalone=False,
            verbose=False,
            metrics_port=free_port(),
        )

    def writes(self) -> int:
        """API writes this process made for runs, read from its /metrics, which must answer:
        a replica whose endpoint is down (its port taken, say) has not shown it wrote nothing."""
        return int(total(self.metrics(), "baton_api_writes_total"))

    def active(self) -> bool:
        """kopf's last word on peering was that it resumed (replicas start paused)."""
        changes = [line for line in self.lines("kopf") if PAUSE_OR_RESUME.search(line)]
        return bool(changes) and "Resuming" in changes[-1]


@pytest.fixture
def replicas(crds: Cluster, namespace: str, tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    """(high, low): priorities 100 and 10, sharing the peering; not started."""
    crds.apply(
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}},
        namespace=namespace,
    )
    high = Replica(crds, namespace, tmp_path / "high.log", 100)
    low = Replica(crds, namespace, tmp_path / "low.log", 10)
    yield high, low
    for replica in (high, low):
        replica.stop()
    for replica in (high, low):
        print(f"--- {replica.log_path.name} ---\n{replica.log_tail(30)}")


def wait_for(what: str, condition: object, timeout: float) -> float:
    """Wait until `condition()` is true; returns the seconds it took."""
    began = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - began < timeout, f"{what}: not within {timeout}s"
        time.sleep(0.1)
    return time.monotonic() - began


def test_standby_takes_over_when_the_active_replica_dies(
    runs: Runs, recorder: Recorder, replicas: tuple[Replica, Replica]
) -> None:
    high, low = replicas
    report = Report(runs=RUNS)
    names = [f"saga-{i}" for i in range(RUNS)]
    low.start()
    high.start()
    high.wait_ready()
    low.wait_ready()
    wait_for("the high-priority replica resumes", high.active, 60)
    runs.apply([saga_workflow(recorder.url), *(saga_run(i) for i in range(RUNS))])
    # The runs go as far as the signal they wait for, driven by the active replica only.
    wait_for(
        "every run waits for its signal",
        lambda: where_runs_are(runs).get("approval") == RUNS,
        90,
    )
    assert high.writes() > 0
    assert low.writes() == 0, "the standby wrote while the active replica was alive"
    assert not low.active()
    assert low.lines("baton.runs") == []

    high.kill()
    killed = time.monotonic()
    report.kills = 1
    report.waiting_when_signalled = signal_all(runs, names)  # while nobody is active
    report.signalled_while_down = RUNS
    takeover = wait_for("the standby takes over", low.active, LIFETIME + 30)
    wait_all(runs, names, timeout=90, operator=low)
    report.seconds = round(time.monotonic() - killed, 1)
    print(f"takeover {takeover:.1f}s after the kill (peering lifetime {LIFETIME}s)")
    check_outcome(runs, recorder, RUNS, report)
    assert low.writes() > 0
    report.publish()


def test_a_new_higher_priority_replica_takes_over_from_the_active_one(
    runs: Runs, recorder: Recorder, replicas: tuple[Replica, Replica]
) -> None:
    """A rolling update (the chart's --priority auto): the new replica has the higher priority
    and starts while the old one is active and busy. Once the new one works, the old one must
    not write any more, although its runs were in flight."""
    high, low = replicas
    report = Report(runs=RUNS)
    names = [f"saga-{i}" for i in range(RUNS)]
    low.start()
    low.wait_ready()
    wait_for("the only replica resumes", low.active, 60)
    # The runs sleep 20 s in `nap`, long enough for the new replica to start meanwhile; the
    # signal is buffered, so nothing stops them after the nap.
    runs.apply([saga_workflow(recorder.url, nap="20s"), *(saga_run(i) for i in range(RUNS))])
    signal_all(runs, names)
    wait_for("every run sleeps", lambda: where_runs_are(runs).get("nap") == RUNS, 60)
    began = time.monotonic()
    high.start()
    high.wait_ready()
    wait_for("the new replica resumes", high.active, 60)
    assert where_runs_are(runs).get("nap") == RUNS, "too slow: the runs woke up before"
    time.sleep(2)  # the old replica has had time to see the new one
    handed_over = low.writes()
    wait_all(runs, names, timeout=90, operator=high)
    time.sleep(2)
    late = low.writes() - handed_over
    report.seconds = round(time.monotonic() - began, 1)
    check_outcome(runs, recorder, RUNS, report)
    report.publish()
    assert high.writes() > 0
    assert late == 0, f"the old replica wrote {late} times after the new one took over"


def test_a_replica_without_its_peering_object_says_how_to_create_it_until_it_exists(
    runs: Runs, namespace: str, tmp_path: Path
) -> None:
    """Installed without the chart, nobody created the peering object: kopf stays paused and
    says nothing. The replica says, every few seconds, which object it waits for and how to
    create it; running the command it gives is enough for it to start driving runs."""
    replica = Replica(runs.cluster, namespace, tmp_path / "alone.log", 10)
    try:
        replica.start()
        replica.wait_ready()
        waiting = lambda: replica.lines("waiting for peering", f"KopfPeering {PEERING!r}")  # noqa: E731
        wait_for("the replica says twice what it waits for", lambda: len(waiting()) >= 2, 60)
        line = waiting()[-1]
        assert f"namespace {namespace}" in line, line
        assert "--standalone" in line, line
        command = line[line.index("echo '") : line.index("kubectl apply -f -") + 18]
        subprocess.run(["bash", "-c", command], env=runs.cluster.env, check=True)
        wait_for("the replica sees the peering", lambda: replica.lines("peering", "found"), 30)
        said = len(waiting())
        runs.apply(
            {
                "apiVersion": "baton.dev/v1alpha1",
                "kind": "WorkflowRun",
                "metadata": {"name": "after-peering"},
                "spec": {"workflow": {"steps": [{"name": "done", "set": {"x": 1}}]}},
            }
        )
        assert runs.wait("after-peering", timeout=90)["phase"] == "Succeeded"
        assert len(waiting()) == said, "still waiting after the peering object was created"
    finally:
        replica.stop()
        print(f"--- {replica.log_path.name} ---\n{replica.log_tail(30)}")
