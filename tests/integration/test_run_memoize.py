"""Memoization on the real control plane: a memoized step's side effect happens once across
runs of its Workflow, an expired entry is not used, an output over the bound is not stored, the
cache goes with the Workflow and is never read from another namespace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clusterkit import Runs, started_operator
from operator_process import OperatorProcess
from recorder import Recorder, Reply
from runkit import history, http, run, wait_until, workflow

from baton.store.memo import MAX_ENTRY_BYTES


def memoized(recorder: Recorder, max_age: str) -> dict[str, Any]:
    return workflow(
        "report",
        [
            {
                "name": "build",
                "http": http(f"{recorder.url}/build", body={"day": "${{ input.day }}"}),
                "memoize": {"key": "report-${{ input.day }}", "maxAge": max_age},
            },
            {
                "name": "publish",
                "http": http(f"{recorder.url}/publish", body="${{ steps.build.output }}"),
            },
        ],
    )


def memo_maps(runs: Runs) -> list[dict[str, Any]]:
    out = runs.cluster.kubectl(
        "get", "configmaps", "-n", runs.namespace, "-l", "baton.dev/part=memo", "-o", "json"
    ).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def resolved(runs: Runs, name: str) -> list[dict[str, Any]]:
    return [e for e in history(runs.cluster, runs.namespace, name) if e["type"] == "MemoResolved"]


def test_a_memoized_step_runs_once_and_the_next_run_takes_its_output_from_the_cache(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/build", Reply(body={"rows": 3}), Reply(body={"rows": 99}))
    runs.apply([memoized(recorder, "1h"), run("first", "report", {"day": "mon"})])
    assert runs.wait("first")["phase"] == "Succeeded"
    runs.apply([run("second", "report", {"day": "mon"})])
    second = runs.wait("second")
    assert second["phase"] == "Succeeded", second
    assert len(recorder.calls_to("/build")) == 1
    assert second["steps"]["build"]["cached"] is True
    assert second["steps"]["build"]["output"] == {"rows": 3}
    assert [c.body for c in recorder.calls_to("/publish")] == [{"rows": 3}, {"rows": 3}]
    (hit,) = resolved(runs, "second")
    assert hit["hit"] is True
    assert hit["storedBy"] == "first"
    assert runs.status("first")["steps"]["build"]["cached"] is False


def test_another_key_misses_and_runs_the_step(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply([memoized(recorder, "1h"), run("mon", "report", {"day": "mon"})])
    assert runs.wait("mon")["phase"] == "Succeeded"
    runs.apply([run("tue", "report", {"day": "tue"})])
    assert runs.wait("tue")["phase"] == "Succeeded"
    assert [c.body for c in recorder.calls_to("/build")] == [{"day": "mon"}, {"day": "tue"}]
    (miss,) = resolved(runs, "tue")
    assert (miss["hit"], miss["reason"]) == (False, "absent")


def test_an_entry_older_than_max_age_is_not_used(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    # 1 ms: the second run starts after the first ended, so its entry is always older.
    runs.apply([memoized(recorder, "1ms"), run("first", "report", {"day": "mon"})])
    assert runs.wait("first")["phase"] == "Succeeded"
    wait_until("the entry stored", lambda: memo_maps(runs))
    runs.apply([run("second", "report", {"day": "mon"})])
    second = runs.wait("second")
    assert second["phase"] == "Succeeded", second
    assert len(recorder.calls_to("/build")) == 2
    assert second["steps"]["build"]["cached"] is False
    (miss,) = resolved(runs, "second")
    assert miss["hit"] is False
    assert miss["reason"].startswith("expired")


def test_deleting_the_workflow_deletes_its_cache(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    runs.apply([memoized(recorder, "1h"), run("first", "report", {"day": "mon"})])
    assert runs.wait("first")["phase"] == "Succeeded"
    (cache,) = wait_until("the entry stored", lambda: memo_maps(runs))
    uid = runs.cluster.kubectl(
        "get", "workflow", "report", "-n", runs.namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout.strip()
    assert [(o["kind"], o["uid"]) for o in cache["metadata"]["ownerReferences"]] == [
        ("Workflow", uid)
    ]
    runs.cluster.kubectl("delete", "workflow", "report", "-n", runs.namespace)
    wait_until("the cache collected", lambda: not memo_maps(runs), timeout=120)


def test_an_output_too_large_for_the_cache_is_not_stored(
    runs: Runs, recorder: Recorder, operator: OperatorProcess
) -> None:
    recorder.script("/build", Reply(body={"blob": "x" * MAX_ENTRY_BYTES}))
    runs.apply([memoized(recorder, "1h"), run("first", "report", {"day": "mon"})])
    assert runs.wait("first")["phase"] == "Succeeded"
    runs.apply([run("second", "report", {"day": "mon"})])
    assert runs.wait("second")["phase"] == "Succeeded"
    assert len(recorder.calls_to("/build")) == 2
    assert memo_maps(runs) == []
    assert "output not cached" in operator.log_tail(400)


def test_a_run_in_another_namespace_never_reads_this_namespace_cache(
    runs: Runs,
    recorder: Recorder,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    other = f"{runs.namespace[:50]}-b"
    runs.cluster.kubectl("create", "namespace", other)
    tenant = Runs(runs.cluster, other)
    try:
        with started_operator(
            runs.cluster, runs.namespace, tmp_path, request, "--namespace", other
        ):
            runs.apply([memoized(recorder, "1h"), run("first", "report", {"day": "mon"})])
            assert runs.wait("first")["phase"] == "Succeeded"
            tenant.apply([memoized(recorder, "1h"), run("same-key", "report", {"day": "mon"})])
            status = tenant.wait("same-key")
            assert status["phase"] == "Succeeded", status
            assert status["steps"]["build"]["cached"] is False
            assert len(recorder.calls_to("/build")) == 2
            (miss,) = resolved(tenant, "same-key")
            assert miss["reason"] == "absent"
    finally:
        runs.cluster.kubectl("delete", "namespace", other, "--wait=false")


def test_memoize_on_a_step_without_an_output_to_reuse_is_refused_at_apply_time(
    runs: Runs,
) -> None:
    manifest = workflow(
        "w", [{"name": "pause", "sleep": {"duration": "1s"}, "memoize": {"key": "k"}}]
    )
    result = runs.cluster.kubectl(
        "apply", "-n", runs.namespace, "-f", "-", input=json.dumps(manifest), check=False
    )
    assert result.returncode != 0, result.stdout
    assert "step pause, field memoize: only http, job, worker and workflow" in result.stderr
