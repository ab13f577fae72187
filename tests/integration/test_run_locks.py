"""Mutexes and semaphores across runs on the real control plane: a run waits for another's
mutex until that one ends (through an operator killed -9 while it waits), a semaphore of 2 is
never held by more than 2 of 6 runs, a deleted holder frees its lock at once, and a crash right
after a grant was written to the lock object neither loses the grant nor grants it twice.

The proofs come from what the API holds, never from sleeps: each run's history (when its grant
was folded, when it ended), and every version of the lock's ConfigMap, watched from the start.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from clusterkit import Runs
from crashkit import LivesFactory
from kubernetes import client, watch
from operator_process import OperatorProcess
from runkit import run, send_signal, wait_until, workflow

from baton.api.attempts import lock_object_name
from baton.api.locks import SHARED_LOCKS_CONFIG_MAP
from baton.executors.locks import POLL_SECONDS
from baton.store.history import read_history
from baton.store.kube import Kube
from baton.store.locks import RECORD_KEY

pytestmark = pytest.mark.timeout(300)


HOLD = workflow(
    "hold",
    [
        {
            "name": "hold",
            "synchronization": {"mutex": "account-${{ input.id }}"},
            "waitForSignal": {"name": "go", "timeout": "10m"},
        }
    ],
)
"""A step that holds the mutex `account-<id>` until its run gets the signal `go`."""


def lock_of(runs: Runs, name: str, key: str = "hold") -> dict[str, Any]:
    """The run's `status.locks[key]` (empty until it asked)."""
    found: dict[str, Any] = (runs.status(name).get("locks") or {}).get(key) or {}
    return found


def granted(runs: Runs, name: str, key: str = "hold") -> bool:
    return "grantedAt" in lock_of(runs, name, key)


def record(runs: Runs, kind: str, name: str) -> dict[str, Any] | None:
    """The lock's record in its ConfigMap, None when it has no object."""
    core = client.CoreV1Api(runs.cluster.api_client)
    try:
        obj = core.read_namespaced_config_map(lock_object_name(kind, name), runs.namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data: dict[str, Any] = json.loads(obj.data[RECORD_KEY])
    return data


def holders(runs: Runs, kind: str, name: str) -> list[str]:
    found = record(runs, kind, name)
    return [h["run"] for h in (found or {}).get("holders", [])]


def history(runs: Runs, name: str) -> list[dict[str, Any]]:
    """The run's events as `baton history --json` gives them, read in this process (a CLI
    process per read costs seconds of start-up on a loaded machine)."""

    async def read() -> list[dict[str, Any]]:
        kube = await Kube.connect(str(runs.cluster.kubeconfig))
        try:
            uid = runs.get(name)["metadata"]["uid"]
            return [e.to_json() for e in await read_history(kube, runs.namespace, uid)]
        finally:
            await kube.close()

    return asyncio.run(read())


def events(runs: Runs, name: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in history(runs, name) if e["type"] == kind]


def test_a_run_waits_for_the_mutex_another_holds_until_it_ends_even_across_a_kill(
    runs: Runs, make_lives: LivesFactory
) -> None:
    lives = make_lives()
    lives.start()
    runs.apply([HOLD, run("first", "hold", {"id": 7})])
    wait_until("first holds the mutex", lambda: granted(runs, "first"), timeout=60)
    runs.apply(run("second", "hold", {"id": 7}))
    wait_until(
        "second says whom it waits for",
        lambda: (
            lock_of(runs, "second").get("message")
            == "waiting for mutex account-7 held by run first"
        ),
        timeout=60,
    )
    [condition] = [c for c in runs.status("second")["conditions"] if c["type"] == "LockWaiting"]
    assert condition["message"] == "waiting for mutex account-7 held by run first"
    lives.kill()  # -9 while second waits
    lives.start()
    runs.apply(run("third", "hold", {"id": 8}))  # another account: not in the way
    wait_until("third holds its own mutex", lambda: granted(runs, "third"), timeout=60)
    assert not granted(runs, "second")
    assert holders(runs, "mutex", "account-7") == ["first"]
    send_signal(runs.cluster, runs.namespace, "first", "go")
    runs.wait("first", timeout=60)
    wait_until("second holds the mutex", lambda: granted(runs, "second"), timeout=60)
    send_signal(runs.cluster, runs.namespace, "second", "go")
    assert runs.wait("second", timeout=60)["phase"] == "Succeeded"
    first_end = history(runs, "first")[-1]["at"]
    [second_grant] = events(runs, "second", "LockAcquired")
    assert second_grant["at"] >= first_end
    left = record(runs, "mutex", "account-7") or {}
    assert (left["holders"], left["queue"]) == ([], [])


class LockWatch:
    """Every version of one lock's ConfigMap from now on, in order, as a watch delivers them."""

    def __init__(self, runs: Runs, kind: str, name: str) -> None:
        self.core = client.CoreV1Api(runs.cluster.api_client)
        self.namespace = runs.namespace
        self.object_name = lock_object_name(kind, name)
        self.versions: list[dict[str, Any]] = []
        self.error: Exception | None = None
        self.stopped = False
        # Watched from the collection's version now: every change after it is delivered.
        listing = self.core.list_namespaced_config_map(self.namespace)
        self.since = listing.metadata.resource_version
        self.watch = watch.Watch()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.watch.stream(
                self.core.list_namespaced_config_map,
                self.namespace,
                field_selector=f"metadata.name={self.object_name}",
                resource_version=self.since,
                timeout_seconds=240,
            ):
                obj = event["object"]
                if obj.data and RECORD_KEY in obj.data:
                    self.versions.append(json.loads(obj.data[RECORD_KEY]))
        except Exception as exc:  # reported by the test (stop), not lost in the thread
            if not self.stopped:
                self.error = exc

    def stop(self) -> None:
        """Stop watching; fails when the watch broke before (versions may be missing)."""
        self.stopped = True
        self.watch.stop()
        assert self.error is None, f"the watch of {self.object_name} broke: {self.error}"


def test_a_semaphore_of_two_is_never_held_by_more_than_two_of_six_runs(
    runs: Runs, operator: OperatorProcess
) -> None:
    core = client.CoreV1Api(runs.cluster.api_client)
    core.create_namespaced_config_map(
        runs.namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="limits"), data={"deploys": "2"}),
    )
    watcher = LockWatch(runs, "semaphore", "deploys")
    deploy = workflow(
        "deploy",
        [{"name": "roll", "sleep": {"duration": "3s"}}],
        synchronization={
            "semaphore": {
                "name": "deploys",
                "configMapKeyRef": {"name": "limits", "key": "deploys"},
            }
        },
    )
    names = [f"deploy-{i}" for i in range(6)]
    runs.apply([deploy, *[run(name, "deploy") for name in names]])
    for name in names:
        assert runs.wait(name, timeout=120)["phase"] == "Succeeded"
    watcher.stop()
    # Every version of the lock object: at most 2 holders, and 2 at some point.
    assert watcher.versions
    most = max(len(v["holders"]) for v in watcher.versions)
    assert most == 2
    granted_to = [h["run"] for v in watcher.versions for h in v["holders"]]
    assert sorted(set(granted_to)) == names
    # Each run's hold, from its own history: granted, then ended; never more than 2 at once.
    spans = []
    for name in names:
        entries = history(runs, name)
        grant = next(e["at"] for e in entries if e["type"] == "LockAcquired")
        spans.append((grant, entries[-1]["at"]))
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2
    assert any(events(runs, name, "LockWaiting") for name in names)
    assert holders(runs, "semaphore", "deploys") == []


def test_a_holder_that_is_deleted_releases_its_mutex_at_once(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply([HOLD, run("owner", "hold", {"id": 1})])
    wait_until("owner holds the mutex", lambda: granted(runs, "owner"), timeout=60)
    runs.apply(run("waiter", "hold", {"id": 1}))
    wait_until("waiter is queued", lambda: lock_of(runs, "waiter").get("heldBy"), timeout=60)
    runs.api.delete_namespaced_custom_object(
        "baton.dev", "v1alpha1", runs.namespace, "workflowruns", "owner"
    )
    wait_until("waiter holds the mutex", lambda: granted(runs, "waiter"), timeout=60)
    assert holders(runs, "mutex", "account-1") == ["waiter"]
    # Granted before its own re-ask came due: the deletion itself released the lock.
    [asked] = events(runs, "waiter", "LockWaiting")
    [grant] = events(runs, "waiter", "LockAcquired")
    assert grant["at"] - asked["at"] < POLL_SECONDS


def test_a_holder_deleted_while_the_operator_was_down_is_cleared_when_a_waiter_asks(
    runs: Runs, make_lives: LivesFactory
) -> None:
    lives = make_lives()
    lives.start()
    runs.apply([HOLD, run("owner", "hold", {"id": 2})])
    wait_until("owner holds the mutex", lambda: granted(runs, "owner"), timeout=60)
    lives.process.stop()
    runs.api.delete_namespaced_custom_object(
        "baton.dev", "v1alpha1", runs.namespace, "workflowruns", "owner"
    )
    runs.apply(run("waiter", "hold", {"id": 2}))
    lives.start()
    wait_until("waiter holds the mutex", lambda: granted(runs, "waiter"), timeout=60)
    assert holders(runs, "mutex", "account-2") == ["waiter"]


def test_a_crash_right_after_a_grant_is_written_neither_loses_nor_doubles_it(
    runs: Runs, make_lives: LivesFactory
) -> None:
    lives = make_lives()
    runs.apply([HOLD, run("first", "hold", {"id": 3})])
    # Dies with first among the lock's holders and no LockAcquired in its history.
    assert lives.die_at("after-lock-grant:1") == "after-lock-grant"
    assert holders(runs, "mutex", "account-3") == ["first"]
    assert not granted(runs, "first")
    lives.start()
    wait_until("first holds the mutex", lambda: granted(runs, "first"), timeout=60)
    runs.apply(run("second", "hold", {"id": 3}))
    wait_until("second is queued", lambda: lock_of(runs, "second").get("heldBy"), timeout=60)
    assert holders(runs, "mutex", "account-3") == ["first"]
    found = record(runs, "mutex", "account-3") or {}
    assert [h["run"] for h in found["queue"]] == ["second"]
    # The grant made when first ends is the next window: die right after writing it.
    lives.process.stop()
    lives.start("after-lock-grant:1")
    send_signal(runs.cluster, runs.namespace, "first", "go")
    assert lives.wait_death("after-lock-grant:1") == "after-lock-grant"
    assert holders(runs, "mutex", "account-3") == ["second"]
    lives.start()
    wait_until("second holds the mutex", lambda: granted(runs, "second"), timeout=60)
    assert runs.status("first")["phase"] == "Succeeded"
    assert len(events(runs, "first", "LockAcquired")) == 1
    send_signal(runs.cluster, runs.namespace, "second", "go")
    assert runs.wait("second", timeout=60)["phase"] == "Succeeded"
    assert len(events(runs, "second", "LockAcquired")) == 1


def test_a_semaphore_limit_is_read_live_from_its_configmap(
    runs: Runs, operator: OperatorProcess
) -> None:
    gate = workflow(
        "gate",
        [
            {
                "name": "hold",
                "synchronization": {
                    "semaphore": {
                        "name": "gates",
                        "configMapKeyRef": {"name": "gate-limits", "key": "gates"},
                    }
                },
                "waitForSignal": {"name": "go", "timeout": "10m"},
            }
        ],
    )
    runs.apply([gate, run("a", "gate")])
    wait_until(
        "a says why no one gets the semaphore",
        lambda: (
            "ConfigMap 'gate-limits' not found; create it" in lock_of(runs, "a").get("message", "")
        ),
        timeout=60,
    )
    core = client.CoreV1Api(runs.cluster.api_client)
    core.create_namespaced_config_map(
        runs.namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="gate-limits"), data={"gates": "1"}),
    )
    wait_until("a holds a slot", lambda: granted(runs, "a"), timeout=POLL_SECONDS + 45)
    runs.apply(run("b", "gate"))
    wait_until(
        "b waits for the one slot",
        lambda: lock_of(runs, "b").get("message") == "waiting for semaphore gates held by a",
        timeout=60,
    )
    core.patch_namespaced_config_map("gate-limits", runs.namespace, {"data": {"gates": "2"}})
    wait_until("b holds a slot", lambda: granted(runs, "b"), timeout=POLL_SECONDS + 45)
    assert sorted(holders(runs, "semaphore", "gates")) == ["a", "b"]
    assert granted(runs, "a")


def test_cancelling_a_waiting_run_takes_it_out_of_the_queue(
    runs: Runs, operator: OperatorProcess
) -> None:
    runs.apply([HOLD, run("owner", "hold", {"id": 5})])
    wait_until("owner holds the mutex", lambda: granted(runs, "owner"), timeout=60)
    runs.apply(run("waiter", "hold", {"id": 5}))
    wait_until("waiter is queued", lambda: lock_of(runs, "waiter").get("heldBy"), timeout=60)
    assert [h["run"] for h in (record(runs, "mutex", "account-5") or {})["queue"]] == ["waiter"]
    runs.api.patch_namespaced_custom_object(
        "baton.dev",
        "v1alpha1",
        runs.namespace,
        "workflowruns",
        "waiter",
        {"spec": {"cancel": True}},
    )
    assert runs.wait("waiter", timeout=60)["phase"] == "Cancelled"
    wait_until(
        "the queue is empty",
        lambda: (record(runs, "mutex", "account-5") or {}).get("queue") == [],
        timeout=30,
    )
    assert holders(runs, "mutex", "account-5") == ["owner"]
    assert events(runs, "waiter", "LockAcquired") == []


@contextmanager
def more_namespaces(runs: Runs, *stems: str) -> Iterator[list[str]]:
    """Fresh namespaces besides the test's, deleted afterwards."""
    core = client.CoreV1Api(runs.cluster.api_client)
    names = [f"{runs.namespace[:40].rstrip('-')}-{stem}" for stem in stems]
    for name in names:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield names
    finally:
        for name in names:
            core.delete_namespace(name, propagation_policy="Background")


def test_runs_of_two_namespaces_share_a_mutex_a_third_consents_to_and_others_are_refused(
    runs: Runs, make_lives: LivesFactory
) -> None:
    with more_namespaces(runs, "b", "shared", "out") as (team_b, shared, outsider):
        core = client.CoreV1Api(runs.cluster.api_client)
        core.create_namespaced_config_map(
            shared,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=SHARED_LOCKS_CONFIG_MAP),
                data={runs.namespace: "account-*", team_b: "*"},
            ),
        )
        watched = [arg for ns in (team_b, shared, outsider) for arg in ("--namespace", ns)]
        make_lives(*watched).start()
        team_a, in_b, out = runs, Runs(runs.cluster, team_b), Runs(runs.cluster, outsider)
        hold = workflow(
            "hold",
            [
                {
                    "name": "hold",
                    "synchronization": {"mutex": "account-${{ input.id }}", "namespace": shared},
                    "waitForSignal": {"name": "go", "timeout": "10m"},
                }
            ],
        )
        team_a.apply([hold, run("first", "hold", {"id": 7})])
        wait_until("first holds the mutex", lambda: granted(team_a, "first"), timeout=60)
        in_b.apply([hold, run("second", "hold", {"id": 7})])
        wait_until(
            "second says whom, of which namespace, it waits for",
            lambda: (
                lock_of(in_b, "second").get("message")
                == f"waiting for mutex account-7 held by run {team_a.namespace}/first"
            ),
            timeout=60,
        )
        kept = record(Runs(runs.cluster, shared), "mutex", "account-7") or {}
        assert [(h["namespace"], h["run"]) for h in kept["holders"]] == [
            (team_a.namespace, "first")
        ]
        assert [(h["namespace"], h["run"]) for h in kept["queue"]] == [(team_b, "second")]
        send_signal(runs.cluster, team_a.namespace, "first", "go")
        assert team_a.wait("first", timeout=60)["phase"] == "Succeeded"
        wait_until("second holds the mutex", lambda: granted(in_b, "second"), timeout=60)
        [second_grant] = events(in_b, "second", "LockAcquired")
        assert second_grant["at"] >= history(team_a, "first")[-1]["at"]
        # Deleting a holder of another namespace releases its hold there at once (no waiter
        # asks, so only the deletion can have emptied it).
        in_b.api.delete_namespaced_custom_object(
            "baton.dev", "v1alpha1", team_b, "workflowruns", "second"
        )
        wait_until(
            "the deleted holder's hold is gone",
            lambda: holders(Runs(runs.cluster, shared), "mutex", "account-7") == [],
            timeout=30,
        )

        out.apply([hold, run("stranger", "hold", {"id": 7})])
        refused = out.wait("stranger", timeout=60)
        assert refused["phase"] == "Failed"
        error = refused["error"]
        assert error["type"] == "LockRefused"
        assert error["message"].startswith(
            f"namespace '{shared}' does not let '{outsider}' use its locks: add the key "
            f"'{outsider}' to ConfigMap '{SHARED_LOCKS_CONFIG_MAP}'"
        )
        assert error["details"]["field"] == "synchronization.namespace"
        assert holders(Runs(runs.cluster, shared), "mutex", "account-7") == []
        # A namespace the operator does not watch is refused the same way, whatever it holds.
        elsewhere = workflow(
            "elsewhere",
            [
                {
                    "name": "hold",
                    "synchronization": {"mutex": "m", "namespace": "default"},
                    "waitForSignal": {"name": "go", "timeout": "10m"},
                }
            ],
        )
        team_a.apply([elsewhere, run("unwatched", "elsewhere")])
        unwatched = team_a.wait("unwatched", timeout=60)
        assert unwatched["phase"] == "Failed"
        assert unwatched["error"]["type"] == "LockRefused"
        assert unwatched["error"]["message"].startswith(
            f"namespace 'default' does not let '{team_a.namespace}' use its locks: this "
            f"operator does not manage namespace 'default'"
        )
