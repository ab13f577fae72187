"""The ConfigMaps runs resume from, read in pages at an operator's start instead of one by one.

A restarted operator resumes every live run at once, and each run reads its definition snapshot
(in its first history chunk, or `<run>-definition` for runs started by earlier versions) and its
open history chunk, then asks for the next chunk to learn that there is none: three GETs
per run, 30,000 requests at 10,000 runs, queued behind each other on the API server. Instead,
each watched namespace (or, watching all, the first read of a namespace) lists its runs'
definition and history ConfigMaps
(`baton.dev/part in (definition,history)`) in pages of `PAGE` and serves each run's reads from
that listing; an object absent from a complete listing is absent, with no request.

What keeps it correct:
- Only a run's **first** loop in this process reads through the index (`claim`), and each name
  is answered from the listing once. A first loop reads what it needs before it writes
  anything, and nothing else in the operator writes a run's definition or history, so the
  listing cannot miss a write of this process; any later read (a loop restarted after an
  error, a chunk appended since) goes to the API server.
- A copy older than a write by someone else is caught where every stale read is: a history
  append is fenced on the chunk's `resourceVersion` (`HistoryConflictError`, the loop reloads
  with fresh reads); definition snapshots are immutable.
- The listing is for start-up only: the index serves from `open` (a standalone operator's
  start, or a replica becoming the active one: never a listing taken while another replica
  was writing) until `WINDOW` seconds later, then drops whatever was not read; reads after
  that are plain GETs, so one new run in a quiet operator never lists a namespace.
- A listing that fails is not retried: the reads it would have served become GETs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from baton.api.labels import PART
from baton.store.kube import ApiError, Kube, core_path, path_of

log = logging.getLogger("baton.startup")

PAGE = 500
"""Objects per page of the listing: the API server's own default chunk size for kubectl."""
WINDOW = 600.0
"""Seconds after the operator's start during which reads may be served from a listing."""
PARTS = ("definition", "history", "journal")
"""The `baton.dev/part` of what a resuming run reads: its definition snapshot, its history
chunks, and the namespace's history journal (baton.store.journal)."""


class ConfigMapIndex:
    """Reads of run ConfigMaps, answered from one paged listing per namespace while the
    operator starts, and by GET otherwise."""

    def __init__(self, kube: Kube) -> None:
        self._kube = kube
        self._listings: dict[str, asyncio.Task[dict[str, dict[str, Any]] | None]] = {}
        self._answered: set[tuple[str, str]] = set()
        self._claimed: set[str] = set()
        self._open = False
        self._expiry: asyncio.TimerHandle | None = None
        self.listed = 0
        """ConfigMaps listed, for the log and tests."""
        self.served = 0
        """Reads answered from a listing (found or absent), for the log and tests."""

    def open(self, namespaces: Iterable[str], window: float = WINDOW) -> None:
        """Serve from fresh listings for `window` seconds, starting with `namespaces` (the
        namespaces watched by name; others are listed when their first run reads)."""
        self.expire()
        self._open = True
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(window, self.expire)
        for namespace in namespaces:
            self.prefetch(namespace)

    def claim(self, run_uid: str) -> bool:
        """True the first time a run asks, while the index serves: that loop may read
        through it. Later loops of the run read from the API server."""
        if not self._open or run_uid in self._claimed:
            return False
        self._claimed.add(run_uid)
        return True

    async def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ConfigMap `name` in `namespace`, or None when it does not exist."""
        path = core_path("configmaps", namespace, name)
        if not self._open or (namespace, name) in self._answered:
            return await self._kube.get(path)
        listing = await self._listing(namespace)
        if listing is None or not self._open or (namespace, name) in self._answered:
            return await self._kube.get(path)
        self._answered.add((namespace, name))
        self.served += 1
        return listing.pop(name, None)

    def prefetch(self, namespace: str) -> None:
        """Start listing `namespace` now (the operator watches it), beside kopf's own listing
        of the runs, rather than when its first run reads."""
        if self._open and namespace not in self._listings:
            self._listings[namespace] = asyncio.get_running_loop().create_task(
                self._list(namespace)
            )

    def reading(self) -> list[asyncio.Task[dict[str, dict[str, Any]] | None]]:
        """The listings begun and not read yet (the Registry holds resumes back meanwhile)."""
        return [task for task in self._listings.values() if not task.done()]

    def expire(self) -> None:
        """Stop serving from listings and drop what was not read."""
        self._open = False
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        for task in self._listings.values():
            task.cancel()
        self._listings.clear()
        self._answered.clear()
        self._claimed.clear()

    async def _listing(self, namespace: str) -> dict[str, dict[str, Any]] | None:
        self.prefetch(namespace)
        task = self._listings[namespace]
        with contextlib.suppress(asyncio.CancelledError):
            return await asyncio.shield(task)
        return None

    async def _list(self, namespace: str) -> dict[str, dict[str, Any]] | None:
        selector = f"{PART} in ({','.join(PARTS)})"
        found: dict[str, dict[str, Any]] = {}
        query = {"labelSelector": selector, "limit": str(PAGE)}
        try:
            while True:
                page = await self._kube.get(core_path("configmaps", namespace), **query) or {}
                for item in page.get("items") or []:
                    meta = item.get("metadata") or {}
                    meta.pop("managedFields", None)  # never read; the largest part of a chunk
                    found[str(meta.get("name"))] = item

                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    break
                query["continue"] = token
        except ApiError as exc:
            # A 410 (the listing outlived its snapshot) or RBAC: read one by one instead.
            log.warning("listing run ConfigMaps in %s failed, reading each: %s", namespace, exc)
            return None
        self.listed += len(found)
        log.info("listed %d run ConfigMaps in %s", len(found), namespace)
        return found


async def list_runs(kube: Kube, namespace: str | None, selector: str) -> list[dict[str, Any]]:
    """Every WorkflowRun of `namespace` (None: of every namespace) that `selector` matches,
    without managedFields; none when the listing fails (kopf hands them over anyway). One
    request served from the API server's watch cache (`resourceVersion=0`), as kopf's own
    listing is: pages of 500 are each a round trip that waits behind everything the starting
    operator does meanwhile (at 10,000 runs, 21 pages took 38 s where one request takes a few);
    a listing a little behind is as good as kopf's, since every resume folds the history after
    the status it starts from and a run deleted meanwhile is looked up before it is forgotten."""
    try:
        listing = (
            await kube.get(
                path_of("workflowruns", namespace), labelSelector=selector, resourceVersion="0"
            )
            or {}
        )
    except ApiError as exc:
        log.warning(
            "listing the runs of %s failed, resuming as kopf hands them over: %s",
            namespace or "all namespaces",
            exc,
        )
        return []
    runs: list[dict[str, Any]] = listing.get("items") or []
    for item in runs:
        (item.get("metadata") or {}).pop("managedFields", None)
    log.info("listed %d runs in %s", len(runs), namespace or "all namespaces")
    return runs
