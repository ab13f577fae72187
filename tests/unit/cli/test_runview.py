"""How runs are shown: ages, the `baton get` table and details, `--wait` lines."""

from __future__ import annotations

from typing import Any

import pytest

from baton.cli.runview import (
    human_age,
    is_finished,
    outcome_lines,
    parse_time,
    run_details,
    runs_table,
    wait_key,
    wait_line,
)

NOW = parse_time("2026-07-01T12:00:00Z") or 0.0


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (121, "2m1s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 30 * 60, "3h30m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (50 * 3600, "2d2h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (8 * 365 * 86400, "8y"),
    ],
)
def test_ages_read_like_kubectls(seconds: float, shown: str) -> None:
    assert human_age(seconds) == shown


def run(name: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "creationTimestamp": "2026-07-01T11:59:15Z",
        },
        "spec": {"workflowRef": {"name": "purchase"}},
        **({"status": status} if status else {}),
    }


def test_the_table_has_kubectls_columns_and_alignment() -> None:
    runs = [
        run("purchase-1", phase="Running", currentStep="pay", progress="1/4"),
        run("p2"),
    ]
    assert runs_table(runs, NOW).splitlines() == [
        "NAME         WORKFLOW   PHASE     STEP   PROGRESS   AGE",
        "purchase-1   purchase   Running   pay    1/4        45s",
        "p2           purchase   Pending                     45s",
    ]


def test_all_namespaces_adds_a_namespace_column_and_inline_runs_say_so() -> None:
    inline = run("x")
    inline["spec"] = {"workflow": {"steps": []}}
    header, row = runs_table([inline], NOW, namespaces=True).splitlines()
    assert header.split() == ["NAMESPACE", "NAME", "WORKFLOW", "PHASE", "STEP", "PROGRESS", "AGE"]
    assert row.split() == ["shop", "x", "(inline)", "Pending", "45s"]


def test_details_show_steps_output_queries_and_error() -> None:
    detailed = run(
        "purchase-1",
        phase="Failed",
        workflowGeneration=3,
        startedAt="2026-07-01T11:59:20Z",
        finishedAt="2026-07-01T11:59:50Z",
        progress="1/2",
        steps={
            "reserve": {
                "phase": "Succeeded",
                "attempts": 1,
                "output": {"id": "r1"},
                "startedAt": "2026-07-01T11:59:20Z",
            },
            "pay": {
                "phase": "Failed",
                "startedAt": "2026-07-01T11:59:21Z",
                "attempts": 3,
                "error": {"type": "HttpError", "message": "503 Service Unavailable"},
            },
        },
        error={"type": "HttpError", "message": "503 Service Unavailable", "step": "pay"},
        queries={"total": 42},
        conditions=[{"type": "Invalid", "status": "False", "reason": "", "message": ""}],
    )
    detailed["spec"]["signals"] = [{"name": "a"}]
    detailed["status"]["signalsConsumed"] = 1
    text = run_details(detailed, NOW)
    lines = text.splitlines()
    assert lines[:4] == [
        "Name:      purchase-1",
        "Namespace: shop",
        "Workflow:  purchase (generation 3)",
        "Phase:     Failed",
    ]
    assert "Started:   2026-07-01T11:59:20Z (40s ago)" in lines
    assert "Signals:   1 sent, 1 taken" in lines
    steps = lines.index("Steps:")
    assert lines[steps + 1].split() == ["STEP", "PHASE", "ATTEMPTS", "ERROR"]
    assert lines[steps + 2].split() == ["reserve", "Succeeded", "1"]
    assert lines[steps + 3].split() == [
        *("pay", "Failed", "3", "HttpError:", "503", "Service", "Unavailable"),
    ]
    assert "Error: HttpError: 503 Service Unavailable (step pay)" in lines
    assert "  total: 42" in lines
    assert "Conditions:" in lines


def test_details_of_a_run_the_operator_has_not_seen() -> None:
    fresh = run("new")
    fresh["spec"]["suspend"] = True
    fresh["spec"]["cancel"] = True
    lines = run_details(fresh, NOW).splitlines()
    assert "Phase:     Pending (suspend requested)" in lines
    assert "Cancel:    requested" in lines
    assert not any(line.startswith(("Steps", "Output", "Error")) for line in lines)


def test_output_is_shown_as_json() -> None:
    done = run("d", phase="Succeeded", output={"transferId": "t-9"})
    assert 'Output: {"transferId": "t-9"}' in run_details(done, NOW).splitlines()
    assert outcome_lines(done) == ['output: {"transferId": "t-9"}']


def test_wait_lines_change_with_phase_step_or_progress() -> None:
    running = run("r", phase="Running", currentStep="pay", progress="1/4")
    assert wait_key(running) == ("Running", "pay", "1/4")
    assert wait_key(run("r")) == ("Pending", "", "")
    assert wait_line(running, 3.2) == f"  {'3s':>6}  {'Running':<18} {'1/4':<8} pay"
    assert wait_line(run("r"), 0) == f"  {'0s':>6}  Pending"


def test_finished_phases() -> None:
    assert is_finished("Succeeded")
    assert is_finished("Compensated")
    assert not is_finished("Running")
    assert not is_finished("Suspended")
    assert not is_finished("Whatever")


def test_times_parse_from_rfc3339() -> None:
    assert parse_time("1970-01-01T00:01:00Z") == 60.0
    assert parse_time(None) is None
    assert parse_time("yesterday") is None


def test_steps_are_listed_in_the_order_they_started() -> None:
    # The API server hands status.steps back with its keys sorted by name.
    steps = {
        "audit": {"phase": "Pending"},
        "charge": {"phase": "Running", "startedAt": "2026-07-01T11:59:30Z"},
        "zreserve": {"phase": "Succeeded", "startedAt": "2026-07-01T11:59:20Z"},
        "approve": {"phase": "Pending"},
    }
    lines = run_details(run("r", phase="Running", steps=steps), NOW).splitlines()
    start = lines.index("Steps:") + 2
    assert [line.split()[0] for line in lines[start : start + 4]] == [
        "zreserve",
        "charge",
        "approve",
        "audit",
    ]


def test_details_show_the_lineage_both_ways() -> None:
    middle = run(
        "ticker-0-3f2a9c0d1e-1",
        phase="ContinuedAsNew",
        continuedFrom="ticker-0",
        continuedAs="ticker-0-8e1d2c3b4a-2",
        run={"name": "ticker-0-3f2a9c0d1e-1", "lineage": "ticker-0", "continuation": 1},
    )
    lines = run_details(middle, NOW).splitlines()
    assert any(line.endswith("ticker-0 (run 2)") for line in lines), lines
    assert any(line.startswith("Continues:") and line.endswith("ticker-0") for line in lines)
    assert any(
        line.startswith("Continued as:") and line.endswith("ticker-0-8e1d2c3b4a-2")
        for line in lines
    )
    assert is_finished("ContinuedAsNew")


def test_a_run_outside_any_lineage_shows_none() -> None:
    lines = run_details(run("plain", phase="Succeeded"), NOW).splitlines()
    assert not any(line.startswith(("Lineage", "Continue")) for line in lines)
