"""`-o json|yaml|wide|name` and colour, as the read commands print them (pure rendering)."""

from __future__ import annotations

import io
import json
from typing import Any

import yaml

from baton.cli.output import (
    Output,
    colour_enabled,
    phase_painter,
)
from baton.cli.runview import parse_time, render_run, render_runs

NOW = parse_time("2026-07-01T12:00:00Z") or 0.0


def listed_run(name: str, **status: Any) -> dict[str, Any]:
    """A run as the API server lists it: no apiVersion or kind on the item."""
    return {
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": "2026-07-01T11:00:00Z"},
        "spec": {"workflowRef": {"name": "purchase"}},
        "status": status,
    }


def test_json_of_a_list_is_a_kubectl_list_with_kinds_on_the_items() -> None:
    printed = json.loads(render_runs([listed_run("a")], Output.JSON, NOW))
    assert printed["kind"] == "List"
    assert printed["apiVersion"] == "v1"
    assert printed["items"][0]["kind"] == "WorkflowRun"
    assert printed["items"][0]["apiVersion"] == "baton.dev/v1alpha1"
    assert printed["items"][0]["metadata"]["name"] == "a"


def test_yaml_of_one_run_is_the_object() -> None:
    run = {"apiVersion": "baton.dev/v1alpha1", "kind": "WorkflowRun", **listed_run("a")}
    assert yaml.safe_load(render_run(run, Output.YAML, NOW)) == run


def test_name_is_the_kubectl_name_of_each_run() -> None:
    shown = render_runs([listed_run("a"), listed_run("b")], Output.NAME, NOW)
    assert shown == "workflowrun.baton.dev/a\nworkflowrun.baton.dev/b"


def test_wide_adds_started_duration_and_message() -> None:
    failed = listed_run(
        "a",
        phase="Failed",
        startedAt="2026-07-01T11:00:00Z",
        finishedAt="2026-07-01T11:02:30Z",
        error={"type": "HttpError", "message": "503"},
    )
    lines = render_runs([failed, listed_run("b")], Output.WIDE, NOW).splitlines()
    assert lines[0].split() == [
        "NAME", "WORKFLOW", "PHASE", "STEP", "PROGRESS", "AGE", "STARTED", "DURATION", "MESSAGE",
    ]  # fmt: skip
    assert lines[1].split() == [
        "a", "purchase", "Failed", "60m", "60m", "2m30s", "HttpError:", "503",
    ]  # fmt: skip
    assert lines[2].split() == ["b", "purchase", "Pending", "60m", "<none>", "<none>"]


def test_wide_of_one_run_is_its_table_row() -> None:
    lines = render_run(listed_run("a", phase="Running"), Output.WIDE, NOW).splitlines()
    assert lines[0].split()[:3] == ["NAME", "WORKFLOW", "PHASE"]
    assert lines[1].split()[:3] == ["a", "purchase", "Running"]


def test_coloured_phases_keep_the_columns_aligned() -> None:
    runs = [listed_run("a", phase="Succeeded"), listed_run("long-name", phase="Failed")]
    coloured = render_runs(runs, None, NOW, paint=phase_painter(True))
    lines = coloured.splitlines()
    assert "\033[32mSucceeded\033[0m" in lines[1]
    assert "\033[31mFailed\033[0m" in lines[2]
    plain = render_runs(runs, None, NOW)
    assert [line.replace("\033[32m", "").replace("\033[31m", "").replace("\033[0m", "")
            for line in lines] == plain.splitlines()  # fmt: skip


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_on_a_terminal() -> None:
    assert colour_enabled(Terminal(), {"TERM": "xterm"})


def test_no_colour_when_piped() -> None:
    assert not colour_enabled(io.StringIO(), {"TERM": "xterm"})


def test_no_colour_with_no_color_set() -> None:
    assert not colour_enabled(Terminal(), {"TERM": "xterm", "NO_COLOR": "1"})
    assert colour_enabled(Terminal(), {"TERM": "xterm", "NO_COLOR": ""})


def test_no_colour_on_a_dumb_terminal() -> None:
    assert not colour_enabled(Terminal(), {"TERM": "dumb"})
