"""The commands that act on WorkflowRuns in a cluster: run, wait, signal, cancel, suspend,
resume, redrive, history and get.

Each command is a thin `asyncio.run` around `Kube` requests; what is sent is built by
`baton.cli.runpatch` and what is shown by `baton.cli.runview` and `baton.cli.timeline`, all pure.
This module owns the order of the requests, the retries of guarded patches that lost a race,
and turning the API server's refusals into one line: a missing run names the run and the
namespace, anything else the server refused is reported with the server's own message (the
CRD's validation rules say what is wrong and how to fix it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeAlias, TypeVar

from baton.api.duration import DurationError, format_duration, parse_duration
from baton.cli import CommandError
from baton.cli.jsonarg import json_argument
from baton.cli.kubeconfig import Target, add_cluster_arguments, open_cluster, target_of
from baton.cli.runpatch import (
    flag_patch,
    has_signal_list,
    redrive_patch,
    redrive_value,
    run_manifest,
    signal_patch,
    signal_value,
)
from baton.cli.runview import (
    is_finished,
    outcome_lines,
    phase_of,
    run_details,
    runs_table,
    wait_key,
    wait_line,
)
from baton.cli.timeline import history_lines
from baton.store.history import read_history
from baton.store.kube import ApiError, Kube, path_of

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

RUNS = "workflowruns"
POLL_SECONDS = 0.5
"""How often `--wait` reads the run: a GET is cheap, and a watch would add reconnects,
expired resource versions and bookmarks for a command that only reports what it sees."""
RACE_RETRIES = 5
"""Guarded patches (signal list creation, redrive) retried after losing a race this often."""
NO_SUCH_RESOURCE = "the server could not find the requested resource"

T = TypeVar("T")


def register(subparsers: Subparsers) -> None:
    """Add the run commands."""
    _register_run(subparsers)
    _register_wait(subparsers)
    _register_signal(subparsers)
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
    parser.set_defaults(handler=lambda args: _sync(_redrive(target_of(args), args.run)))
    parser = subparsers.add_parser(
        "history",
        help="print a run's event history as a timeline",
        description="Print the events the operator recorded for RUN, one per line: the time "
        "since the first event, the event type, the step and a detail.",
    )
    parser.add_argument("run", metavar="RUN")
    parser.add_argument("--json", action="store_true", help="print the events as a JSON array")
    add_cluster_arguments(parser)
    parser.set_defaults(handler=lambda args: _sync(_history(target_of(args), args.run, args.json)))
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
    parser.add_argument("--json", action="store_true", help="print the object(s) as JSON")
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
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise CommandError(f"{flag}: {exc}") from None


def _run_handler(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.wait:
        raise CommandError(
            "--timeout is how long --wait waits: add --wait "
            "(the run's own timeout is --run-timeout)"
        )
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
    return _sync(_run(target_of(args), manifest, wait=args.wait, timeout=wait_timeout))


def _wait_handler(args: argparse.Namespace) -> int:
    timeout = _duration(args.timeout, "--timeout")
    return _sync(_wait(target_of(args), args.run, timeout))


async def _run(
    target: Target, manifest: Mapping[str, Any], *, wait: bool, timeout: float | None
) -> int:
    workflow = manifest["spec"]["workflowRef"]["name"]
    async with open_cluster(target) as (kube, namespace):
        # A run of a Workflow that does not exist would only fail later, in the operator; a
        # typo is far likelier than a Workflow applied after its run.
        definition = await _call(kube.get(path_of("workflows", namespace, workflow)), namespace)
        if definition is None:
            raise CommandError(f'workflow "{workflow}" not found in namespace "{namespace}"')
        created = await _call(kube.create(path_of(RUNS, namespace), manifest), namespace)
        name = str(created["metadata"]["name"])
        print(name, flush=True)
        if not wait:
            return 0
        return await _follow(kube, namespace, name, timeout)


async def _wait(target: Target, run: str, timeout: float | None) -> int:
    async with open_cluster(target) as (kube, namespace):
        return await _follow(kube, namespace, run, timeout)


async def _follow(kube: Kube, namespace: str, name: str, timeout: float | None) -> int:
    """Print a line per change of the run until it ends; 0 if it Succeeded, else 1."""
    start = time.monotonic()
    last: tuple[str, str, str] | None = None
    while True:
        run = await _call(kube.get(path_of(RUNS, namespace, name)), namespace, name)
        if run is None:
            if last is None:
                raise _not_found(name, namespace)
            raise CommandError(f'workflowrun "{name}" was deleted while waiting for it')
        elapsed = time.monotonic() - start
        key = wait_key(run)
        if key != last:
            print(wait_line(run, elapsed), flush=True)
            last = key
        phase = phase_of(run)
        if is_finished(phase):
            for line in outcome_lines(run):
                print(line, flush=True)
            return 0 if phase == "Succeeded" else 1
        if timeout is not None and elapsed >= timeout:
            raise CommandError(
                f'timed out after {format_duration(timeout)} waiting for workflowrun "{name}" '
                f"to end (it is {phase})"
            )
        pause = POLL_SECONDS if timeout is None else min(POLL_SECONDS, timeout - elapsed)
        await asyncio.sleep(max(pause, 0.0))


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
    return _sync(_signal(target_of(args), args.run, signal))


async def _signal(target: Target, run: str, signal: Mapping[str, Any]) -> int:
    async with open_cluster(target) as (kube, namespace):
        path = path_of(RUNS, namespace, run)
        # Nearly every run that is signalled has signals already, or gets its list created by
        # the first signal: try the plain append first and look at the object only if the
        # server refuses it.
        list_exists = True
        for _ in range(RACE_RETRIES):
            try:
                updated = await kube.patch(
                    path, signal_patch(signal, list_exists=list_exists), kind="json"
                )
            except ApiError as exc:
                if exc.status != 422:
                    raise _refusal(exc, namespace, run) from None
                current = await _call(kube.get(path), namespace, run)
                if current is None:
                    raise _not_found(run, namespace) from None
                if has_signal_list(current) == list_exists:
                    # The patch did not fail for the list's sake: report the server's reason.
                    raise _refusal(exc, namespace, run) from None
                list_exists = not list_exists
                continue
            index = len(updated["spec"]["signals"]) - 1
            print(f'workflowrun/{run}: signal "{signal["name"]}" sent (spec.signals[{index}])')
            return 0
    raise CommandError(f'workflowrun "{run}": spec.signals kept changing; try again')


def _flag_handler(command: str, field: str, value: bool) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        return _sync(_set_flag(target_of(args), args.run, command, field, value))

    return handler


async def _set_flag(target: Target, run: str, command: str, field: str, value: bool) -> int:
    async with open_cluster(target) as (kube, namespace):
        await _call(
            kube.patch(path_of(RUNS, namespace, run), flag_patch(field, value)), namespace, run
        )
    done = {"cancel": "cancel requested", "suspend": "suspend requested", "resume": "resumed"}
    print(f"workflowrun/{run}: {done[command]}")
    return 0


async def _redrive(target: Target, run: str) -> int:
    async with open_cluster(target) as (kube, namespace):
        path = path_of(RUNS, namespace, run)
        for _ in range(RACE_RETRIES):
            current = await _call(kube.get(path), namespace, run)
            if current is None:
                raise _not_found(run, namespace)
            value = redrive_value(current)
            try:
                updated = await kube.patch(path, redrive_patch(value), kind="json")
            except ApiError as exc:
                if exc.status != 422:
                    raise _refusal(exc, namespace, run) from None
                latest = await _call(kube.get(path), namespace, run)
                if latest is not None and redrive_value(latest) == value:
                    raise _refusal(exc, namespace, run) from None
                continue  # another redrive landed first: bump again from its value
            print(f"workflowrun/{run}: redrive {updated['spec']['redrive']} requested")
            return 0
    raise CommandError(f'workflowrun "{run}": spec.redrive kept changing; try again')


# -- reading ------------------------------------------------------------------------------------


async def _history(target: Target, run: str, as_json: bool) -> int:
    async with open_cluster(target) as (kube, namespace):
        current = await _call(kube.get(path_of(RUNS, namespace, run)), namespace, run)
        if current is None:
            raise _not_found(run, namespace)
        uid = str(current["metadata"]["uid"])
        entries = await _call(read_history(kube, namespace, uid), namespace)
    if as_json:
        print(json.dumps([entry.to_json() for entry in entries], indent=2))
        return 0
    phase = phase_of(current)
    if not entries:
        print(f"{run}: {phase}, no events recorded yet")
        return 0
    count = f"{len(entries)} event{'s' if len(entries) != 1 else ''}"
    span = format_duration(entries[-1].at - entries[0].at) if len(entries) > 1 else "0s"
    print(f"{run}: {phase}, {count} over {span}")
    print("\n".join(history_lines(entries)))
    return 0


def _get_handler(args: argparse.Namespace) -> int:
    if args.run and args.all_namespaces:
        raise CommandError("give RUN or --all-namespaces, not both")
    return _sync(_get(target_of(args), args.run, args.all_namespaces, args.json))


async def _get(target: Target, run: str | None, everywhere: bool, as_json: bool) -> int:
    async with open_cluster(target) as (kube, namespace):
        if run is not None:
            found = await _call(kube.get(path_of(RUNS, namespace, run)), namespace, run)
            if found is None:
                raise _not_found(run, namespace)
            print(json.dumps(found, indent=2) if as_json else run_details(found, time.time()))
            return 0
        path = path_of(RUNS, None if everywhere else namespace)
        runs = await _call(kube.list(path), namespace)
    if as_json:
        print(json.dumps(runs, indent=2))
    elif not runs:
        where = "any namespace" if everywhere else f'namespace "{namespace}"'
        print(f"no workflowruns in {where}")
    else:
        print(runs_table(runs, time.time(), namespaces=everywhere))
    return 0


# -- errors -------------------------------------------------------------------------------------


def _sync(coroutine: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coroutine)


async def _call(request: Awaitable[T], namespace: str, run: str | None = None) -> T:
    """`request`, with the API server's refusal turned into a one-line CommandError."""
    try:
        return await request
    except ApiError as exc:
        raise _refusal(exc, namespace, run) from None


def _not_found(run: str, namespace: str) -> CommandError:
    return CommandError(f'workflowrun "{run}" not found in namespace "{namespace}"')


def _refusal(exc: ApiError, namespace: str, run: str | None) -> CommandError:
    if exc.status == 404 and exc.message == NO_SUCH_RESOURCE:
        return CommandError(
            "the cluster has no WorkflowRun resource: install Baton's CRDs "
            "(kubectl apply -f crds/, or the Helm chart)"
        )
    if exc.status == 404 and run is not None and "workflowruns" in exc.message:
        return _not_found(run, namespace)
    message = " ".join(exc.message.split()) or exc.reason
    return CommandError(f"the API server refused: {message} ({exc.status})")
