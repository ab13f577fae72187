"""The exact bodies the run commands send to the API server."""

from __future__ import annotations

from baton.cli.runpatch import (
    flag_patch,
    has_signal_list,
    redrive_patch,
    redrive_value,
    resubmit_manifest,
    run_manifest,
    signal_patch,
    signal_value,
    update_value,
)


def test_a_run_gets_a_generated_name_after_its_workflow() -> None:
    assert run_manifest("purchase") == {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"generateName": "purchase-"},
        "spec": {"workflowRef": {"name": "purchase"}},
    }


def test_a_named_run_carries_its_input_and_timeout() -> None:
    manifest = run_manifest(
        "purchase", input={"id": 42}, has_input=True, name="purchase-42", timeout="1h"
    )
    assert manifest["metadata"] == {"name": "purchase-42"}
    assert manifest["spec"] == {
        "workflowRef": {"name": "purchase"},
        "input": {"id": 42},
        "timeout": "1h",
    }


def test_an_explicit_null_input_is_kept() -> None:
    assert run_manifest("w", input=None, has_input=True)["spec"]["input"] is None
    assert "input" not in run_manifest("w")["spec"]


def test_a_signal_is_appended_at_the_end_of_an_existing_list() -> None:
    signal = signal_value("approve", {"ok": True}, has_payload=True)
    assert signal_patch(signal, list_exists=True) == [
        {
            "op": "add",
            "path": "/spec/signals/-",
            "value": {"name": "approve", "payload": {"ok": True}},
        }
    ]


def test_the_first_signal_creates_the_list_only_while_it_is_absent() -> None:
    assert signal_patch(signal_value("go"), list_exists=False) == [
        {"op": "test", "path": "/spec/signals", "value": None},
        {"op": "add", "path": "/spec/signals", "value": [{"name": "go"}]},
    ]


def test_a_null_payload_given_on_purpose_is_sent() -> None:
    assert signal_value("go", None, has_payload=True) == {"name": "go", "payload": None}


def test_has_signal_list() -> None:
    assert has_signal_list({"spec": {"signals": []}})
    assert not has_signal_list({"spec": {}})
    assert not has_signal_list({})


def test_redrive_bumps_the_value_read_and_tests_it_first() -> None:
    assert redrive_patch(2) == [
        {"op": "test", "path": "/spec/redrive", "value": 2},
        {"op": "replace", "path": "/spec/redrive", "value": 3},
    ]
    assert redrive_patch(None) == [
        {"op": "test", "path": "/spec/redrive", "value": None},
        {"op": "add", "path": "/spec/redrive", "value": 1},
    ]
    assert redrive_value({"spec": {"redrive": 0}}) == 0
    assert redrive_value({"spec": {}}) is None


def test_flags_are_merge_patches_of_the_spec() -> None:
    assert flag_patch("cancel", True) == {"spec": {"cancel": True}}
    assert flag_patch("suspend", False) == {"spec": {"suspend": False}}


def test_a_resubmitted_run_repeats_workflow_input_and_limits_only() -> None:
    original = {
        "metadata": {
            "name": "purchase-abcde",
            "labels": {"team": "a", "baton.dev/shard": "s1", "baton.dev/parent-uid": "p"},
            "annotations": {"x": "y"},
        },
        "spec": {
            "workflowRef": {"name": "purchase"},
            "input": {"amount": 3},
            "timeout": "1h",
            "signals": [{"name": "go"}],
            "cancel": True,
            "redrive": 2,
        },
        "status": {"phase": "Failed"},
    }
    assert resubmit_manifest(original) == {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {
            "generateName": "purchase-",
            "labels": {"team": "a", "baton.dev/shard": "s1"},
            "annotations": {"baton.dev/resubmitted-from": "purchase-abcde"},
        },
        "spec": {"workflowRef": {"name": "purchase"}, "input": {"amount": 3}, "timeout": "1h"},
    }


def test_a_resubmitted_inline_run_is_named_after_the_original() -> None:
    original = {"metadata": {"name": "adhoc"}, "spec": {"workflow": {"steps": []}}}
    manifest = resubmit_manifest(original, None)
    assert manifest["metadata"]["generateName"] == "adhoc-"
    assert manifest["spec"] == {"workflow": {"steps": []}}
    assert resubmit_manifest(original, "again")["metadata"]["name"] == "again"


def test_an_update_request_is_appended_to_spec_updates() -> None:
    request = update_value("u-1", "addItem", {"sku": "A"}, has_payload=True)
    assert signal_patch(request, list_exists=True, field="updates") == [
        {
            "op": "add",
            "path": "/spec/updates/-",
            "value": {"id": "u-1", "name": "addItem", "payload": {"sku": "A"}},
        }
    ]


def test_an_update_without_a_payload_sends_none() -> None:
    assert update_value("u-1", "clear") == {"id": "u-1", "name": "clear"}
