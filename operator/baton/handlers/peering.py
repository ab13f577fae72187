"""Active/standby for run loops: a replica that kopf's peering pauses stops driving runs.

kopf's peering pauses a replica's *watches* when a live replica of higher (or equal) priority
shows up in the peering object, and resumes them when none is left. Baton's run loops are its
own tasks: they keep folding executor results and waking on timers whatever the watches do. A
replica paused while its loops run — the old pod of a rolling update (`--priority auto` gives the
new one the higher priority), or the standby of a stalled active replica — would go on writing
the same runs' history and status as the active one. tests/integration/test_peering.py measured
dozens of such writes per hand-over before this guard existed.

The guard reads the same peering object kopf keeps (`KopfPeering` `<peering>` in each watched
namespace, or `ClusterKopfPeering` `<peering>` for a cluster-wide operator) every
`POLL_SECONDS`, and applies kopf's rule, plus one of its own:

- standby when a live peer (last keep-alive younger than its lifetime) has a priority above or
  equal to ours (kopf pauses all replicas that share the highest priority);
- standby when our own keep-alive is missing or expired: after a stall long enough for the others
  to think us dead, we must not resume before we told them we live;
- standby when the peering object is missing (kopf stays paused without it).

kopf says nothing when the peering object is missing: it stays paused and logs "not found" at
debug level only. The guard says it instead, every `MISSING_LOG_SECONDS` while the object is
missing, naming the object and how to create it (`missing_peering`), and once more when it
appears: an operator installed without the chart would otherwise log "started" and then nothing.

Going standby cancels every run loop (their state is committed: a cancelled loop is a crash,
which the run loop is built to survive) and starts none until active again. Becoming active
waits `HANDOVER_SECONDS` first, longer than the other replicas take to notice (one poll and a
request), then starts a loop for every run it knows of that needs one, read again first (kopf
also lists every run again when its watches resume, and those start loops as they come).

A replica stalled for longer than the hand-over delay can still try to commit after it lost
the peering, before its guard runs again. That is harmless: history appends are fenced on the
chunk's resourceVersion (baton.store.history), so its append fails with HistoryConflictError and
its loop reloads the run instead of writing over the new replica's batch.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from baton.handlers.runs import Registry
from baton.settings import OperatorSettings
from baton.store.kube import ApiError, Kube, path_of

log = logging.getLogger("baton.peering")

POLL_SECONDS = 1.0
"""How often the guard reads the peering object."""
HANDOVER_SECONDS = 3.0
"""How long a replica that became active waits before it starts run loops."""
MISSING_LOG_SECONDS = 5.0
"""How often the guard repeats that a peering object it waits for is missing: often enough to
be the last line of a log someone reads, rarely enough not to drown the rest."""


def own_identity() -> str:
    """This replica's name in the peering: `POD_ID` when set (as kopf does), else user, host,
    process and a random suffix. Passed to kopf, so both speak of the same peer."""
    pod = os.environ.get("POD_ID")
    if pod:
        return pod
    return f"{getpass.getuser()}@{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


def _alive(peer: Mapping[str, Any], now: float) -> bool:
    try:
        seen = datetime.fromisoformat(str(peer["lastseen"])).timestamp()
        return seen + float(peer.get("lifetime", 60)) > now
    except (KeyError, TypeError, ValueError):
        return False


def standby(status: Mapping[str, Any] | None, identity: str, priority: int, now: float) -> bool:
    """True when a replica of `priority` named `identity` must not drive runs, given the peering
    object's status (identity -> {priority, lifetime, lastseen}); None: the object is missing."""
    if status is None:
        return True
    me = status.get(identity)
    if not isinstance(me, Mapping) or not _alive(me, now):
        return True
    for name, peer in status.items():
        if name == identity or not isinstance(peer, Mapping) or not _alive(peer, now):
            continue
        if int(peer.get("priority", 0)) >= priority:
            return True
    return False


@dataclass(frozen=True)
class PeeringObject:
    """One peering object the guard reads: a cluster-wide `ClusterKopfPeering` (`namespace`
    None) or a `KopfPeering` in a watched namespace."""

    name: str
    namespace: str | None

    @property
    def kind(self) -> str:
        return "KopfPeering" if self.namespace else "ClusterKopfPeering"

    @property
    def path(self) -> str:
        plural = "kopfpeerings" if self.namespace else "clusterkopfpeerings"
        return path_of(plural, self.namespace, self.name, group="kopf.dev", version="v1")

    def __str__(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.kind} {self.name!r}{where}"


def missing_peering(peering: PeeringObject) -> str:
    """What to log while `peering` does not exist: what waits for it, and the ways out."""
    meta = f"name: {peering.name}"
    if peering.namespace:
        meta += f", namespace: {peering.namespace}"
    manifest = f"{{apiVersion: kopf.dev/v1, kind: {peering.kind}, metadata: {{{meta}}}}}"
    return (
        f"waiting for peering: {peering} does not exist, so this replica drives no runs. "
        f"Install the chart (charts/baton creates it), or create it: "
        f"echo '{manifest}' | kubectl apply -f - "
        f"(its CRD is crds/kopfpeerings.kopf.dev.yaml); "
        f"or run a single replica with --standalone"
    )


class PeeringGuard:
    """Pauses and resumes the registry's run loops as the peering says (see the module doc)."""

    def __init__(
        self, kube: Kube, settings: OperatorSettings, identity: str, registry: Registry
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.identity = identity
        self.registry = registry
        namespaces: list[str | None] = list(settings.namespaces) or [None]
        self.peerings = [PeeringObject(settings.peering, ns) for ns in namespaces]
        self.missing: dict[PeeringObject, float] = {}
        """Peering objects found missing, with when that was last logged (monotonic)."""

    async def standby(self) -> bool:
        """What the peering objects say now; says which are missing (`missing_peering`)."""
        now = time.time()
        waiting = False
        for peering in self.peerings:
            found = await self.kube.get(peering.path)
            self._note(peering, found is not None)
            status = None if found is None else (found.get("status") or {})
            waiting = waiting or standby(status, self.identity, self.settings.priority, now)
        return waiting

    def _note(self, peering: PeeringObject, exists: bool) -> None:
        """Log that `peering` is missing, again every MISSING_LOG_SECONDS, and when it appears."""
        now = time.monotonic()
        if not exists:
            last = self.missing.get(peering)
            if last is None or now - last >= MISSING_LOG_SECONDS:
                log.warning("%s", missing_peering(peering))
                self.missing[peering] = now
        elif self.missing.pop(peering, None) is not None:
            log.info("peering %s found: this replica takes part in it", peering)

    async def run(self) -> None:
        """Until cancelled: poll, pause at once, resume after the hand-over delay."""
        active_since: float | None = None
        while True:
            try:
                waiting = await self.standby()
            except (ApiError, OSError, TimeoutError) as exc:
                log.warning("peering %s not readable: %s", self.settings.peering, exc)
                await asyncio.sleep(POLL_SECONDS)
                continue  # as we were: kopf, which reads the same object, cannot know more
            if waiting:
                active_since = None
                if self.registry.active:
                    log.info("standby: a peer of higher priority is alive; stopping run loops")
                    await self.registry.pause()
            elif not self.registry.active:
                now = time.monotonic()
                active_since = active_since or now
                if now - active_since >= HANDOVER_SECONDS:
                    log.info("active: no live peer of higher priority; starting run loops")
                    await self.registry.resume()
            await asyncio.sleep(POLL_SECONDS)
