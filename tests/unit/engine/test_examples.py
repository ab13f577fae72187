"""The examples that `baton test` does not run from their own mocks (examples/dev, `make dev`'s
workflow; examples/hello, the chart's first run), and the purchase saga, driven on the engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from baton.api.run import RunPhase, StepPhase
from baton.api.workflow import WorkflowSpec
from baton.engine import (
    ActivityCompleted,
    ActivityFailed,
    Command,
    Event,
    RunStarted,
    SignalReceived,
    Simulation,
    StartActivity,
    compile_definition,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def specs(path: Path) -> list[dict[str, Any]]:
    return [d["spec"] for d in yaml.safe_load_all(path.read_text()) if d and d.get("spec")]


def test_the_dev_example_buys_through_http_worker_and_job_steps() -> None:
    """examples/dev/workflow.yaml, which `make dev` runs on real activities, offline: each
    activity succeeds, the approval is skipped below a million, the transfer's id is the output."""
    (spec,) = specs(EXAMPLES / "dev" / "workflow.yaml")
    definition = compile_definition(WorkflowSpec.model_validate(spec))

    def respond(command: Command, now: float) -> list[tuple[float, Event]]:
        if not isinstance(command, StartActivity):
            return []
        output = {"id": f"{command.key}-1"}
        return [(1.0, ActivityCompleted(command.key, command.attempt, output))]

    sim = Simulation(definition, respond=respond, now=0.0)
    sim.deliver(
        RunStarted(
            input=json.loads((EXAMPLES / "dev" / "input.json").read_text()),
            run_name="purchase-1",
            namespace="default",
            uid="u-1",
        )
    )
    state = sim.run()
    assert state.phase is RunPhase.SUCCEEDED
    assert state.output == {"transferId": "transfer-1"}
    started = [(c.key, c.kind) for c in sim.issued if isinstance(c, StartActivity)]
    assert started == [
        ("reserve", "http"),
        ("pay", "worker"),
        ("deed", "job"),
        ("transfer", "worker"),
    ]
    assert state.steps["approval"].phase is StepPhase.SKIPPED
    assert state.steps["pay"].output == {"id": "pay-1"}


def test_the_hello_run_greets_after_its_two_second_pause() -> None:
    """examples/hello/run.yaml, the chart's first run: its inline workflow, offline."""
    run = yaml.safe_load((EXAMPLES / "hello" / "run.yaml").read_text())
    definition = compile_definition(WorkflowSpec.model_validate(run["spec"]["workflow"]))
    sim = Simulation(definition, now=0.0)
    sim.deliver(
        RunStarted(input=run["spec"]["input"], run_name="hello", namespace="default", uid="u")
    )
    state = sim.run()
    assert state.phase is RunPhase.SUCCEEDED
    assert state.output == "hello Baton"
    assert sim.now == 2.0


def test_purchase_saga_refunds_then_releases_when_the_transfer_is_refused() -> None:
    (spec,) = specs(EXAMPLES / "purchase-saga" / "workflow.yaml")
    definition = compile_definition(WorkflowSpec.model_validate(spec))

    def respond(command: Command, now: float) -> list[tuple[float, Event]]:
        if not isinstance(command, StartActivity):
            return []
        if command.key == "transfer":
            error = {"type": "TitleDisputed", "message": "the title is under dispute"}
            return [(1.0, ActivityFailed(command.key, command.attempt, error))]
        output = {"id": f"{command.key}-1", "amount": 2500000}
        return [(1.0, ActivityCompleted(command.key, command.attempt, output))]

    sim = Simulation(definition, respond=respond, now=0.0)
    sim.schedule(SignalReceived(0, "manualApproval", {"ok": True}), 7200.0)
    sim.deliver(
        RunStarted(
            input={"propertyId": "villa-7", "payment": {"amount": 2500000}},
            run_name="purchase-42",
            namespace="default",
            uid="u-42",
        )
    )
    state = sim.run()
    assert state.phase is RunPhase.COMPENSATED
    undo = [c.key for c in sim.issued if isinstance(c, StartActivity) and c.compensation]
    assert undo == ["pay/compensate", "reserve/compensate"]
    assert state.steps["transfer"].attempt == 3
