"""How the run commands show WorkflowRuns: the `baton get` table and details, the lines of
`baton run --wait`, and ages as kubectl writes them.

Pure functions of the objects the API server returned and of `now` (seconds since the epoch,
read by the caller), so every rendering is unit-tested without a cluster or a clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from baton.api.labels import ACTIVITY_KEY, ATTEMPT
from baton.api.run import RunPhase
from baton.cli.output import (
    DATA_FORMATS,
    Output,
    Painter,
    as_list,
    dump,
    plain,
    resource_name,
    shown,
)
from baton.cli.timeline import error_line, output_line

KIND = "WorkflowRun"
INLINE = "(inline)"
"""The WORKFLOW of a run with an inline definition instead of a workflowRef."""
NONE = "<none>"


def parse_time(text: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (`2026-07-01T10:00:00Z`); None if absent."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def human_age(seconds: float) -> str:
    """An age as kubectl prints it (`45s`, `3m20s`, `5h`, `2d3h`, `400d`): precise when recent,
    coarse when old (k8s.io/apimachinery's HumanDuration)."""
    if seconds < -1:
        return "<invalid>"
    whole = max(int(seconds), 0)
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if whole < 120:
        return f"{whole}s"
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def _status(run: Mapping[str, Any]) -> Mapping[str, Any]:
    status = run.get("status")
    return status if isinstance(status, Mapping) else {}


def phase_of(run: Mapping[str, Any]) -> str:
    """The run's phase; `Pending` until the operator first writes its status."""
    return str(_status(run).get("phase") or RunPhase.PENDING.value)


def is_finished(phase: str) -> bool:
    """Whether `phase` is one a run does not leave (short of a redrive)."""
    try:
        return RunPhase(phase).finished
    except ValueError:
        return False


def workflow_of(run: Mapping[str, Any]) -> str:
    """The Workflow the run follows, or `(inline)`."""
    ref = (run.get("spec") or {}).get("workflowRef") or {}
    return str(ref.get("name") or INLINE)


def lineage_fields(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's place in its continue-as-new lineage, for `baton get RUN` and `describe`:
    the lineage's first run and this run's number, the run it continues, the run it continued
    as. Empty for a run that neither continues nor continued."""
    status = _status(run)
    found = status.get("run")
    identity: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    fields: list[tuple[str, str]] = []
    number = identity.get("continuation") or 0
    if status.get("continuedFrom") or number:
        fields.append(("Lineage", f"{identity.get('lineage') or NONE} (run {int(number) + 1})"))
        fields.append(("Continues", str(status.get("continuedFrom") or NONE)))
    if status.get("continuedAs"):
        fields.append(("Continued as", str(status["continuedAs"])))
    return fields


def table(rows: Sequence[Sequence[str]], paint: Mapping[int, Painter] | None = None) -> str:
    """Columns left-aligned and three spaces apart, as kubectl prints them; `paint` colours the
    cells of some columns below the header (by column index) after they are aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    painters = paint or {}

    def cell(column: int, text: str, width: int, header: bool) -> str:
        padding = " " * (width - len(text))
        return text + padding if header else painters.get(column, plain)(text) + padding

    return "\n".join(
        "   ".join(
            cell(column, text, width, number == 0)
            for column, (text, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for number, row in enumerate(rows)
    )


def runs_table(
    runs: Iterable[Mapping[str, Any]],
    now: float,
    *,
    namespaces: bool = False,
    wide: bool = False,
    paint: Painter = plain,
) -> str:
    """`baton get`: NAME WORKFLOW PHASE STEP PROGRESS AGE (NAMESPACE first with `namespaces`;
    STARTED DURATION MESSAGE after with `wide`); `paint` colours the phases."""
    header = ["NAME", "WORKFLOW", "PHASE", "STEP", "PROGRESS", "AGE"]
    if wide:
        header += ["STARTED", "DURATION", "MESSAGE"]
    rows = [["NAMESPACE", *header] if namespaces else header]
    for run in runs:
        metadata = run.get("metadata") or {}
        status = _status(run)
        created = parse_time(metadata.get("creationTimestamp"))
        row = [
            str(metadata.get("name", "")),
            workflow_of(run),
            phase_of(run),
            str(status.get("currentStep") or ""),
            str(status.get("progress") or ""),
            human_age(now - created) if created is not None else NONE,
        ]
        if wide:
            row += _wide_cells(status, now)
        rows.append([str(metadata.get("namespace", "")), *row] if namespaces else row)
    return table(rows, {header.index("PHASE") + (1 if namespaces else 0): paint})


def _wide_cells(status: Mapping[str, Any], now: float) -> list[str]:
    """STARTED (how long ago), DURATION (so far, while running) and MESSAGE (the error)."""
    started = parse_time(status.get("startedAt"))
    finished = parse_time(status.get("finishedAt"))
    if started is None:
        return [NONE, NONE, _short_error(status.get("error"))]
    end = finished if finished is not None else now
    return [human_age(now - started), human_age(end - started), _short_error(status.get("error"))]


def render_runs(
    runs: Sequence[Mapping[str, Any]],
    output: Output | None,
    now: float,
    *,
    namespaces: bool = False,
    paint: Painter = plain,
) -> str:
    """`baton get` of a list, in the `-o` format asked for (None: the table)."""
    if output in DATA_FORMATS:
        return dump(as_list(runs, KIND), output)
    if output is Output.NAME:
        return "\n".join(resource_name(run) for run in runs)
    return runs_table(runs, now, namespaces=namespaces, wide=output is Output.WIDE, paint=paint)


def render_run(
    run: Mapping[str, Any], output: Output | None, now: float, paint: Painter = plain
) -> str:
    """`baton get RUN` in the `-o` format asked for (None: the details; wide: the table row)."""
    if output in DATA_FORMATS:
        return dump(shown(run), output)
    if output is Output.NAME:
        return resource_name(run)
    if output is Output.WIDE:
        return runs_table([run], now, wide=True, paint=paint)
    return run_details(run, now, paint)


def run_details(run: Mapping[str, Any], now: float, paint: Painter = plain) -> str:
    """`baton get RUN`: the run's phase, its steps, output, error, queries and conditions;
    `paint` colours the phases."""
    metadata = run.get("metadata") or {}
    spec = run.get("spec") or {}
    status = _status(run)
    workflow = workflow_of(run)
    if status.get("workflowGeneration"):
        workflow += f" (generation {status['workflowGeneration']})"
    fields = [
        ("Name", str(metadata.get("name", ""))),
        ("Namespace", str(metadata.get("namespace", ""))),
        ("Workflow", workflow),
        (
            "Phase",
            paint(phase_of(run))
            + (" (suspend requested)" if _suspend_pending(spec, status) else ""),
        ),
    ]
    if spec.get("cancel") and not is_finished(phase_of(run)):
        fields.append(("Cancel", "requested"))
    for label, key in (("Started", "startedAt"), ("Finished", "finishedAt")):
        at = parse_time(status.get(key))
        if at is not None:
            fields.append((label, f"{status[key]} ({human_age(now - at)} ago)"))
    if status.get("currentStep"):
        fields.append(("Step", str(status["currentStep"])))
    if status.get("progress"):
        fields.append(("Progress", str(status["progress"])))
    signals = spec.get("signals") or []
    if signals:
        fields.append(("Signals", f"{len(signals)} sent, {status.get('signalsConsumed', 0)} taken"))
    if spec.get("redrive"):
        fields.append(("Redrive", str(spec["redrive"])))
    fields += lineage_fields(run)
    width = max(len(label) for label, _ in fields) + 2
    lines = [f"{label + ':':<{width}}{value}" for label, value in fields]
    lines += _steps_section(status.get("steps") or {}, paint)
    compensations = status.get("compensations") or []
    if compensations:
        lines.append("Compensations:")
        lines += _indent(
            table(
                [
                    ["STEP", "PHASE", "ATTEMPTS", "ERROR"],
                    *(
                        [
                            str(c.get("step", "")),
                            str(c.get("phase", "")),
                            str(c.get("attempts", 0)),
                            _short_error(c.get("error")),
                        ]
                        for c in compensations
                    ),
                ]
            )
        )
    if "output" in status and status["output"] is not None:
        lines.append(output_line(status["output"]).replace("output:", "Output:", 1))
    if status.get("error"):
        lines.append(error_line(status["error"]).replace("error:", "Error:", 1))
    queries = status.get("queries") or {}
    if queries:
        lines.append("Queries:")
        lines += [f"  {name}: {json.dumps(value)}" for name, value in queries.items()]
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    if conditions:
        lines.append("Conditions:")
        lines += _indent(
            table(
                [
                    ["TYPE", "STATUS", "REASON", "MESSAGE"],
                    *(
                        [
                            str(c.get("type", "")),
                            str(c.get("status", "")),
                            str(c.get("reason", "")),
                            str(c.get("message", "")),
                        ]
                        for c in conditions
                    ),
                ]
            )
        )
    return "\n".join(lines)


def _suspend_pending(spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    return bool(spec.get("suspend")) and not status.get("suspended")


def _steps_section(steps: Mapping[str, Any], paint: Painter) -> list[str]:
    if not steps:
        return []
    rows = [["STEP", "PHASE", "ATTEMPTS", "ERROR"]]
    for name, step in _in_start_order(steps):
        rows.append(
            [
                name,
                str(step.get("phase", "")),
                str(step.get("attempts", 0)),
                _short_error(step.get("error")),
            ]
        )
    return ["Steps:", *_indent(table(rows, {1: paint}))]


def _in_start_order(steps: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Steps in the order they started, those not started yet last, each group by name.

    The API server returns JSON objects with their keys sorted, so the order the engine wrote
    `status.steps` in is gone; start times give it back for every step that ran."""
    entries = [(name, s if isinstance(s, Mapping) else {}) for name, s in steps.items()]

    def key(entry: tuple[str, Mapping[str, Any]]) -> tuple[bool, float, str]:
        started = parse_time(entry[1].get("startedAt"))
        return started is None, started or 0.0, entry[0]

    return sorted(entries, key=key)


def _short_error(error: object) -> str:
    if not isinstance(error, Mapping):
        return ""
    message = str(error.get("message") or "")
    return f"{error.get('type')}: {message}" if message else str(error.get("type", ""))


def _indent(text: str) -> list[str]:
    return [f"  {line}" for line in text.splitlines()]


def wait_key(run: Mapping[str, Any]) -> tuple[str, str, str]:
    """What `baton run --wait` reports a change of: phase, current step, progress."""
    status = _status(run)
    return phase_of(run), str(status.get("currentStep") or ""), str(status.get("progress") or "")


def wait_line(run: Mapping[str, Any], elapsed: float) -> str:
    """One line of `baton run --wait`: time since waiting began, phase, progress, step."""
    phase, step, progress = wait_key(run)
    return f"  {human_age(elapsed):>6}  {phase:<18} {progress:<8} {step}".rstrip()


def outcome_lines(run: Mapping[str, Any]) -> list[str]:
    """After the wait: the run's output, or its error."""
    status = _status(run)
    lines = []
    if status.get("output") is not None:
        lines.append(output_line(status["output"]))
    if status.get("error"):
        lines.append(error_line(status["error"]))
    return lines


def child_runs_by_key(children: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Each activity key's child run: the one of its latest attempt."""
    best: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for child in children:
        annotations = (child.get("metadata") or {}).get("annotations") or {}
        key = annotations.get(ACTIVITY_KEY)
        if not key:
            continue
        try:
            attempt = int(annotations.get(ATTEMPT) or 0)
        except ValueError:
            attempt = 0
        if key not in best or attempt >= best[key][0]:
            best[key] = (attempt, child)
    return {key: child for key, (_, child) in best.items()}
