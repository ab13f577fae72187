"""What `baton ui` shows of a run: the graph of its definition, its timeline and attempts."""

from __future__ import annotations

from typing import Any

from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    ActivityStarted,
    HistoryEntry,
    RunStarted,
    SignalReceived,
)
from baton.ui.model import lock_holds, run_graph, step_attempts, timeline, updates_sent

T0 = 1_780_000_000.0

DEFINITION: dict[str, Any] = {
    "steps": [
        {
            "name": "reserve",
            "http": {"url": "http://x"},
            "compensate": {"http": {"url": "http://u"}},
        },
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
            "forEach": {
                "items": "input.people",
                "step": {"name": "mail", "sleep": {"duration": "1s"}},
            },
        },
        {"name": "approval", "waitForSignal": {"name": "approve"}, "needs": ["reserve"]},
        {"name": "sub", "workflow": {"workflowRef": "child"}},
    ]
}


def at(seconds: float) -> str:
    from baton.cli.timeline import rfc3339

    return rfc3339(T0 + seconds)


def edges(graph: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["from"], e["to"], e["kind"]) for e in graph["edges"]}


def test_steps_follow_the_previous_step_unless_they_name_their_needs() -> None:
    graph = run_graph(DEFINITION, {}, [])
    assert ("reserve", "checks", "needs") in edges(graph)
    assert ("reserve", "approval", "needs") in edges(graph)
    assert ("notify", "approval", "needs") not in edges(graph)
    assert ("approval", "sub", "needs") in edges(graph)


def test_parallel_branches_are_groups_that_fork_and_join() -> None:
    graph = run_graph(DEFINITION, {}, [])
    assert {g["id"] for g in graph["groups"]} == {"checks/credit", "checks/title"}
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["credit"]["parent"] == "checks/credit"
    assert {("checks", "credit", "branch"), ("title", "checks~join", "branch")} <= edges(graph)
    assert ("checks~join", "notify", "needs") in edges(graph)


def test_a_for_each_is_one_node_with_counts_per_phase_and_its_items_as_rows() -> None:
    steps = {
        f"notify[{i}].mail": {"phase": "Succeeded" if i < 998 else "Failed"} for i in range(1000)
    }
    steps["notify"] = {
        "phase": "Failed",
        "itemCounts": {"total": 1000, "succeeded": 998, "failed": 2, "running": 0},
    }
    graph = run_graph(DEFINITION, {"steps": steps}, [])
    ids = [n["id"] for n in graph["nodes"]]
    assert not any(i.startswith("notify[") for i in ids)
    each = next(n for n in graph["nodes"] if n["id"] == "notify")["forEach"]
    assert each["total"] == 1000
    assert each["phases"] == {"Succeeded": 998, "Failed": 2}
    assert each["items"][999] == {"index": 999, "key": "notify[999].mail", "phase": "Failed"}


def test_a_workflow_step_links_the_child_run_of_its_latest_attempt() -> None:
    def child(attempt: int, phase: str) -> dict[str, Any]:
        annotations = {"baton.dev/activity-key": "sub", "baton.dev/attempt": str(attempt)}
        metadata = {"name": f"parent-sub-{attempt}", "namespace": "a", "annotations": annotations}
        return {"metadata": metadata, "status": {"phase": phase}}

    children = [child(1, "Failed"), child(2, "Succeeded")]
    graph = run_graph(DEFINITION, {}, children)
    sub = next(n for n in graph["nodes"] if n["id"] == "sub")
    assert sub["child"] == {
        "namespace": "a",
        "name": "parent-sub-2",
        "phase": "Succeeded",
        "progress": "",
    }


def test_a_compensation_is_drawn_against_the_step_it_undoes() -> None:
    status = {
        "compensations": [{"step": "reserve", "key": "reserve/compensate", "phase": "Succeeded"}]
    }
    graph = run_graph(DEFINITION, status, [])
    assert ("reserve", "reserve/compensate", "compensates") in edges(graph)
    undo = next(n for n in graph["nodes"] if n["id"] == "reserve/compensate")
    assert (undo["label"], undo["phase"]) == ("undo reserve", "Succeeded")


def test_without_a_definition_the_steps_are_a_chain_in_start_order() -> None:
    status = {
        "steps": {
            "b": {"phase": "Running", "startedAt": at(5)},
            "a": {"phase": "Succeeded", "startedAt": at(1)},
        }
    }
    graph = run_graph(None, status, [])
    assert [n["id"] for n in graph["nodes"]] == ["a", "b"]
    assert edges(graph) == {("a", "b", "needs")}


HISTORY = [
    HistoryEntry(T0, RunStarted(input=None, run_name="r", namespace="a", uid="u")),
    HistoryEntry(T0 + 1, ActivityStarted(key="reserve", attempt=1)),
    HistoryEntry(
        T0 + 3,
        ActivityFailed(key="reserve", attempt=1, error={"type": "HttpError", "message": "503"}),
    ),
    HistoryEntry(T0 + 7, ActivityStarted(key="reserve", attempt=2)),
    HistoryEntry(T0 + 8, ActivityCompleted(key="reserve", attempt=2, output={"id": 1})),
    HistoryEntry(T0 + 20, SignalReceived(index=0, name="approve")),
    HistoryEntry(T0 + 30, ActivityStarted(key="reserve/compensate", attempt=1)),
    HistoryEntry(T0 + 31, ActivityCompleted(key="reserve/compensate", attempt=1)),
]


def test_the_timeline_shows_attempts_the_backoff_between_them_and_signals() -> None:
    status = {
        "steps": {"approval": {"phase": "Succeeded", "startedAt": at(8), "finishedAt": at(20)}}
    }
    chart = timeline(status, HISTORY, DEFINITION, T0 + 40)
    rows = {r["key"]: r for r in chart["rows"]}
    bars = [(b["kind"], b["from"], b["to"], b.get("outcome")) for b in rows["reserve"]["bars"]]
    assert bars == [("attempt", 1, 3, "failed"), ("backoff", 3, 7, None), ("attempt", 7, 8, "ok")]
    assert rows["reserve/compensate"]["kind"] == "compensation"
    wait = rows["approval"]["bars"][0]
    assert (wait["kind"], round(wait["from"], 3), round(wait["to"], 3)) == ("wait", 8, 20)
    assert chart["marks"] == [{"kind": "signal", "at": 20, "label": "approve"}]
    assert [r["key"] for r in chart["rows"]] == ["reserve", "approval", "reserve/compensate"]


def test_an_attempt_still_running_reaches_to_now() -> None:
    chart = timeline({}, HISTORY[:2], DEFINITION, T0 + 12)
    (bar,) = chart["rows"][0]["bars"]
    assert (bar["from"], bar["to"], bar["outcome"]) == (1, 12, "running")


def test_for_each_item_rows_belong_to_their_for_each() -> None:
    status = {
        "steps": {"notify[3].mail": {"phase": "Succeeded", "startedAt": at(1), "finishedAt": at(2)}}
    }
    (row,) = timeline(status, HISTORY[:1], DEFINITION, T0 + 5)["rows"]
    assert (row["group"], row["kind"], row["bars"][0]["kind"]) == ("notify", "sleep", "sleep")


def test_each_attempt_has_its_error_and_idempotency_key() -> None:
    attempts = step_attempts("u", HISTORY, T0)["reserve"]
    assert attempts[0] == {
        "attempt": 1, "idempotencyKey": "u/reserve/1", "started": 1, "ended": 3,
        "outcome": "failed", "error": {"type": "HttpError", "message": "503"},
    }  # fmt: skip
    assert (attempts[1]["idempotencyKey"], attempts[1]["outcome"]) == ("u/reserve/2", "succeeded")


def test_each_update_request_is_shown_with_its_answer_or_as_pending() -> None:
    spec = {
        "updates": [
            {"id": "a", "name": "addItem", "payload": {"sku": "A-1"}},
            {"id": "b", "name": "addItem", "payload": {"sku": "B-2"}},
            {"id": "c", "name": "removeItem"},
        ]
    }
    status = {
        "updatesSeen": 2,
        "updates": {"b": {"name": "addItem", "outcome": "Refused", "reason": "the cart is full"}},
    }
    sent = updates_sent(spec, status)
    # `a` was answered, but the status keeps only the latest answers.
    assert [(u["id"], u.get("outcome"), u.get("reason")) for u in sent] == [
        ("a", "Answered", None),
        ("b", "Refused", "the cart is full"),
        ("c", None, None),
    ]
    assert sent[0]["payload"] == {"sku": "A-1"}
    assert "payload" not in sent[2]


def test_a_failed_update_shows_its_error_as_the_reason() -> None:
    spec = {"updates": [{"id": "a", "name": "charge"}]}
    status = {
        "updatesSeen": 1,
        "updates": {
            "a": {
                "name": "charge",
                "outcome": "Failed",
                "error": {"type": "HttpError", "message": "402"},
            }
        },
    }
    assert updates_sent(spec, status)[0]["reason"] == "HttpError: 402"


def test_a_step_waiting_for_a_lock_carries_the_lock_message_in_the_graph() -> None:
    status = {
        "steps": {"hold": {"phase": "Waiting"}},
        "locks": {
            "hold": {
                "kind": "mutex",
                "name": "ledger",
                "heldBy": ["first"],
                "message": "waiting for mutex ledger held by run first",
            }
        },
    }
    (node,) = run_graph(None, status, [])["nodes"]
    assert node["lock"] == {"message": "waiting for mutex ledger held by run first", "held": False}
    assert lock_holds(status) == [
        {
            "step": "hold",
            "kind": "mutex",
            "name": "ledger",
            "held": False,
            "message": "waiting for mutex ledger held by run first",
        }
    ]


def test_a_step_answered_from_the_cache_is_marked_cached_in_the_graph() -> None:
    status = {
        "steps": {"rate": {"phase": "Succeeded", "cached": True}, "next": {"phase": "Succeeded"}}
    }
    nodes = {n["id"]: n for n in run_graph(None, status, [])["nodes"]}
    assert nodes["rate"]["cached"] is True
    assert "cached" not in nodes["next"]
