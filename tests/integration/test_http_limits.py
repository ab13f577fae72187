"""The operator's HTTP limits on the real control plane: one namespace's calls to a server that
never answers leave another namespace's HTTP step its connection, and a step without
startToClose times out after the operator's default."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import Cluster, Runs
from operator_process import OperatorProcess
from recorder import REPLY_NEVER, Recorder, Reply
from runkit import http, run, workflow


@pytest.fixture
def other_namespace(crds: Cluster, namespace: str) -> Iterator[str]:
    """A second namespace: another tenant's."""
    name = f"{namespace[:50]}-b{secrets.token_hex(2)}"
    crds.kubectl("create", "namespace", name)
    yield name
    crds.kubectl("delete", "namespace", name, "--wait=false")


def fan_out(url: str, items: int) -> dict[str, object]:
    """A forEach calling `url` for `items` items at once, with no startToClose."""
    return {
        "name": "all",
        "forEach": {
            "items": str(list(range(items))),
            "concurrency": items,
            "step": {"name": "call", "http": http(url, method="GET")},
        },
    }


def test_hung_calls_of_one_namespace_leave_another_namespace_its_http_steps(
    crds: Cluster, namespace: str, other_namespace: str, recorder: Recorder, tmp_path: Path
) -> None:
    """Issue 10, item 7: 120 calls to a server that never answers (more than the 100
    connections of the operator's default pool), then another tenant's healthy call. With one
    shared pool and no limits, the healthy call waited for a connection until it timed out."""
    recorder.script("/hang", Reply(body={}, delay=REPLY_NEVER))
    recorder.script("/healthy", Reply(body={"ok": True}))
    operator = OperatorProcess(
        crds.env,
        tmp_path / "operator.log",
        "--namespace",
        namespace,
        "--namespace",
        other_namespace,
        verbose=False,
    )
    tenant_a, tenant_b = Runs(crds, namespace), Runs(crds, other_namespace)
    operator.start()
    try:
        tenant_a.apply(
            [
                workflow("hang", [fan_out(f"{recorder.url}/hang", 40)]),
                *(run(f"hang-{n}", "hang") for n in range(3)),
            ]
        )
        # The defaults: 25 calls per namespace (10 per run) of a pool of 100.
        recorder.wait_for_calls("/hang", 25, timeout=90)
        tenant_b.apply(
            [
                workflow(
                    "healthy",
                    [
                        {
                            "name": "check",
                            "http": http(f"{recorder.url}/healthy", method="GET"),
                            "timeout": {"startToClose": "10s"},
                            "retry": {"maxAttempts": 1},
                        }
                    ],
                    output="${{ steps.check.output }}",
                ),
                run("healthy-1", "healthy"),
            ]
        )
        status = tenant_b.wait("healthy-1", timeout=90)
        assert status["phase"] == "Succeeded", status
        assert status["output"] == {"ok": True}
        # Tenant A's calls over its share waited, unsent: never more than 25 at the server.
        assert recorder.max_concurrent("/hang") == 25
        for n in range(3):
            assert tenant_a.status(f"hang-{n}")["phase"] == "Running"
    except BaseException:
        print(f"--- operator log (tail) ---\n{operator.log_tail(200)}")
        raise
    finally:
        operator.stop()


def test_an_http_step_without_start_to_close_times_out_after_the_operator_default(
    crds: Cluster, runs: Runs, recorder: Recorder, tmp_path: Path
) -> None:
    recorder.script("/hang", Reply(body={}, delay=REPLY_NEVER))
    operator = OperatorProcess(
        crds.env,
        tmp_path / "operator.log",
        "--namespace",
        runs.namespace,
        "--http-default-timeout",
        "1",
        verbose=False,
    )
    operator.start()
    try:
        runs.apply(
            [
                workflow(
                    "hang",
                    [
                        {
                            "name": "call",
                            "http": http(f"{recorder.url}/hang", method="GET"),
                            "retry": {"maxAttempts": 1},
                        }
                    ],
                ),
                run("hang-1", "hang"),
            ]
        )
        status = runs.wait("hang-1", timeout=60)
    finally:
        operator.stop()
    assert status["phase"] == "Failed", status
    assert status["error"]["type"] == "Timeout"
    assert status["error"]["details"]["kind"] == "startToClose"
    assert "the operator's default timeout" in status["error"]["message"]
