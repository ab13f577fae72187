"""The commands that act on WorkflowRuns in a cluster: run, wait, signal, update, cancel, suspend,
resume, redrive, history and get — their arguments and the checks made before any request.

Each handler validates what it can offline (JSON, durations, flag combinations), then runs
the command's coroutine of `baton.cli.cluster` under `asyncio.run`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import Any, TypeAlias

from baton.api.labels import PHASE, WORKFLOW, label_value
from baton.cli import CommandError
from baton.cli.jsonarg import json_argument
from baton.cli.kubeconfig import add_cluster_arguments, target_of
from baton.cli.output import Output, add_output_argument, output_of
from baton.cli.runpatch import new_update_id, run_manifest, signal_value, update_value

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(subparsers: Subparsers) -> None:
    """Add the run commands."""
    _register_run(subparsers)
    _register_wait(subparsers)
    _register_signal(subparsers)
    _register_update(subparsers)
    for name, field, value, help_text in (
        ("cancel", "cancel", True, "cancel a run (spec.cancel: true)"),
        ("suspend", "suspend", True, "hold a run: no new step starts (spec.suspend: true)"),
        ("resume", "suspend", False, "let a suspended run go on (spec.suspend: false)"),
    ):
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("run", metavar="RUN")
        add_cluster_arguments(parser)
        parser.set_defaults(handler=_flag_handler(name, field, value))
    parser = subparsers.add_parser(
        "redrive",
        help="restart a failed run from the steps that failed (bumps spec.redrive)",
        description="Bump spec.redrive by one: the operator restarts a Failed run from the steps "
        "that failed, keeping the outputs of those that succeeded.",
    )
    parser.add_argument("run", metavar="RUN")
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_redrive_handler)
    parser = subparsers.add_parser(
        "history",
        help="print a run's event history as a timeline",
        description="Print the events the operator recorded for RUN, one per line: the time "
        "since the first event, the event type, the step and a detail.",
    )
    parser.add_argument("run", metavar="RUN")
    add_output_argument(parser, [Output.JSON, Output.YAML, Output.WIDE], what="the events")
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_history_handler)
    parser = subparsers.add_parser(
        "get",
        help="list runs, or show one run's steps, output and queries",
        description="Without RUN: a table of the namespace's runs. With RUN: its phase, steps "
        "(phase, attempts, error), output, error, queries and conditions.",
    )
    parser.add_argument("run", metavar="RUN", nargs="?")
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list the runs of every namespace"
    )
    add_output_argument(parser, list(Output), what="the run(s)")
    parser.add_argument(
        "--phase",
        help="only runs in this phase (the label baton.dev/phase), for example Failed",
    )
    parser.add_argument(
        "--workflow", metavar="NAME", help="only runs of this Workflow (baton.dev/workflow)"
    )
    parser.add_argument(
        "-l",
        "--selector",
        metavar="SELECTOR",
        help="only runs matching this label selector, as kubectl's -l (app=x,tier!=y)",
    )
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_get_handler)


# -- run and wait -------------------------------------------------------------------------------


def _register_run(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="start a run of a Workflow",
        description="Create a WorkflowRun of WORKFLOW and print its name. With --wait, follow "
        "it until it ends: exit 0 when it Succeeded, 1 when it ended any other way.",
    )
    parser.add_argument("workflow", metavar="WORKFLOW")
    parser.add_argument(
        "--input", "-i", metavar="JSON|@FILE", help="the run's input, as JSON or @file.json"
    )
    parser.add_argument("--name", metavar="NAME", help="the run's name (default: WORKFLOW-xxxxx)")
    parser.add_argument(
        "--run-timeout", metavar="DURATION", help="the run's own timeout (spec.timeout)"
    )
    _add_wait_arguments(parser, flag=True)
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_run_handler)


def _register_wait(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "wait",
        help="follow a run until it ends",
        description="Print a line whenever RUN's phase, step or progress changes, until it ends: "
        "exit 0 when it Succeeded, 1 when it ended any other way.",
    )
    parser.add_argument("run", metavar="RUN")
    _add_wait_arguments(parser, flag=False)
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_wait_handler)


def _add_wait_arguments(parser: argparse.ArgumentParser, *, flag: bool) -> None:
    if flag:
        parser.add_argument(
            "--wait",
            "-w",
            action="store_true",
            help="follow the run until it ends; exit 0 if it Succeeded, else 1",
        )
    parser.add_argument(
        "--timeout",
        metavar="DURATION",
        help="give up waiting after DURATION (30s, 5m, 1h; default: wait as long as it takes)",
    )


def _duration(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    from baton.api.duration import DurationError, parse_duration  # pydantic: see _sync

    try:
        return parse_duration(value)
    except DurationError as exc:
        raise CommandError(f"{flag}: {exc}") from None


def _check_wait_flags(args: argparse.Namespace) -> None:
    """`--timeout` without `--wait` is a mistake (of `baton run` and `baton resubmit`)."""
    if args.timeout is not None and not args.wait:
        raise CommandError(
            "--timeout is how long --wait waits: add --wait "
            "(the run's own timeout is --run-timeout)"
        )


def _run_handler(args: argparse.Namespace) -> int:
    _check_wait_flags(args)
    wait_timeout = _duration(args.timeout, "--timeout")
    if args.run_timeout is not None:
        _duration(args.run_timeout, "--run-timeout")
    manifest = run_manifest(
        args.workflow,
        input=None if args.input is None else json_argument(args.input, "--input"),
        has_input=args.input is not None,
        name=args.name,
        timeout=args.run_timeout,
    )
    from baton.cli import cluster  # see _sync

    return _sync(cluster.run(target_of(args), manifest, wait=args.wait, timeout=wait_timeout))


def _wait_handler(args: argparse.Namespace) -> int:
    timeout = _duration(args.timeout, "--timeout")
    from baton.cli import cluster  # see _sync

    return _sync(cluster.wait(target_of(args), args.run, timeout))


# -- steering -----------------------------------------------------------------------------------


def _register_signal(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "signal",
        help="send a signal to a run",
        description="Append {name: NAME, payload: PAYLOAD} to RUN's spec.signals. Signals are "
        "only ever appended: two sent at once both arrive, in the order the API server took "
        "them.",
    )
    parser.add_argument("run", metavar="RUN")
    parser.add_argument("name", metavar="NAME", help="the signal's name")
    parser.add_argument(
        "--payload", "-p", metavar="JSON|@FILE", help="the signal's payload, as JSON or @file.json"
    )
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_signal_handler)


def _signal_handler(args: argparse.Namespace) -> int:
    signal = signal_value(
        args.name,
        None if args.payload is None else json_argument(args.payload, "--payload"),
        has_payload=args.payload is not None,
    )
    from baton.cli import cluster  # see _sync

    return _sync(cluster.signal(target_of(args), args.run, signal))


UPDATE_TIMEOUT = "60s"
"""How long `baton update` waits for the answer unless told: an update is answered in the
decision that takes it, so a minute covers a busy operator; more means the run has no operator."""


def _register_update(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "update",
        help="send an update to a run and print its result",
        description="Append {id: ID, name: NAME, payload: PAYLOAD} to RUN's spec.updates, wait "
        "for the answer in status.updates.ID and print it: the handler's output (exit 0), or "
        "why the update was refused or failed (exit 1). A refused update leaves the run as it "
        "was.",
    )
    parser.add_argument("run", metavar="RUN")
    parser.add_argument("name", metavar="NAME", help="the update handler's name")
    parser.add_argument(
        "--payload", "-p", metavar="JSON|@FILE", help="the update's payload, as JSON or @file.json"
    )
    parser.add_argument(
        "--id",
        metavar="ID",
        help="the request's id, unique in the run (default: a random one); sending an id "
        "again is refused by the API server",
    )
    parser.add_argument(
        "--timeout",
        metavar="DURATION",
        default=UPDATE_TIMEOUT,
        help=f"give up waiting for the answer after DURATION (default {UPDATE_TIMEOUT})",
    )
    add_cluster_arguments(parser)
    parser.set_defaults(handler=_update_handler)


def _update_handler(args: argparse.Namespace) -> int:
    import re

    from baton.api.run import UPDATE_ID_PATTERN  # pydantic: see _sync

    update_id = args.id if args.id is not None else new_update_id()
    if not re.match(UPDATE_ID_PATTERN, update_id):
        raise CommandError(
            f"--id {update_id!r}: 1 to 64 letters, digits, '_' or '-', starting with a letter "
            "or digit"
        )
    timeout = _duration(args.timeout, "--timeout")
    assert timeout is not None
    request = update_value(
        update_id,
        args.name,
        None if args.payload is None else json_argument(args.payload, "--payload"),
        has_payload=args.payload is not None,
    )
    from baton.cli import cluster  # see _sync

    return _sync(cluster.update(target_of(args), args.run, request, timeout))


def _flag_handler(command: str, field: str, value: bool) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from baton.cli import cluster  # see _sync

        return _sync(cluster.set_flag(target_of(args), args.run, command, field, value))

    return handler


def _redrive_handler(args: argparse.Namespace) -> int:
    from baton.cli import cluster  # see _sync

    return _sync(cluster.redrive(target_of(args), args.run))


# -- reading ------------------------------------------------------------------------------------


def _history_handler(args: argparse.Namespace) -> int:
    from baton.cli import cluster  # see _sync

    return _sync(cluster.history(target_of(args), args.run, output_of(args)))


def _get_handler(args: argparse.Namespace) -> int:
    if args.run and args.all_namespaces:
        raise CommandError("give RUN or --all-namespaces, not both")
    phase = None if args.phase is None else _phase(args.phase)
    selector = run_selector(phase, args.workflow, args.selector)
    if args.run and selector:
        raise CommandError("give RUN or --phase/--workflow/-l (filters of the list), not both")
    from baton.cli import cluster  # see _sync

    return _sync(
        cluster.get(target_of(args), args.run, args.all_namespaces, output_of(args), selector)
    )


def run_selector(phase: str | None, workflow: str | None, selector: str | None) -> str:
    """The label selector `baton get` lists runs with: the operator labels each run with its
    phase and Workflow (baton.api.labels), and `-l` adds any selector of the user's."""
    terms = []
    if phase is not None:
        terms.append(f"{PHASE}={phase}")
    if workflow is not None:
        terms.append(f"{WORKFLOW}={label_value(workflow)}")
    if selector:
        terms.append(selector)
    return ",".join(terms)


def _phase(text: str) -> str:
    """The run phase `text` names (in any case); CommandError listing the phases otherwise."""
    from baton.api.run import RunPhase  # the models are not worth importing for `--help`

    for phase in RunPhase:
        if phase.value.lower() == text.lower():
            return phase.value
    choices = ", ".join(p.value for p in RunPhase)
    raise CommandError(f"--phase: unknown phase {text!r}; the phases are {choices}")


# -- running ------------------------------------------------------------------------------------


def _sync(coroutine: Coroutine[Any, Any, int]) -> int:
    # Handlers import baton.cli.cluster when they run, not at the top: the Kubernetes client
    # takes seconds to import, which `baton --help` and `baton test` should not pay.
    import asyncio

    return asyncio.run(coroutine)
