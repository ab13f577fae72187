"""Every Workflow under examples/ compiles, and the purchase saga runs end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from baton.api.run import RunPhase
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
WORKFLOWS = sorted(EXAMPLES.glob("*/workflow.yaml"))


def specs(path: Path) -> list[dict[str, Any]]:
    return [d["spec"] for d in yaml.safe_load_all(path.read_text()) if d and d.get("spec")]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.parent.name)
def test_example_workflow_compiles(path: Path) -> None:
    for spec in specs(path):
        compiled = compile_definition(WorkflowSpec.model_validate(spec))
        assert compiled.steps


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
