"""A worker's Prometheus metrics, served at `GET /metrics` on the task port.

    baton_worker_tasks_total{activity, outcome}         tasks finished: completed|failed|cancelled
    baton_worker_task_failures_total{activity, type}    failed tasks by error type
    baton_worker_task_duration_seconds{activity}        time from start to answer (histogram)
    baton_worker_tasks_in_flight{activity}              tasks running now
    baton_worker_unauthorized_total                     requests refused for want of the token

Labels are bounded: activity names are the ones registered, error types the exception classes
and `ActivityError` types the code raises. Each Worker has a registry of its own.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
"""Activities run from milliseconds (a lookup) to an hour (a document pipeline)."""


class Outcome(StrEnum):
    """How a task ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WorkerMetrics:
    """The metrics of one Worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tasks = Counter(
            "baton_worker_tasks",
            "Tasks finished, by activity and outcome.",
            ["activity", "outcome"],
            registry=self.registry,
        )
        self.failures = Counter(
            "baton_worker_task_failures",
            "Failed tasks, by activity and error type.",
            ["activity", "type"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "baton_worker_task_duration_seconds",
            "Time from a task's start to its answer.",
            ["activity"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "baton_worker_tasks_in_flight",
            "Tasks running now.",
            ["activity"],
            registry=self.registry,
        )
        self.unauthorized = Counter(
            "baton_worker_unauthorized",
            "Requests refused because they lacked an accepted token.",
            registry=self.registry,
        )

    def started(self, activity: str) -> None:
        """A task began."""
        self.in_flight.labels(activity).inc()

    def finished(
        self, activity: str, outcome: Outcome, seconds: float, error_type: str | None = None
    ) -> None:
        """A task ended after `seconds`."""
        self.in_flight.labels(activity).dec()
        self.tasks.labels(activity, outcome.value).inc()
        self.duration.labels(activity).observe(seconds)
        if error_type is not None:
            self.failures.labels(activity, error_type).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
