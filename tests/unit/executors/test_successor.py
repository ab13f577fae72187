"""The successor of continue-as-new: what it inherits from the run it continues, and which run
found under its name is adopted."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from executorkit import RUN

from baton.api.labels import ACTIVITY_KEY, CONTINUED_FROM, LINEAGE, PARENT_UID, PHASE, SHARD
from baton.engine import ContinueAsNew
from baton.executors.successor import continued, continues, successor_manifest
from baton.settings import OperatorSettings

SETTINGS = OperatorSettings()
COMMAND = ContinueAsNew(
    name="ticker-0-3f2a9c0d1e-1",
    input={"n": 1},
    lineage="ticker-0",
    number=1,
    vars={"total": 3},
    iterations={"tick": 12},
)


def predecessor() -> dict[str, Any]:
    return {
        "metadata": {
            "name": RUN.name,
            "namespace": RUN.namespace,
            "uid": RUN.uid,
            "labels": {PARENT_UID: "p-1", PHASE: "Running", "team": "a"},
            "annotations": {
                ACTIVITY_KEY: "kid",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
            "ownerReferences": [{"kind": "WorkflowRun", "name": "parent", "uid": "p-1"}],
        },
        "spec": {
            "workflowRef": {"name": "ticker"},
            "input": {"n": 0},
            "signals": [{"name": "poke"}],
            "cancel": False,
            "suspend": True,
            "redrive": 2,
            "onCancel": "abandon",
            "timeout": "1h",
            "parallelism": 5,
            "ttlAfterFinished": "1d",
        },
    }


def test_the_successor_follows_the_same_workflow_with_the_run_level_settings() -> None:
    spec = successor_manifest(RUN, predecessor(), COMMAND, SETTINGS)["spec"]
    assert spec == {
        "workflowRef": {"name": "ticker"},
        "onCancel": "abandon",
        "timeout": "1h",
        "parallelism": 5,
        "ttlAfterFinished": "1d",
        "input": {"n": 1},
        "continuation": {
            "from": RUN.name,
            "lineage": "ticker-0",
            "number": 1,
            "vars": {"total": 3},
            "iterations": {"tick": 12},
        },
    }  # no signals, cancel, suspend or redrive: they steered the old run


def test_the_successor_keeps_labels_annotations_and_owners_but_the_phase() -> None:
    meta = successor_manifest(RUN, predecessor(), COMMAND, OperatorSettings(shard="s1"))["metadata"]
    assert meta["name"] == COMMAND.name
    assert meta["namespace"] == RUN.namespace
    assert meta["labels"] == {
        PARENT_UID: "p-1",
        "team": "a",
        SHARD: "s1",
        LINEAGE: "ticker-0",
        CONTINUED_FROM: RUN.name,
    }
    assert meta["annotations"] == {ACTIVITY_KEY: "kid"}
    assert meta["ownerReferences"] == predecessor()["metadata"]["ownerReferences"]


def test_a_successor_of_a_run_cancelled_while_continuing_starts_cancelled() -> None:
    spec = successor_manifest(RUN, predecessor(), replace(COMMAND, cancel=True), SETTINGS)["spec"]
    assert spec["cancel"] is True


def test_an_inline_definition_is_passed_on() -> None:
    body = predecessor()
    del body["spec"]["workflowRef"]
    body["spec"]["workflow"] = {"steps": [{"name": "a", "set": {"x": 1}}]}
    spec = successor_manifest(RUN, body, COMMAND, SETTINGS)["spec"]
    assert spec["workflow"] == body["spec"]["workflow"]
    assert "workflowRef" not in spec


def test_only_the_run_an_earlier_issue_created_is_adopted() -> None:
    manifest = successor_manifest(RUN, predecessor(), COMMAND, SETTINGS)
    created = {**manifest, "spec": {**manifest["spec"], "signals": []}}  # as the API returns it
    assert continues(created, manifest)
    for key, value in (
        ("continuation", {**manifest["spec"]["continuation"], "from": "another-run"}),
        ("workflowRef", {"name": "something-else"}),
        ("input", {"n": 99}),
    ):
        namesake = {**manifest, "spec": {**manifest["spec"], key: value}}
        assert not continues(namesake, manifest), key


def test_a_run_continued_as_names_its_successor_only_once_ended() -> None:
    ended = {"status": {"phase": "ContinuedAsNew", "continuedAs": "next"}}
    assert continued(ended) == "next"
    assert continued({"status": {"phase": "Running", "continuedAs": "next"}}) is None


def test_the_successor_is_always_in_the_runs_own_namespace() -> None:
    """Whatever the object says of itself, the successor goes where the run is: the command has
    no namespace and no Workflow a run could point elsewhere."""
    body = predecessor()
    body["metadata"]["namespace"] = "kube-system"
    manifest = successor_manifest(RUN, body, COMMAND, SETTINGS)
    assert manifest["metadata"]["namespace"] == RUN.namespace
    assert manifest["spec"]["workflowRef"] == {"name": "ticker"}
