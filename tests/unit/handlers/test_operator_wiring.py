"""kopf's wiring of the operator (baton.handlers.operator): what kopf does per watch event."""

from __future__ import annotations

from typing import Any

import kopf

from baton.handlers.operator import build_registry, configure
from baton.settings import OperatorSettings


def run_body() -> dict[str, Any]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": "r", "namespace": "ns", "uid": "u", "labels": {"a": "b"}},
        "spec": {"workflowRef": {"name": "w"}, "input": {"x": [1, 2, 3]}},
        "status": {"phase": "Running", "steps": {"s0": {"phase": "Succeeded"}}},
    }


def test_kopf_keeps_no_last_handled_state_of_watched_objects() -> None:
    # kopf built it from a deep copy of the whole object on every watch event.
    settings = kopf.OperatorSettings()
    configure(settings, OperatorSettings())
    storage = settings.persistence.diffbase_storage
    assert storage.build(body=kopf.Body(run_body())) == {}
    assert storage.fetch(body=kopf.Body(run_body())) is None


def test_the_operator_has_no_handler_that_needs_the_last_handled_state() -> None:
    # Create/update handlers and daemons diff against that state: with none kept, they would
    # see every object as new. Baton's handlers are on.event ones only.
    registry = build_registry(OperatorSettings())
    assert list(registry._changing.get_all_handlers()) == []
    assert list(registry._spawning.get_all_handlers()) == []
    assert list(registry._watching.get_all_handlers())
