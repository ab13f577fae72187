"""Records the replay fixtures in replay_fixtures/: real histories of the engine, with the status
each ended in and one status from midway through the run.

The fixtures are what the engine did when they were recorded; `test_replay_fixtures.py` checks
that today's engine replays each history to the same status, and that it still loads the
recorded midway status. Re-running this script overwrites them with what the engine does now,
so run it only to add a new fixture (and review the diff of the existing ones: it must be
empty).

Run: uv run python tests/unit/engine/record_replay_fixtures.py
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from enginekit import Run

from baton.engine import (
    CancelRequested,
    ChildFinished,
    RedriveRequested,
    ResumeRequested,
    SignalReceived,
    SuspendRequested,
    replay,
    status_of,
)

HERE = Path(__file__).parent / "replay_fixtures"


def saga_compensates() -> tuple[str, Run, int]:
    text = """
steps:
  - name: reserve
    http: {url: "http://reserve"}
    compensate: {http: {method: DELETE, url: "http://reserve/${{ steps.reserve.output.id }}"}}
  - name: pay
    worker: {pool: p, activity: charge}
    compensate:
      worker: {pool: p, activity: refund, input: "${{ steps.pay.output.id }}"}
      retry: {maxAttempts: 2, initialInterval: 1s}
  - name: note
    http: {url: "http://note"}
  - name: transfer
    http: {url: "http://transfer"}
    retry: {maxAttempts: 1}
"""
    run = Run(text, {"order": 7})
    run.complete("reserve", {"id": "r1"}, after=1)
    run.acknowledge("pay", after=1)
    run.complete("pay", {"id": "p1"}, after=2)
    run.complete("note", after=1)
    run.fail("transfer", "TitleDisputed", after=1)
    run.acknowledge("pay/compensate", after=1)
    mid = len(run.sim.history)
    run.fail("pay/compensate", "Busy", after=1)
    run.fire()
    run.acknowledge("pay/compensate", after=1)
    run.complete("pay/compensate", after=1)
    run.complete("reserve/compensate", after=1)
    return text, run, mid


def parallel_for_each() -> tuple[str, Run, int]:
    text = """
vars: {tag: t}
output: {all: "${{ steps.setup.output }}", total: "${{ steps.charges.output }}"}
steps:
  - name: setup
    parallel:
      branches:
        - name: screening
          steps:
            - {name: credit, http: {url: "http://credit"}}
            - {name: refs, http: {url: "http://refs/${{ steps.credit.output.score }}"}}
        - name: billing
          steps:
            - name: charges
              forEach:
                items: "input.items"
                concurrency: 2
                step: {name: charge, worker: {pool: p, activity: charge, input: "${{ item }}"}}
        - name: welcome
          steps: [{name: mail, sleep: {duration: 1h}}]
  - {name: done, set: {finished: "${{ vars.tag }}"}}
"""
    run = Run(text, {"items": [1, 2, 3]})
    run.complete("credit", {"score": 700}, after=1)
    run.complete("charges[0].charge", 10, after=1)
    run.complete("refs", {"ok": True}, after=1)
    mid = len(run.sim.history)
    run.complete("charges[1].charge", 20, after=1)
    run.complete("charges[2].charge", 30, after=1)
    run.fire()
    return text, run, mid


def signal_wait() -> tuple[str, Run, int]:
    text = """
vars: {priority: normal}
queries: {prio: "vars.priority"}
signalHandlers:
  - signal: updatePriority
    set: {priority: "${{ signal.payload.priority }}"}
steps:
  - name: approval
    waitForSignal: {name: approve, timeout: 7d}
  - name: second
    waitForSignal: {name: confirm, timeout: 1h}
    catch: [{errors: [Timeout], output: {confirmed: false, why: "${{ error.type }}"}}]
  - {name: act, http: {url: "http://act/${{ steps.approval.output.by }}/${{ vars.priority }}"}}
"""
    run = Run(text)
    run.signal(0, "updatePriority", {"priority": "high"})
    mid = len(run.sim.history)
    run.deliver(_signal(2, "late"), run.now + 5)
    run.deliver(_signal(1, "approve", {"by": "ann"}), run.now + 60)
    run.fire()
    run.complete("act", "ok", after=1)
    return text, run, mid


def _signal(index: int, name: str, payload: Any = None) -> SignalReceived:
    return SignalReceived(index=index, name=name, payload=payload)


def retry_backoff() -> tuple[str, Run, int]:
    text = """
steps:
  - name: call
    http: {url: "http://flaky"}
    retry: {maxAttempts: 4, initialInterval: 2s, backoffCoefficient: 2, nonRetryableErrors: [Fatal]}
    timeout: {startToClose: 30s}
  - name: work
    worker: {pool: p, activity: crunch}
    retry: {maxAttempts: 3, initialInterval: 1s}
    timeout: {heartbeat: 10s, scheduleToClose: 5m}
"""
    run = Run(text)
    run.acknowledge("call")
    run.fail("call", "Unavailable", details={"status": 503}, after=1)
    run.fire()
    run.acknowledge("call")
    run.fail("call", "TooMany", retry_after=7, after=1)
    run.fire()
    run.acknowledge("call")
    run.advance(31)  # startToClose passes: a Timeout failure, retried
    mid = len(run.sim.history)
    run.fire()
    run.acknowledge("call")
    run.complete("call", {"v": 1}, after=1)
    run.acknowledge("work", after=1)
    run.heartbeat("work", after=5, details={"done": 10})
    run.advance(11)  # no heartbeat: retried with the details kept
    run.fire()
    run.acknowledge("work")
    run.complete("work", {"done": 100}, after=3)
    return text, run, mid


def child_workflow() -> tuple[str, Run, int]:
    text = """
steps:
  - name: valuation
    workflow: {workflowRef: property-valuation, input: {property: "${{ input.p }}"}}
    retry: {maxAttempts: 2, initialInterval: 1s}
  - name: archived
    workflow: {workflowRef: archive, parentClosePolicy: abandon}
  - {name: report, http: {url: "http://report/${{ steps.valuation.output.value }}"}}
"""
    run = Run(text, {"p": "house"})
    run.acknowledge("valuation")
    run.deliver(
        ChildFinished(
            key="valuation",
            attempt=1,
            phase="Failed",
            error={"type": "Boom", "message": "down"},
        ),
        run.now + 10,
    )
    mid = len(run.sim.history)
    run.fire()
    run.acknowledge("valuation")
    run.deliver(
        ChildFinished(key="valuation", attempt=2, phase="Succeeded", output={"value": 5}),
        run.now + 10,
    )
    run.deliver(
        ChildFinished(key="archived", attempt=1, phase="Succeeded", output=None), run.now + 1
    )
    run.complete("report", after=1)
    return text, run, mid


def redrive() -> tuple[str, Run, int]:
    text = """
steps:
  - {name: a, http: {url: "http://a"}}
  - name: fan
    forEach:
      items: "[1, 2]"
      step: {name: item, http: {url: "http://i/${{ item }}"}, retry: {maxAttempts: 1}}
  - name: b
    http: {url: "http://b"}
    retry: {maxAttempts: 1}
"""
    run = Run(text)
    run.complete("a", "A", after=1)
    run.complete("fan[0].item", 1, after=1)
    run.fail("fan[1].item", "Down", after=1)
    mid = len(run.sim.history)
    run.deliver(RedriveRequested(n=1), run.now + 60)
    run.complete("fan[1].item", 2, after=1)
    run.fail("b", "Down", after=1)
    run.deliver(RedriveRequested(n=2), run.now + 60)
    run.complete("b", "B", after=1)
    return text, run, mid


def cancel() -> tuple[str, Run, int]:
    text = """
onCancel: compensate
steps:
  - name: book
    http: {url: "http://book"}
    compensate: {http: {method: DELETE, url: "http://book/${{ steps.book.output }}"}}
  - name: together
    parallel:
      branches:
        - name: wait
          steps: [{name: nap, sleep: {duration: 1d}}]
        - name: work
          steps: [{name: job, job: {image: "busybox", args: ["true"]}}]
"""
    run = Run(text)
    run.complete("book", "b1", after=1)
    run.deliver(SuspendRequested(), run.now + 1)
    run.deliver(ResumeRequested(), run.now + 1)
    mid = len(run.sim.history)
    run.deliver(CancelRequested(), run.now + 10)
    run.complete("book/compensate", after=1)
    return text, run, mid


def repeat_catch_fail() -> tuple[str, Run, int]:
    text = """
timeout: 1h
steps:
  - name: poll
    http: {url: "http://poll"}
    repeat: {until: "steps.poll.output.done", interval: 1m, maxIterations: 5}
  - name: guard
    fail: {error: Rejected, message: "no ${{ steps.poll.output.id }}"}
    catch:
      - errors: [Rejected]
        steps:
          - {name: fallback, http: {url: "http://fallback/${{ error.type }}"}}
  - {name: nap, sleep: {duration: 2h}}
"""
    run = Run(text)
    run.complete("poll", {"done": False}, after=1)
    run.fire()
    run.complete("poll", {"done": True, "id": 4}, after=1)
    mid = len(run.sim.history)
    run.complete("fallback", "plan-b", after=1)
    run.fire()  # the run's timeout passes during the nap
    return text, run, mid


SCENARIOS: dict[str, Callable[[], tuple[str, Run, int]]] = {
    "saga_compensates": saga_compensates,
    "parallel_for_each": parallel_for_each,
    "signal_wait": signal_wait,
    "retry_backoff": retry_backoff,
    "child_workflow": child_workflow,
    "redrive": redrive,
    "cancel": cancel,
    "repeat_catch_fail": repeat_catch_fail,
}


def record(name: str) -> dict[str, Any]:
    text, run, mid = SCENARIOS[name]()
    midway = replay(run.definition, run.sim.history[:mid])
    return {
        "name": name,
        "workflow": yaml.safe_load(text),
        "history": [entry.to_json() for entry in run.sim.history],
        "midwayAfter": mid,
        "midwayStatus": status_of(run.definition, midway),
        "status": status_of(run.definition, run.sim.state),
    }


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name in SCENARIOS:
        data = record(name)
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"{path}: {len(data['history'])} events, {data['status']['phase']}")


if __name__ == "__main__":
    main()
