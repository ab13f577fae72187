"""A run's history: its append-only event log, kept in ConfigMaps `<run>-history-<n>`.

Layout. Each ConfigMap is a chunk, owned by the run (deleted with it) and labelled with the run's
uid and `baton.dev/part: history`. Every batch of events the run loop commits becomes one data
key, the batch's sequence number zero-padded to 12 digits, whose value is JSON lines: one
`HistoryEntry.to_json()` per line (`at` in seconds since the epoch). Appending a batch is a
single merge patch that adds one key, so a write costs the size of the batch, not of the log.
A chunk is closed once it passes `chunk_bytes`, far below etcd's object limit.

Durability. History is the write-ahead log and `status` the snapshot: the loop appends a batch
first and writes status after. `status.history` records how far the snapshot has folded
(`HistoryPosition`); entries past it, left by a crash between the two writes, are read back with
`read_tail` and folded again on restart, so no decided event is lost or applied twice.

Fencing. One loop per run is the rule, but for a moment two can run: the replica losing its
peering has not noticed yet. Every append is therefore conditional on the open chunk's
`resourceVersion` as this writer last saw it (read by `read_tail`, or returned by its own last
write); closing a full chunk is such a write too. A writer that finds the chunk changed under
it, or the next chunk already created, gets `HistoryConflictError`: someone else appended, its view
of the run is stale, and it must reload from the history rather than write over it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from baton.api.labels import PART, RUN_UID
from baton.engine.events import HistoryEntry
from baton.executors.base import RunRef
from baton.failpoints import failpoint
from baton.store.kube import ApiError, Kube, core_path
from baton.store.objects import belongs_to, create_config_map, owned_config_map

HISTORY = "history"


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


def encode_batch(entries: Iterable[HistoryEntry]) -> str:
    """The JSON lines of one batch."""
    return "\n".join(json.dumps(e.to_json(), separators=(",", ":")) for e in entries)


def decode_chunk(data: Mapping[str, str] | None) -> list[tuple[int, list[HistoryEntry]]]:
    """The batches of one chunk, in order, as (batch number, entries)."""
    batches = []
    for key in sorted(data or {}):
        lines = (data or {})[key].splitlines()
        entries = [HistoryEntry.from_json(json.loads(line)) for line in lines if line]
        batches.append((int(key), entries))
    return batches


class HistoryConflictError(Exception):
    """Another writer appended to the run's history since this one last read or wrote it."""


CLOSED = "baton.dev/history-closed"
"""Annotation of a full chunk; setting it is the fenced write that closes the chunk."""


class HistoryLog:
    """Appends a run's batches and reads them back, fenced against a second writer."""

    def __init__(
        self,
        kube: Kube,
        run: RunRef,
        owner: Mapping[str, Any],
        *,
        chunk_bytes: int,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._kube = kube
        self._run = run
        self._owner = dict(owner)
        self._chunk_bytes = chunk_bytes
        self._labels = dict(labels or {})
        self._seen: tuple[str, str] | None = None
        """(name, resourceVersion) of the open chunk as this writer last read or wrote it."""

    async def append(
        self, position: HistoryPosition, entries: list[HistoryEntry]
    ) -> HistoryPosition:
        """Write one batch after `position`; returns the position after it."""
        if not entries:
            return position
        text = encode_batch(entries)
        size = len(text.encode())
        chunk, used = position.chunk, position.chunk_bytes
        key = f"{position.batches:012d}"
        if used and used + size > self._chunk_bytes:
            await self._fenced_patch(chunk, {"metadata": {"annotations": {CLOSED: "true"}}})
            failpoint("history-chunk-closed")
            chunk, used = chunk + 1, 0
        if used == 0:
            await self._create(chunk, key, text)
        else:
            await self._fenced_patch(chunk, {"data": {key: text}})
        return HistoryPosition(
            chunk=chunk,
            chunk_bytes=used + size,
            batches=position.batches + 1,
            events=position.events + len(entries),
        )

    async def read_tail(
        self, position: HistoryPosition
    ) -> tuple[list[HistoryEntry], HistoryPosition]:
        """Entries written after `position` (left by a crash before the status write), and the
        position after them."""
        tail: list[HistoryEntry] = []
        chunk, used, batches, events = (
            position.chunk,
            position.chunk_bytes,
            position.batches,
            position.events,
        )
        while True:
            config_map = await self._read(chunk_name(self._run.name, chunk))
            if config_map is None:
                break
            self._remember(config_map)
            data = dict(config_map.get("data") or {})
            for number, entries in decode_chunk(data):
                if number < batches:
                    continue
                tail.extend(entries)
                batches = number + 1
                events += len(entries)
            used = sum(len(v.encode()) for v in data.values())
            chunk += 1
        last = max(chunk - 1, position.chunk)
        if last != position.chunk or tail:
            position = HistoryPosition(last, used, batches, events)
        return tail, position

    async def _read(self, name: str) -> dict[str, Any] | None:
        config_map = await self._kube.get(core_path("configmaps", self._run.namespace, name))
        if config_map is None or not belongs_to(config_map, self._run):
            return None  # another run's chunk (a deleted run of the same name) is not ours
        return config_map

    def _remember(self, config_map: Mapping[str, Any]) -> None:
        meta = config_map["metadata"]
        self._seen = (str(meta["name"]), str(meta["resourceVersion"]))

    async def _create(self, chunk: int, key: str, text: str) -> None:
        name = chunk_name(self._run.name, chunk)
        body = owned_config_map(
            self._run,
            self._owner,
            self._labels,
            name=name,
            part=HISTORY,
            data={key: text},
            annotations={"baton.dev/history-chunk": str(chunk)},
        )
        created = await create_config_map(self._kube, self._run, body)
        if created is None:
            # `read_tail` reads every chunk there is: this one appeared since, by another writer.
            raise HistoryConflictError(f"history chunk {name} was created by another writer")
        self._remember(created)

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


async def read_history(kube: Kube, namespace: str, run_uid: str) -> list[HistoryEntry]:
    """The whole history of the run with `run_uid`, in order (for `baton history`)."""
    listing = await kube.list(
        core_path("configmaps", namespace), label_selector=f"{RUN_UID}={run_uid},{PART}={HISTORY}"
    )
    chunks = sorted(
        listing,
        key=lambda cm: int(cm["metadata"].get("annotations", {}).get("baton.dev/history-chunk", 0)),
    )
    entries: list[HistoryEntry] = []
    for config_map in chunks:
        for _, batch in decode_chunk(config_map.get("data")):
            entries.extend(batch)
    return entries
