"""The memoization cache (`memoize`): ConfigMaps of stored step outputs, owned by the Workflow.

Scope. One ConfigMap per step of a Workflow, in the Workflow's (and so the run's) namespace,
named by `baton.api.attempts.memo_name` from the Workflow's name, uid and the step's name, and
owned by the Workflow: deleting the Workflow deletes its caches, and a Workflow applied again
under the same name starts with none. Entries are keyed by the rendered key, so two steps never
share entries, every run of the Workflow does. A run never reads or writes another namespace:
the namespace and Workflow are the run's own (`RunRef.namespace`, its `workflowRef`), never
anything the key or an entry says. A run with an inline definition has no Workflow, so no
cache: it always misses and stores nothing.

Entries. `data["e-<sha256(key)[:40]>"]` is the JSON `{"key", "storedAt", "storedBy", "output"}`;
the key is kept whole and compared, so a collision or a hand-edited entry is a miss, never
another key's output. Whatever a user wrote into the ConfigMap is read as untrusted: an entry
that does not parse is a miss.

Bounds. At most `MAX_ENTRIES` entries and `MAX_BYTES` of entries per ConfigMap; storing
evicts the oldest (by `storedAt`) until the new one fits. An output whose entry exceeds
`MAX_ENTRY_BYTES` is not cached (logged, and the step's history shows the next run's miss).

Writes. Read, change, write with the ConfigMap's resourceVersion (a merge patch carrying it),
again on a conflict: two runs storing at once both land. Writing an entry again only refreshes
it, so a re-issued store is harmless. Storing is best effort: a store that fails or is lost to
a crash of the operator is a later miss, which runs the step.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from baton.api.attempts import memo_name
from baton.api.labels import API_VERSION, PART, STEP, WORKFLOW, label_value
from baton.engine.commands import LookupMemo, StoreMemo
from baton.engine.events import MemoResolved
from baton.engine.state import parse_rfc3339, rfc3339, to_millis
from baton.store.kube import ApiError, Kube, core_path, path_of
from baton.store.ref import RunRef

log = logging.getLogger("baton.memo")

MAX_ENTRIES = 100
"""Entries one step's cache keeps; the oldest go first."""
MAX_BYTES = 512 * 1024
"""Bytes of entries one step's cache keeps: half of etcd's 1 MiB object limit, so a cache is
never the object the API server refuses."""
MAX_ENTRY_BYTES = MAX_BYTES // 4
"""The largest entry stored: a larger output is not cached (it would evict most others)."""
_WRITE_TRIES = 5
"""Read-change-write rounds against concurrent writers before the store gives up (logged)."""
PART_MEMO = "memo"


class MemoReason(StrEnum):
    """Why a lookup missed, as recorded in `MemoResolved.reason` (some with details after)."""

    ABSENT = "absent"
    EXPIRED = "expired"
    NO_WORKFLOW = "no Workflow: a run with an inline definition has no cache"
    UNREADABLE = "unreadable entry"


def entry_key(cache_key: str) -> str:
    """The ConfigMap data key of `cache_key`'s entry."""
    return "e-" + hashlib.sha256(cache_key.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Entry:
    """One stored output: its whole key, when (ms since the epoch) and by which run."""

    key: str
    stored_at: int
    stored_by: str
    output: Any


def parse_entry(text: str) -> Entry | None:
    """An entry from its JSON, or None for anything else (the ConfigMap is user-writable)."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            return None
        return Entry(
            key=data["key"],
            stored_at=parse_rfc3339(str(data["storedAt"])),
            stored_by=str(data.get("storedBy", "")),
            output=data.get("output"),
        )
    except (ValueError, KeyError, TypeError):
        return None


class MemoCache:
    """Lookups and stores of memoized steps' outputs, for every run loop of the operator."""

    def __init__(self, kube: Kube, labels: Mapping[str, str]) -> None:
        self.kube = kube
        self.labels = dict(labels)

    async def _workflow_uid(self, namespace: str, workflow: str) -> str | None:
        body = await self.kube.get(path_of("workflows", namespace, workflow))
        return None if body is None else str(body["metadata"]["uid"])

    async def lookup(
        self, run: RunRef, workflow: str | None, command: LookupMemo, *, now: float
    ) -> MemoResolved:
        """The answer to `command` for `run` (whose Workflow is `workflow`, None when inline)
        at `now` (seconds): a hit, or a miss with its reason. Never raises for the API: an
        unavailable cache is a miss, so the step runs."""

        def miss(reason: str) -> MemoResolved:
            return MemoResolved(
                key=command.key,
                attempt=command.attempt,
                iteration=command.iteration,
                cache_key=command.cache_key,
                hit=False,
                reason=reason,
            )

        if workflow is None:
            return miss(MemoReason.NO_WORKFLOW)
        try:
            uid = await self._workflow_uid(run.namespace, workflow)
            if uid is None:
                return miss(f"Workflow {workflow!r} is gone")
            name = memo_name(workflow, uid, command.step)
            body = await self.kube.get(core_path("configmaps", run.namespace, name))
        except ApiError as exc:
            log.warning("%s/%s: cache of %s unreadable: %s", run.namespace, run.name, command, exc)
            return miss(f"unavailable: {exc}")
        text = ((body or {}).get("data") or {}).get(entry_key(command.cache_key))
        if text is None:
            return miss(MemoReason.ABSENT)
        entry = parse_entry(text)
        if entry is None or entry.key != command.cache_key:
            return miss(MemoReason.UNREADABLE)
        if command.max_age is not None and to_millis(now) - entry.stored_at > to_millis(
            command.max_age
        ):
            return miss(f"{MemoReason.EXPIRED} (stored {rfc3339(entry.stored_at)})")
        return MemoResolved(
            key=command.key,
            attempt=command.attempt,
            iteration=command.iteration,
            cache_key=command.cache_key,
            hit=True,
            output=entry.output,
            stored_at=rfc3339(entry.stored_at),
            stored_by=entry.stored_by,
        )

    async def store(
        self, run: RunRef, workflow: str | None, command: StoreMemo, *, now: float
    ) -> bool:
        """Store `command`'s output in the step's cache; False when it was not stored (no
        Workflow, too large, the API refused): logged, never raised."""
        where = f"{run.namespace}/{run.name} step {command.step}"
        if workflow is None:
            return False
        text = json.dumps(
            {
                "key": command.cache_key,
                "storedAt": rfc3339(to_millis(now)),
                "storedBy": run.name,
                "output": command.output,
            },
            separators=(",", ":"),
        )
        if len(text.encode()) > MAX_ENTRY_BYTES:
            log.info(
                "%s: output not cached: its entry is %d bytes, over the %d a cache entry may have",
                where,
                len(text.encode()),
                MAX_ENTRY_BYTES,
            )
            return False
        try:
            uid = await self._workflow_uid(run.namespace, workflow)
            if uid is None:
                return False
            name = memo_name(workflow, uid, command.step)
            for _ in range(_WRITE_TRIES):
                if await self._write(run.namespace, (workflow, uid, name), command, text):
                    return True
        except ApiError as exc:
            log.warning("%s: output not cached: %s", where, exc)
            return False
        log.warning("%s: output not cached: the cache kept changing under the write", where)
        return False

    async def _write(
        self, namespace: str, owner: tuple[str, str, str], command: StoreMemo, text: str
    ) -> bool:
        """One read-change-write round; False on a conflict with another writer."""
        _workflow, _uid, name = owner
        path = core_path("configmaps", namespace, name)
        body = await self.kube.get(path)
        key = entry_key(command.cache_key)
        if body is None:
            try:
                await self.kube.create(
                    core_path("configmaps", namespace),
                    self._new(namespace, owner, command.step, {key: text}),
                )
            except ApiError as exc:
                if exc.status == 409:
                    return False
                raise
            return True
        data: dict[str, str] = dict(body.get("data") or {})
        data.pop(key, None)
        changes: dict[str, str | None] = {key: text}
        for evicted in evictions(data, len(text.encode())):
            changes[evicted] = None
        patch = {
            "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
            "data": changes,
        }
        try:
            await self.kube.patch(path, patch)
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def _new(
        self, namespace: str, owner: tuple[str, str, str], step: str, data: Mapping[str, str]
    ) -> dict[str, Any]:
        workflow, uid, name = owner
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    **self.labels,
                    WORKFLOW: label_value(workflow),
                    STEP: label_value(step),
                    PART: PART_MEMO,
                },
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": "Workflow",
                        "name": workflow,
                        "uid": uid,
                        "controller": False,
                        "blockOwnerDeletion": False,
                    }
                ],
            },
            "data": dict(data),
        }


def evictions(data: Mapping[str, str], incoming: int) -> list[str]:
    """Data keys to remove, oldest first, so that `data` plus an entry of `incoming` bytes
    stays within MAX_ENTRIES and MAX_BYTES. Unreadable entries go first."""

    def age(item: tuple[str, str]) -> tuple[int, str]:
        entry = parse_entry(item[1])
        return (-1 if entry is None else entry.stored_at, item[0])

    ordered = sorted(data.items(), key=age)
    count = len(ordered) + 1
    size = sum(len(k) + len(v.encode()) for k, v in ordered) + incoming + len(entry_key(""))
    evicted: list[str] = []
    for key, value in ordered:
        if count <= MAX_ENTRIES and size <= MAX_BYTES:
            break
        evicted.append(key)
        count -= 1
        size -= len(key) + len(value.encode())
    return evicted
