"""`baton describe RUN`: the run's steps as a tree, the way its definition nests them.

The tree follows the definition snapshot the run started with (`status.definition`): a
parallel step's branches and their steps under it, a forEach step's items (`[3] charge`) under
it, a catch clause's recovery steps, a step's `finally` steps and the run's `onExit` steps once
they started, and for a `workflow` step the child run it started. Each
row says the step's phase, attempts, how long it took (or has been going) and what is worth
knowing about it: its last error, the signal it waits for, when its next attempt is due, the
child run, a forEach's counts. Without a snapshot (deleted, or the run not started) the steps
of `status.steps` are listed flat.

Status keys are the engine's step keys: a top-level or branch step's name (names are unique
across the whole workflow), and `<forEach key>[<index>].<inner name>` for an item, nested
forEach items adding their own `[i].` to their parent item's prefix.

Pure: the run, its definition, its child runs and `now` in; rows, lines or data out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from baton.cli.output import Painter, plain
from baton.cli.runview import (
    INLINE,
    child_runs_by_key,
    human_age,
    lineage_fields,
    parse_time,
    phase_of,
    table,
    workflow_of,
)

ITEMS_SHOWN = 10
"""forEach items always shown (the first ones); later items only when they did not succeed."""
DONE_QUIETLY = frozenset({"Succeeded", "Skipped"})


@dataclass
class Node:
    """One row of the tree: a step instance, a branch, or a summary of items not shown."""

    label: str
    key: str | None = None
    """The step key in `status.steps`; None for a branch or a summary row."""
    kind: str = ""
    status: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""
    children: list[Node] = field(default_factory=list)

    def to_json(self, now: float) -> dict[str, Any]:
        """The node as data, for `-o json|yaml`."""
        data: dict[str, Any] = {"name": self.label}
        if self.key is not None:
            data["key"] = self.key
            data["kind"] = self.kind
            data["phase"] = self.status.get("phase") or "Pending"
            data["attempts"] = int(self.status.get("attempts") or 0)
            for name in ("startedAt", "finishedAt", "error", "continuedFrom", "continuedAs"):
                if self.status.get(name):
                    data[name] = self.status[name]
            took = duration(self.status, now)
            if took:
                data["duration"] = took
        if self.detail:
            data["detail"] = self.detail
        if self.children:
            data["children"] = [child.to_json(now) for child in self.children]
        return data


def step_kind(step: Mapping[str, Any]) -> str:
    """The kind of a step of the definition: the one action key it has (`http`, `forEach`)."""
    for kind in (
        "http", "job", "worker", "workflow", "sleep", "waitForSignal", "parallel", "forEach",
        "set", "fail", "continueAsNew",
    ):  # fmt: skip
        if step.get(kind) is not None:
            return kind
    return ""


def build_tree(
    definition: Mapping[str, Any] | None,
    status: Mapping[str, Any],
    children: Sequence[Mapping[str, Any]],
) -> list[Node]:
    """The step tree of a run from its definition snapshot (None: flat, from the status)."""
    steps = status.get("steps") or {}
    runs = child_runs_by_key(children)
    if not definition or not isinstance(definition.get("steps"), list):
        return [
            Node(name, name, "", entry, _detail("", entry, None, runs.get(name)))
            for name, entry in _by_start(steps)
        ]
    nodes = [_node(step, "", steps, runs) for step in definition["steps"] if isinstance(step, dict)]
    on_exit = [
        _node(s, "", steps, runs) for s in definition.get("onExit") or [] if isinstance(s, dict)
    ]
    if any(n.status for n in on_exit):
        outcome = status.get("exitOutcome")
        nodes.append(
            Node("onExit", detail=f"run outcome {outcome}" if outcome else "", children=on_exit)
        )
    return nodes


def _node(
    step: Mapping[str, Any],
    prefix: str,
    steps: Mapping[str, Any],
    runs: Mapping[str, Mapping[str, Any]],
) -> Node:
    name = str(step.get("name", ""))
    key = prefix + name
    kind = step_kind(step)
    entry = steps.get(key) or {}
    node = Node(name, key, kind, entry, _detail(kind, entry, step, runs.get(key)))
    if kind == "parallel":
        for branch in step["parallel"].get("branches") or []:
            node.children.append(
                Node(
                    f"branch {branch.get('name', '')}",
                    children=[_node(s, prefix, steps, runs) for s in branch.get("steps") or []],
                )
            )
    elif kind == "forEach":
        node.children = _items(key, step["forEach"].get("step") or {}, entry, steps, runs)
    for number, clause in enumerate(step.get("catch") or []):
        recovery = [_node(s, prefix, steps, runs) for s in clause.get("steps") or []]
        if any(r.status for r in recovery):
            errors = ", ".join(clause.get("errors") or [])
            node.children.append(Node(f"catch {errors or number}", children=recovery))
    cleanup = [_node(s, prefix, steps, runs) for s in step.get("finally") or []]
    if any(c.status for c in cleanup):
        node.children.append(Node("finally", children=cleanup))
    return node


def _items(
    key: str,
    inner: Mapping[str, Any],
    entry: Mapping[str, Any],
    steps: Mapping[str, Any],
    runs: Mapping[str, Mapping[str, Any]],
) -> list[Node]:
    inner_name = str(inner.get("name", ""))
    counts = entry.get("itemCounts") or {}
    total = int(counts.get("total") or len(entry.get("items") or []))
    total = max(total, _seen_items(key, inner_name, steps))
    nodes: list[Node] = []
    hidden: dict[str, int] = {}
    for index in range(total):
        item = _node(inner, f"{key}[{index}].", steps, runs)
        item.label = f"[{index}] {inner_name}"
        phase = str(item.status.get("phase") or "Pending")
        if index < ITEMS_SHOWN or phase not in DONE_QUIETLY:
            nodes.append(item)
        else:
            hidden[phase] = hidden.get(phase, 0) + 1
    if hidden:
        counted = ", ".join(f"{n} {phase.lower()}" for phase, n in sorted(hidden.items()))
        nodes.append(Node(f"... {sum(hidden.values())} more items", detail=counted))
    return nodes


def _seen_items(key: str, inner: str, steps: Mapping[str, Any]) -> int:
    """Items of the forEach `key` that have a status entry (when the counts are missing)."""
    count = 0
    while f"{key}[{count}].{inner}" in steps:
        count += 1
    return count


def _detail(
    kind: str,
    entry: Mapping[str, Any],
    step: Mapping[str, Any] | None,
    child: Mapping[str, Any] | None,
) -> str:
    """What is worth knowing about a step beyond phase, attempts and duration."""
    parts = []
    if child is not None:
        name = (child.get("metadata") or {}).get("name", "")
        progress = (child.get("status") or {}).get("progress")
        parts.append(f"workflowrun/{name} {phase_of(child)}" + (f" {progress}" if progress else ""))
    phase = entry.get("phase")
    if phase == "Waiting" and step is not None and kind == "waitForSignal":
        parts.append(f"waiting for signal {step['waitForSignal'].get('name', '')!r}")
    if phase == "Running" and entry.get("outcome"):
        parts.append(f"ended {entry['outcome']}, running its finally steps")
    if entry.get("cached") is True:
        parts.append(f"from the cache (key {entry.get('memoKey')!r})")
    elif phase == "Running" and entry.get("memoKey") and "cached" not in entry:
        parts.append(f"looking up the cache (key {entry['memoKey']!r})")
    if phase == "Backoff" and entry.get("nextAttemptAt"):
        parts.append(f"next attempt at {entry['nextAttemptAt']}")
    counts = entry.get("itemCounts")
    if isinstance(counts, Mapping) and counts.get("total") is not None:
        parts.append(
            f"{counts.get('total')} items: {counts.get('succeeded', 0)} succeeded, "
            f"{counts.get('failed', 0)} failed, {counts.get('running', 0)} running"
        )
    if entry.get("iterations"):
        parts.append(f"{entry['iterations']} iterations")
    error = entry.get("error")
    if isinstance(error, Mapping) and error.get("type"):
        message = str(error.get("message") or "")
        parts.append(f"{error['type']}: {message}" if message else str(error["type"]))
    return "; ".join(parts)


def _by_start(steps: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    entries = [(k, v if isinstance(v, Mapping) else {}) for k, v in steps.items()]
    return sorted(
        entries,
        key=lambda e: (parse_time(e[1].get("startedAt")) is None,
                       parse_time(e[1].get("startedAt")) or 0.0, e[0]),
    )  # fmt: skip


def duration(entry: Mapping[str, Any], now: float) -> str:
    """How long a step took, or has been going; empty before it started."""
    started = parse_time(entry.get("startedAt"))
    if started is None:
        return ""
    finished = parse_time(entry.get("finishedAt"))
    return human_age((finished if finished is not None else now) - started)


def _rows(nodes: Sequence[Node], now: float, wide: bool) -> Iterator[list[str]]:
    def walk(node: Node, lead: str, last: bool, top: bool) -> Iterator[list[str]]:
        branch = "" if top else ("└─ " if last else "├─ ")
        label = f"{lead}{branch}{node.label}"
        if node.key is None:
            cells = [label, "", "", "", node.detail]
        else:
            attempts = int(node.status.get("attempts") or 0)
            cells = [
                label,
                str(node.status.get("phase") or "Pending"),
                str(attempts) if attempts else "",
                duration(node.status, now),
                node.detail,
            ]
        if wide:
            cells[4:4] = [
                node.kind,
                str(node.status.get("startedAt") or ""),
                str(node.status.get("finishedAt") or ""),
            ]
        yield cells
        below = lead if top else lead + ("   " if last else "│  ")
        for number, child in enumerate(node.children):
            yield from walk(child, below, number == len(node.children) - 1, False)

    for node in nodes:
        yield from walk(node, "", True, True)


def tree_table(
    nodes: Sequence[Node], now: float, *, wide: bool = False, paint: Painter = plain
) -> str:
    """The tree as aligned columns: STEP PHASE ATTEMPTS DURATION DETAIL (wide: KIND STARTED
    FINISHED before DETAIL)."""
    header = ["STEP", "PHASE", "ATTEMPTS", "DURATION", "DETAIL"]
    if wide:
        header[4:4] = ["KIND", "STARTED", "FINISHED"]
    return table([header, *_rows(nodes, now, wide)], {1: paint})


def describe_lines(
    run: Mapping[str, Any],
    nodes: Sequence[Node],
    now: float,
    *,
    wide: bool = False,
    paint: Painter = plain,
) -> list[str]:
    """`baton describe RUN`: a header (name, workflow, phase, timing, error), then the tree."""
    metadata = run.get("metadata") or {}
    status = run.get("status") or {}
    workflow = workflow_of(run)
    if workflow != INLINE and status.get("workflowGeneration"):
        workflow += f" (generation {status['workflowGeneration']})"
    took = duration(status, now)
    fields = [
        ("Name", f"{metadata.get('name', '')}"),
        ("Namespace", str(metadata.get("namespace", ""))),
        ("Workflow", workflow),
        ("Phase", paint(phase_of(run)) + (f" after {took}" if took else "")),
    ]
    if status.get("startedAt"):
        fields.append(("Started", str(status["startedAt"])))
    fields += lineage_fields(run)
    error = status.get("error")
    if isinstance(error, Mapping) and error.get("type"):
        step = f" (step {error['step']})" if error.get("step") else ""
        fields.append(("Error", f"{error['type']}: {error.get('message', '')}{step}"))
    width = max(len(label) for label, _ in fields) + 2
    lines = [f"{label + ':':<{width}}{value}" for label, value in fields]
    if nodes:
        lines += ["", *tree_table(nodes, now, wide=wide, paint=paint).splitlines()]
    else:
        lines.append("no step has started yet")
    locks = status.get("locks")
    if isinstance(locks, Mapping) and locks:
        lines += ["", "Locks:"]
        lines += [
            f"  {key}: {entry.get('message', '')}"
            for key, entry in locks.items()
            if isinstance(entry, Mapping)
        ]
    compensations = [c for c in status.get("compensations") or [] if isinstance(c, Mapping)]
    if compensations:
        rows = [
            Node(f"{c.get('step', '')} (compensation)", str(c.get("key", "")), "", c,
                 _detail("", c, None, None))
            for c in compensations
        ]  # fmt: skip
        lines += ["", "Compensations:", *tree_table(rows, now, wide=wide, paint=paint).splitlines()]
    return lines


def describe_data(run: Mapping[str, Any], nodes: Sequence[Node], now: float) -> dict[str, Any]:
    """`baton describe RUN -o json|yaml`: the header's fields and the tree as data."""
    metadata = run.get("metadata") or {}
    status = run.get("status") or {}
    data: dict[str, Any] = {
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace", ""),
        "workflow": workflow_of(run),
        "phase": phase_of(run),
    }
    for name in ("startedAt", "finishedAt", "error"):
        if status.get(name):
            data[name] = status[name]
    data["steps"] = [node.to_json(now) for node in nodes]
    return data
