"""What the operator holds and computes per run, which 10,000 live runs multiply: one compiled
definition per Workflow, bodies without managedFields, and no copy of each body for kopf's
change handlers, which Baton does not have."""

from __future__ import annotations

import kopf

from baton.handlers.operator import NoDiffBase, _object, configure
from baton.handlers.runs import _compile
from baton.settings import OperatorSettings

SPEC = {"steps": [{"name": "nap", "sleep": {"until": "${{ input.until }}"}}]}


def test_runs_of_one_workflow_share_one_compiled_definition() -> None:
    first = _compile({"steps": [dict(s) for s in SPEC["steps"]]}, None)
    assert _compile(dict(SPEC), None) is first
    other = _compile({"steps": [{"name": "hold", "waitForSignal": {"name": "go"}}]}, None)
    assert other is not first


def test_a_held_body_has_no_managed_fields() -> None:
    body = {
        "metadata": {
            "name": "r",
            "uid": "u",
            "labels": {"a": "b"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"signals": [{"name": "go"}]},
    }
    held = _object({"type": "MODIFIED", "object": body})
    assert held == {
        "metadata": {"name": "r", "uid": "u", "labels": {"a": "b"}},
        "spec": {"signals": [{"name": "go"}]},
    }


def test_kopf_keeps_no_diff_base_of_a_watched_object() -> None:
    settings = kopf.OperatorSettings()
    configure(settings, OperatorSettings())
    storage = settings.persistence.diffbase_storage
    assert isinstance(storage, NoDiffBase)
    body = kopf.Body({"metadata": {"name": "r"}, "spec": {"input": {"deep": [1, 2, 3]}}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
