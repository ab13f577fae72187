"""`baton test`: run a Workflow file offline on a virtual clock with mocked activities.

The engine and pydantic are imported when the command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from baton.cli import CommandError
from baton.cli.jsonarg import json_argument, read_text

if TYPE_CHECKING:
    from baton.testing.mocks import Mocks
    from baton.testing.runner import TestResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `baton test`."""
    parser = subparsers.add_parser(
        "test",
        help="run a Workflow offline with mocked activities and a virtual clock",
        description="Run the first Workflow of WORKFLOW.yaml (other Workflows in the file serve "
        "as child workflows) on a virtual clock: timers finish at once, activities answer from "
        "MOCKS.yaml, and a step without a mock succeeds with output {}. A file holding a "
        "WorkflowRun runs that run: its inline workflow, or the Workflow its workflowRef names "
        "(in the file or another YAML file beside it), with its input and signals.",
    )
    parser.add_argument("workflow_file", type=Path, metavar="WORKFLOW.yaml|RUN.yaml")
    parser.add_argument(
        "--input", "-i", metavar="JSON|@FILE", help="the run's input, as JSON or @file.json"
    )
    parser.add_argument("--mocks", "-m", type=Path, metavar="MOCKS.yaml", help="scripted outcomes")
    parser.add_argument("--workflow", "-w", metavar="NAME", help="run this Workflow of the file")
    parser.add_argument(
        "--generations",
        type=int,
        default=None,
        metavar="N",
        help="follow a run that continues as new into at most N runs (default 100); the "
        "last one ends ContinuedAsNew and the next input is shown",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--expect",
        metavar="PHASE",
        help="exit 1 unless the run ends in PHASE (Succeeded, Failed, Compensated, "
        "CompensationFailed, Cancelled, TimedOut or ContinuedAsNew); any other word is "
        "refused",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the test and print its result; the exit code tells whether --expect held."""
    from baton.api.run import RunPhase
    from baton.testing.mocks import Mocks
    from baton.testing.runner import WorkflowTestError, load_test_file, run_workflow

    if args.expect is not None:
        final = [phase.value for phase in RunPhase if phase.finished]
        if args.expect not in final:
            raise CommandError(
                f"--expect: {args.expect!r} is not a phase a run ends in; "
                f"give one of {', '.join(final)}"
            )
    read_text(args.workflow_file)  # a missing or unreadable file is reported in one line
    try:
        found = load_test_file(args.workflow_file)
    except WorkflowTestError as exc:
        raise CommandError(f"{args.workflow_file}: {exc}") from None
    if not found.workflows:
        raise CommandError(
            f"{args.workflow_file}: no Workflow document in the file, nor a WorkflowRun"
        )
    input_ = found.input if args.input is None else json_argument(args.input, "--input")
    mocks = _mocks(args.mocks) if args.mocks else Mocks()
    # The run's own spec (its signals, updates, suspend, cancel) comes first, then the mocks'.
    mocks = mocks.model_copy(
        update={
            "signals": [*found.run.signals, *mocks.signals],
            "updates": [*found.run.updates, *mocks.updates],
            "actions": [*found.run.actions, *mocks.actions],
        }
    )
    workflow = args.workflow or found.workflow
    try:
        result = run_workflow(
            found.workflows,
            input=input_,
            mocks=mocks,
            workflow=workflow,
            **({} if args.generations is None else {"max_generations": args.generations}),
        )
    except WorkflowTestError as exc:
        raise CommandError(f"{args.workflow_file}: {exc}") from None
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=False))
    else:
        print(render_timeline(result, workflow or found.workflows[0].metadata.name or ""))
    if args.expect and result.phase != args.expect:
        print(f"expected {args.expect}, the run ended {result.phase}", file=sys.stderr)
        return 1
    return 0


def render_timeline(result: TestResult, name: str) -> str:
    """The run as a readable timeline: one line per event, then the outcome."""
    from baton.api.duration import format_duration
    from baton.cli.timeline import error_line, output_line, timeline_line

    lines = [f"{name}: {result.phase} after {format_duration(result.virtual_duration)} (virtual)"]
    for event in result.events:
        # Events of child runs carry the child's name before their step key.
        who = f"{event.run}/" if event.run else ""
        step = f"{who}{event.step}" if event.step else who.rstrip("/")
        lines.append(timeline_line(event.at, event.type, step, event.detail))
    if result.output is not None:
        lines.append(output_line(result.output))
    if result.error:
        lines.append(error_line(result.error))
    if result.compensations:
        lines.append(f"compensations: {', '.join(result.compensations)}")
    if result.queries:
        lines.append(f"queries: {json.dumps(result.queries)}")
    for key, answer in result.updates.items():
        if answer.get("outcome") == "Completed":
            told = json.dumps(answer.get("output"))
        elif answer.get("outcome") == "Refused":
            told = f"refused: {answer.get('reason')}"
        else:
            error = answer.get("error") or {}
            told = f"failed: {error.get('type')}: {error.get('message')}"
        lines.append(f"update {key} ({answer.get('name')}): {told}")
    if result.generations > 1:
        lines.append(f"generations: {result.generations} runs (continue-as-new)")
    if result.phase == "ContinuedAsNew":
        lines.append(f"next input: {json.dumps(result.next_input)}")
    return "\n".join(lines)


def _mocks(path: Path) -> Mocks:
    import yaml

    from baton.testing.mocks import Mocks

    try:
        data = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as exc:
        raise CommandError(f"{path}: not YAML: {exc}".splitlines()[0]) from None
    try:
        return Mocks.model_validate(data)
    except ValueError as exc:
        first = str(exc).splitlines()
        raise CommandError(f"{path}: {' '.join(first[1:3]) if len(first) > 2 else exc}") from None
