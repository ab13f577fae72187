"""Recorded histories replay to the status they ended in, and recorded statuses still load.

Each fixture in replay_fixtures/ is a run recorded from the engine (record_replay_fixtures.py):
the Workflow spec, its event history, the final `.status` and one `.status` from midway. A change
to the engine that would decide a stored history differently, or no longer read a stored status,
fails here: runs in flight when the operator is upgraded must go on as they started.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from baton.api.workflow import WorkflowSpec
from baton.engine import (
    HistoryEntry,
    compile_definition,
    replay,
    state_from_status,
    status_of,
)

FIXTURES = sorted((Path(__file__).parent / "replay_fixtures").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_there_are_fixtures_of_every_recorded_scenario() -> None:
    assert {p.stem for p in FIXTURES} >= {
        "saga_compensates",
        "parallel_for_each",
        "signal_wait",
        "retry_backoff",
        "child_workflow",
        "redrive",
        "cancel",
        "repeat_catch_fail",
    }


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_a_recorded_history_replays_to_its_recorded_status(path: Path) -> None:
    data = load(path)
    definition = compile_definition(WorkflowSpec.model_validate(data["workflow"]))
    history = [HistoryEntry.from_json(entry) for entry in data["history"]]
    assert status_of(definition, replay(definition, history)) == data["status"]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_a_recorded_status_loads_and_the_run_goes_on_to_the_same_end(path: Path) -> None:
    data = load(path)
    definition = compile_definition(WorkflowSpec.model_validate(data["workflow"]))
    history = [HistoryEntry.from_json(entry) for entry in data["history"]]
    midway = state_from_status(data["midwayStatus"])
    assert status_of(definition, midway) == data["midwayStatus"]
    assert status_of(definition, state_from_status(data["status"])) == data["status"]
    rest = history[data["midwayAfter"] :]
    assert status_of(definition, replay(definition, rest, midway)) == data["status"]
