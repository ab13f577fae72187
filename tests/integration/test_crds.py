"""The generated CRDs on a real kube-apiserver: accepted (structural, CEL within budget), and
refusing bad resources with the messages of their rules. One behaviour per test."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from clusterkit import Cluster

pytestmark = pytest.mark.integration


def workflow(*steps: dict[str, Any], name: str = "w") -> dict[str, Any]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"steps": list(steps)},
    }


def run(name: str = "r", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": name},
        "spec": {"workflowRef": {"name": "w"}, **spec},
    }


def refusal(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> str:
    """kubectl apply's stderr for a manifest the API server must refuse."""
    result = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False
    )
    assert result.returncode != 0, f"accepted: {result.stdout}"
    return result.stderr


def patch(cluster: Cluster, namespace: str, name: str, ops: list[dict[str, Any]]) -> Any:
    return cluster.kubectl(
        "patch",
        "workflowrun",
        name,
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        json.dumps(ops),
        check=False,
    )


def test_a_valid_workflow_is_stored_with_defaults_filled_in(crds: Cluster, namespace: str) -> None:
    crds.apply(workflow({"name": "fetch", "http": {"url": "http://inventory/items"}}), namespace)
    stored = json.loads(crds.kubectl("get", "bwf", "w", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["steps"][0]["http"] == {"method": "GET", "url": "http://inventory/items"}
    assert stored["spec"]["onCancel"] == "compensate"


def test_an_explicit_null_is_pruned_like_an_absent_field(crds: Cluster, namespace: str) -> None:
    crds.apply(workflow({"name": "a", "http": None, "sleep": {"duration": "1s"}}), namespace)
    stored = json.loads(crds.kubectl("get", "bwf", "w", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["steps"][0] == {"name": "a", "sleep": {"duration": "1s"}}


def test_a_step_with_two_kinds_is_refused_naming_the_step(crds: Cluster, namespace: str) -> None:
    step = {"name": "pay", "http": {"url": "http://x"}, "sleep": {"duration": "1s"}}
    error = refusal(crds, namespace, workflow(step))
    assert "spec.steps[0]: Invalid value" in error
    assert "step pay must have exactly one kind of http, job, worker" in error


def test_a_nested_step_with_no_kind_is_refused(crds: Cluster, namespace: str) -> None:
    branch = {"name": "b", "steps": [{"name": "empty"}]}
    error = refusal(crds, namespace, workflow({"name": "p", "parallel": {"branches": [branch]}}))
    assert "spec.steps[0].parallel.branches[0].steps[0]" in error
    assert "step empty must have exactly one kind" in error


def test_duplicate_step_names_are_refused(crds: Cluster, namespace: str) -> None:
    twice = workflow({"name": "a", "sleep": {"duration": "1s"}}, {"name": "a", "fail": {}})
    assert "step names must be unique" in refusal(crds, namespace, twice)


def test_a_malformed_duration_is_refused(crds: Cluster, namespace: str) -> None:
    error = refusal(crds, namespace, workflow({"name": "a", "sleep": {"duration": "5 minutes"}}))
    assert "spec.steps[0].sleep.duration" in error
    assert "should match" in error


def test_computed_times_and_retry_rules_are_stored_as_written(
    crds: Cluster, namespace: str
) -> None:
    steps = [
        {"name": "nap", "sleep": {"duration": "${{ input.nap }}"}},
        {"name": "until", "sleep": {"until": "${{ input.expiry }}"}},
        {
            "name": "call",
            "http": {"method": "GET", "url": "http://x"},
            "retry": {
                "initialInterval": "2s",
                "rules": [
                    {"errors": ["HttpError"], "when": "error.details.status == 503"},
                    {"maxAttempts": 0, "initialInterval": "${{ input.pause }}"},
                ],
            },
            "timeout": {"startToClose": "${{ input.limit }}"},
        },
    ]
    manifest = workflow(*steps)
    manifest["spec"]["parallelism"] = 7
    crds.apply(manifest, namespace)
    stored = json.loads(crds.kubectl("get", "bwf", "w", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["steps"] == steps
    assert stored["spec"]["parallelism"] == 7


def test_retry_rules_with_errors_beside_them_are_refused(crds: Cluster, namespace: str) -> None:
    retry = {"errors": ["Timeout"], "rules": [{"maxAttempts": 2}]}
    error = refusal(crds, namespace, workflow({"name": "a", "http": {"url": "x"}, "retry": retry}))
    assert "spec.steps[0].retry" in error
    assert "errors and when belong on each rule" in error


def test_a_parallelism_of_zero_is_refused(crds: Cluster, namespace: str) -> None:
    error = refusal(crds, namespace, run(parallelism=0))
    assert "spec.parallelism" in error
    assert "should be greater than or equal to 1" in error


def test_an_unknown_field_is_refused(crds: Cluster, namespace: str) -> None:
    error = refusal(crds, namespace, workflow({"name": "a", "htpp": {"url": "http://x"}}))
    assert 'unknown field "spec.steps[0].htpp"' in error


def test_a_compensation_with_two_actions_is_refused(crds: Cluster, namespace: str) -> None:
    compensate = {"http": {"url": "http://x"}, "worker": {"pool": "p", "activity": "undo"}}
    step = {"name": "a", "sleep": {"duration": "1s"}, "compensate": compensate}
    error = refusal(crds, namespace, workflow(step))
    assert "a compensation needs exactly one of http, job or worker" in error


def test_needs_with_depends_is_refused_at_apply_time(crds: Cluster, namespace: str) -> None:
    first = {"name": "a", "sleep": {"duration": "1s"}}
    both = {"name": "b", "needs": ["a"], "depends": "a.Failed", "sleep": {"duration": "1s"}}
    error = refusal(crds, namespace, workflow(first, both))
    assert "spec.steps[1]" in error
    assert "give needs or depends, not both" in error


def test_fail_fast_on_a_race_is_refused_at_apply_time(crds: Cluster, namespace: str) -> None:
    branch = {"name": "x", "steps": [{"name": "s", "sleep": {"duration": "1s"}}]}
    race = {"mode": "race", "failFast": False, "branches": [branch]}
    error = refusal(crds, namespace, workflow({"name": "r", "parallel": race}))
    assert "spec.steps[0].parallel" in error
    assert "failFast has no effect with mode: race" in error


def test_a_tolerated_percentage_over_100_is_refused_at_apply_time(
    crds: Cluster, namespace: str
) -> None:
    each = {
        "items": "[1]",
        "toleratedFailurePercentage": 150,
        "step": {"name": "one", "sleep": {"duration": "1s"}},
    }
    error = refusal(crds, namespace, workflow({"name": "e", "forEach": each}))
    assert "spec.steps[0].forEach.toleratedFailurePercentage" in error


def test_a_run_needs_exactly_one_definition(crds: Cluster, namespace: str) -> None:
    both = run(workflow={"steps": [{"name": "a", "sleep": {"duration": "1s"}}]})
    assert "give exactly one of workflowRef" in refusal(crds, namespace, both)


def test_signals_may_be_appended(crds: Cluster, namespace: str) -> None:
    crds.apply(run(signals=[{"name": "go"}]), namespace)
    appended = patch(
        crds, namespace, "r", [{"op": "add", "path": "/spec/signals/-", "value": {"name": "b"}}]
    )
    assert appended.returncode == 0, appended.stderr


def test_a_sent_signal_cannot_be_changed(crds: Cluster, namespace: str) -> None:
    crds.apply(run(signals=[{"name": "go", "payload": {"ok": True}}]), namespace)
    changed = patch(
        crds,
        namespace,
        "r",
        [{"op": "replace", "path": "/spec/signals/0/payload", "value": {"ok": False}}],
    )
    assert changed.returncode != 0
    assert "spec.signals is append-only" in changed.stderr


def test_signals_cannot_be_removed(crds: Cluster, namespace: str) -> None:
    crds.apply(run(signals=[{"name": "go"}]), namespace)
    removed = patch(crds, namespace, "r", [{"op": "remove", "path": "/spec/signals"}])
    assert removed.returncode != 0
    # Removed, the list is defaulted to [] again, which the append-only rule refuses.
    assert "spec.signals is append-only" in removed.stderr
    assert "signals already sent cannot be changed or removed" in removed.stderr


def test_a_run_created_without_signals_has_an_empty_list_to_append_to(
    crds: Cluster, namespace: str
) -> None:
    crds.apply(run(), namespace)
    stored = json.loads(crds.kubectl("get", "bwfr", "r", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["signals"] == []
    appended = patch(
        crds, namespace, "r", [{"op": "add", "path": "/spec/signals/-", "value": {"name": "go"}}]
    )
    assert appended.returncode == 0, appended.stderr


def test_an_update_id_already_used_is_refused(crds: Cluster, namespace: str) -> None:
    crds.apply(run(), namespace)
    first = {"id": "a", "name": "addItem", "payload": 1}
    add = [{"op": "add", "path": "/spec/updates/-", "value": first}]
    assert patch(crds, namespace, "r", add).returncode == 0
    again = patch(crds, namespace, "r", [{**add[0], "value": {**first, "payload": 2}}])
    assert again.returncode != 0
    assert "Duplicate value" in again.stderr, again.stderr


def test_a_sent_update_cannot_be_changed(crds: Cluster, namespace: str) -> None:
    crds.apply(run(updates=[{"id": "a", "name": "addItem", "payload": 1}]), namespace)
    changed = patch(
        crds, namespace, "r", [{"op": "replace", "path": "/spec/updates/0/payload", "value": 2}]
    )
    assert changed.returncode != 0
    assert "spec.updates is append-only" in changed.stderr


def test_redrive_may_only_grow(crds: Cluster, namespace: str) -> None:
    crds.apply(run(redrive=2), namespace)
    lowered = patch(crds, namespace, "r", [{"op": "replace", "path": "/spec/redrive", "value": 1}])
    assert lowered.returncode != 0
    assert "spec.redrive may only grow" in lowered.stderr


def test_a_pool_with_more_min_than_max_replicas_is_refused(crds: Cluster, namespace: str) -> None:
    pool = {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": "p"},
        "spec": {"image": "w:1", "minReplicas": 3, "maxReplicas": 2},
    }
    assert "minReplicas must not exceed maxReplicas" in refusal(crds, namespace, pool)


def test_kubectl_get_shows_the_run_columns(crds: Cluster, namespace: str) -> None:
    crds.apply(run(), namespace)
    header = crds.kubectl("get", "bwfr", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "WORKFLOW", "PHASE", "STEP", "PROGRESS", "AGE"]
