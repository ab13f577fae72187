"""A worker's /metrics: tasks by outcome, failures by type, durations, tasks in flight."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
import sdk_sample as sample
from baton_activities import Worker
from prometheus_client.parser import text_string_to_metric_families
from sdkserver import serve

pytestmark = pytest.mark.timeout(60)


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def task(url: str, name: str, data: Any = None) -> httpx.Response:
    body = {"input": data, "idempotencyKey": "", "attempt": 1}
    return httpx.post(f"{url}/activities/{name}", json=body, timeout=30)


def test_tasks_are_counted_by_outcome_and_failures_by_type() -> None:
    worker = Worker([sample.appraise, sample.decline, sample.explode])
    with serve(worker) as url:
        task(url, "appraise", {"address": "a", "price": "1"})
        task(url, "appraise", {"address": "a", "price": "1"})
        task(url, "decline", {"amount": 1})
        task(url, "explode")
        found = samples(url)
    ok = ("baton_worker_tasks_total", (("activity", "appraise"), ("outcome", "completed")))
    assert found[ok] == 2
    failed = ("baton_worker_tasks_total", (("activity", "decline"), ("outcome", "failed")))
    assert found[failed] == 1
    by_type = ("baton_worker_task_failures_total", (("activity", "explode"), ("type", "KeyError")))
    assert found[by_type] == 1
    count = ("baton_worker_task_duration_seconds_count", (("activity", "appraise"),))
    assert found[count] == 2


def test_tasks_running_are_in_flight_until_they_answer() -> None:
    worker = Worker([sample.slow])
    with serve(worker) as url:
        thread = threading.Thread(target=task, args=(url, "slow", {"seconds": 1.0}))
        thread.start()
        key = ("baton_worker_tasks_in_flight", (("activity", "slow"),))
        deadline = time.monotonic() + 10
        while samples(url).get(key) != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        thread.join(30)
        assert samples(url)[key] == 0
