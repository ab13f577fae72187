"""The WorkerPools page over time from the operator's metrics (`baton ui --metrics-url`): the
real operator serving /metrics for a real pool whose Deployment it scales (kwok reports the
pods ready), sampled by `baton ui`; and the fallback when the metrics do not answer."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from runkit import worker_pool
from scrape import free_port
from uikit import Ui, call, shoot, start_ui, stop_ui

pytestmark = pytest.mark.timeout(600)


def pools_when(ui: Ui, ready: Any, timeout: float = 120.0) -> dict[str, Any]:
    """/api/pools once `ready(answer)` holds (the sampler reads every 5 s)."""
    deadline = time.monotonic() + timeout
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, answer = call(ui, "api/pools")
        assert status == 200, answer
        if ready(answer):
            return answer
        time.sleep(1)
    raise AssertionError(f"/api/pools never got there: {answer}")


def mine(answer: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """The answer's pools of the test's namespace: the view's user (the cluster's admin) sees
    every namespace's pools, other tests' included."""
    return [p for p in answer["items"] if p["namespace"] == namespace]


def test_pools_show_replicas_backlog_and_in_flight_from_the_operators_metrics(
    crds: Any, runs: Any, namespace: str, operator: Any, page: Page
) -> None:
    runs.apply(
        worker_pool(
            "resize", "http://127.0.0.1:9/", image="registry.example/resize:1", minReplicas=1
        )
    )
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    ui = start_ui(crds.env, "--namespaces", namespace, "--metrics-url", url)
    try:

        def sampled_ready(answer: dict[str, Any]) -> bool:
            (pool,) = mine(answer, namespace) or [{}]
            history = pool.get("history") or []
            return bool(history) and history[-1]["replicas"] == 1

        answer = pools_when(ui, sampled_ready)
        assert answer["metrics"] == {"url": url, "reachable": True, "error": None}
        (pool,) = mine(answer, namespace)
        last = pool["history"][-1]
        assert (last["desiredReplicas"], last["backlog"], last["inFlight"]) == (1, 0, 0)

        page.goto(f"{ui.url}pools")
        expect(page.get_by_test_id("pools-source")).to_contain_text(
            f"the operator's metrics ({url})"
        )
        expect(page.locator("svg.sparkline polyline.spark-replicas")).to_have_count(1)
        shoot(page, "pools-from-metrics")
    finally:
        stop_ui(ui)


def test_pools_fall_back_to_their_status_when_the_metrics_do_not_answer(
    crds: Any, runs: Any, namespace: str, page: Page
) -> None:
    runs.apply(worker_pool("resize", "http://127.0.0.1:9/"))
    url = f"http://127.0.0.1:{free_port()}/metrics"
    ui = start_ui(crds.env, "--namespaces", namespace, "--metrics-url", url)
    try:
        answer = pools_when(ui, lambda a: a["metrics"]["error"] is not None)
        assert answer["metrics"]["reachable"] is False
        assert answer["metrics"]["error"].startswith(url)
        assert [p["history"] for p in mine(answer, namespace)] == [[]]
        page.goto(f"{ui.url}pools")
        expect(page.get_by_test_id("pools-source")).to_contain_text(
            "the operator's metrics do not answer"
        )
    finally:
        stop_ui(ui)
