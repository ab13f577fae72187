"""baton.metrics: the increments of committed batches, the live collector, the dashboard."""

from __future__ import annotations

import json
import re
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from baton import metrics
from baton.api.workflow import WorkflowSpec
from baton.engine import Definition, compile_definition, decide, initial_state
from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    Event,
    RunStarted,
    SignalReceived,
    TimerFired,
)
from baton.engine.state import State

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "charts" / "baton" / "dashboards" / "baton.json"

WORKFLOW = """
steps:
  - name: reserve
    http: {url: "http://reserve"}
    compensate: {http: {method: DELETE, url: "http://reserve"}}
  - name: pay
    job: {image: "pay:1"}
    retry: {maxAttempts: 2, initialInterval: 1s}
"""


class Driver:
    """One run driven batch by batch, summing the metric changes of each batch."""

    def __init__(self, text: str) -> None:
        self.definition: Definition = compile_definition(
            WorkflowSpec.model_validate(yaml.safe_load(text))
        )
        self.state: State = initial_state()
        self.now = 1000.0
        self.totals: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self.observations: list[metrics.Change] = []

    def batch(self, *events: Event, after: float = 0.0) -> list[metrics.Change]:
        self.now += after
        before = self.state
        for event in events:
            self.state = decide(self.definition, self.state, event, self.now).state
        changes = metrics.batch_changes(self.definition, "shop", before, self.state, events)
        for change in changes:
            if change.metric.endswith("_seconds"):
                self.observations.append(change)
            else:
                self.totals[change.metric, change.labels] += int(change.value)
        return changes

    def attempt(self, key: str) -> int:
        comp = next((c for c in self.state.compensations if c.key == key), None)
        return comp.run.attempt if comp is not None else self.state.steps[key].attempt

    def total(self, metric: str, **labels: str) -> int:
        """The sum over the series whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(n for (m, ls), n in self.totals.items() if m == metric and wanted <= set(ls))


def started() -> RunStarted:
    return RunStarted(input=None, run_name="r", namespace="ns", uid="u")


def test_a_run_that_retries_fails_and_compensates_counts_each_transition_once() -> None:
    run = Driver(WORKFLOW)
    run.batch(started())
    run.batch(ActivityCompleted("reserve", run.attempt("reserve"), {"id": 1}), after=0.5)
    boom = {"type": "Boom", "message": "no"}
    run.batch(ActivityFailed("pay", run.attempt("pay"), boom), after=1)
    run.batch(TimerFired(), after=1)  # the backoff ends: attempt 2
    run.batch(ActivityFailed("pay", run.attempt("pay"), boom), after=1)
    run.batch(ActivityCompleted("reserve/compensate", run.attempt("reserve/compensate")))
    assert str(run.state.phase) == "Compensated"

    assert run.total("baton_runs_started", workflow="shop") == 1
    assert run.total("baton_runs_finished", workflow="shop", phase="Compensated") == 1
    assert run.total("baton_step_attempts", kind="http") == 1
    assert run.total("baton_step_attempts", kind="job") == 2
    assert run.total("baton_step_retries", kind="job") == 1
    assert run.total("baton_step_retries", kind="http") == 0
    assert run.total("baton_step_outcomes", kind="http", outcome="Succeeded") == 1
    assert run.total("baton_step_outcomes", kind="job", outcome="Failed") == 1
    assert run.total("baton_compensations", outcome="Succeeded") == 1
    durations = {
        (c.metric, dict(c.labels).get("step")): c.value
        for c in run.observations
        if c.metric != "baton_run_duration_seconds"
    }
    assert durations[("baton_step_duration_seconds", "reserve")] == pytest.approx(0.5)
    assert durations[("baton_step_duration_seconds", "pay")] == pytest.approx(3.0)
    (run_duration,) = [c for c in run.observations if c.metric == "baton_run_duration_seconds"]
    assert run_duration.value == pytest.approx(3.5)


def test_a_batch_that_changes_nothing_counts_nothing() -> None:
    run = Driver(WORKFLOW)
    run.batch(started())
    assert run.batch() == []
    stale = ActivityCompleted("reserve", 99, None)
    assert run.batch(stale) == []


def test_signals_are_counted_by_workflow_and_inline_runs_are_labelled() -> None:
    definition = compile_definition(
        WorkflowSpec.model_validate(
            yaml.safe_load("steps: [{name: wait, waitForSignal: {name: go, timeout: 1h}}]")
        )
    )
    state = decide(definition, initial_state(), started(), 1000.0).state
    assert metrics.timers_pending(state) == 1  # the signal's timeout
    after = decide(definition, state, SignalReceived(0, "go"), 1001.0).state
    changes = metrics.batch_changes(definition, None, state, after, [SignalReceived(0, "go")])
    labels = (("namespace", "ns"), ("workflow", metrics.INLINE_WORKFLOW))
    assert metrics.Change("baton_signals_received", labels, 1) in changes
    assert metrics.timers_pending(after) == 0


class FakeKube:
    def __init__(self) -> None:
        self.writes: Counter[str] = Counter({"patch workflowruns/status": 3, "post jobs": 1})
        self.conflicts = 2
        self.write_errors: Counter[str] = Counter({"post jobs 403": 1})
        self.reads: Counter[str] = Counter({"get configmaps": 2})


class FakeLoop:
    def __init__(self, state: State) -> None:
        self.state = state


def test_the_live_collector_reads_writes_conflicts_and_loops_at_scrape_time() -> None:
    kube = FakeKube()
    loops: dict[str, Any] = {}
    stop = metrics.serve(0, kube, loops)
    try:
        value = metrics.REGISTRY.get_sample_value
        status_writes = {"verb": "patch", "resource": "workflowruns/status"}
        assert value("baton_api_writes_total", status_writes) == 3
        assert value("baton_api_conflicts_total") == 2
        assert value("baton_runs_active") == 0
        kube.writes["post jobs"] += 4
        loops["u"] = FakeLoop(initial_state())
        assert value("baton_api_writes_total", {"verb": "post", "resource": "jobs"}) == 5
        assert value("baton_runs_active") == 1
        kube.reads["list configmaps"] += 1
        assert value("baton_api_reads_total", {"verb": "list", "resource": "configmaps"}) == 1
    finally:
        stop()
    assert metrics.REGISTRY.get_sample_value("baton_api_conflicts_total") is None


class FakePools:
    def __init__(self) -> None:
        self.pools = [metrics.PoolSample("shop", "payments", 4, 2, 3, 1)]

    def samples(self) -> list[metrics.PoolSample]:
        return self.pools


def test_the_live_collector_reads_each_pools_queue_and_workers() -> None:
    pools = FakePools()
    stop = metrics.serve(0, FakeKube(), {}, pools)
    try:
        value = metrics.REGISTRY.get_sample_value
        payments = {"namespace": "shop", "pool": "payments"}
        assert value("baton_pool_backlog", payments) == 4
        assert value("baton_pool_in_flight", payments) == 2
        assert value("baton_pool_desired_replicas", payments) == 3
        assert value("baton_pool_ready_replicas", payments) == 1
        pools.pools = []
        assert value("baton_pool_backlog", payments) is None
    finally:
        stop()


def test_the_live_collector_says_whether_this_replica_drives_runs_and_counts_write_errors() -> None:
    leading = {"now": False}
    stop = metrics.serve(0, FakeKube(), {}, active=lambda: leading["now"])
    try:
        value = metrics.REGISTRY.get_sample_value
        assert value("baton_operator_active") == 0
        leading["now"] = True
        assert value("baton_operator_active") == 1
        refused = {"verb": "post", "resource": "jobs", "code": "403"}
        assert value("baton_api_write_errors_total", refused) == 1
    finally:
        stop()


def test_steps_are_labelled_by_namespace_workflow_and_step_name() -> None:
    run = Driver(WORKFLOW)
    changes = run.batch(started())
    (attempt,) = [c for c in changes if c.metric == "baton_step_attempts"]
    assert dict(attempt.labels) == {
        "namespace": "ns",
        "workflow": "shop",
        "step": "reserve",
        "kind": "http",
    }


def test_workflows_and_steps_past_the_series_limits_are_counted_as_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "_WORKFLOW_SERIES", metrics.SeriesLimit(1))
    monkeypatch.setattr(metrics, "_STEP_SERIES", metrics.SeriesLimit(2))
    step = {"namespace": "limits", "kind": "http"}
    metrics.record(
        metrics.Change("baton_step_attempts", metrics._labels(**step, workflow=wf, step=s), 1)
        for wf, s in [("a", "x"), ("a", "y"), ("a", "z"), ("b", "x")]
    )
    value = metrics.REGISTRY.get_sample_value
    assert value("baton_step_attempts_total", {**step, "workflow": "a", "step": "x"}) == 1
    assert value("baton_step_attempts_total", {**step, "workflow": "a", "step": "y"}) == 1
    assert value("baton_step_attempts_total", {**step, "workflow": "a", "step": "z"}) is None
    assert value("baton_step_attempts_total", {**step, "workflow": "a", "step": "(other)"}) == 1
    other = {**step, "workflow": "(other)", "step": "(other)"}
    assert value("baton_step_attempts_total", other) == 1


def test_serve_exposes_the_metrics_over_http() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = metrics.serve(port, FakeKube(), {})
    try:
        metrics.RECONCILE_LATENCY.observe(0.01)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        stop()
    assert "baton_api_conflicts_total 2.0" in text
    assert "baton_reconcile_latency_seconds_count" in text


def test_every_exposed_name_is_a_known_metric_name() -> None:
    metrics.scaled("shop", "payments", 0, 2)
    stop = metrics.serve(0, FakeKube(), {}, FakePools())
    try:
        exposed = {
            sample.name
            for family in metrics.REGISTRY.collect()
            for sample in family.samples
            if not sample.name.endswith("_created")
        }
    finally:
        stop()
    assert exposed <= metrics.METRIC_NAMES
    for name in metrics.METRIC_NAMES:
        assert re.fullmatch(r"baton_[a-z_]+", name), name
        if "duration" in name or "latency" in name:
            assert "_seconds" in name, name


def test_the_grafana_dashboard_parses_and_uses_only_baton_metric_names() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    expressions = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert expressions
    used = {m for e in expressions for m in re.findall(r"\b(baton_[a-z_]+)", e)}
    assert used <= metrics.METRIC_NAMES, used - metrics.METRIC_NAMES
    shown = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    defined = {re.sub(r"_(bucket|sum|count)$", "", n) for n in metrics.METRIC_NAMES}
    assert shown == defined, f"not on the dashboard: {sorted(defined - shown)}"


def test_the_dashboard_filters_runs_and_steps_by_namespace_and_workflow_variables() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "namespace" in variables["namespace"]["query"]
    assert "$namespace" in variables["workflow"]["query"]
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    by_run = [e for e in expressions if re.search(r"baton_(runs_(started|finished)|step_)", e)]
    assert by_run
    for expr in by_run:
        assert 'namespace=~"$namespace"' in expr, expr
        assert 'workflow=~"$workflow"' in expr, expr
    by_step = [e for e in by_run if "by (workflow, step)" in e or "by (le, workflow, step)" in e]
    shown = {m for e in by_step for m in re.findall(r"baton_step_[a-z_]+", e)}
    assert {"baton_step_attempts_total", "baton_step_retries_total"} <= shown
    assert "baton_step_duration_seconds_bucket" in shown
