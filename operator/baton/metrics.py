"""Baton's Prometheus metrics: what they are, how a committed batch moves them, and the server.

The run loop calls `observe_batch` once per committed batch with the state before and after it;
`batch_changes` (pure, unit-tested) turns that difference into increments, and `record` applies
them. Counters therefore move only for transitions that are durable: a batch lost to a crash
before its commit is decided again after the restart and counted then, once.

Gauges and API counters are read at scrape time by `_LiveCollector` from the live objects (the
registry's run loops, `Kube.writes` and `Kube.conflicts`, the WorkerPools' queues and
Deployments), so nothing is counted twice and no call site has to keep them in step. The one
counter moved from outside a batch is `baton_pool_scale_changes_total`, by `scaled`, after the
Deployment's replicas were written.

Labels and their cardinality. Every series of runs and steps carries the run's `namespace` and
`workflow` (the Workflow's name, or `(inline)`); step series add the step's `kind` and `step`,
its name in the definition (the items of a forEach and the attempts of a step are one series).
A step name that is not in the run's definition is reported as `(other)`. Since whoever creates
Workflows and runs chooses those names, `record` admits at most `WORKFLOW_SERIES_LIMIT`
(namespace, workflow) pairs and `STEP_SERIES_LIMIT` (namespace, workflow, step) triples per
operator process; later ones are counted under `(other)`, so a flood of generated names grows
no series past those limits.

Names follow Prometheus conventions: the `baton_` prefix, base units in names (`_seconds`),
`_total` on counters. tests/unit/observability checks the Grafana dashboard
(charts/baton/dashboards/baton.json), and tests/unit/chart the chart's alerts, against
`METRIC_NAMES`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from baton.api.run import StepPhase
from baton.engine import Definition
from baton.engine.events import Event, RunStarted, SignalReceived
from baton.engine.state import State, StepState

log = logging.getLogger("baton.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
"""Baton's own registry (not the process-wide default): what /metrics serves."""

INLINE_WORKFLOW = "(inline)"
"""The `workflow` label of runs whose workflow is inline in the run's spec."""
OTHER = "(other)"
"""The `workflow` or `step` label of series past the cardinality limits, and of step paths that
name no step of the definition."""
WORKFLOW_SERIES_LIMIT = 1000
"""(namespace, workflow) label pairs one operator process reports before it counts further
workflows as `(other)`."""
STEP_SERIES_LIMIT = 5000
"""(namespace, workflow, step) label triples one operator process reports before it counts
further steps as `(other)`."""

_FINAL_STEP_PHASES = frozenset(
    {StepPhase.SUCCEEDED, StepPhase.FAILED, StepPhase.SKIPPED, StepPhase.CANCELLED}
)
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

_RUN_LABELS = ["namespace", "workflow"]
_STEP_LABELS = ["namespace", "workflow", "step", "kind"]

RUNS_STARTED = Counter(
    "baton_runs_started", "Runs started, by workflow.", _RUN_LABELS, registry=REGISTRY
)
RUNS_FINISHED = Counter(
    "baton_runs_finished",
    "Runs that reached a final phase, by workflow and phase.",
    [*_RUN_LABELS, "phase"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "baton_run_duration_seconds",
    "Time from a run's start to its final phase.",
    [*_RUN_LABELS, "phase"],
    buckets=_DURATION_BUCKETS,
    registry=REGISTRY,
)
STEP_ATTEMPTS = Counter(
    "baton_step_attempts",
    "Step attempts started (first attempts and retries), by workflow and step.",
    _STEP_LABELS,
    registry=REGISTRY,
)
STEP_RETRIES = Counter(
    "baton_step_retries",
    "Step attempts that were retries of a failed attempt, by workflow and step.",
    _STEP_LABELS,
    registry=REGISTRY,
)
STEP_OUTCOMES = Counter(
    "baton_step_outcomes",
    "Steps that ended, by workflow, step and final phase (Succeeded, Failed, Skipped, Cancelled).",
    [*_STEP_LABELS, "outcome"],
    registry=REGISTRY,
)
STEP_DURATION = Histogram(
    "baton_step_duration_seconds",
    "Time from a step's start to its end, retries included, by workflow, step and outcome.",
    [*_STEP_LABELS, "outcome"],
    buckets=_DURATION_BUCKETS,
    registry=REGISTRY,
)
COMPENSATIONS = Counter(
    "baton_compensations",
    "Saga compensations that ended, by workflow and outcome.",
    [*_RUN_LABELS, "outcome"],
    registry=REGISTRY,
)
SIGNALS = Counter(
    "baton_signals_received",
    "Signals received by runs, by workflow.",
    _RUN_LABELS,
    registry=REGISTRY,
)
RECONCILE_LATENCY = Histogram(
    "baton_reconcile_latency_seconds",
    "Time from an event's arrival at a run loop to the commit of the batch holding it.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)

EVENT_LOOP_LAG = Histogram(
    "baton_event_loop_lag_seconds",
    "How long the operator's event loop, which every run, watch and probe shares, was kept "
    "busy past a 50 ms timer: its lateness, counted only while the loop's thread was using CPU.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
LAG_INTERVAL = 0.05
"""Seconds between two samples of the event loop's lag."""
STALL_WARNING = 0.1
"""A lag over this many seconds is logged: the loop is meant never to be blocked this long."""


async def sample_loop_lag(interval: float = LAG_INTERVAL) -> None:
    """Observe the event loop's lag every `interval` seconds, until cancelled.

    A timer can fire late because code on the loop ran too long (a stall, what this measures)
    or because the machine did not schedule the process (not the operator's doing). The thread's
    CPU time tells them apart: the lateness counted is at most the CPU the loop's thread used
    meanwhile."""
    loop = asyncio.get_running_loop()
    while True:
        before, cpu_before = loop.time(), time.thread_time()
        await asyncio.sleep(interval)
        late = loop.time() - before - interval
        busy = time.thread_time() - cpu_before
        blocked = max(0.0, min(late, busy))
        EVENT_LOOP_LAG.observe(blocked)
        if blocked > STALL_WARNING:
            # The log lines around this one say what ran: every run shares this loop.
            log.warning("the event loop was blocked for %.0f ms", blocked * 1000)


POOL_SCALE_CHANGES = Counter(
    "baton_pool_scale_changes",
    "Changes the operator made to a WorkerPool's Deployment replicas, by pool and direction.",
    ["namespace", "pool", "direction"],
    registry=REGISTRY,
)

_LIVE_METRICS = (
    "baton_operator_active",
    "baton_runs_active",
    "baton_timers_pending",
    "baton_api_writes_total",
    "baton_api_reads_total",
    "baton_api_conflicts_total",
    "baton_api_write_errors_total",
    "baton_pool_backlog",
    "baton_pool_in_flight",
    "baton_pool_desired_replicas",
    "baton_pool_ready_replicas",
)


# -- what a committed batch changed (pure) ---------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One increment (`value` for counters, an observation for histograms)."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float


def _labels(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def step_name(path: str) -> str:
    """The name in the definition of the step at `path` (`charges[3].charge` is `charge`)."""
    return path.rsplit(".", 1)[-1]


def step_kind(definition: Definition, path: str) -> str:
    """The kind of the step at `path` (`charges[3].charge` is step `charge`)."""
    step = definition.index.get(step_name(path))
    return str(step.kind) if step is not None else "unknown"


def _seconds(start: int | None, end: int | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start) / 1000)


def batch_changes(
    definition: Definition,
    workflow: str | None,
    before: State,
    after: State,
    events: Iterable[Event],
) -> list[Change]:
    """The metric increments of one committed batch: `before` and `after` are the run's state
    around it, `events` the events it folded. Pure."""
    run = {"namespace": after.namespace, "workflow": workflow or INLINE_WORKFLOW}
    changes: list[Change] = []
    for event in events:
        if isinstance(event, RunStarted):
            changes.append(Change("baton_runs_started", _labels(**run), 1))
        elif isinstance(event, SignalReceived):
            changes.append(Change("baton_signals_received", _labels(**run), 1))
    if after.phase.finished and not before.phase.finished:
        labels = _labels(**run, phase=str(after.phase))
        changes.append(Change("baton_runs_finished", labels, 1))
        duration = _seconds(after.started_at, after.finished_at)
        if duration is not None:
            changes.append(Change("baton_run_duration_seconds", labels, duration))
    for path, step in after.steps.items():
        old = before.steps.peek(path)
        if old is step:
            continue  # not changed by the batch: the states share it (engine.state.Steps)
        name = step_name(path)
        step_labels = {
            **run,
            "kind": step_kind(definition, path),
            "step": name if name in definition.index else OTHER,
        }
        changes.extend(_step_changes(step_labels, old, step))
    old_compensations = {c.key: c.run for c in before.compensations}
    for compensation in after.compensations:
        old = old_compensations.get(compensation.key)
        ended = compensation.run.phase in _FINAL_STEP_PHASES
        if ended and (old is None or old.phase not in _FINAL_STEP_PHASES):
            outcome = _labels(**run, outcome=str(compensation.run.phase))
            changes.append(Change("baton_compensations", outcome, 1))
    return changes


def _step_changes(
    step: Mapping[str, str], old: StepState | None, new: StepState
) -> Iterator[Change]:
    first = old.attempt if old is not None else 0
    if old is not None and new.attempt < old.attempt:
        first = 0  # not expected (attempts never go down); count nothing negative
    for attempt in range(first + 1, new.attempt + 1):
        yield Change("baton_step_attempts", _labels(**step), 1)
        if attempt - new.attempt_base > 1:
            yield Change("baton_step_retries", _labels(**step), 1)
    ended = new.phase in _FINAL_STEP_PHASES
    if ended and (old is None or old.phase not in _FINAL_STEP_PHASES or new.attempt > old.attempt):
        labels = _labels(**step, outcome=str(new.phase))
        yield Change("baton_step_outcomes", labels, 1)
        duration = _seconds(new.started_at, new.finished_at)
        if duration is not None:
            yield Change("baton_step_duration_seconds", labels, duration)


def timers_pending(state: State) -> int:
    """Armed timers of a run: backoffs before a retry, sleeps, repeat intervals, signal
    timeouts (steps with a due time that have not ended), and the run's own deadline."""
    steps = sum(
        1
        for step in state.steps.values()
        if step.phase not in _FINAL_STEP_PHASES
        and (step.next_attempt_at is not None or step.wake_at is not None)
    )
    deadline = 1 if state.deadline is not None and not state.phase.finished else 0
    return steps + deadline


# -- recording --------------------------------------------------------------------------------

_COUNTERS: dict[str, Counter] = {
    "baton_runs_started": RUNS_STARTED,
    "baton_runs_finished": RUNS_FINISHED,
    "baton_step_attempts": STEP_ATTEMPTS,
    "baton_step_retries": STEP_RETRIES,
    "baton_step_outcomes": STEP_OUTCOMES,
    "baton_compensations": COMPENSATIONS,
    "baton_signals_received": SIGNALS,
}
_HISTOGRAMS: dict[str, Histogram] = {
    "baton_run_duration_seconds": RUN_DURATION,
    "baton_step_duration_seconds": STEP_DURATION,
}


class SeriesLimit:
    """Admits at most `limit` distinct label keys; the first ones stay admitted for good."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.admitted: set[tuple[str, ...]] = set()

    def admits(self, key: tuple[str, ...]) -> bool:
        if key in self.admitted:
            return True
        if len(self.admitted) >= self.limit:
            return False
        self.admitted.add(key)
        return True


_WORKFLOW_SERIES = SeriesLimit(WORKFLOW_SERIES_LIMIT)
_STEP_SERIES = SeriesLimit(STEP_SERIES_LIMIT)


def bounded(labels: Mapping[str, str]) -> dict[str, str]:
    """`labels` with `workflow` and `step` past the series limits replaced by `(other)`."""
    out = dict(labels)
    if "workflow" in out and not _WORKFLOW_SERIES.admits((out["namespace"], out["workflow"])):
        out["workflow"] = OTHER
    if "step" in out and not _STEP_SERIES.admits((out["namespace"], out["workflow"], out["step"])):
        out["step"] = OTHER
    return out


def record(changes: Iterable[Change]) -> None:
    """Apply increments to the metrics of `REGISTRY`, within the series limits."""
    for change in changes:
        labels = bounded(dict(change.labels))
        if change.metric in _COUNTERS:
            _COUNTERS[change.metric].labels(**labels).inc(change.value)
        else:
            _HISTOGRAMS[change.metric].labels(**labels).observe(change.value)


METRIC_NAMES = frozenset(
    {
        *_LIVE_METRICS,
        *(f"{name}_total" for name in (*_COUNTERS, "baton_pool_scale_changes")),
        *(
            f"{name}{suffix}"
            for name in (
                *_HISTOGRAMS,
                "baton_reconcile_latency_seconds",
                "baton_event_loop_lag_seconds",
            )
            for suffix in ("_bucket", "_sum", "_count")
        ),
    }
)
"""Every series name /metrics can expose (histograms as their _bucket/_sum/_count)."""


def observe_batch(
    definition: Definition,
    workflow: str | None,
    before: State,
    after: State,
    events: Iterable[Event],
    *,
    latency: float | None,
) -> None:
    """A run loop committed a batch (`latency`: seconds from its first event's arrival to the
    end of the commit). Never raises: metrics must not break a run."""
    try:
        record(batch_changes(definition, workflow, before, after, events))
        if latency is not None:
            RECONCILE_LATENCY.observe(max(0.0, latency))
    except Exception:
        log.exception("metrics of a batch not recorded")


def scaled(namespace: str, pool: str, before: int | None, after: int) -> None:
    """The operator changed a pool's Deployment replicas from `before` to `after`."""
    direction = "up" if before is None or after > before else "down"
    POOL_SCALE_CHANGES.labels(namespace=namespace, pool=pool, direction=direction).inc()


# -- read at scrape time ----------------------------------------------------------------------


@dataclass(frozen=True)
class PoolSample:
    """One WorkerPool as the operator sees it now: its queue and its workers."""

    namespace: str
    pool: str
    backlog: int
    in_flight: int
    desired_replicas: int
    ready_replicas: int


class _Loop(Protocol):
    @property
    def state(self) -> State: ...


class _Kube(Protocol):
    @property
    def writes(self) -> Mapping[str, int]: ...

    @property
    def reads(self) -> Mapping[str, int]: ...

    @property
    def conflicts(self) -> int: ...

    @property
    def write_errors(self) -> Mapping[str, int]: ...


class _Pools(Protocol):
    def samples(self) -> Iterable[PoolSample]: ...


class _NoPools:
    def samples(self) -> Iterable[PoolSample]:
        return ()


_POOL_GAUGES = (
    ("baton_pool_backlog", "Worker tasks queued for a pool, waiting for a free slot.", "backlog"),
    ("baton_pool_in_flight", "Worker tasks sent to a pool and not yet answered.", "in_flight"),
    (
        "baton_pool_desired_replicas",
        "Workers the pool's scaling wants (its Deployment's spec.replicas).",
        "desired_replicas",
    ),
    ("baton_pool_ready_replicas", "Ready workers of the pool's Deployment.", "ready_replicas"),
)


class _LiveCollector(Collector):
    """Whether this replica drives runs, runs active, timers pending, API writes, conflicts
    and errors, and the pools' queues and workers, read when /metrics is scraped."""

    def __init__(
        self,
        kube: _Kube,
        loops: Mapping[str, _Loop],
        pools: _Pools,
        active: Callable[[], bool],
    ) -> None:
        self.kube = kube
        self.loops = loops
        self.pools = pools
        self.active = active

    def collect(self) -> Iterator[Metric]:
        loops = list(self.loops.values())
        yield GaugeMetricFamily(
            "baton_operator_active",
            "1 when this replica drives runs (standalone, or the active one of its peering), "
            "0 while it stands by.",
            value=1 if self.active() else 0,
        )
        yield GaugeMetricFamily(
            "baton_runs_active", "Runs with a live loop in this operator.", value=len(loops)
        )
        yield GaugeMetricFamily(
            "baton_timers_pending",
            "Armed timers of live runs (backoffs, sleeps, signal timeouts, deadlines).",
            value=sum(timers_pending(loop.state) for loop in loops),
        )
        writes = CounterMetricFamily(
            "baton_api_writes",
            "Writes sent to the Kubernetes API, by verb and resource.",
            labels=["verb", "resource"],
        )
        for key, count in sorted(dict(self.kube.writes).items()):
            verb, _, resource = key.partition(" ")
            writes.add_metric([verb, resource], count)
        yield writes
        reads = CounterMetricFamily(
            "baton_api_reads",
            "Reads sent to the Kubernetes API, by verb (get, list) and resource; watches aside.",
            labels=["verb", "resource"],
        )
        for key, count in sorted(dict(self.kube.reads).items()):
            verb, _, resource = key.partition(" ")
            reads.add_metric([verb, resource], count)
        yield reads
        yield CounterMetricFamily(
            "baton_api_conflicts",
            "Writes the Kubernetes API refused with 409 Conflict.",
            value=self.kube.conflicts,
        )
        errors = CounterMetricFamily(
            "baton_api_write_errors",
            "Writes the Kubernetes API refused or failed, by verb, resource and HTTP status "
            "(409 Conflict included: also counted by baton_api_conflicts_total).",
            labels=["verb", "resource", "code"],
        )
        for key, count in sorted(dict(self.kube.write_errors).items()):
            verb, resource, code = key.split(" ", 2)
            errors.add_metric([verb, resource, code], count)
        yield errors
        samples = sorted(self.pools.samples(), key=lambda p: (p.namespace, p.pool))
        for name, documentation, attribute in _POOL_GAUGES:
            gauge = GaugeMetricFamily(name, documentation, labels=["namespace", "pool"])
            for sample in samples:
                gauge.add_metric([sample.namespace, sample.pool], getattr(sample, attribute))
            yield gauge


def serve(
    port: int,
    kube: _Kube,
    loops: Mapping[str, _Loop],
    pools: _Pools | None = None,
    active: Callable[[], bool] = lambda: True,
) -> Callable[[], None]:
    """Serve /metrics on `port` (all addresses) and return the function that stops it. Port 0
    serves nothing. A port in use is logged, not fatal: the operator's work matters more.
    `active` says whether this replica drives runs now (`baton_operator_active`)."""
    pools = pools if pools is not None else _NoPools()
    collector = _LiveCollector(kube, loops, pools, active)
    REGISTRY.register(collector)

    def unregister() -> None:
        REGISTRY.unregister(collector)

    if port == 0:
        return unregister
    try:
        server, thread = start_http_server(port, registry=REGISTRY)
    except OSError as exc:
        log.error("metrics not served: port %d: %s", port, exc)
        return unregister
    log.info("metrics served on :%d/metrics", port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        unregister()

    return stop
