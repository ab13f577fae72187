"""The child run executor's pure parts: the manifest of a child, and which children it adopts."""

from __future__ import annotations

from executorkit import RUN

from baton.api.labels import ACTIVITY_KEY, ATTEMPT, PARENT_UID, ROOT_UID
from baton.engine import StartChildRun, TerminateChild, child_run_name
from baton.executors.child import ChildExecutor, attempt_of, child_manifest
from baton.settings import OperatorSettings
from baton.store.kube import Kube

SETTINGS = OperatorSettings()


def start(attempt: int = 1, policy: str = "terminate") -> StartChildRun:
    return StartChildRun(
        key="valuation",
        step="valuation",
        attempt=attempt,
        name=child_run_name(RUN.name, RUN.uid, "valuation", attempt),
        workflow_ref="valuate",
        input={"p": 1},
        parent_close_policy=policy,
    )


def test_a_child_records_its_parent_root_key_and_attempt() -> None:
    child = child_manifest(RUN, start(2), SETTINGS)
    meta = child["metadata"]
    assert meta["name"] == start(2).name
    assert meta["labels"][PARENT_UID] == RUN.uid
    assert meta["labels"][ROOT_UID] == RUN.uid
    assert meta["annotations"] == {ACTIVITY_KEY: "valuation", ATTEMPT: "2"}
    assert child["spec"] == {"workflowRef": {"name": "valuate"}, "input": {"p": 1}}
    assert attempt_of(child) is not None


def test_only_a_terminated_child_is_owned_by_its_parent() -> None:
    assert child_manifest(RUN, start(), SETTINGS)["metadata"]["ownerReferences"][0]["uid"] == (
        RUN.uid
    )
    assert (
        "ownerReferences" not in child_manifest(RUN, start(policy="abandon"), SETTINGS)["metadata"]
    )


def test_a_child_listed_under_an_old_name_is_started_and_terminated_under_it() -> None:
    executor = ChildExecutor(Kube(None), SETTINGS)  # type: ignore[arg-type]
    old = child_manifest(RUN, start(), SETTINGS)
    old["metadata"]["name"] = "purchase-42-valuation-1"
    current = child_manifest(RUN, start(2), SETTINGS)
    executor.adopt(RUN, [old, current])
    assert executor.name_of(RUN, start()) == "purchase-42-valuation-1"
    assert executor.name_of(RUN, start(2)) == start(2).name
    stop = TerminateChild(key="valuation", attempt=1, name=start().name)
    assert executor.name_of(RUN, stop) == "purchase-42-valuation-1"


def test_another_runs_child_is_not_adopted() -> None:
    executor = ChildExecutor(Kube(None), SETTINGS)  # type: ignore[arg-type]
    foreign = child_manifest(RUN, start(), SETTINGS)
    foreign["metadata"]["name"] = "purchase-42-valuation-1"
    foreign["metadata"]["labels"][PARENT_UID] = "someone-else"
    executor.adopt(RUN, [foreign])
    assert executor.name_of(RUN, start()) == start().name
