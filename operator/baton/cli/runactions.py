"""The writes a user makes to a run — signal, update, cancel, suspend, resume, redrive — as the
command line and the web view both send them, with the reader's own rights.

The bodies are `baton.cli.runpatch`'s (pure, unit-tested); this module owns the requests and the
retries of guarded patches that lost a race. The API server's refusals propagate as `ApiError`
for the caller to word; a run that does not exist is `RunNotFoundError`, a race lost
`RACE_RETRIES` times in a row `RaceLostError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baton.cli.runpatch import (
    flag_patch,
    has_signal_list,
    redrive_patch,
    redrive_value,
    signal_patch,
)
from baton.cli.runread import RUNS
from baton.store.kube import ApiError, Kube, path_of

RACE_RETRIES = 5
"""Guarded patches (signal list creation, redrive) retried after losing a race this often."""


class RunNotFoundError(LookupError):
    """The run does not exist (any more)."""


class RaceLostError(RuntimeError):
    """Another client kept changing the field this write is guarded on."""


async def send_signal(kube: Kube, namespace: str, run: str, signal: Mapping[str, Any]) -> int:
    """Append `signal` to the run's `spec.signals`; returns its index in the list."""
    return await _append(kube, namespace, run, "signals", signal)


async def send_update(kube: Kube, namespace: str, run: str, request: Mapping[str, Any]) -> int:
    """Append the update `request` ({id, name, payload}) to the run's `spec.updates`; returns
    its index in the list. Its answer appears at `status.updates.<id>` (`update_answer`)."""
    return await _append(kube, namespace, run, "updates", request)


def update_answer(run: Mapping[str, Any], id: str) -> dict[str, Any] | None:
    """The answer to update `id` in the run's status, None while it has none."""
    answer = ((run.get("status") or {}).get("updates") or {}).get(id)
    return dict(answer) if isinstance(answer, Mapping) else None


async def _append(
    kube: Kube, namespace: str, run: str, field: str, entry: Mapping[str, Any]
) -> int:
    path = path_of(RUNS, namespace, run)
    # Nearly every run that is signalled has signals already, or gets its list created by the
    # first signal: try the plain append first and look at the object only if the server
    # refuses it.
    list_exists, seen = True, False
    for _ in range(RACE_RETRIES):
        try:
            updated = await kube.patch(
                path, signal_patch(entry, list_exists=list_exists, field=field), kind="json"
            )
        except ApiError as exc:
            if exc.status != 422:
                raise
            current = await kube.get(path)
            if current is None:
                raise RunNotFoundError(run) from None
            if seen and has_signal_list(current, field) == list_exists:
                # A patch built from what we read failed and the list is as we read it: the
                # server refused the signal itself. Its reason is the answer.
                raise
            # Otherwise the list was created (by another client, maybe just now) or is still
            # absent: patch again for the list as it is.
            list_exists, seen = has_signal_list(current, field), True
            continue
        return len(updated["spec"][field]) - 1
    raise RaceLostError(f'workflowrun "{run}": spec.{field} kept changing; try again')


async def set_flag(kube: Kube, namespace: str, run: str, field: str, value: bool) -> None:
    """Set the boolean `spec.<field>` (cancel, suspend) of the run."""
    await kube.patch(path_of(RUNS, namespace, run), flag_patch(field, value))


async def redrive(kube: Kube, namespace: str, run: str) -> int:
    """Bump `spec.redrive` by one, whoever else bumps it meanwhile; returns the new value."""
    path = path_of(RUNS, namespace, run)
    for _ in range(RACE_RETRIES):
        current = await kube.get(path)
        if current is None:
            raise RunNotFoundError(run)
        value = redrive_value(current)
        try:
            updated = await kube.patch(path, redrive_patch(value), kind="json")
        except ApiError as exc:
            if exc.status != 422:
                raise
            latest = await kube.get(path)
            if latest is not None and redrive_value(latest) == value:
                raise
            continue  # another redrive landed first: bump again from its value
        return int(updated["spec"]["redrive"])
    raise RaceLostError(f'workflowrun "{run}": spec.redrive kept changing; try again')
