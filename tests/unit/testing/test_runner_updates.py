"""`baton test` with update requests: answered at their virtual times as the operator answers
them, refusals included, with the run's own `spec.updates` taken from a run file."""

from __future__ import annotations

from pathlib import Path

import yaml

from baton.api.resources import Workflow, load_yaml_documents
from baton.cli.test import render_timeline
from baton.testing.mocks import MockSignal
from baton.testing.runner import load_test_file, run_workflow

CART = """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: cart}
spec:
  vars: {items: []}
  steps:
    - {name: shop, waitForSignal: {name: checkout, timeout: 1d}}
  updates:
    - name: addItem
      validate: "update.payload.quantity > 0"
      message: "quantity must be positive"
      set: {items: "${{ vars.items + [update.payload.sku] }}"}
      output: "${{ size(vars.items) }}"
  output: "${{ vars.items }}"
"""


def cart() -> list[Workflow]:
    return [d for d in load_yaml_documents(CART) if isinstance(d, Workflow)]


def test_updates_are_answered_at_their_virtual_times_refusals_included() -> None:
    result = run_workflow(
        cart(),
        mocks={
            "updates": [
                {"name": "addItem", "payload": {"sku": "a", "quantity": 1}, "at": "1h"},
                {"name": "addItem", "payload": {"sku": "b", "quantity": 0}, "at": "2h"},
                {"name": "addItem", "payload": {"sku": "c", "quantity": 1}, "at": "3h", "id": "c"},
            ],
            "signals": [{"name": "checkout", "at": "4h"}],
        },
    )
    assert result.phase == "Succeeded"
    assert result.output == ["a", "c"]
    assert result.updates["u0"]["output"] == 1
    assert result.updates["u1"] == {
        "name": "addItem",
        "outcome": "Refused",
        "reason": "quantity must be positive",
    }
    assert result.updates["c"]["output"] == 2
    accepted = [e.at for e in result.events if e.type == "UpdateAccepted"]
    assert accepted == [3600, 3 * 3600]


def test_an_update_after_the_run_finished_is_refused() -> None:
    result = run_workflow(
        cart(),
        mocks={
            "signals": [{"name": "checkout", "at": "1h"}],
            "updates": [{"name": "addItem", "payload": {"sku": "a", "quantity": 1}, "at": "2h"}],
        },
    )
    assert result.updates["u0"]["reason"] == (
        "the run has finished (Succeeded); it takes no more updates"
    )
    assert result.output == []


def test_a_run_files_updates_are_sent_and_their_answers_printed(tmp_path: Path) -> None:
    (tmp_path / "workflow.yaml").write_text(CART)
    run = {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": "cart-1"},
        "spec": {
            "workflowRef": {"name": "cart"},
            "updates": [{"id": "one", "name": "addItem", "payload": {"sku": "a", "quantity": 2}}],
        },
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    found = load_test_file(tmp_path / "run.yaml")
    # Signals of the run's spec are taken before its updates, as the operator takes them: the
    # checkout comes later, from the mocks.
    mocks = found.run.model_copy(update={"signals": [MockSignal(name="checkout", at="1h")]})
    result = run_workflow(found.workflows, mocks=mocks, workflow=found.workflow)
    assert result.output == ["a"]
    assert "update one (addItem): 1" in render_timeline(result, "cart")


def test_an_updates_steps_take_their_mocks_and_its_answer_waits_for_them() -> None:
    text = """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: holds}
spec:
  steps:
    - {name: shop, waitForSignal: {name: checkout, timeout: 1d}}
  updates:
    - name: reserve
      steps:
        - {name: hold, http: {url: "http://stock/holds"}}
      output: "${{ steps.hold.output.id }}"
"""
    documents = [d for d in load_yaml_documents(text) if isinstance(d, Workflow)]
    result = run_workflow(
        documents,
        mocks={
            "steps": {"hold": [{"output": {"id": "h-7"}, "duration": "2h"}]},
            "updates": [{"name": "reserve", "at": "30m"}],
            "signals": [{"name": "checkout", "at": "1h"}],
        },
    )
    assert result.phase == "Succeeded"
    assert result.updates["u0"]["output"] == "h-7"
    # The checkout came at 1h; the run ended when the hold did, at 30m + 2h.
    assert result.virtual_duration == 1800 + 7200
