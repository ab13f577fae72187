"""Mutexes and semaphores in the Kubernetes API: one ConfigMap per lock, changed only with
optimistic concurrency.

The lock `name` of `kind` in a namespace is the ConfigMap `lock_object_name(kind, name)` in that
namespace (labelled `baton.dev/part=lock`, `baton.dev/lock-kind=<kind>`, owned by no run: a lock
outlives its holders). Its `lock` key holds the JSON record

    {"kind": "mutex", "name": "account-7", "limit": 1, "configMapKeyRef": null,
     "holders": [{"id": "<run uid>/<key>", "run": "pay-1", "uid": ..., "key": "pay",
                  "since": "<RFC 3339>"}],
     "queue":   [...the same, in arrival order...]}

Every change reads the object, computes the new record and writes it with the resourceVersion
it read as a precondition (a merge patch carrying `metadata.resourceVersion`; a create for a lock
that has no object yet): of two operators changing one lock at once, one writes and the other
reads again (409) and retries. So the record is the truth, whatever any operator remembers:

- fair: waiters are granted strictly in the order they were queued (first come, first served),
  and the queue is in the object, so it survives operator restarts;
- idempotent: a holder is identified by its run's uid and its holder key, so a request asked
  again after a crash (between the grant written here and the run's history recording it) finds
  itself among the holders, or keeps its place in the queue; it is never granted twice;
- live limits: a semaphore whose limit comes from a ConfigMap key reads it on every change; a
  limit raised grants the next waiters at the next change (a waiter's own re-ask included), a
  limit lowered lets the holders keep their slots and grants no one until they are under it;
- self-healing: before a request is left waiting, each holder is checked against the API (the
  run exists with the same uid and has not finished); a holder that is gone — a run deleted
  while the operator was down, or one whose release a crash lost — is dropped.

The object is owned by the runs in it (holders and waiters; one left empty keeps the runs that
last held it), so the garbage collector deletes it with the last of them: locks named after
inputs (`account-${{ input.id }}`) leave nothing behind once their runs are deleted, and the
operator needs no right to delete ConfigMaps.

Across namespaces: a lock may be kept in another namespace than its run's
(`synchronization.namespace`) when that namespace consents — its ConfigMap
`baton-shared-locks` has a key named after the run's namespace whose value lists the lock
names allowed (`consent_refusal`), read at every ask. Such a holder records its own namespace
(`Holder.namespace`; shown as `namespace/run`), its run is checked in that namespace, and it
cannot own the object (ownerReferences do not cross namespaces): the object is owned by the
local runs in it only, so one used only from other namespaces is kept when it empties (a small
ConfigMap the consenting namespace may delete once empty).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from baton.api.attempts import lock_object_name
from baton.api.labels import API_VERSION, LOCK_KIND, PART
from baton.api.locks import MAX_SEMAPHORE_LIMIT, SHARED_LOCKS_CONFIG_MAP
from baton.api.run import RunPhase
from baton.engine.commands import AcquireLock, ReleaseLock
from baton.failpoints import failpoint
from baton.store.kube import ApiError, Kube, core_path, path_of
from baton.store.objects import timestamp
from baton.store.ref import RunRef

log = logging.getLogger("baton.locks")

LOCK_PART = "lock"
"""`baton.dev/part` of a lock's ConfigMap."""
RECORD_KEY = "lock"
"""The ConfigMap key holding the record."""
MAX_WAITERS = 2_000
"""Waiters one lock queues (about 200 bytes each, well inside a ConfigMap's 1 MiB); more ask
again without a place until the queue has room, and say so in their status."""
CHECK_EVERY = 10.0
"""Seconds during which a lock's holders, once checked against the API, are not checked again:
every waiter asks every 15 s, and a semaphore of a hundred holders is a hundred reads a check."""
MAX_CONFLICTS = 50
"""Writes refused by a concurrent change before a change gives up (ApiError 409 to the caller,
whose command is performed again by its run loop's restart or the waiter's next ask)."""


class LockRecordError(Exception):
    """A lock object whose record cannot be read, or that holds another lock (a hash
    collision); the change is refused rather than guessed."""


@dataclass(frozen=True)
class Holder:
    """A run's step (or the run itself) holding or waiting for a lock."""

    id: str
    run: str
    uid: str
    key: str
    since: str
    namespace: str = ""
    """The run's namespace when not the lock's (a cross-namespace holder), else empty."""

    @property
    def shown(self) -> str:
        """The run as waiters see it: `name`, or `namespace/name` from another namespace."""
        return f"{self.namespace}/{self.run}" if self.namespace else self.run

    def to_json(self) -> dict[str, str]:
        out = {
            "id": self.id,
            "run": self.run,
            "uid": self.uid,
            "key": self.key,
            "since": self.since,
        }
        if self.namespace:
            out["namespace"] = self.namespace
        return out

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Holder:
        return Holder(
            id=str(data["id"]),
            run=str(data["run"]),
            uid=str(data["uid"]),
            key=str(data["key"]),
            since=str(data.get("since") or ""),
            namespace=str(data.get("namespace") or ""),
        )


@dataclass
class LockRecord:
    """The content of one lock's object."""

    kind: str
    name: str
    limit: int | None = None
    config_map: tuple[str, str] | None = None
    holders: list[Holder] = field(default_factory=list)
    queue: list[Holder] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        ref = None
        if self.config_map is not None:
            ref = {"name": self.config_map[0], "key": self.config_map[1]}
        return {
            "kind": self.kind,
            "name": self.name,
            "limit": self.limit,
            "configMapKeyRef": ref,
            "holders": [h.to_json() for h in self.holders],
            "queue": [h.to_json() for h in self.queue],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> LockRecord:
        ref = data.get("configMapKeyRef")
        return LockRecord(
            kind=str(data["kind"]),
            name=str(data["name"]),
            limit=data.get("limit"),
            config_map=(str(ref["name"]), str(ref["key"])) if ref else None,
            holders=[Holder.from_json(h) for h in data.get("holders") or []],
            queue=[Holder.from_json(h) for h in data.get("queue") or []],
        )

    @property
    def empty(self) -> bool:
        return not self.holders and not self.queue

    def holds(self, holder_id: str) -> bool:
        return any(h.id == holder_id for h in self.holders)

    def enqueue(self, holder: Holder) -> bool:
        """Queue `holder` unless it already holds or waits (idempotent); False when it has no
        place (the queue is full)."""
        if self.holds(holder.id) or any(h.id == holder.id for h in self.queue):
            return True
        if len(self.queue) >= MAX_WAITERS:
            return False
        self.queue.append(holder)
        return True

    def drop(self, gone: Callable[[Holder], bool]) -> bool:
        """Remove the holders and waiters `gone` selects; True when any was removed."""
        holders = [h for h in self.holders if not gone(h)]
        queue = [h for h in self.queue if not gone(h)]
        changed = len(holders) != len(self.holders) or len(queue) != len(self.queue)
        self.holders, self.queue = holders, queue
        return changed

    def promote(self, limit: int | None) -> list[Holder]:
        """Grant waiters, first come first served, while there are free slots; those granted.
        With no known limit (unreadable) nobody is granted."""
        granted: list[Holder] = []
        while limit is not None and self.queue and len(self.holders) < limit:
            holder = self.queue.pop(0)
            self.holders.append(holder)
            granted.append(holder)
        return granted


@dataclass(frozen=True)
class Acquired:
    """What an ask for a lock found: granted or not, who holds it (run names), those the same
    change granted (to be told), and why no one can be granted when it is not the holders."""

    granted: bool
    holders: list[str]
    promoted: list[Holder]
    problem: str | None = None
    refused: str | None = None
    """Set when the lock's namespace does not let the run's use it: why, and the fix."""


def consent_refusal(
    config_map: Mapping[str, Any] | None, lock_namespace: str, run_namespace: str, name: str
) -> str | None:
    """None when namespace `lock_namespace` lets runs of `run_namespace` use its lock `name`,
    according to its ConfigMap `baton-shared-locks` (`config_map`, None when absent): the key
    `run_namespace` lists the names allowed, `*` for all, `prefix*` for a prefix, one a line or
    comma-separated. Else the refusal, saying the fix."""
    fix = (
        f"add the key {run_namespace!r} to ConfigMap {SHARED_LOCKS_CONFIG_MAP!r} in namespace "
        f"{lock_namespace!r} (value: the lock names allowed, '*' for all), or drop "
        f"synchronization.namespace"
    )
    refused = f"namespace {lock_namespace!r} does not let {run_namespace!r} use its locks"
    if config_map is None:
        return f"{refused}: it has no ConfigMap {SHARED_LOCKS_CONFIG_MAP!r}; {fix}"
    raw = (config_map.get("data") or {}).get(run_namespace)
    if raw is None:
        return f"{refused}: {fix}"
    for line in str(raw).replace(",", "\n").splitlines():
        pattern = line.strip()
        if pattern == name or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return None
    return (
        f"namespace {lock_namespace!r} does not let {run_namespace!r} use its lock {name!r}: "
        f"add it to the key {run_namespace!r} of ConfigMap {SHARED_LOCKS_CONFIG_MAP!r} there"
    )


@dataclass(frozen=True)
class _Limit:
    value: int | None
    problem: str | None = None


class LockStore:
    """Changes to lock objects; see the module doc."""

    def __init__(self, kube: Kube, labels: Mapping[str, str]) -> None:
        self.kube = kube
        self.labels = dict(labels)
        self._checked: dict[tuple[str, str, str], float] = {}
        """When each lock's holders were last checked (monotonic), by namespace, kind, name."""

    # -- changes --------------------------------------------------------------------------

    async def acquire(self, run: RunRef, command: AcquireLock) -> Acquired:
        """Queue the holder (or find it queued or holding), grant whoever the limit lets in,
        and say whether the holder holds the lock now."""
        namespace = command.namespace or run.namespace
        foreign = run.namespace if namespace != run.namespace else ""
        if foreign:
            # Consent is read at every ask: a namespace withdrawing it refuses the next asks.
            shared = await self.kube.get(
                core_path("configmaps", namespace, SHARED_LOCKS_CONFIG_MAP)
            )
            refused = consent_refusal(shared, namespace, run.namespace, command.name)
            if refused is not None:
                return Acquired(granted=False, holders=[], promoted=[], refused=refused)
        me = Holder(command.holder, run.name, run.uid, command.key, timestamp(time.time()), foreign)
        result: Acquired | None = None

        async def change(record: LockRecord) -> bool:
            nonlocal result
            record.limit, record.config_map = command.limit, command.config_map
            limit = await self._limit(namespace, record)
            problem = limit.problem
            if not record.enqueue(me):
                problem = f"{MAX_WAITERS} runs wait for it already; asking again until one leaves"
            promoted = record.promote(limit.value)
            # About to wait: clear holders that are gone, then try again.
            if not record.holds(me.id) and await self._drop_dead(namespace, record):
                promoted += record.promote(limit.value)
            result = Acquired(
                granted=record.holds(me.id),
                holders=[h.shown for h in record.holders],
                promoted=[h for h in promoted if h.id != me.id],
                problem=problem,
            )
            return True

        await self._change(namespace, command.kind, command.name, change)
        assert result is not None
        if result.granted:
            failpoint("after-lock-grant")
        return result

    async def release(self, namespace: str, command: ReleaseLock) -> list[Holder]:
        """Drop the holder from the lock (holding or waiting); those granted in its place."""
        promoted: list[Holder] = []

        async def change(record: LockRecord) -> bool:
            nonlocal promoted
            if not record.drop(lambda h: h.id == command.holder):
                promoted = []
                return False
            promoted = record.promote((await self._limit(namespace, record)).value)
            return True

        await self._change(namespace, command.kind, command.name, change, create=False)
        if promoted:
            failpoint("after-lock-grant")
        return promoted

    async def forget(
        self, namespace: str, uid: str, keep: frozenset[str] = frozenset()
    ) -> list[Holder]:
        """Drop every place of run `uid` in every lock of the namespace but those in `keep`
        (holder ids): a deleted run's (keep nothing), or the releases a crash of the run's own
        loop lost (keep what its state still holds or waits for). Those granted in its place."""
        objects = await self.kube.list(
            core_path("configmaps", namespace), label_selector=f"{PART}={LOCK_PART}"
        )
        promoted: list[Holder] = []
        for obj in objects:
            try:
                record = _record(obj)
            except LockRecordError as exc:
                log.warning("%s/%s: %s", namespace, obj["metadata"]["name"], exc)
                continue
            mine = [h for h in (*record.holders, *record.queue) if h.uid == uid]
            if all(h.id in keep for h in mine):
                continue
            promoted.extend(await self._forget_in(namespace, record, uid, keep))
        if promoted:
            failpoint("after-lock-grant")
        return promoted

    async def _forget_in(
        self, namespace: str, found: LockRecord, uid: str, keep: frozenset[str]
    ) -> list[Holder]:
        granted: list[Holder] = []

        def gone(holder: Holder) -> bool:
            return holder.uid == uid and holder.id not in keep

        async def change(record: LockRecord) -> bool:
            nonlocal granted
            if not record.drop(gone):
                granted = []
                return False
            granted = record.promote((await self._limit(namespace, record)).value)
            return True

        await self._change(namespace, found.kind, found.name, change, create=False)
        return granted

    async def read(self, namespace: str, kind: str, name: str) -> LockRecord | None:
        """The record of a lock, None when it has no object (no holder, no waiter)."""
        obj = await self.kube.get(core_path("configmaps", namespace, lock_object_name(kind, name)))
        return None if obj is None else _record(obj)

    # -- the optimistic loop --------------------------------------------------------------

    async def _change(
        self,
        namespace: str,
        kind: str,
        name: str,
        change: Callable[[LockRecord], Awaitable[bool]],
        *,
        create: bool = True,
    ) -> None:
        """Read, `change` (False: nothing to write), write with the version read; again on a
        conflict. `create`: a lock with no object starts empty (else nothing is changed)."""
        object_name = lock_object_name(kind, name)
        path = core_path("configmaps", namespace, object_name)
        for conflict in range(MAX_CONFLICTS):
            obj = await self.kube.get(path)
            if obj is None and not create:
                return
            record = LockRecord(kind=kind, name=name) if obj is None else _record(obj)
            if record.kind != kind or record.name != name:
                raise LockRecordError(
                    f"ConfigMap {object_name!r} holds {record.kind} {record.name!r}, not "
                    f"{kind} {name!r}"
                )
            if not await change(record):
                return
            try:
                if obj is None:
                    await self.kube.create(
                        core_path("configmaps", namespace), self._body(object_name, record)
                    )
                else:
                    metadata: dict[str, Any] = {
                        "resourceVersion": obj["metadata"]["resourceVersion"]
                    }
                    if not record.empty:
                        metadata["ownerReferences"] = _owners(record)
                    patch = {"metadata": metadata, "data": {RECORD_KEY: _dump(record)}}
                    await self.kube.patch(path, patch)
                return
            except ApiError as exc:
                if exc.status not in (404, 409):
                    raise
                # Changed (or deleted, or created) by someone else since it was read.
                await asyncio.sleep(random.uniform(0, min(0.05 * (conflict + 1), 1.0)))
        raise ApiError(409, "Conflict", f"lock {kind} {name!r}: too many concurrent changes")

    def _body(self, object_name: str, record: LockRecord) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": object_name,
                "labels": {**self.labels, PART: LOCK_PART, LOCK_KIND: record.kind},
                "annotations": {"baton.dev/lock": record.name},
                "ownerReferences": _owners(record),
            },
            "data": {RECORD_KEY: _dump(record)},
        }

    # -- checks ---------------------------------------------------------------------------

    async def _limit(self, namespace: str, record: LockRecord) -> _Limit:
        """The lock's limit now: written, or read from its ConfigMap key."""
        if record.config_map is None:
            return _Limit(record.limit if record.limit is not None else 1)
        name, key = record.config_map
        where = f"configMapKeyRef {name}/{key}"
        config_map = await self.kube.get(core_path("configmaps", namespace, name))
        if config_map is None:
            return _Limit(None, f"{where}: ConfigMap {name!r} not found; create it")
        raw = (config_map.get("data") or {}).get(key)
        if raw is None:
            return _Limit(None, f"{where}: the ConfigMap has no key {key!r}; add it")
        try:
            value = int(str(raw).strip())
        except ValueError:
            value = 0
        if not 1 <= value <= MAX_SEMAPHORE_LIMIT:
            # The value itself is not repeated: whoever reads the run's status may not be
            # allowed to read the ConfigMap.
            return _Limit(
                None,
                f"{where}: the value is not a limit; write a whole number from 1 to "
                f"{MAX_SEMAPHORE_LIMIT}",
            )
        return _Limit(value)

    async def _drop_dead(self, namespace: str, record: LockRecord) -> bool:
        """Drop holders whose run is gone or finished; True when any was dropped. At most once
        per CHECK_EVERY seconds per lock."""
        lock = (namespace, record.kind, record.name)
        now = time.monotonic()
        if now - self._checked.get(lock, -CHECK_EVERY) < CHECK_EVERY:
            return False
        if len(self._checked) > MAX_WAITERS:
            self._checked.clear()  # a bound, not a policy: a check more is harmless
        self._checked[lock] = now
        dead: set[str] = set()
        for holder in record.holders:
            where = holder.namespace or namespace
            body = await self.kube.get(path_of("workflowruns", where, holder.run))
            if body is None or body["metadata"].get("uid") != holder.uid or _finished(body):
                dead.add(holder.id)
        if dead:
            log.info(
                "%s/%s %s: dropped holders that are gone: %s",
                namespace,
                record.kind,
                record.name,
                ", ".join(sorted(dead)),
            )
        return bool(dead) and record.drop(lambda h: h.id in dead)


def _owners(record: LockRecord) -> list[dict[str, Any]]:
    """The runs holding or waiting for the lock, as its owners: the garbage collector deletes
    the object once every one of them is gone. A lock left with no one keeps the owners it had
    (the runs that last held it), so it goes with them. Runs of other namespaces cannot own it
    (see the module doc)."""
    owners: dict[str, dict[str, Any]] = {}
    for holder in (*record.holders, *record.queue):
        if holder.namespace:
            continue
        owners.setdefault(
            holder.uid,
            {
                "apiVersion": API_VERSION,
                "kind": "WorkflowRun",
                "name": holder.run,
                "uid": holder.uid,
            },
        )
    return list(owners.values())


def _finished(body: Mapping[str, Any]) -> bool:
    phase = (body.get("status") or {}).get("phase")
    try:
        return phase is not None and RunPhase(phase).finished
    except ValueError:
        return False


def _record(obj: Mapping[str, Any]) -> LockRecord:
    raw = (obj.get("data") or {}).get(RECORD_KEY)
    try:
        return LockRecord.from_json(json.loads(raw or ""))
    except (ValueError, KeyError, TypeError) as exc:
        name = obj["metadata"]["name"]
        raise LockRecordError(f"ConfigMap {name!r} holds no readable lock record: {exc}") from None


def _dump(record: LockRecord) -> str:
    return json.dumps(record.to_json(), separators=(",", ":"))
