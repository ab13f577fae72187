"""`baton test` and `run_workflow` follow a run into the runs it continues as."""

from __future__ import annotations

from pathlib import Path

import pytest

from baton.api.resources import Workflow, load_yaml_documents
from baton.cli.main import main
from baton.testing.runner import run_workflow

COUNTER = """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: counter}
spec:
  steps:
    - name: next
      when: "input.n < input.stop"
      continueAsNew: {input: {n: "${{ input.n + 1 }}", stop: "${{ input.stop }}"}}
  output: "${{ [input.n, run.continuation] }}"
"""


def workflows(text: str) -> list[Workflow]:
    return [d for d in load_yaml_documents(text) if isinstance(d, Workflow)]


def test_the_lineage_is_followed_to_its_last_run() -> None:
    result = run_workflow(workflows(COUNTER), input={"n": 0, "stop": 7})
    assert result.phase == "Succeeded"
    assert result.generations == 8
    assert result.output == [7, 7]


def test_past_the_bound_the_last_run_ends_continued_as_new_with_the_next_input() -> None:
    result = run_workflow(workflows(COUNTER), input={"n": 0, "stop": 1000}, max_generations=5)
    assert result.phase == "ContinuedAsNew"
    assert result.generations == 5
    assert result.next_input == {"n": 5, "stop": 1000}
    assert result.to_json()["nextInput"] == {"n": 5, "stop": 1000}


def test_a_parent_waits_for_its_child_lineage_to_end() -> None:
    parent = """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: parent}
spec:
  steps:
    - name: child
      workflow: {workflowRef: counter, input: {n: 0, stop: 3}}
  output: "${{ steps.child.output }}"
---
"""
    result = run_workflow(workflows(parent + COUNTER))
    assert result.phase == "Succeeded"
    assert result.output == [3, 3]


def test_baton_test_prints_the_generations_and_the_next_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "counter.yaml"
    path.write_text(COUNTER)
    code = main(
        ["test", str(path), "-i", '{"n": 0, "stop": 50}', "--generations", "3", "--expect",
         "ContinuedAsNew"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "generations: 3 runs (continue-as-new)" in out
    assert 'next input: {"n": 3, "stop": 50}' in out
