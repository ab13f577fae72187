"""The namespace's history journal: the batches of many runs committed by one write.

A run's history lives in its own chunks (baton.store.history), one write per batch of one run.
At 100 runs in flight that is 100 writes for 100 batches, while the batches are small and come
at once. The journal is one ConfigMap per namespace, `baton-journal` (`baton.dev/part:
journal`), written by the operator only, through one writer task per namespace: a run loop
hands it a batch (sealed exactly as in a chunk: MAC over the run's uid, the batch number and
the text) and awaits it; the writer takes everything queued into ONE merge patch fenced on the
journal's `resourceVersion`, then resolves every waiter. There is no deliberate linger: appends
queue while a write is in flight, so one run alone waits for nothing, and 100 runs in flight
share writes.

Keys are `<run name>.<run uid>.<batch number, 12 digits>` (a ConfigMap key's charset; names are
at most 200 characters). Every batch of a run after its first commits here, the ones that then
settle into the run's chunk too: this object's `resourceVersion` is what orders the appends of
two writers of one run (baton.store.history, "Fencing"). A batch leaves the journal for its
run's chunks when the run ends or a watched change (a wait beginning, a failure) is written, or
when the run's journal entries pass `RUN_BYTES`: the run loop writes its journaled batches into
its chunk in one fenced patch (`HistoryLog`), then hands the journal keys to `remove`, which
rides on the next journal write (or a write of its own after `REMOVAL_DELAY` when none comes). A
crash between the two leaves a batch in both places: readers take it once (same number, both
verified; two different texts are `HistoryTampered`). A batch over `ENTRY_BYTES`, or any once
the journal passes `MAX_BYTES`, comes by reference (`JournalFullError` asks for that).

A 409 on the journal means another writer changed it (a replica that has not noticed it lost
its peering, a human): the writer reads it again and fails every queued append with
`JournalConflictError`, which a run loop takes as a chunk's `HistoryConflictError`: it reloads
from the history. Each read counts in `view`, which the runs' histories pin: what was read may
no longer show a batch the other writer committed and moved to its run's chunk since.

Trust. A ConfigMap of that name that Baton did not create (no valid `baton.dev/journal-mac`, an
HMAC of the namespace under the history key) is never written: appends are refused with
`JournalUnavailableError` and go to the runs' chunks as before, and the operator logs why.
Entries carry their own MAC, so a forged or edited entry fails verification like a chunk's; a
journal deleted or emptied loses batches the status may have folded, which `read_tail` reports
(`HistoryTampered`: the history ends before them).

Leftovers. Entries of a run that is gone (deleted, or recreated under its name) or finished (a
finished run's batches are all in its chunks: its last batch moves them there) are removed when
the run is deleted and by a sweep the first time the writer reads the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from baton.api.labels import PART
from baton.failpoints import failpoint
from baton.store.kube import ApiError, Kube, core_path
from baton.store.ref import RunRef
from baton.store.startup import ConfigMapIndex

log = logging.getLogger("baton.journal")

NAME = "baton-journal"
JOURNAL = "journal"
"""`baton.dev/part` of the journal."""
SEAL = "baton.dev/journal-mac"
_SEAL_CONTEXT = b"baton-journal-v1"
MAX_BYTES = 640 * 1024
"""The journal's data stays under this (a ConfigMap holds 1 MiB; removals pending included)."""
REFERENCE_BYTES = 512
"""An entry this small (a batch stored by reference) may use the journal up to `HARD_BYTES`."""
HARD_BYTES = 900 * 1024
"""The most the journal's data holds: past `MAX_BYTES` only batches by reference are taken, so
that a full journal still commits every batch (as a reference to its own ConfigMap)."""
WRITE_BYTES = 192 * 1024
"""Most bytes of new entries one journal write carries."""
ENTRY_BYTES = 16 * 1024
"""A batch larger than this goes to its run's chunk directly."""
RUN_BYTES = 48 * 1024
"""A run whose journaled batches would pass this moves them to its chunk with the next one."""
REMOVAL_DELAY = 2.0
"""Seconds removals wait for a journal write to ride on before the writer writes them alone."""

RunLookup = Callable[[str, str], Awaitable[tuple[str, bool] | None]]
"""(namespace, run name) -> (the run's uid, whether it finished), or None when there is no such
run: what the sweep asks of each run with entries in the journal."""


class JournalConflictError(Exception):
    """Someone else changed the journal since this writer last read or wrote it."""


class JournalUnavailableError(Exception):
    """The journal cannot take this batch (not Baton's, or full even for a reference): the run
    writes it to its own chunk."""


class JournalFullError(JournalUnavailableError):
    """The journal is past `MAX_BYTES`: it takes this batch only by reference."""


def entry_key(run: RunRef, number: int) -> str:
    """The journal key of batch `number` of `run`."""
    return f"{run.name}.{run.uid}.{number:012d}"


def parse_key(key: str) -> tuple[str, str, int] | None:
    """(run name, run uid, batch number) of a journal key, or None for a key Baton does not
    write."""
    name, _, rest = key.rpartition(".")
    number = rest
    run, _, uid = name.rpartition(".")
    if not run or len(uid) != 36 or len(number) != 12 or not number.isdigit():
        return None
    return run, uid, int(number)


@dataclass
class _Append:
    key: str
    text: str
    done: asyncio.Future[None]


@dataclass
class Journal:
    """The journal of one namespace and its writer task."""

    kube: Kube
    namespace: str
    key: bytes
    labels: dict[str, str]
    index: ConfigMapIndex | None = None
    lookup: RunLookup | None = None
    _data: dict[str, str] | None = None
    _version: str | None = None
    _refused: str | None = None
    _queue: list[_Append] = field(default_factory=list)
    _removals: set[str] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _removal_timer: asyncio.TimerHandle | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    writes: int = 0
    """Journal writes made, for tests."""
    view: int = 0
    """How many times this writer read the journal: a run's view of its history is current
    while this has not moved since the run read it (`HistoryLog` pins it), since a read after
    the first means someone else wrote (baton.store.history, "Fencing")."""

    @property
    def path(self) -> str:
        return core_path("configmaps", self.namespace, NAME)

    def seal(self) -> str:
        message = b"\n".join([_SEAL_CONTEXT, self.namespace.encode()])
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    # -- reading ----------------------------------------------------------------------------

    async def entries(self, run: RunRef) -> dict[int, str]:
        """The journal's batches of `run` as (number -> stored text), as this writer last read
        or wrote the journal (a change by anyone else fails the next write, on which every
        waiter reloads and this view is read again). Nothing when the journal is not Baton's."""
        await self._ensure()
        found: dict[int, str] = {}
        for key, text in (self._data or {}).items():
            parsed = parse_key(key)
            if parsed is not None and parsed[1] == run.uid:
                found[parsed[2]] = text
        return found

    async def current_view(self) -> int:
        """`view`, once the journal was read: what a run loop pins before it reads its history."""
        await self._ensure()
        return self.view

    async def _ensure(self) -> None:
        async with self._lock:
            if self._data is None and self._refused is None:
                await self._read(first=True)

    async def _read(self, *, first: bool = False) -> None:
        """Read the journal (through the start-up index the first time), or create it."""
        config_map: dict[str, Any] | None
        if first and self.index is not None:
            config_map = await self.index.read(self.namespace, NAME)
        else:
            config_map = await self.kube.get(self.path)
        if config_map is None:
            self._data, self._version = {}, None
        else:
            self._take(config_map)
        self.view += 1
        if first and self._refused is None:
            await self._sweep()

    def _take(self, config_map: dict[str, Any]) -> None:
        meta = config_map.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        mac = str(annotations.get(SEAL) or "")
        if labels.get(PART) != JOURNAL or not hmac.compare_digest(mac, self.seal()):
            if self._refused is None:
                log.warning(
                    "ConfigMap %s/%s was not created by Baton (no valid %s annotation): it is "
                    "not used as the history journal, runs write their own chunks; delete it "
                    "to let the operator create its journal",
                    self.namespace,
                    NAME,
                    SEAL,
                )
            self._refused = "not Baton's"
            self._data, self._version = None, None
            return
        self._data = dict(config_map.get("data") or {})
        self._version = str(meta.get("resourceVersion"))

    async def _sweep(self) -> None:
        """Remove the entries of runs that are gone or finished (left by a crash, or by runs
        deleted while no operator ran)."""
        if self.lookup is None or not self._data:
            return
        drop: dict[str, bool] = {}
        for key in list(self._data):
            parsed = parse_key(key)
            if parsed is None:
                continue
            name, uid, _ = parsed
            if uid not in drop:
                found = await self.lookup(self.namespace, name)
                drop[uid] = found is None or found[0] != uid or found[1]
            if drop[uid]:
                self._removals.add(key)
        if self._removals:
            log.info(
                "history journal of %s: %d entries of runs gone or finished to remove",
                self.namespace,
                len(self._removals),
            )
            self._schedule_removal()

    # -- writing ----------------------------------------------------------------------------

    async def append(self, run: RunRef, number: int, text: str) -> None:
        """Commit batch `number` of `run` (its sealed text) to the journal; returns once it is
        written. JournalConflictError when another writer changed the journal or holds that
        batch; JournalFullError when the batch must come by reference; JournalUnavailableError
        when it must go to the run's chunk instead."""
        if len(text.encode()) > ENTRY_BYTES:
            raise JournalFullError("batch too large for a journal entry")
        await self._ensure()
        if self._refused is not None:
            raise JournalUnavailableError(f"the journal is {self._refused}")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Append(entry_key(run, number), text, done))
        self._start()
        self._wake.set()
        await done

    def remove(self, keys: Iterable[str]) -> None:
        """Drop `keys` (moved to their run's chunks, or of a deleted run) with the next write."""
        new = {k for k in keys if self._data is None or k in self._data}
        if not new:
            return
        self._removals |= new
        self._schedule_removal()

    def forget(self, run_uid: str) -> None:
        """The run `run_uid` was deleted: its entries go with the next write."""
        keys = [k for k in self._data or {} if (parse_key(k) or ("", "", 0))[1] == run_uid]
        self.remove(keys)

    async def drain(self) -> None:
        """Write the pending removals now (a chunk is closed only when none of its batches is
        still in the journal, so `read_tail`, which reads from the status's chunk on, finds every
        copy)."""
        if not self._removals:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Append("", "", done))
        self._start()
        self._wake.set()
        await done

    def _schedule_removal(self) -> None:
        if self._removal_timer is None:
            loop = asyncio.get_running_loop()
            self._removal_timer = loop.call_later(REMOVAL_DELAY, self._removal_due)

    def _removal_due(self) -> None:
        self._removal_timer = None
        if self._removals:
            self._start()
            self._wake.set()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._removal_timer is not None:
            self._removal_timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue or self._removals:
                taken: list[_Append] = []
                size = 0
                while self._queue and (not taken or size < WRITE_BYTES):
                    item = self._queue.pop(0)
                    size += len(item.text.encode())
                    taken.append(item)
                try:
                    await self._write(taken)
                except Exception as exc:  # every waiter hears it; the writer goes on
                    for item in taken:
                        if not item.done.done():
                            item.done.set_exception(exc)
                    if not self._queue:
                        break

    async def _write(self, taken: list[_Append]) -> None:
        async with self._lock:
            if self._data is None and self._refused is None:
                await self._read(first=True)
        if self._refused is not None:
            raise JournalUnavailableError(f"the journal is {self._refused}")
        assert self._data is not None
        data = self._data
        appends = {item.key: item.text for item in taken if item.key}
        removals = {k for k in self._removals if k in data and k not in appends}
        used = sum(len(v.encode()) for k, v in data.items() if k not in removals)
        fits: dict[str, str] = {}
        for item in taken:
            if not item.key:
                continue
            if item.key in data:
                # That batch of that run is there already: another loop of the run wrote it.
                item.done.set_exception(
                    JournalConflictError(f"journal entry {item.key} was written by another writer")
                )
                continue
            size = len(item.text.encode())
            if used + size > HARD_BYTES:
                item.done.set_exception(JournalUnavailableError("the journal is full"))
                continue
            if used + size > MAX_BYTES and size > REFERENCE_BYTES:
                item.done.set_exception(JournalFullError("the journal is full"))
                continue
            used += size
            fits[item.key] = item.text
        if not fits and not removals:
            self._removals.clear()
            for item in taken:
                if not item.done.done():
                    item.done.set_result(None)
            return
        patch: dict[str, Any] = {"data": {**fits, **dict.fromkeys(removals)}}
        try:
            if self._version is None:
                written = await self._create(fits)
            else:
                patch["metadata"] = {"resourceVersion": self._version}
                written = await self.kube.patch(self.path, patch)
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise
            # Changed (or deleted) by someone else: nobody's view of it is current any more,
            # the appends queued meanwhile included (they fail with these).
            async with self._lock:
                await self._read()
            taken.extend(self._queue)
            self._queue.clear()
            raise JournalConflictError(
                f"history journal {self.namespace}/{NAME} changed under this writer"
            ) from None
        self.writes += 1
        failpoint("after-journal-write")
        self._take(written)
        self._removals -= removals
        for item in taken:
            if not item.done.done():
                item.done.set_result(None)

    async def _create(self, data: dict[str, str]) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": NAME,
                "namespace": self.namespace,
                "labels": {**self.labels, PART: JOURNAL},
                "annotations": {SEAL: self.seal()},
            },
            "data": data,
        }
        return await self.kube.create(core_path("configmaps", self.namespace), body)


@dataclass
class Journals:
    """The journal of each namespace the operator writes histories in."""

    kube: Kube
    key: bytes
    labels: dict[str, str]
    index: ConfigMapIndex | None = None
    lookup: RunLookup | None = None
    _by_namespace: dict[str, Journal] = field(default_factory=dict)

    def of(self, namespace: str) -> Journal:
        journal = self._by_namespace.get(namespace)
        if journal is None:
            journal = Journal(
                self.kube, namespace, self.key, self.labels, index=self.index, lookup=self.lookup
            )
            self._by_namespace[namespace] = journal
        return journal

    def forget(self, namespace: str, run_uid: str) -> None:
        journal = self._by_namespace.get(namespace)
        if journal is not None:
            journal.forget(run_uid)

    def reset(self) -> None:
        """Forget every view (this replica stopped being the active one; the next read is
        fresh)."""
        for journal in self._by_namespace.values():
            if journal._removal_timer is not None:
                journal._removal_timer.cancel()
            if journal._task is not None:
                journal._task.cancel()
        self._by_namespace.clear()
