"""The run commands' conversation with the cluster: connecting through the kubeconfig, the
requests of each command, and the API server's refusals turned into one line.

Connecting: the kubeconfig files, context and namespace `baton.cli.kubeconfig` picks, or the
pod's service account inside a cluster; an unreachable server or a broken kubeconfig is a
one-line `CommandError`. Requests go through `Kube` (the one API client of Baton); what is sent
is built by `baton.cli.runpatch` and what is shown by `baton.cli.runview` and
`baton.cli.timeline`, all pure. This module owns the order of the requests, the retries of
guarded patches that lost a race, and the wording of refusals: a missing run names the run and
the namespace; anything else is the server's own message (the CRD's validation rules say what is
wrong and how to fix it).

`baton.cli.runs` imports this module only when a run command runs: the Kubernetes client
takes seconds to import, which `baton --help` and `baton test` should not pay.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp

from baton.api.duration import format_duration
from baton.cli import CommandError, runactions
from baton.cli.completion import Kind, signal_names, update_names
from baton.cli.describe import build_tree, describe_data, describe_lines
from baton.cli.kubeconfig import Target
from baton.cli.output import DATA_FORMATS, Output, colour_enabled, dump, phase_painter
from baton.cli.podlogs import choose_pod
from baton.cli.runpatch import resubmit_manifest
from baton.cli.runread import (
    RUNS,
    pod_log,
    read_children,
    read_definition,
    read_job_pods,
    read_run_history,
)
from baton.cli.runview import (
    is_finished,
    outcome_lines,
    phase_of,
    render_run,
    render_runs,
    table,
    wait_key,
    wait_line,
)
from baton.cli.timeline import history_lines
from baton.store.kube import ApiError, Kube, core_path, open_connection, path_of
from baton.store.kubeconfig import KubeconfigError

POLL_SECONDS = 0.5
"""How often `--wait` reads the run: a GET is cheap, and a watch would add reconnects,
expired resource versions and bookmarks for a command that only reports what it sees."""
NO_SUCH_RESOURCE = "the server could not find the requested resource"

T = TypeVar("T")


# -- connecting -------------------------------------------------------------------------------


@asynccontextmanager
async def open_cluster(target: Target) -> AsyncIterator[tuple[Kube, str]]:
    """A logged-in `Kube` and the namespace to work in; closes the connection afterwards."""
    try:
        connection = await open_connection(target.kubeconfig, target.context, target.namespace)
    except KubeconfigError as exc:
        raise CommandError(str(exc)) from None
    kube = connection.kube
    try:
        yield kube, connection.namespace
    except aiohttp.ClientConnectionError as exc:
        raise CommandError(f"cannot reach the API server at {_host(kube)}: {exc}") from None
    except TimeoutError:
        raise CommandError(f"the API server at {_host(kube)} did not answer in time") from None
    finally:
        await connection.close()


def _host(kube: Kube) -> str:
    return str(getattr(kube.api.configuration, "host", "") or "(unknown)")


# -- the commands -----------------------------------------------------------------------------


async def run(
    target: Target, manifest: Mapping[str, Any], *, wait: bool, timeout: float | None
) -> int:
    """`baton run`: create `manifest` (after checking its Workflow exists), print its name,
    and with `wait` follow it."""
    async with open_cluster(target) as (kube, namespace):
        return await _start(kube, namespace, manifest, wait=wait, timeout=timeout)


async def _start(
    kube: Kube, namespace: str, manifest: Mapping[str, Any], *, wait: bool, timeout: float | None
) -> int:
    workflow = (manifest["spec"].get("workflowRef") or {}).get("name")
    if workflow is not None:
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
    return await follow(kube, namespace, name, timeout)


async def wait(target: Target, run: str, timeout: float | None) -> int:
    """`baton wait`: follow an existing run."""
    async with open_cluster(target) as (kube, namespace):
        return await follow(kube, namespace, run, timeout)


async def follow(kube: Kube, namespace: str, name: str, timeout: float | None) -> int:
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


async def signal(target: Target, run: str, signal: Mapping[str, Any]) -> int:
    """`baton signal`: append `signal` to the run's `spec.signals`."""
    async with open_cluster(target) as (kube, namespace):
        index = await _act(runactions.send_signal(kube, namespace, run, signal), namespace, run)
    print(f'workflowrun/{run}: signal "{signal["name"]}" sent (spec.signals[{index}])')
    return 0


async def update(target: Target, run: str, request: Mapping[str, Any], timeout: float) -> int:
    """`baton update`: append the update `request`, wait for its answer and print it: the
    output (0), or the reason it was refused or failed (1)."""
    async with open_cluster(target) as (kube, namespace):
        index = await _act(runactions.send_update(kube, namespace, run, request), namespace, run)
        update_id = request["id"]
        print(
            f'workflowrun/{run}: update "{request["name"]}" sent (spec.updates[{index}], id '
            f"{update_id}); waiting for its answer in status.updates.{update_id}",
            file=sys.stderr,
            flush=True,
        )
        start = time.monotonic()
        told_running = False
        while True:
            current = await _call(kube.get(path_of(RUNS, namespace, run)), namespace, run)
            if current is None:
                raise CommandError(f'workflowrun "{run}" was deleted while waiting for its answer')
            answer = runactions.update_answer(current, update_id)
            if answer is not None and answer.get("outcome") != "Running":
                return _print_answer(answer)
            if answer is not None and not told_running:
                print(
                    f"update {update_id} accepted; waiting for its steps to end",
                    file=sys.stderr,
                    flush=True,
                )
                told_running = True
            elapsed = time.monotonic() - start
            if elapsed >= timeout:
                raise CommandError(
                    f"timed out after {format_duration(timeout)} waiting for the answer to "
                    f'update {update_id} of workflowrun "{run}" (it is {phase_of(current)}; '
                    + (
                        "the update's steps still run"
                        if told_running
                        else "is the operator running?"
                    )
                    + "); the request stays in spec.updates and may still be answered"
                )
            await asyncio.sleep(max(min(POLL_SECONDS, timeout - elapsed), 0.0))


def _print_answer(answer: Mapping[str, Any]) -> int:
    outcome = answer.get("outcome")
    if outcome == "Completed":
        print(json.dumps(answer.get("output")))
        return 0
    if outcome == "Refused":
        print(f"update refused: {answer.get('reason')}", file=sys.stderr)
        return 1
    error = answer.get("error") or {}
    print(f"update failed: {error.get('type')}: {error.get('message')}", file=sys.stderr)
    return 1


async def set_flag(target: Target, run: str, command: str, field: str, value: bool) -> int:
    """`baton cancel`, `suspend` and `resume`: set the boolean `spec.<field>`."""
    async with open_cluster(target) as (kube, namespace):
        await _act(runactions.set_flag(kube, namespace, run, field, value), namespace, run)
    done = {"cancel": "cancel requested", "suspend": "suspend requested", "resume": "resumed"}
    print(f"workflowrun/{run}: {done[command]}")
    return 0


async def redrive(target: Target, run: str) -> int:
    """`baton redrive`: bump `spec.redrive` by one, whoever else bumps it meanwhile."""
    async with open_cluster(target) as (kube, namespace):
        value = await _act(runactions.redrive(kube, namespace, run), namespace, run)
    print(f"workflowrun/{run}: redrive {value} requested")
    return 0


async def _act(request: Awaitable[T], namespace: str, run: str) -> T:
    """A write of `baton.cli.runactions`, its failures turned into one-line CommandErrors."""
    try:
        return await request
    except ApiError as exc:
        raise _refusal(exc, namespace, run) from None
    except runactions.RunNotFoundError:
        raise _not_found(run, namespace) from None
    except runactions.RaceLostError as exc:
        raise CommandError(str(exc)) from None


async def history(target: Target, run: str, output: Output | None) -> int:
    """`baton history`: the run's recorded events as a timeline (or JSON, YAML; `-o wide`
    adds each event's time)."""
    async with open_cluster(target) as (kube, namespace):
        current = await _call(kube.get(path_of(RUNS, namespace, run)), namespace, run)
        if current is None:
            raise _not_found(run, namespace)
        entries = await _call(read_run_history(kube, current), namespace)
    if output in DATA_FORMATS:
        print(dump([entry.to_json() for entry in entries], output))
        return 0
    phase = phase_of(current)
    if not entries:
        print(f"{run}: {phase}, no events recorded yet")
        return 0
    count = f"{len(entries)} event{'s' if len(entries) != 1 else ''}"
    span = format_duration(entries[-1].at - entries[0].at) if len(entries) > 1 else "0s"
    print(f"{run}: {phase_painter(colour_enabled(sys.stdout))(phase)}, {count} over {span}")
    print("\n".join(history_lines(entries, absolute=output is Output.WIDE)))
    return 0


async def get(
    target: Target, run: str | None, everywhere: bool, output: Output | None, selector: str = ""
) -> int:
    """`baton get`: the table of runs (those matching the label `selector`), or one run in
    detail (or as `-o` asks)."""
    paint = phase_painter(colour_enabled(sys.stdout))
    async with open_cluster(target) as (kube, namespace):
        if run is not None:
            found = await _call(kube.get(path_of(RUNS, namespace, run)), namespace, run)
            if found is None:
                raise _not_found(run, namespace)
            print(render_run(found, output, time.time(), paint))
            return 0
        path = path_of(RUNS, None if everywhere else namespace)
        runs = await _call(kube.list(path, label_selector=selector or None), namespace)
    if not runs and output not in DATA_FORMATS:
        where = "any namespace" if everywhere else f'namespace "{namespace}"'
        matching = f" matching {selector}" if selector else ""
        print(f"no workflowruns{matching} in {where}", file=sys.stderr if output else sys.stdout)
        return 0
    print(render_runs(runs, output, time.time(), namespaces=everywhere, paint=paint))
    return 0


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
            "(kubectl apply --server-side -f crds/, or the Helm chart)"
        )
    if exc.status == 404 and run is not None and "workflowruns" in exc.message:
        return _not_found(run, namespace)
    message = " ".join(exc.message.split()) or exc.reason
    return CommandError(f"the API server refused: {message} ({exc.status})")


# -- describe, logs, query, delete, resubmit ---------------------------------------------------


async def _existing(kube: Kube, namespace: str, run: str) -> dict[str, Any]:
    found = await _call(kube.get(path_of(RUNS, namespace, run)), namespace, run)
    if found is None:
        raise _not_found(run, namespace)
    return found


async def describe(target: Target, run: str, output: Output | None) -> int:
    """`baton describe`: the run's steps as a tree, from its definition snapshot."""
    async with open_cluster(target) as (kube, namespace):
        found = await _existing(kube, namespace, run)
        status = found.get("status") or {}
        definition = await _call(read_definition(kube, found), namespace)
        children = await _call(read_children(kube, found), namespace)
    now = time.time()
    nodes = build_tree(definition, status, children)
    if output in DATA_FORMATS:
        print(dump(describe_data(found, nodes, now), output))
        return 0
    paint = phase_painter(colour_enabled(sys.stdout))
    print("\n".join(describe_lines(found, nodes, now, wide=output is Output.WIDE, paint=paint)))
    return 0


async def query(target: Target, run: str, name: str | None, output: Output | None) -> int:
    """`baton query`: the run's published queries (status.queries), or one of them."""
    async with open_cluster(target) as (kube, namespace):
        found = await _existing(kube, namespace, run)
    queries = (found.get("status") or {}).get("queries") or {}
    if name is not None:
        if name not in queries:
            known = ", ".join(sorted(queries)) or "none yet"
            raise CommandError(f'workflowrun "{run}" has no query "{name}" (its queries: {known})')
        print(dump(queries[name], output or Output.JSON))
        return 0
    if output in DATA_FORMATS:
        print(dump(queries, output))
    elif not queries:
        print(f"{run}: no queries published yet", file=sys.stderr)
    else:
        rows = [["NAME", "VALUE"], *([k, json.dumps(v)] for k, v in sorted(queries.items()))]
        print(table(rows))
    return 0


async def delete(target: Target, runs: list[str]) -> int:
    """`baton delete`: delete runs (their history, Jobs and owned child runs go with them)."""
    async with open_cluster(target) as (kube, namespace):
        for run in runs:
            deleted = await _call(kube.delete(path_of(RUNS, namespace, run)), namespace, run)
            if not deleted:
                raise _not_found(run, namespace)
            print(f'workflowrun.baton.dev "{run}" deleted')
    return 0


async def resubmit(
    target: Target, run: str, name: str | None, *, wait: bool, timeout: float | None
) -> int:
    """`baton resubmit`: a new run of the same workflow with the same input."""
    async with open_cluster(target) as (kube, namespace):
        found = await _existing(kube, namespace, run)
        manifest = resubmit_manifest(found, name)
        return await _start(kube, namespace, manifest, wait=wait, timeout=timeout)


async def logs(
    target: Target, run: str, step: str | None, attempt: int | None, *, follow: bool
) -> int:
    """`baton logs`: the log of a Job step's pod (any attempt while its pod exists)."""
    async with open_cluster(target) as (kube, namespace):
        found = await _existing(kube, namespace, run)
        pods = await _call(read_job_pods(kube, found), namespace)
        chosen = choose_pod(run, pods, step, attempt, found.get("status") or {})
        print(f"==> {chosen.describe()} <==", file=sys.stderr, flush=True)
        try:
            async for chunk in pod_log(kube, namespace, chosen.name, follow=follow):
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        except ApiError as exc:
            message = " ".join(exc.message.split()) or exc.reason
            raise CommandError(f"cannot read the log of pod {chosen.name}: {message}") from None
    return 0


# -- completion -------------------------------------------------------------------------------


async def names(target: Target, kind: Kind, run: str | None) -> list[str]:
    """What `baton __complete` offers for `kind`: names of runs, workflows or namespaces, or the
    signals, steps or queries of `run`."""
    async with open_cluster(target) as (kube, namespace):
        if kind in (Kind.RUNS, Kind.WORKFLOWS, Kind.NAMESPACES):
            path = {
                Kind.RUNS: path_of(RUNS, namespace),
                Kind.WORKFLOWS: path_of("workflows", namespace),
                Kind.NAMESPACES: core_path("namespaces"),
            }[kind]
            return sorted(str(item["metadata"]["name"]) for item in await kube.list(path))
        if run is None:
            return []
        found = await kube.get(path_of(RUNS, namespace, run))
        if found is None:
            return []
        status = found.get("status") or {}
        if kind is Kind.STEPS:
            return sorted(status.get("steps") or {})
        if kind is Kind.QUERIES:
            return sorted(status.get("queries") or {})
        spec = found.get("spec") or {}
        definition = spec.get("workflow")
        ref = (spec.get("workflowRef") or {}).get("name")
        if definition is None and ref:
            workflow = await kube.get(path_of("workflows", namespace, str(ref)))
            definition = (workflow or {}).get("spec")
        if kind is Kind.UPDATES:
            return update_names(definition or {})
        return signal_names(definition or {})
