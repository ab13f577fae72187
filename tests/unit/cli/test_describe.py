"""`baton describe`: the step tree drawn from a run's definition and status (pure)."""

from __future__ import annotations

import re
from typing import Any

from baton.cli.describe import build_tree, describe_data, describe_lines, step_kind
from baton.cli.runview import parse_time
from baton.engine.definition import StepKind

NOW = parse_time("2026-07-01T12:00:00Z") or 0.0

DEFINITION: dict[str, Any] = {
    "steps": [
        {"name": "reserve", "http": {"url": "http://x"}},
        {
            "name": "checks",
            "parallel": {
                "branches": [
                    {"name": "credit", "steps": [{"name": "credit", "http": {"url": "http://c"}}]},
                    {"name": "title", "steps": [{"name": "title", "job": {"image": "t"}}]},
                ]
            },
        },
        {
            "name": "notify",
            "forEach": {"items": "input.people", "step": {"name": "mail", "worker": {}}},
        },
        {"name": "sub", "workflow": {"workflowRef": "child"}},
        {"name": "approval", "waitForSignal": {"name": "approve"}},
    ]
}


def step(phase: str, attempts: int = 1, start: str = "11:00:00", end: str | None = "11:00:02",
         **extra: Any) -> dict[str, Any]:  # fmt: skip
    entry: dict[str, Any] = {"phase": phase, "attempts": attempts,
                             "startedAt": f"2026-07-01T{start}Z", **extra}  # fmt: skip
    if end:
        entry["finishedAt"] = f"2026-07-01T{end}Z"
    return entry


COUNTS = {"total": 2, "succeeded": 2, "failed": 0, "running": 0}
STATUS: dict[str, Any] = {
    "phase": "Running",
    "startedAt": "2026-07-01T11:00:00Z",
    "steps": {
        "reserve": step("Succeeded"),
        "checks": step("Succeeded", 0, end="11:00:05"),
        "credit": step("Succeeded", 2, error={"type": "HttpError", "message": "503"}),
        "title": step("Succeeded"),
        "notify": step(
            "Succeeded", 0, itemCounts={"total": 2, "succeeded": 2, "failed": 0, "running": 0}
        ),
        "notify[0].mail": step("Succeeded"),
        "notify[1].mail": step("Succeeded", 3),
        "sub": step("Succeeded"),
        "approval": step("Waiting", 0, start="11:50:00", end=None),
    },
}

CHILD = {
    "metadata": {
        "name": "r-sub-1",
        "annotations": {"baton.dev/activity-key": "sub", "baton.dev/attempt": "1"},
    },
    "status": {"phase": "Succeeded", "progress": "3/3"},
}
RUN = {"metadata": {"name": "r", "namespace": "ns"}, "spec": {"workflowRef": {"name": "w"}},
       "status": STATUS}  # fmt: skip


def tree_lines() -> list[str]:
    lines = describe_lines(RUN, build_tree(DEFINITION, STATUS, [CHILD]), NOW)
    return lines[lines.index("") + 1 :]


def test_the_tree_nests_branches_items_and_the_child_run() -> None:
    labels = [re.split(r"(?<=\S)   ", line)[0] for line in tree_lines()]
    assert labels == [
        "STEP",
        "reserve",
        "checks",
        "├─ branch credit",
        "│  └─ credit",
        "└─ branch title",
        "   └─ title",
        "notify",
        "├─ [0] mail",
        "└─ [1] mail",
        "sub",
        "approval",
    ]


def row(label: str) -> list[str]:
    """The cells after the label of the tree row whose label ends with `label`."""
    for line in tree_lines():
        head, *rest = re.split(r"(?<=\S)   ", line, maxsplit=1)
        if head.endswith(label):
            return rest[0].split() if rest else []
    raise AssertionError(f"no row {label}")


def test_rows_give_phase_attempts_duration_and_detail() -> None:
    assert row("└─ credit") == ["Succeeded", "2", "2s", "HttpError:", "503"]
    assert row("sub") == ["Succeeded", "1", "2s", "workflowrun/r-sub-1", "Succeeded", "3/3"]
    assert row("approval") == ["Waiting", "10m", "waiting", "for", "signal", "'approve'"]
    assert row("notify")[:3] == ["Succeeded", "2s", "2"]


def test_the_header_names_run_workflow_and_phase_with_its_duration() -> None:
    lines = describe_lines(RUN, build_tree(DEFINITION, STATUS, [CHILD]), NOW)
    assert lines[:5] == [
        "Name:      r",
        "Namespace: ns",
        "Workflow:  w",
        "Phase:     Running after 60m",
        "Started:   2026-07-01T11:00:00Z",
    ]


def test_many_items_show_the_first_and_those_that_did_not_succeed() -> None:
    steps = {f"fan[{i}].one": step("Succeeded") for i in range(30)}
    steps["fan[25].one"] = step("Failed", 3, error={"type": "Boom"})
    status = {"steps": {"fan": step("Failed", 0), **steps}}
    definition = {"steps": [{"name": "fan", "forEach": {"items": "x", "step": {"name": "one"}}}]}
    nodes = build_tree(definition, status, [])
    labels = [child.label for child in nodes[0].children]
    assert labels == [*(f"[{i}] one" for i in range(10)), "[25] one", "... 19 more items"]
    assert nodes[0].children[-1].detail == "19 succeeded"


def test_without_a_definition_the_steps_are_listed_in_start_order() -> None:
    status = {"steps": {"b": step("Running", start="11:00:05", end=None), "a": step("Succeeded")}}
    assert [node.label for node in build_tree(None, status, [])] == ["a", "b"]


def test_data_output_nests_children() -> None:
    data = describe_data(RUN, build_tree(DEFINITION, STATUS, [CHILD]), NOW)
    checks = data["steps"][1]
    assert checks["name"] == "checks"
    assert checks["children"][0]["name"] == "branch credit"
    credit = checks["children"][0]["children"][0]
    assert credit["key"] == "credit"
    assert credit["attempts"] == 2
    assert credit["duration"] == "2s"
    assert credit["error"] == {"type": "HttpError", "message": "503"}


def test_finally_and_on_exit_steps_appear_once_they_started() -> None:
    definition = {
        "steps": [
            {
                "name": "lock",
                "http": {"url": "http://l"},
                "finally": [{"name": "unlock", "http": {"url": "http://u"}}],
            }
        ],
        "onExit": [{"name": "notify", "http": {"url": "http://n"}}],
    }
    status = {
        "phase": "Running",
        "exitOutcome": "Failed",
        "steps": {
            "lock": {"phase": "Failed", "attempts": 1, "outcome": "Failed"},
            "unlock": {"phase": "Succeeded", "attempts": 1},
            "notify": {"phase": "Running", "attempts": 1},
        },
    }
    (lock, on_exit) = build_tree(definition, status, [])
    assert [(n.label, [c.label for c in n.children]) for n in lock.children] == [
        ("finally", ["unlock"])
    ]
    assert on_exit.label == "onExit"
    assert on_exit.detail == "run outcome Failed"
    assert [c.key for c in on_exit.children] == ["notify"]


def test_a_step_running_its_finally_says_how_it_ended() -> None:
    definition = {
        "steps": [
            {
                "name": "lock",
                "http": {"url": "http://l"},
                "finally": [{"name": "unlock", "http": {"url": "http://u"}}],
            }
        ]
    }
    status = {
        "steps": {
            "lock": {"phase": "Running", "attempts": 1, "outcome": "Succeeded"},
            "unlock": {"phase": "Running", "attempts": 1},
        }
    }
    (lock,) = build_tree(definition, status, [])
    assert lock.detail == "ended Succeeded, running its finally steps"


def test_every_step_kind_is_named() -> None:
    """The tree names each kind the language has (continueAsNew, the latest, included)."""
    for kind in StepKind:
        assert step_kind({"name": "s", kind.value: {}}) == kind.value


def test_a_step_waiting_for_a_lock_says_for_which_and_who_holds_it() -> None:
    waiting = "waiting for mutex account-7 held by run other"
    locks = {"pay": {"kind": "mutex", "name": "account-7", "heldBy": ["other"], "message": waiting}}
    run = {**RUN, "status": {**RUN["status"], "locks": locks}}
    lines = describe_lines(run, [], NOW)
    assert lines[-2:] == ["Locks:", "  pay: waiting for mutex account-7 held by run other"]


def test_a_memoized_step_says_its_output_came_from_the_cache() -> None:
    definition = {
        "steps": [{"name": "build", "http": {"url": "http://b"}, "memoize": {"key": "k"}}]
    }
    status = {"steps": {"build": {"phase": "Succeeded", "memoKey": "k", "cached": True}}}
    (build,) = build_tree(definition, status, [])
    assert build.detail == "from the cache (key 'k')"


def test_a_memoized_step_looking_up_its_cache_says_so() -> None:
    definition = {
        "steps": [{"name": "build", "http": {"url": "http://b"}, "memoize": {"key": "k"}}]
    }
    status = {"steps": {"build": {"phase": "Running", "memoKey": "k"}}}
    (build,) = build_tree(definition, status, [])
    assert build.detail == "looking up the cache (key 'k')"
