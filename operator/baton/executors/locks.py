"""Performing AcquireLock and ReleaseLock: the lock objects of baton.store.locks, and telling
runs when they are granted.

A request answered at once reports LockAcquired; one that must wait reports LockWaiting (who
holds the lock) and is asked again every `poll` seconds until granted, so a waiter this operator
is not told about (a limit raised in its ConfigMap, a holder released by another operator's
shard) still gets its turn. A release, a deleted run, or an ask that grants others tells each
run granted in the same change at once, through `deliver` (the registry: a no-op for runs driven
elsewhere, which their own asks catch up with). Every ask is idempotent (baton.store.locks), so a
report lost to a crash is found again when the run loop re-issues its pending requests.

A lock kept in another namespace (`synchronization.namespace`) is asked for only when this
operator manages that namespace (a namespaced install watches a list), and then only with the
namespace's consent (baton.store.locks); else the run is told `LockRefused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from baton.engine.commands import AcquireLock, ReleaseLock
from baton.engine.events import Event, LockAcquired, LockRefused, LockWaiting
from baton.store.kube import ApiError, Kube
from baton.store.locks import Holder, LockRecordError, LockStore
from baton.store.ref import RunRef

log = logging.getLogger("baton.locks")

POLL_SECONDS = 15.0
"""How often a waiting request is asked again (see the module doc); a grant this operator
makes itself is told at once."""

Report = Callable[[Event], Awaitable[None]]
Deliver = Callable[[str, Event], Awaitable[None]]


class LockExecutor:
    """Acquires and releases locks for the runs of this operator."""

    def __init__(
        self,
        kube: Kube,
        labels: Mapping[str, str],
        deliver: Deliver,
        *,
        poll: float = POLL_SECONDS,
        namespaces: Sequence[str] = (),
    ) -> None:
        self.store = LockStore(kube, labels)
        self.namespaces = tuple(namespaces)
        """The namespaces (or patterns) this operator manages; empty: all."""
        self.deliver = deliver
        self.poll = poll
        self.waiting: dict[str, asyncio.Task[None]] = {}
        """The asks of waiting requests, by holder id."""

    async def acquire(self, run: RunRef, command: AcquireLock, report: Report) -> None:
        """Ask for the lock; report the grant, or the wait and keep asking (also when this
        first ask failed: the next one is the retry)."""
        holders: list[str] | None
        namespace = command.namespace or run.namespace
        if not self.manages(namespace):
            await report(
                LockRefused(
                    command.key,
                    f"namespace {namespace!r} does not let {run.namespace!r} use its locks: "
                    f"this operator does not manage namespace {namespace!r}; add it to the "
                    f"operator's namespaces, or drop synchronization.namespace",
                )
            )
            return
        try:
            holders = await self._ask(run, command, report, None)
        except (ApiError, LockRecordError, OSError) as exc:
            log.warning("%s/%s: asking for %s %r: %s", run.namespace, run.name, command.kind,
                        command.name, exc)  # fmt: skip
            holders = []
        if holders is not None and command.holder not in self.waiting:
            asking = self._keep_asking(run, command, report, holders)
            task = asyncio.get_running_loop().create_task(asking)
            self.waiting[command.holder] = task
            task.add_done_callback(lambda _: self._forget_task(command.holder, task))

    async def release(self, run: RunRef, command: ReleaseLock) -> None:
        """Give the lock up (or the place in its queue); tell whoever gets it."""
        self._stop_asking(command.holder)
        namespace = command.namespace or run.namespace
        if self.manages(namespace):  # else it was refused: nothing to give up
            await self._tell(await self.store.release(namespace, command))

    async def forget(self, namespaces: Iterable[str], uid: str, keep: Iterable[str] = ()) -> None:
        """Drop run `uid` from every lock of `namespaces` (its own, and those keeping locks it
        may use) but the holds in `keep` (its deletion; releases a crash lost); tell whoever
        gets a lock in its place."""
        kept = frozenset(keep)
        for holder in [h for h in self.waiting if h.startswith(f"{uid}/") and h not in kept]:
            self._stop_asking(holder)
        for namespace in sorted(set(namespaces)):
            if self.manages(namespace):
                await self._tell(await self.store.forget(namespace, uid, kept))

    def manages(self, namespace: str) -> bool:
        """Whether this operator manages `namespace` (every one when installed cluster-wide)."""
        return not self.namespaces or any(
            fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces
        )

    async def stop(self) -> None:
        """Stop asking (operator shutdown): the requests are in the runs' states and are asked
        again when their loops resume."""
        tasks = list(self.waiting.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- asking ---------------------------------------------------------------------------

    async def _ask(
        self, run: RunRef, command: AcquireLock, report: Report, last: list[str] | None
    ) -> list[str] | None:
        """One ask: None when granted (reported), else the holders it found (reported when
        they differ from `last`)."""
        acquired = await self.store.acquire(run, command)
        if acquired.refused is not None:
            self._stop_asking(command.holder)
            await report(LockRefused(command.key, acquired.refused))
            return None
        await self._tell(acquired.promoted)
        if acquired.granted:
            self._stop_asking(command.holder)
            await report(LockAcquired(key=command.key))
            return None
        if acquired.holders != last:
            await report(LockWaiting(command.key, acquired.holders, acquired.problem))
        return acquired.holders

    async def _keep_asking(
        self, run: RunRef, command: AcquireLock, report: Report, last: list[str]
    ) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                result = await self._ask(run, command, report, last)
            except (ApiError, LockRecordError, OSError) as exc:
                log.warning(
                    "%s/%s: asking for %s %r: %s",
                    run.namespace,
                    run.name,
                    command.kind,
                    command.name,
                    exc,
                )
                continue
            if result is None:
                return
            last = result

    async def _tell(self, granted: Iterable[Holder]) -> None:
        for holder in granted:
            self._stop_asking(holder.id)
            await self.deliver(holder.uid, LockAcquired(key=holder.key))

    def _stop_asking(self, holder: str) -> None:
        task = self.waiting.pop(holder, None)
        if task is not None and task is not _current():
            task.cancel()

    def _forget_task(self, holder: str, task: asyncio.Task[None]) -> None:
        if self.waiting.get(holder) is task:
            del self.waiting[holder]


def _current() -> asyncio.Task[object] | None:
    with contextlib.suppress(RuntimeError):
        return asyncio.current_task()
    return None
