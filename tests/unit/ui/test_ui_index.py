"""The runs list of `baton ui`: summaries, filters, counts and pages, answered from memory."""

from __future__ import annotations

from typing import Any

import pytest

from baton.cli.runview import parse_time
from baton.ui.index import Query, QueryError, newest_first, parse_selector, select, summary

NOW = parse_time("2026-07-01T12:00:00Z") or 0.0


def run(name: str, phase: str, created: str, workflow: str = "w", **labels: str) -> dict[str, Any]:
    return summary(
        {
            "metadata": {
                "name": name,
                "namespace": labels.pop("namespace", "a"),
                "uid": f"uid-{name}",
                "creationTimestamp": created,
                "labels": labels,
            },
            "spec": {"workflowRef": {"name": workflow}},
            "status": {"phase": phase, "error": {"type": "Boom", "message": "bad"}}
            if phase == "Failed"
            else {"phase": phase},
        }
    )


RUNS = [
    run("pay-1", "Succeeded", "2026-07-01T09:00:00Z", team="x"),
    run("pay-2", "Failed", "2026-07-01T11:00:00Z", team="y"),
    run("ship-1", "Running", "2026-07-01T11:30:00Z", workflow="ship", namespace="b"),
]


def test_a_summary_carries_what_the_list_shows_and_the_error_in_one_line() -> None:
    failed = RUNS[1]
    assert failed["workflow"] == "w"
    assert failed["phase"] == "Failed"
    assert failed["error"] == "Boom: bad"


def test_a_run_without_status_is_pending() -> None:
    assert summary({"metadata": {"name": "n", "namespace": "a"}, "spec": {}})["phase"] == "Pending"


def test_pages_are_newest_first_with_the_total() -> None:
    page = select(RUNS, Query(limit=2))
    assert [r["name"] for r in page["items"]] == ["ship-1", "pay-2"]
    assert page["total"] == 3
    assert [r["name"] for r in select(RUNS, Query(offset=2, limit=2))["items"]] == ["pay-1"]


def test_counts_cover_every_phase_filter_but_the_phase_itself() -> None:
    page = select(RUNS, Query(phases=frozenset({"Failed"})))
    assert [r["name"] for r in page["items"]] == ["pay-2"]
    assert page["counts"]["Succeeded"] == 1
    assert page["counts"]["Running"] == 1
    assert page["counts"]["Failed"] == 1


def test_filters_by_namespace_workflow_search_and_since() -> None:
    assert [r["name"] for r in select(RUNS, Query(namespace="b"))["items"]] == ["ship-1"]
    assert [r["name"] for r in select(RUNS, Query(workflow="w"))["items"]] == ["pay-2", "pay-1"]
    assert [r["name"] for r in select(RUNS, Query(search="ay-1"))["items"]] == ["pay-1"]
    since = Query.parse({"since": "2h"}, NOW)
    assert [r["name"] for r in select(RUNS, since)["items"]] == ["ship-1", "pay-2"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("team=x", ["pay-1"]),
        ("team!=x", ["ship-1", "pay-2"]),
        ("team", ["pay-2", "pay-1"]),
        ("!team", ["ship-1"]),
        ("team in (x, y)", ["pay-2", "pay-1"]),
        ("team notin (y),team", ["pay-1"]),
    ],
)
def test_label_selectors_work_as_kubectl_reads_them(selector: str, expected: list[str]) -> None:
    assert [r["name"] for r in select(RUNS, Query(label=selector))["items"]] == expected


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"phase": "Done"}, "phase: unknown phase 'Done'"),
        ({"since": "yesterday"}, "since: 'yesterday' is neither"),
        ({"label": "a b"}, "label: 'a b' is not a label selector"),
        ({"limit": "100000"}, "limit: a whole number from 1 to 500"),
        ({"offset": "-1"}, "offset: a whole number"),
    ],
)
def test_a_bad_filter_is_refused_naming_the_parameter(params: dict[str, str], named: str) -> None:
    with pytest.raises(QueryError, match=named):
        Query.parse(params, NOW)


def test_ten_thousand_runs_are_paged_and_counted_from_memory() -> None:
    many = [
        run(f"r-{i:05}", "Succeeded" if i % 3 else "Failed", f"2026-07-01T{i % 24:02}:00:00Z")
        for i in range(10_000)
    ]
    page = select(many, Query(search="r-09", limit=50, offset=50))
    assert page["total"] == 1000
    assert len(page["items"]) == 50
    assert page["counts"]["Failed"] + page["counts"]["Succeeded"] == 1000


def test_selector_requirements_parse_in_and_notin_lists() -> None:
    (requirement,) = parse_selector("tier in (a,b)")
    assert requirement.matches({"tier": "a"})
    assert not requirement.matches({"tier": "c"})


def test_runs_sorted_once_give_the_same_pages() -> None:
    query = Query(limit=2, offset=1)
    assert select(newest_first(RUNS), query, ordered=True) == select(RUNS, query)
