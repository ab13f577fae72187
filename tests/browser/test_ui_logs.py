"""Following a Job step's pod log from the view (`/logs?follow=1`) on the local control plane.

What runs for real: the view finds the step's pods by the run's labels, picks the latest
attempt's, asks the API server to follow its log with the caller's rights, and passes a refusal
on with its status and message instead of an empty stream. What cannot run here: a log that
streams. kwok's simulated kubelets serve no logs (the API server cannot even resolve their
nodes), so the streaming itself is tested in tests/unit/ui/test_ui_log_follow.py through the
real client against a local stand-in of the log endpoint.
"""

from __future__ import annotations

from typing import Any

from runkit import run, workflow
from uikit import Ui, call


def step_pod(uid: str, attempt: int) -> dict[str, Any]:
    """A pod of step `pay`'s attempt, labelled as the operator labels a Job step's pods."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"r-pay-{attempt}-x",
            "labels": {"baton.dev/run-uid": uid, "baton.dev/part": "job"},
            "annotations": {"baton.dev/activity-key": "pay", "baton.dev/attempt": str(attempt)},
        },
        "spec": {"containers": [{"name": "main", "image": "pay"}]},
    }


def test_following_a_log_picks_the_latest_attempt_and_passes_the_refusal_on(
    ui: Ui, runs: Any, namespace: str
) -> None:
    runs.apply([workflow("w", [{"name": "pay", "set": {"x": 1}}]), run("r", "w")])
    uid = runs.get("r")["metadata"]["uid"]
    runs.apply([step_pod(uid, 1), step_pod(uid, 2)])

    status, body = call(ui, f"api/runs/{namespace}/r/logs?key=pay&follow=1")
    # The API server's own answer for the pod of attempt 2, not a 200 with an empty stream.
    # The API server's own answer (here: it cannot reach the simulated node), for the pod of
    # attempt 2 followed, passed on with its status; not a 200 with an empty stream.
    assert status >= 400, body
    assert "/r-pay-2-x/main?follow=true" in body["error"], body

    status, body = call(ui, f"api/runs/{namespace}/r/logs?key=nope&follow=1")
    assert status == 404
    assert 'step "nope"' in body["error"]
