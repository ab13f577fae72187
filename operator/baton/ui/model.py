"""What the web view shows of one run, as JSON: the graph of its definition with each step's
state, the timeline of its attempts and waits, and each step's attempts.

The graph follows the definition as the engine compiles it (`compile_definition`): the same
`after` edges the engine schedules by (explicit `needs`, else the previous step of the list),
`parallel` branches as groups, a `forEach` as one group node with counts per phase and its items
as a list the page folds, child runs attached to their `workflow` step, compensations attached
to the steps they undo. The timeline folds the recorded history (`ActivityStarted` to
`ActivityCompleted`/`ActivityFailed`/`ChildFinished` per attempt, the backoff until the next
attempt) with the status's times for steps that are not activities (sleeps, signal waits,
composites). Times are seconds since the run started.

Pure: the run, its definition, child runs, history entries and `now` in; JSON out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from baton.api.workflow import WorkflowSpec
from baton.cli.runview import child_runs_by_key, listed_items, parse_time, phase_of
from baton.engine.commands import idempotency_key
from baton.engine.definition import (
    Definition,
    DefinitionError,
    StepDef,
    StepKind,
    compile_definition,
)
from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    ActivityStarted,
    ChildFinished,
    HistoryEntry,
    SignalReceived,
)

COMPENSATE = "/compensate"
"""Suffix of a compensation's activity key (`pay/compensate`)."""
JOIN = "~join"
"""Suffix of the node where a parallel step's branches meet again."""


@lru_cache(maxsize=64)
def _compiled(text: str) -> Definition | None:
    try:
        return compile_definition(WorkflowSpec.model_validate(json.loads(text)))
    except (DefinitionError, ValueError):
        return None


def compiled(definition: Mapping[str, Any] | None) -> Definition | None:
    """The engine's compilation of a definition (cached by its text); None when it does not
    compile (a snapshot of an older, looser version) or there is none."""
    if not definition:
        return None
    return _compiled(json.dumps(definition, sort_keys=True))


# -- the graph ------------------------------------------------------------------------------------


@dataclass
class Graph:
    """Nodes, edges and groups, in the form the page lays out with dagre; built from the
    run's step statuses and child runs (by activity key)."""

    steps: Mapping[str, Any] = field(default_factory=dict)
    runs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """`{nodes, edges, groups}`."""
        return {"nodes": self.nodes, "edges": self.edges, "groups": self.groups}


def child_link(child: Mapping[str, Any]) -> dict[str, Any]:
    """A child run as the page links to it."""
    metadata = child.get("metadata") or {}
    return {
        "namespace": metadata.get("namespace", ""),
        "name": metadata.get("name", ""),
        "phase": phase_of(child),
        "progress": (child.get("status") or {}).get("progress") or "",
    }


def run_graph(
    definition: Mapping[str, Any] | None,
    status: Mapping[str, Any],
    children: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The graph of the run's steps (see the module doc); without a definition that compiles,
    the steps of the status as a chain in the order they started."""
    steps = status.get("steps") or {}
    runs = child_runs_by_key(children)
    graph = Graph(steps, runs)
    compiled_definition = compiled(definition)
    if compiled_definition is None:
        ordered = sorted(
            steps.items(),
            key=lambda e: (parse_time((e[1] or {}).get("startedAt")) or float("inf"), e[0]),
        )
        previous = None
        for key, entry in ordered:
            graph.nodes.append(_node(key, key, "", entry or {}, runs.get(key)))
            if previous is not None:
                graph.edges.append({"from": previous, "to": key, "kind": "needs"})
            previous = key
    else:
        _block(graph, compiled_definition.steps, "", None)
    _compensations(graph, status)
    locks = status.get("locks") or {}
    for node in graph.nodes:
        hold = locks.get(node["id"])
        if isinstance(hold, Mapping) and hold.get("message"):
            node["lock"] = {"message": str(hold["message"]), "held": bool(hold.get("grantedAt"))}
    return graph.to_json()


# -- updates and locks ----------------------------------------------------------------------------


def updates_sent(spec: Mapping[str, Any], status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each request of `spec.updates`, in order, with its answer from `status.updates` (its
    `outcome` absent while none has come; an old answer the status no longer keeps shows as
    `Answered`, since the status keeps the latest ones only)."""
    answers = status.get("updates") or {}
    seen = status.get("updatesSeen")
    seen = seen if isinstance(seen, int) else 0
    sent = []
    for index, request in enumerate(spec.get("updates") or []):
        if not isinstance(request, Mapping):
            continue
        row: dict[str, Any] = {
            "index": index,
            "id": str(request.get("id", "")),
            "name": str(request.get("name", "")),
        }
        if "payload" in request:
            row["payload"] = request["payload"]
        answer = answers.get(row["id"])
        if isinstance(answer, Mapping):
            row["outcome"] = answer.get("outcome")
            for key in ("output", "reason", "at"):
                if key in answer:
                    row[key] = answer[key]
            error = answer.get("error")
            if isinstance(error, Mapping):
                row["reason"] = f"{error.get('type', '')}: {error.get('message', '')}".strip(": ")
        elif index < seen:
            row["outcome"] = "Answered"
        sent.append(row)
    return sent


def lock_holds(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run's locks, held or waited for, by step (`(run)` for the run's own), with the
    message `status.locks` words them in."""
    holds = []
    for step, hold in sorted((status.get("locks") or {}).items()):
        if isinstance(hold, Mapping):
            holds.append(
                {
                    "step": step,
                    "kind": hold.get("kind", ""),
                    "name": hold.get("name", ""),
                    "held": hold.get("grantedAt") is not None,
                    "message": hold.get("message", ""),
                }
            )
    return holds


def _node(
    node_id: str,
    label: str,
    kind: str,
    entry: Mapping[str, Any],
    child: Mapping[str, Any] | None,
    *,
    parent: str | None = None,
) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": node_id,
        "label": label,
        "kind": kind,
        "phase": entry.get("phase") or "Pending",
        "attempts": int(entry.get("attempts") or 0),
    }
    if parent is not None:
        node["parent"] = parent
    error = entry.get("error")
    if isinstance(error, Mapping) and error.get("type"):
        node["error"] = f"{error['type']}: {error.get('message', '')}".rstrip(": ")
    if child is not None:
        node["child"] = child_link(child)
    if entry.get("cached"):
        node["cached"] = True
    return node


def _block(
    graph: Graph, block: Sequence[StepDef], prefix: str, parent: str | None
) -> tuple[list[str], list[str]]:
    """Add one list of steps; returns the node ids edges enter by (its first steps) and leave
    by (its last steps: those nothing in the list follows)."""
    entries: dict[str, str] = {}
    exits: dict[str, str] = {}
    for step in block:
        entries[step.name], exits[step.name] = _step(graph, step, prefix, parent)
    followed = {need for step in block for need in step.after}
    for step in block:
        for need in step.after:
            graph.edges.append({"from": exits[need], "to": entries[step.name], "kind": "needs"})
    first = [entries[s.name] for s in block if not s.after]
    last = [exits[s.name] for s in block if s.name not in followed]
    return first, last


def _step(graph: Graph, step: StepDef, prefix: str, parent: str | None) -> tuple[str, str]:
    """Add one step; returns the ids edges enter it by and leave it by."""
    steps, runs = graph.steps, graph.runs
    key = prefix + step.name
    entry = steps.get(key) or {}
    node = _node(key, step.name, step.kind.value, entry, runs.get(key), parent=parent)
    if step.wait is not None:
        node["signal"] = step.wait.name
    if step.compensate is not None:
        node["compensable"] = True
    graph.nodes.append(node)
    leave = key
    if step.kind is StepKind.PARALLEL:
        join = key + JOIN
        for branch in step.branches:
            group = f"{key}/{branch.name}"
            graph.groups.append({"id": group, "label": f"branch {branch.name}", "parent": parent})
            first, last = _block(graph, branch.steps, prefix, group)
            graph.edges += [{"from": key, "to": f, "kind": "branch"} for f in first]
            graph.edges += [{"from": exit_, "to": join, "kind": "branch"} for exit_ in last]
        graph.nodes.append(
            {"id": join, "label": "", "kind": "join", "phase": node["phase"], "attempts": 0}
            | ({"parent": parent} if parent is not None else {})
        )
        leave = join
    elif step.kind is StepKind.FOR_EACH and step.for_each is not None:
        node["forEach"] = _for_each(key, step.for_each.step, entry, steps, runs)
    for clause in step.catch:
        if clause.steps and any(steps.get(prefix + s.name) for s in clause.steps):
            group = f"{key}/catch"
            graph.groups.append({"id": group, "label": f"catch of {step.name}", "parent": parent})
            first, _ = _block(graph, clause.steps, prefix, group)
            graph.edges += [{"from": key, "to": f, "kind": "catch"} for f in first]
    return key, leave


def _for_each(
    key: str,
    inner: StepDef,
    entry: Mapping[str, Any],
    steps: Mapping[str, Any],
    runs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """A forEach's items: counts per phase and one compact row per item (the page shows the
    counts folded and pages through the rows unfolded)."""
    counts = entry.get("itemCounts") or {}
    total = int(counts.get("total") or len(entry.get("items") or []))
    summary = counts.get("listed") is not None
    if not summary:
        while f"{key}[{total}].{inner.name}" in steps:
            total += 1
    phases: dict[str, int] = {}
    items = []
    # A summary status (a large run) lists some items only: their rows, and the phase counts
    # of all of them from `itemCounts`.
    indices = listed_items(key, inner.name, steps) if summary else range(total)
    for index in indices:
        item_key = f"{key}[{index}].{inner.name}"
        item = steps.get(item_key) or {}
        phase = str(item.get("phase") or "Pending")
        phases[phase] = phases.get(phase, 0) + 1
        row: dict[str, Any] = {"index": index, "key": item_key, "phase": phase}
        if item.get("attempts"):
            row["attempts"] = int(item["attempts"])
        child = runs.get(item_key)
        if child is not None:
            row["child"] = child_link(child)
        items.append(row)
    if summary:
        running = int(counts.get("running") or 0)
        done, bad = int(counts.get("succeeded") or 0), int(counts.get("failed") or 0)
        phases = {"Succeeded": done, "Failed": bad, "Running": running,
                  "Pending": total - done - bad - running}  # fmt: skip
        phases = {phase: n for phase, n in phases.items() if n}
    return {"step": inner.name, "kind": inner.kind.value, "total": total, "phases": phases,
            "items": items}  # fmt: skip


def _compensations(graph: Graph, status: Mapping[str, Any]) -> None:
    """A node per compensation, after the step instance it undoes (an edge from it)."""
    known = {node["id"] for node in graph.nodes}
    for comp in status.get("compensations") or []:
        if not isinstance(comp, Mapping):
            continue
        key = str(comp.get("key") or f"{comp.get('step', '')}{COMPENSATE}")
        undone = str(comp.get("step", ""))
        node = _node(key, f"undo {undone}", "compensation", comp, None)
        graph.nodes.append(node)
        if undone in known:
            graph.edges.append({"from": undone, "to": key, "kind": "compensates"})


# -- the timeline ---------------------------------------------------------------------------------


def run_start(status: Mapping[str, Any], entries: Sequence[HistoryEntry]) -> float | None:
    """When the run started: its first event, else `status.startedAt`."""
    if entries:
        return entries[0].at
    return parse_time(status.get("startedAt"))


def timeline(
    status: Mapping[str, Any],
    entries: Sequence[HistoryEntry],
    definition: Mapping[str, Any] | None,
    now: float,
) -> dict[str, Any]:
    """The Gantt chart: rows (one per step instance or compensation, in the order they
    started) of bars `{kind, from, to, attempt?, outcome?, error?}` in seconds since the start,
    and the signals received as marks. Bar kinds: attempt, backoff, sleep, wait, span (a
    composite or a step without attempts), compensation."""
    start = run_start(status, entries)
    if start is None:
        return {"start": None, "end": 0.0, "rows": [], "marks": []}
    kinds = _kinds(definition)
    rows: dict[str, dict[str, Any]] = {}
    open_attempts: dict[tuple[str, int], float] = {}
    failed_at: dict[str, float] = {}
    marks = []

    def row(key: str) -> dict[str, Any]:
        if key not in rows:
            name = _step_name(key)
            kind = "compensation" if key.endswith(COMPENSATE) else kinds.get(name, "")
            rows[key] = {"key": key, "kind": kind, "bars": [], "group": _group_of(key)}
        return rows[key]

    for entry in entries:
        event, at = entry.event, entry.at - start
        if isinstance(event, ActivityStarted):
            bar_row = row(event.key)
            if event.key in failed_at:
                bar_row["bars"].append(
                    {"kind": "backoff", "from": failed_at.pop(event.key), "to": at}
                )
            open_attempts[(event.key, event.attempt)] = at
        elif isinstance(event, ActivityCompleted | ActivityFailed | ChildFinished):
            began = open_attempts.pop((event.key, event.attempt), None)
            if began is None:
                continue
            bar: dict[str, Any] = {"kind": "attempt", "from": began, "to": at,
                                   "attempt": event.attempt}  # fmt: skip
            if isinstance(event, ActivityFailed):
                bar["outcome"] = "failed"
                bar["error"] = _error_text(event.error)
                failed_at[event.key] = at
            elif isinstance(event, ChildFinished):
                bar["outcome"] = "ok" if event.phase == "Succeeded" else "failed"
                if event.error:
                    bar["error"] = _error_text(event.error)
            else:
                bar["outcome"] = "ok"
            row(event.key)["bars"].append(bar)
        elif isinstance(event, SignalReceived):
            marks.append({"kind": "signal", "at": at, "label": event.name})
    end = max(now - start, entries[-1].at - start if entries else 0.0)
    finished = parse_time(status.get("finishedAt"))
    if finished is not None:
        end = max(finished - start, entries[-1].at - start if entries else 0.0)
    for (key, attempt), began in open_attempts.items():
        row(key)["bars"].append(
            {"kind": "attempt", "from": began, "to": end, "attempt": attempt, "outcome": "running"}
        )
    steps = status.get("steps") or {}
    for key, step in steps.items():
        if isinstance(step, Mapping):
            _status_bars(row(key), step, start, end)
    for key, failed in failed_at.items():
        backing_off = steps.get(key) or {}
        due = parse_time(backing_off.get("nextAttemptAt"))
        if backing_off.get("phase") == "Backoff" and due is not None:
            rows[key]["bars"].append({"kind": "backoff", "from": failed, "to": due - start})
    ordered = sorted(rows.values(), key=lambda r: (_first(r), _last(r), r["key"]))
    return {"start": start, "end": end, "rows": ordered, "marks": marks}


def _status_bars(
    row: Mapping[str, Any], entry: Mapping[str, Any], start: float, end: float
) -> None:
    """Bars for what the history does not record as attempts: sleeps, signal waits, composites
    and steps that never ran an activity, from the step's own start and finish."""
    if any(bar["kind"] == "attempt" for bar in row["bars"]):
        return
    began = parse_time(entry.get("startedAt"))
    if began is None:
        return
    finished = parse_time(entry.get("finishedAt"))
    to = (finished - start) if finished is not None else end
    kind = {"sleep": "sleep", "waitForSignal": "wait"}.get(row["kind"], "span")
    row["bars"].append(
        {"kind": kind, "from": began - start, "to": to, "outcome": _outcome(entry.get("phase"))}
    )


def _outcome(phase: Any) -> str:
    if phase in ("Succeeded", "Skipped"):
        return "ok"
    if phase in ("Failed", "Cancelled", "TimedOut"):
        return "failed"
    return "running"


def _first(row: Mapping[str, Any]) -> float:
    return min((bar["from"] for bar in row["bars"]), default=float("inf"))


def _last(row: Mapping[str, Any]) -> float:
    return max((bar["to"] for bar in row["bars"]), default=float("inf"))


def _kinds(definition: Mapping[str, Any] | None) -> dict[str, str]:
    compiled_definition = compiled(definition)
    if compiled_definition is None:
        return {}
    return {name: sd.kind.value for name, sd in compiled_definition.index.items()}


def _step_name(key: str) -> str:
    """The step name of an instance key: `charges[3].charge` -> `charge`."""
    base = key.removesuffix(COMPENSATE)
    return base.rsplit(".", 1)[-1] if "]." in base else base


def _group_of(key: str) -> str | None:
    """The forEach an item's key belongs to (`charges[3].charge` -> `charges`), else None."""
    base = key.removesuffix(COMPENSATE)
    if "[" not in base:
        return None
    return base[: base.rindex("[")]


def _error_text(error: Mapping[str, Any]) -> str:
    return f"{error.get('type')}: {error.get('message', '')}".rstrip(": ")


# -- per step -------------------------------------------------------------------------------------


def step_attempts(
    run_uid: str, entries: Sequence[HistoryEntry], start: float | None
) -> dict[str, list[dict[str, Any]]]:
    """Each activity key's attempts from the history: when each began and ended (seconds since
    the start), how, with which error and under which idempotency key."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    origin = start or 0.0
    for entry in entries:
        event = entry.event
        if not isinstance(
            event, ActivityStarted | ActivityCompleted | ActivityFailed | ChildFinished
        ):
            continue
        attempts = found.setdefault(event.key, {})
        attempt = attempts.setdefault(
            event.attempt,
            {"attempt": event.attempt,
             "idempotencyKey": idempotency_key(run_uid, event.key, event.attempt)},
        )  # fmt: skip
        at = entry.at - origin
        if isinstance(event, ActivityStarted):
            attempt["started"] = at
        elif isinstance(event, ActivityFailed):
            attempt.update(ended=at, outcome="failed", error=dict(event.error))
        elif isinstance(event, ChildFinished):
            attempt.update(ended=at, outcome=event.phase)
            if event.error:
                attempt["error"] = dict(event.error)
        else:
            attempt.update(ended=at, outcome="succeeded")
    return {key: [a for _, a in sorted(by.items())] for key, by in found.items()}


def kind_of_key(definition: Mapping[str, Any] | None, key: str) -> str:
    """The step kind of an instance key, from the definition ('' when unknown)."""
    return _kinds(definition).get(_step_name(key), "")
