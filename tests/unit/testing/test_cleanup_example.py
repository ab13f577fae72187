"""examples/locked-deploy through `baton test --json`: cleanup runs whatever the outcome."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from baton.cli.main import main

EXAMPLE = Path(__file__).parents[3] / "examples" / "locked-deploy"


def baton_test(mocks: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main(
        [
            "test",
            str(EXAMPLE / "workflow.yaml"),
            "--input",
            f"@{EXAMPLE / 'input.json'}",
            "--mocks",
            str(EXAMPLE / mocks),
            "--json",
        ]
    )
    assert code == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def started(result: dict[str, Any]) -> list[str]:
    return [e["step"] for e in result["events"] if e["type"] == "ActivityStarted"]


def test_a_failed_smoke_test_rolls_back_then_unlocks_and_announces(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("mocks.yaml", capsys)
    assert result["phase"] == "Compensated"
    assert result["error"]["type"] == "HealthCheckFailed"
    assert result["compensations"] == ["rollout"]
    order = started(result)
    assert order.index("purgeCache") < order.index("smoke")
    assert order.index("rollout/compensate") < order.index("unlock")
    assert result["steps"]["announce"]["phase"] == "Succeeded"
    assert result["steps"]["rollout"]["phase"] == "Succeeded"


def test_a_successful_deploy_runs_the_same_cleanup(capsys: pytest.CaptureFixture[str]) -> None:
    result = baton_test("mocks-success.yaml", capsys)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"version": "2.4.1"}
    assert [s for s in started(result) if s in ("purgeCache", "unlock", "announce")] == [
        "purgeCache",
        "unlock",
        "announce",
    ]


def test_the_run_timeout_rolls_back_the_interrupted_rollout_and_cleans_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = baton_test("mocks-timeout.yaml", capsys)
    assert result["phase"] == "TimedOut"
    assert result["error"]["type"] == "Timeout"
    assert result["steps"]["rollout"]["phase"] == "Cancelled"
    assert result["compensations"] == ["rollout"]
    assert result["steps"]["unlock"]["phase"] == "Succeeded"
    assert result["virtualDuration"] == 7200
