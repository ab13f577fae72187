"""A WorkflowRun applied with kubectl runs to the end on the real control plane."""

from __future__ import annotations

from clusterkit import Runs
from operator_process import OperatorProcess
from recorder import Recorder


def workflow(name: str, steps: list[dict[str, object]], **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"steps": steps, **spec},
    }


def run(name: str, workflow_name: str, run_input: object = None) -> dict[str, object]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": name},
        "spec": {"workflowRef": {"name": workflow_name}, "input": run_input},
    }


def test_http_steps_run_in_order_with_their_rendered_bodies(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply(
        [
            workflow(
                "chain",
                [
                    {
                        "name": "first",
                        "http": {
                            "method": "POST",
                            "url": f"{recorder.url}/first",
                            "body": {"count": "${{ input.count }}"},
                        },
                    },
                    {
                        "name": "second",
                        "http": {
                            "method": "POST",
                            "url": f"{recorder.url}/second",
                            "body": "${{ steps.first.output }}",
                        },
                    },
                ],
                output="${{ steps.second.output }}",
            ),
            run("chain-1", "chain", {"count": 3}),
        ]
    )
    status = runs.wait("chain-1")
    assert status["phase"] == "Succeeded", status
    assert [c.path for c in recorder.calls] == ["/first", "/second"]
    assert recorder.calls[0].body == {"count": 3}
    assert recorder.calls[1].body == {"ok": True}
    assert status["output"] == {"ok": True}
    uid = runs.get("chain-1")["metadata"]["uid"]
    assert [c.key for c in recorder.calls] == [f"{uid}/first/1", f"{uid}/second/1"]
