"""A run's history: its append-only event log, kept in ConfigMaps `<run>-history-<n>`.

Layout. Each ConfigMap is a chunk, owned by the run (deleted with it) and labelled with the run's
uid and `baton.dev/part: history`. Every batch of events the run loop commits becomes one data
key, the batch's sequence number zero-padded to 12 digits, whose value is JSON lines: one
`HistoryEntry.to_json()` per line (`at` in seconds since the epoch). Appending a batch is a
single merge patch that adds one key, so a write costs the size of the batch, not of the log.
A chunk is closed once it passes `chunk_bytes`, far below etcd's object limit. A batch too large
for a journal entry keeps its lines in an immutable ConfigMap `<run>-batch-<digest>` (part
`batch`) and stores one line naming it with its SHA-256, under the batch's MAC as ever.

The definition snapshot. The first chunk, `<run>-history-0`, also carries the run's definition
snapshot under the data key `definition` (its seal in the annotations `baton.dev/mac` and
`baton.dev/workflow-generation`, as baton.store.snapshots makes it), written by the same create
as the run's first batch: a run's start is one write, and the snapshot and the start batch are
there together or not at all. Runs started by earlier versions keep theirs in `<run>-definition`
(baton.store.snapshots reads both); a definition too large to share a chunk with a batch still
gets its own ConfigMap (`DEFINITION_IN_CHUNK_BYTES`).

Durability. History is the write-ahead log and `status` the snapshot: the loop appends a batch
first and writes status after. `status.history` records how far the snapshot has folded
(`HistoryPosition`); entries past it, left by a crash between the two writes, are read back with
`read_tail` and folded again on restart, so no decided event is lost or applied twice.

Fencing. One loop per run is the rule, but for a moment two can run: the replica losing its
peering has not noticed yet. Every write is therefore conditional on a `resourceVersion` as this
writer last saw it, and every batch has one commit point that orders the writers: the create of
the first chunk for the first batch, the namespace's journal (baton.store.journal) for every
later one, also one that settles into the chunk at once — two objects fenced separately would
let one writer journal batch n while the other patched its own batch n into the chunk. Moving
committed batches into the open chunk, and closing a full chunk, are fenced on the chunk's
`resourceVersion` as read by `read_tail` or returned by this writer's last write. A writer
whose view turns out stale — the journal or the chunk changed under it, the next chunk already
created, or the journal re-read since it read the run (`Journal.view`, pinned by `read_tail`) —
gets `HistoryConflictError`: someone else appended, and it must reload from the history rather
than write over it. Without a journal (none given, or one Baton did not create) the chunk's
fence alone orders the writers, as every writer then appends there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from baton.api.labels import PART, RUN_UID
from baton.engine.events import HistoryEntry
from baton.failpoints import failpoint
from baton.store.journal import (
    JOURNAL,
    Journal,
    JournalConflictError,
    JournalFullError,
    JournalUnavailableError,
    entry_key,
    parse_key,
)
from baton.store.journal import NAME as JOURNAL_NAME
from baton.store.journal import RUN_BYTES as JOURNAL_RUN_BYTES
from baton.store.kube import ApiError, Kube, core_path
from baton.store.objects import belongs_to, create_config_map, owned_config_map
from baton.store.ref import RunRef
from baton.store.startup import ConfigMapIndex

HISTORY = "history"
EVENT = "event"
"""`baton.dev/part` of a ConfigMap holding one large history entry."""
BATCH = "batch"
"""`baton.dev/part` of a ConfigMap holding the lines of a batch committed by reference."""
INLINE_ENTRY_BYTES = 16 * 1024
"""Entries larger than this (as UTF-8 JSON) are stored by reference."""
MAX_BATCH_BYTES = 768 * 1024
"""Largest batch text a chunk takes: a ConfigMap's data may hold 1 MiB in all."""
MAX_ENTRY_BYTES = 1000 * 1024
"""Largest single entry: it must fit the data of its own ConfigMap."""
_SMALL_ENTRY_BYTES = 512
DEFINITION = "definition"
"""Data key of the first chunk holding the run's definition snapshot (not a batch)."""
DEFINITION_IN_CHUNK_BYTES = 128 * 1024
"""Largest definition snapshot the first chunk carries: with a batch of `MAX_BATCH_BYTES` it
stays under a ConfigMap's 1 MiB. A larger one keeps its own ConfigMap."""
_MAC_CONTEXT = b"baton-history-v1"
REF = "$ref"
BATCH_REF = "$batch"
MAC = "mac"


@dataclass(frozen=True)
class HistoryPosition:
    """Where the log ends: the open chunk, its size, the next batch number, events so far."""

    chunk: int = 0
    chunk_bytes: int = 0
    batches: int = 0
    events: int = 0

    def to_json(self) -> dict[str, int]:
        """The form kept in `status.history`."""
        return {
            "chunk": self.chunk,
            "chunkBytes": self.chunk_bytes,
            "batches": self.batches,
            "events": self.events,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> HistoryPosition:
        """Inverse of `to_json`; an empty position for a run that has none yet."""
        if not data:
            return HistoryPosition()
        return HistoryPosition(
            chunk=int(data.get("chunk", 0)),
            chunk_bytes=int(data.get("chunkBytes", 0)),
            batches=int(data.get("batches", 0)),
            events=int(data.get("events", 0)),
        )


def chunk_name(run_name: str, chunk: int) -> str:
    """Name of the history ConfigMap number `chunk` of `run_name`."""
    return f"{run_name}-history-{chunk}"


def encode_entry(entry: HistoryEntry) -> str:
    """One entry as the line the log keeps: compact UTF-8 JSON."""
    return json.dumps(entry.to_json(), separators=(",", ":"), ensure_ascii=False)


def encode_batch(entries: Iterable[HistoryEntry]) -> str:
    """The JSON lines of one batch (without its MAC line)."""
    return "\n".join(encode_entry(e) for e in entries)


def batch_mac(key: bytes, run_uid: str, number: int, text: str) -> str:
    """The MAC of batch `number` of run `run_uid` whose lines are `text`."""
    message = b"\n".join([_MAC_CONTEXT, run_uid.encode(), str(number).encode(), text.encode()])
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def split_batch(value: str) -> tuple[list[str], str | None]:
    """A stored batch as its entry lines and its MAC (None when it has no MAC line)."""
    lines = [line for line in value.split("\n") if line]
    if lines:
        try:
            last = json.loads(lines[-1])
        except ValueError:
            return lines, None
        if isinstance(last, dict) and set(last) == {MAC}:
            return lines[:-1], str(last[MAC])
    return lines, None


def batch_keys(data: Mapping[str, str] | None) -> list[str]:
    """The keys of a chunk's data that hold batches, in order: all but the first chunk's
    definition snapshot."""
    return sorted(key for key in data or {} if key != DEFINITION)


def decode_chunk(data: Mapping[str, str] | None) -> list[tuple[int, list[HistoryEntry]]]:
    """The batches of one chunk, in order, as (batch number, entries), neither verified nor
    with referenced entries resolved (a test's and a reader's view; the loop uses HistoryLog)."""
    batches = []
    for key in batch_keys(data):
        lines, _ = split_batch((data or {})[key])
        entries = [HistoryEntry.from_json(json.loads(line)) for line in lines]
        batches.append((int(key), entries))
    return batches


class HistoryConflictError(Exception):
    """Another writer appended to the run's history since this one last read or wrote it."""


class HistoryCorruptError(Exception):
    """The history cannot be trusted; `reason` is the run's error type and condition reason."""

    reason = "HistoryCorrupt"


class HistoryLostError(HistoryCorruptError):
    """A history ConfigMap the run's status points at is gone."""

    reason = "HistoryLost"


class HistoryTamperedError(HistoryCorruptError):
    """A batch does not verify, or batches are missing or out of order."""

    reason = "HistoryTampered"


class HistoryTooLargeError(Exception):
    """A batch that no ConfigMap can hold, even with its large entries stored by reference."""


CLOSED = "baton.dev/history-closed"
"""Annotation of a full chunk; setting it is the fenced write that closes the chunk."""

Loader = Callable[[str], Awaitable[dict[str, Any] | None]]


class HistoryLog:
    """Appends a run's batches and reads them back, fenced against a second writer and
    verified against the history key."""

    def __init__(
        self,
        kube: Kube,
        run: RunRef,
        owner: Mapping[str, Any],
        *,
        chunk_bytes: int,
        labels: Mapping[str, str] | None = None,
        key: bytes = b"",
        index: ConfigMapIndex | None = None,
        journal: Journal | None = None,
    ) -> None:
        self._kube = kube
        self._journal = journal
        """The namespace's journal (baton.store.journal) batches go to between settles."""
        self._journaled: dict[int, str] = {}
        """This run's batches in the journal and not in its chunks, by number."""
        self._pinned: int | None = None
        """The journal's `view` when this writer last read the run's history: appends are
        refused once it moved (see `_commit`)."""
        self._index = index
        """Where chunks are read from while the operator starts (baton.store.startup)."""
        self._run = run
        self._owner = dict(owner)
        self._chunk_bytes = chunk_bytes
        self._labels = dict(labels or {})
        self._key = key
        self._seen: tuple[str, str] | None = None
        """(name, resourceVersion) of the open chunk as this writer last read or wrote it."""
        self._carried: tuple[str, dict[str, str]] | None = None
        """The definition snapshot (text, seal annotations) the first chunk's create carries."""
        self._early: dict[str, Any] | None = None
        """The first chunk as `first_chunk` read it, for the next read of it (`read_tail`)."""

    def carry_definition(self, text: str, annotations: Mapping[str, str]) -> None:
        """Have the create of the first chunk carry the definition snapshot `text` and its seal
        (the run's start: snapshot and first batch in one write)."""
        self._carried = (text, dict(annotations))

    async def first_chunk(self) -> dict[str, Any] | None:
        """The run's first chunk (where its definition snapshot is), or None. The next read of
        it (by `read_tail`) is answered with this copy: nothing was written in between."""
        self._early = await self._read(chunk_name(self._run.name, 0), indexed=True)
        return self._early

    async def append(
        self, position: HistoryPosition, entries: list[HistoryEntry], *, settle: bool = False
    ) -> HistoryPosition:
        """Write one batch after `position`; returns the position after it. Once the run has a
        chunk and the namespace a journal, the batch commits in the journal (by reference when
        it is large or the journal full) and moves into the run's chunk, with the batches
        journaled before it, when `settle` (the run ends, or starts to wait) or when they grow
        too large. Raises HistoryTooLargeError, writing nothing, for a batch no ConfigMap can
        hold; HistoryConflictError when another writer appended since this one read."""
        if not entries:
            return position
        self._early = None  # read before this write: never an answer after it
        lines = await self._fit([encode_entry(e) for e in entries])
        number = position.batches
        text = self._sealed(number, "\n".join(lines))
        after = HistoryPosition(
            position.chunk, position.chunk_bytes, number + 1, position.events + len(entries)
        )
        if self._journal is not None and position.chunk_bytes > 0:
            committed = await self._commit(number, text)
            if committed is not None:
                self._journaled[number] = committed
                journaled = sum(len(t.encode()) for t in self._journaled.values())
                # The journal holds no more of a run than its open chunk can still take.
                room = min(JOURNAL_RUN_BYTES, self._chunk_bytes - position.chunk_bytes)
                if settle or journaled > room:
                    return await self._move_to_chunk(after)
                return after
        self._journaled[number] = text
        return await self._move_to_chunk(after)

    def _sealed(self, number: int, body: str) -> str:
        """Batch `number` as stored: its lines, then the line of its MAC."""
        mac = batch_mac(self._key, self._run.uid, number, body)
        return body + "\n" + json.dumps({MAC: mac})

    async def _commit(self, number: int, text: str) -> str | None:
        """Commit batch `number` in the journal; the text it holds there (the batch, or a
        reference to it), or None when the journal takes nothing and the chunk is the commit.

        Every batch after the first commits here, also one about to settle into the chunk:
        the journal is the one object whose `resourceVersion` orders the appends of every
        writer, so a second writer's append of the same batch is refused wherever the first
        put it. A writer whose journal view moved since it read the run (it re-read the
        journal: someone else wrote) has a stale view of the run and reloads."""
        assert self._journal is not None
        if self._pinned != await self._journal.current_view():
            raise HistoryConflictError(
                f"history journal {self._journal.namespace}/{JOURNAL_NAME} was written by "
                "another writer since this one read the run"
            )
        try:
            try:
                await self._journal.append(self._run, number, text)
                return text
            except JournalFullError:
                lines, _ = split_batch(text)
                reference = self._sealed(number, await self._store_batch("\n".join(lines)))
                await self._journal.append(self._run, number, reference)
                return reference
        except JournalConflictError as exc:
            raise HistoryConflictError(str(exc)) from None
        except JournalUnavailableError:
            return None  # not Baton's, or full even for a reference: the chunk commits

    async def _move_to_chunk(self, after: HistoryPosition) -> HistoryPosition:
        """Write the run's journaled batches (the last one included) into its open chunk (one
        fenced write, a second to close a full chunk), then hand their journal keys back for
        removal; the position `after` with the chunk where they went."""
        moved, self._journaled = self._journaled, {}
        data = {f"{n:012d}": moved[n] for n in sorted(moved)}
        size = sum(len(t.encode()) for t in data.values())
        chunk, used = after.chunk, after.chunk_bytes
        if used and used + size > self._chunk_bytes:
            if self._journal is not None:
                # No batch of a closed chunk may stay in the journal: readers look for copies
                # in the chunks from the status's on, and the open one.
                await self._journal.drain()
            await self._fenced_patch(chunk, {"metadata": {"annotations": {CLOSED: "true"}}})
            failpoint("history-chunk-closed")
            chunk, used = chunk + 1, 0
        if used == 0:
            used = await self._create(chunk, data)
        else:
            await self._fenced_patch(chunk, {"data": data})
        if self._journal is not None:
            failpoint("after-journal-compaction")
            self._journal.remove(entry_key(self._run, n) for n in moved)
        return HistoryPosition(chunk, used + size, after.batches, after.events)

    async def _fit(self, lines: list[str]) -> list[str]:
        """`lines` with large entries replaced by references, so the batch fits a chunk."""
        sizes = [len(line.encode()) for line in lines]
        for limit in (INLINE_ENTRY_BYTES, _SMALL_ENTRY_BYTES):
            for i, size in enumerate(sizes):
                if size > limit and not lines[i].startswith('{"$ref"'):
                    if size > MAX_ENTRY_BYTES:
                        raise HistoryTooLargeError(
                            f"a history entry of {size} bytes is over the {MAX_ENTRY_BYTES} a "
                            "ConfigMap can hold"
                        )
                    lines[i] = await self._store_entry(lines[i])
                    sizes[i] = len(lines[i].encode())
            total = sum(sizes) + len(sizes)
            if total <= MAX_BATCH_BYTES:
                return lines
        raise HistoryTooLargeError(
            f"a batch of {len(lines)} history entries takes {total} bytes even with its "
            f"entries stored by reference, over the {MAX_BATCH_BYTES} a chunk holds"
        )

    async def _store_batch(self, body: str) -> str:
        """Keep the lines of a batch in an immutable ConfigMap of their own; the one line that
        refers to them, which the batch holds instead (under the same MAC)."""
        return await self._store(body, suffix="batch", part=BATCH, key="lines", ref=BATCH_REF)

    async def _store_entry(self, line: str) -> str:
        """Keep one large entry in an immutable ConfigMap of its own; the line that refers to
        it, which the batch holds instead."""
        return await self._store(line, suffix="event", part=EVENT, key="json", ref=REF)

    async def _store(self, text: str, *, suffix: str, part: str, key: str, ref: str) -> str:
        """`text` in the run's immutable ConfigMap named after its digest (data key `key`);
        the reference line `{ref: name, "sha256": digest}` to it."""
        digest = hashlib.sha256(text.encode()).hexdigest()
        name = f"{self._run.name}-{suffix}-{digest[:16]}"
        body = owned_config_map(
            self._run,
            self._owner,
            self._labels,
            name=name,
            part=part,
            data={key: text},
            immutable=True,
        )
        await create_config_map(self._kube, self._run, body)
        return json.dumps({ref: name, "sha256": digest}, separators=(",", ":"))

    async def read_tail(
        self, position: HistoryPosition
    ) -> tuple[list[HistoryEntry], HistoryPosition]:
        """Entries written after `position` (left by a crash before the status write, or in
        the journal), and the position after them. Every batch read is verified; a batch both
        in a chunk and in the journal (a crash between a compaction and the journal's removal)
        is taken once, and must be the same. HistoryLostError or HistoryTamperedError when the
        log cannot be trusted."""
        if self._journal is not None:
            # Pinned before the chunks are read: a batch another writer journals after this
            # moves the view, and this writer's next append is refused (see `_commit`).
            self._pinned = await self._journal.current_view()
        tail: list[HistoryEntry] = []
        chunk, used, batches, events = (
            position.chunk,
            position.chunk_bytes,
            position.batches,
            position.events,
        )
        stored: list[tuple[str, int, str]] = []  # (where, number, text), in the order read
        while True:
            name = chunk_name(self._run.name, chunk)
            config_map = await self._read(name, indexed=True)
            if config_map is None:
                if chunk == position.chunk and position.batches > 0:
                    raise HistoryLostError(
                        f"history ConfigMap {name!r} is gone: the run's {position.batches} "
                        "batches of events cannot be read, and the run cannot go on without them"
                    )
                break
            self._remember(config_map)
            data = dict(config_map.get("data") or {})
            stored.extend((name, self._number(name, key), data[key]) for key in batch_keys(data))
            used = sum(len(v.encode()) for v in data.values())
            chunk += 1
        in_chunks = {number: text for _, number, text in stored}
        self._journaled = {}
        if self._journal is not None:
            copies = []
            for number, text in sorted((await self._journal.entries(self._run)).items()):
                if number not in in_chunks:
                    stored.append((f"journal {self._journal.namespace}", number, text))
                    self._journaled[number] = text
                elif in_chunks[number] != text:
                    raise HistoryTamperedError(
                        f"batch {number} is in a history chunk and in the journal, with "
                        "different texts"
                    )
                else:
                    copies.append(number)
            if copies:  # compacted before a crash, not yet removed
                self._journal.remove(entry_key(self._run, n) for n in copies)
        expected: int | None = None  # number of the next batch, once one was read
        for name, number, value in stored:
            if expected is not None and number != expected:
                raise HistoryTamperedError(
                    f"history ConfigMap {name!r}: batch {number} follows batch "
                    f"{expected - 1}; batches are missing or were added"
                )
            if number > batches:
                raise HistoryTamperedError(
                    f"history ConfigMap {name!r}: batch {number} follows batch "
                    f"{batches - 1}; batches are missing"
                )
            # Batches the snapshot has folded are checked, not decoded: their MAC covers
            # their text (references included), and nothing reads their entries.
            entries = await self._verify(name, number, value, decode=number >= batches)
            expected = number + 1
            if number < batches:
                continue
            tail.extend(entries)
            batches = number + 1
            events += len(entries)
        if position.batches > 0 and (expected or 0) < position.batches:
            raise HistoryTamperedError(
                f"the history ends before batch {position.batches - 1}, which the status has "
                "folded; batches were removed"
            )
        last = max(chunk - 1, position.chunk)
        if last != position.chunk or tail:
            position = HistoryPosition(last, used, batches, events)
        return tail, position

    @staticmethod
    def _number(name: str, key: str) -> int:
        if len(key) != 12 or not key.isdigit():
            raise HistoryTamperedError(f"history ConfigMap {name!r}: {key!r} is not a batch")
        return int(key)

    async def _verify(
        self, name: str, number: int, value: str, *, decode: bool = True
    ) -> list[HistoryEntry]:
        """The entries of one stored batch, once its MAC and its references check out (none
        when not `decode`: the MAC alone is checked)."""
        lines, mac = split_batch(value)
        body = "\n".join(lines)
        expected = batch_mac(self._key, self._run.uid, number, body)
        if mac is None or not hmac.compare_digest(mac, expected):
            raise HistoryTamperedError(
                f"history ConfigMap {name!r}: batch {number} does not verify; it was not "
                "written by Baton for this run, or was changed since"
            )
        if not decode:
            return []
        try:
            return [HistoryEntry.from_json(json.loads(line)) for line in await self._resolve(lines)]
        except (ValueError, KeyError, TypeError) as exc:
            # Verified yet unreadable: written by a version of Baton that knew other events.
            raise HistoryTamperedError(
                f"history ConfigMap {name!r}: batch {number} cannot be read: {exc}"
            ) from None

    async def _resolve(self, lines: list[str]) -> list[str]:
        return await resolve_lines(lines, self._load)

    async def _load(self, name: str) -> dict[str, Any] | None:
        return await self._read(name)

    async def _read(self, name: str, *, indexed: bool = False) -> dict[str, Any] | None:
        """The ConfigMap `name` if it is this run's; `indexed` for chunks, which the
        start-up index may hold (entries stored by reference it does not)."""
        early, self._early = self._early, None
        if indexed and early is not None and early["metadata"]["name"] == name:
            return early
        if indexed and self._index is not None:
            config_map = await self._index.read(self._run.namespace, name)
        else:
            config_map = await self._kube.get(core_path("configmaps", self._run.namespace, name))
        if config_map is None or not belongs_to(config_map, self._run):
            return None  # another run's chunk (a deleted run of the same name) is not ours
        return config_map

    async def end(self, position: HistoryPosition) -> HistoryPosition:
        """Where a batch can still be appended to a history that does not verify (to record
        why the run ends): after the highest batch number present, in a fresh chunk when the
        one the status names is gone. Nothing is verified."""
        if self._journal is not None:
            self._pinned = await self._journal.current_view()
        chunk, batches, events = position.chunk, position.batches, position.events
        found: HistoryPosition | None = None
        while True:
            config_map = await self._read(chunk_name(self._run.name, chunk))
            if config_map is None:
                break
            self._remember(config_map)
            data = dict(config_map.get("data") or {})
            numbers = [int(k) for k in batch_keys(data) if len(k) == 12 and k.isdigit()]
            batches = max([batches, *(n + 1 for n in numbers)])
            size = sum(len(v.encode()) for v in data.values())
            found = HistoryPosition(chunk, size, batches, events)
            chunk += 1
        if self._journal is not None:
            # Moved to the chunk with the batch that records the end, unverified as they are.
            self._journaled = {
                n: t for n, t in (await self._journal.entries(self._run)).items() if n >= batches
            }
            batches = max([batches, *(n + 1 for n in self._journaled)])
            if found is not None:
                found = HistoryPosition(found.chunk, found.chunk_bytes, batches, events)
        if found is None:
            return HistoryPosition(position.chunk, 0, batches, events)
        return found

    def _remember(self, config_map: Mapping[str, Any]) -> None:
        meta = config_map["metadata"]
        self._seen = (str(meta["name"]), str(meta["resourceVersion"]))

    async def _create(self, chunk: int, batches: Mapping[str, str]) -> int:
        """Create chunk number `chunk` holding `batches`; the bytes it holds besides them (the
        first chunk's definition snapshot)."""
        name = chunk_name(self._run.name, chunk)
        data = dict(batches)
        annotations = {"baton.dev/history-chunk": str(chunk)}
        carried = self._carried if chunk == 0 else None
        if carried is not None:
            data[DEFINITION] = carried[0]
            annotations.update(carried[1])
        body = owned_config_map(
            self._run,
            self._owner,
            self._labels,
            name=name,
            part=HISTORY,
            data=data,
            annotations=annotations,
        )
        created = await create_config_map(self._kube, self._run, body)
        if created is None:
            # `read_tail` reads every chunk there is: this one appeared since, by another writer.
            raise HistoryConflictError(f"history chunk {name} was created by another writer")
        self._remember(created)
        self._carried = None
        return 0 if carried is None else len(carried[0].encode())

    async def _fenced_patch(self, chunk: int, patch: dict[str, Any]) -> None:
        name = chunk_name(self._run.name, chunk)
        if self._seen is None or self._seen[0] != name:
            raise HistoryConflictError(f"history chunk {name} was not read before appending to it")
        fenced = {
            **patch,
            "metadata": {**patch.get("metadata", {}), "resourceVersion": self._seen[1]},
        }
        try:
            patched = await self._kube.patch(
                core_path("configmaps", self._run.namespace, name), fenced
            )
        except ApiError as exc:
            if exc.status != 409:
                raise
            conflict = f"history chunk {name} changed under this writer"
            raise HistoryConflictError(conflict) from None
        self._remember(patched)


async def resolve_lines(lines: list[str], load: Loader) -> list[str]:
    """A batch's entry lines as stored, with a batch kept by reference expanded and every
    entry kept by reference resolved (digests checked)."""
    if len(lines) == 1 and lines[0].startswith('{"' + BATCH_REF):
        text = await _referenced(json.loads(lines[0]), BATCH_REF, "lines", "batch ", load)
        lines = [line for line in text.split("\n") if line]
    return [await resolve_line(line, load) for line in lines]


async def resolve_line(line: str, load: Loader) -> str:
    """The entry line itself, or for a reference the line it points at (its digest checked)."""
    if not line.startswith('{"$ref"'):
        return line
    return await _referenced(json.loads(line), REF, "json", "entry ", load)


async def _referenced(
    ref: Mapping[str, Any], name_key: str, key: str, what: str, load: Loader
) -> str:
    """The text a reference line points at: data `key` of the ConfigMap it names, once its
    SHA-256 matches the reference's."""
    config_map = await load(str(ref[name_key]))
    text = ((config_map or {}).get("data") or {}).get(key)
    if text is None:
        raise HistoryLostError(f"history {what}ConfigMap {ref[name_key]!r} is gone")
    if not hmac.compare_digest(hashlib.sha256(text.encode()).hexdigest(), str(ref["sha256"])):
        raise HistoryTamperedError(f"history {what}ConfigMap {ref[name_key]!r} was changed")
    return str(text)


async def read_history(kube: Kube, namespace: str, run_uid: str) -> list[HistoryEntry]:
    """The whole history of the run with `run_uid`, in order (for `baton history`; not
    verified, since only the operator holds the key)."""
    listing = await kube.list(
        core_path("configmaps", namespace), label_selector=f"{RUN_UID}={run_uid},{PART}={HISTORY}"
    )
    chunks = sorted(
        listing,
        key=lambda cm: int(cm["metadata"].get("annotations", {}).get("baton.dev/history-chunk", 0)),
    )

    async def load(name: str) -> dict[str, Any] | None:
        return await kube.get(core_path("configmaps", namespace, name))

    batches: dict[int, str] = {}
    for config_map in chunks:
        data = config_map.get("data") or {}
        for key in batch_keys(data):
            batches.setdefault(int(key), data[key])
    # Batches not yet moved from the namespace's journal into the run's chunks.
    journal = await kube.get(core_path("configmaps", namespace, JOURNAL_NAME))
    if journal is not None and (journal["metadata"].get("labels") or {}).get(PART) == JOURNAL:
        for key, value in (journal.get("data") or {}).items():
            parsed = parse_key(key)
            if parsed is not None and parsed[1] == run_uid:
                batches.setdefault(parsed[2], value)
    entries: list[HistoryEntry] = []
    for number in sorted(batches):
        lines, _ = split_batch(batches[number])
        for line in await resolve_lines(lines, load):
            entries.append(HistoryEntry.from_json(json.loads(line)))
    return entries
