"""The runs list of the web view: every run the user may read, kept current by a watch.

Why a cached watch rather than the API's own paging: the list page needs what the API server
cannot answer page by page — phase counts over every run that matches, search by part of a name,
"started since" — and it must be live. One LIST (fetched in pages of `LIST_PAGE` with
limit/continue, so no single response is huge) followed by a WATCH from its resourceVersion keeps
a compact summary of each run in memory (a few hundred bytes: 10,000 runs are a few MB); every
page, filter and count is then answered from memory in milliseconds, and every change is pushed
to the pages that listen. A watch that expires (410 Gone) lists again.

Scope: all namespaces when the user may list runs cluster-wide; else each namespace asked for
(`baton ui -n`, default the kubeconfig context's), those refused reported as such. Every request
of the index is made with the user's own rights (`Access`).

`summary`, `Query` and `select` are pure and unit-tested; `RunIndex` is the I/O around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from baton.api.run import RunPhase
from baton.cli.runread import RUNS
from baton.cli.runview import parse_time, phase_of, workflow_of
from baton.store.kube import ApiError, Kube, path_of

LIST_PAGE = 500
"""Runs per LIST request while (re)building the index."""
WATCH_SECONDS = 240
"""How long one WATCH request lasts before it is renewed (the server's timeoutSeconds)."""
RETRY_SECONDS = 2.0
"""Pause before re-listing after a failed watch."""
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

log = logging.getLogger(__name__)


def summary(run: Mapping[str, Any]) -> dict[str, Any]:
    """What the list shows of a run, and filters on."""
    metadata = run.get("metadata") or {}
    status = run.get("status") or {}
    error = status.get("error")
    data: dict[str, Any] = {
        "namespace": str(metadata.get("namespace", "")),
        "name": str(metadata.get("name", "")),
        "uid": str(metadata.get("uid", "")),
        "workflow": workflow_of(run),
        "phase": phase_of(run),
        "step": str(status.get("currentStep") or ""),
        "progress": str(status.get("progress") or ""),
        "created": str(metadata.get("creationTimestamp") or ""),
        "startedAt": status.get("startedAt"),
        "finishedAt": status.get("finishedAt"),
        "labels": dict(metadata.get("labels") or {}),
        "generation": status.get("workflowGeneration"),
        # Any write of the run is news to the page showing it (an update's answer, a lock
        # granted) even when the list's columns stay the same; status writes are coalesced, so
        # this adds no event per step.
        "version": str(metadata.get("resourceVersion") or ""),
    }
    if isinstance(error, Mapping) and error.get("type"):
        text = f"{error['type']}: {error.get('message', '')}".rstrip(": ")
        data["error"] = text + (f" (step {error['step']})" if error.get("step") else "")
    return data


class QueryError(ValueError):
    """A filter that cannot be understood; the message names the parameter and the fix."""


_REQUIREMENT = re.compile(
    r"^\s*(?P<not>!)?\s*(?P<key>[A-Za-z0-9._/-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)"
    r"|\s+(?P<set>in|notin)\s*\((?P<values>[^)]*)\))?\s*$"
)


@dataclass(frozen=True)
class Requirement:
    """One requirement of a label selector: `key` is (not) one of `values`, or exists."""

    key: str
    operator: str
    """`in`, `notin`, `exists` or `!exists` (`=` is `in` one value, `!=` `notin` one)."""
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether labels satisfy this requirement."""
        if self.operator == "exists":
            return self.key in labels
        if self.operator == "!exists":
            return self.key not in labels
        inside = labels.get(self.key) in self.values
        return inside if self.operator == "in" else not inside


def parse_selector(text: str) -> list[Requirement]:
    """A Kubernetes label selector (`a=b,c!=d,e,!f,g in (h,i),j notin (k)`)."""
    requirements = []
    for part in _split_selector(text):
        match = _REQUIREMENT.match(part)
        if match is None or (match["not"] and (match["op"] or match["set"])):
            raise QueryError(
                f"label: {part.strip()!r} is not a label selector requirement "
                "(key=value, key!=value, key, !key, key in (a,b), key notin (a,b))"
            )
        key = match["key"]
        if match["op"]:
            operator = "notin" if match["op"] == "!=" else "in"
            requirements.append(Requirement(key, operator, frozenset([match["value"]])))
        elif match["set"]:
            values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
            requirements.append(Requirement(key, match["set"], values))
        else:
            requirements.append(Requirement(key, "!exists" if match["not"] else "exists"))
    return requirements


def _split_selector(text: str) -> list[str]:
    """The requirements of a selector: commas outside parentheses separate them."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


PHASES = [phase.value for phase in RunPhase]


@dataclass(frozen=True)
class Query:
    """The runs list's filters, as the page sends them."""

    namespace: str = ""
    workflow: str = ""
    phases: frozenset[str] = frozenset()
    label: str = ""
    since: float | None = None
    """Only runs created at or after this time (seconds since the epoch)."""
    search: str = ""
    offset: int = 0
    limit: int = PAGE_SIZE

    @staticmethod
    def parse(params: Mapping[str, str], now: float) -> Query:
        """The query of a request's parameters; QueryError naming a bad one."""
        phases = frozenset(p for p in (params.get("phase") or "").split(",") if p)
        unknown = sorted(phases - set(PHASES))
        if unknown:
            raise QueryError(f"phase: unknown phase {unknown[0]!r}; phases: {', '.join(PHASES)}")
        since = None
        if params.get("since"):
            since = _since(params["since"], now)
        label = params.get("label") or ""
        parse_selector(label)
        return Query(
            namespace=params.get("namespace") or "",
            workflow=params.get("workflow") or "",
            phases=phases,
            label=label,
            since=since,
            search=(params.get("search") or "").strip().lower(),
            offset=_number(params, "offset", 0, 0, 10**9),
            limit=_number(params, "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE),
        )


def _number(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise QueryError(f"{name}: a whole number from {low} to {high}, not {text!r}")
    return int(text)


_AGO = re.compile(r"^(\d+)([smhd])$")


def _since(text: str, now: float) -> float:
    """`since` is a duration back from now (`30m`, `2h`, `7d`) or an RFC 3339 time."""
    match = _AGO.match(text.strip())
    if match:
        return now - int(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
    at = parse_time(text.strip())
    if at is None:
        raise QueryError(
            f"since: {text!r} is neither a duration back from now (30m, 2h, 7d) nor a time "
            "(2026-07-01T10:00:00Z)"
        )
    return at


def newest_first(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Runs in the order the list shows them: newest first, then by namespace and name."""
    return sorted(runs, key=lambda r: (r["created"], r["namespace"], r["name"]), reverse=True)


def select(
    runs: Iterable[Mapping[str, Any]], query: Query, *, ordered: bool = False
) -> dict[str, Any]:
    """One page of the runs matching `query`, newest first, with the phase counts of every
    run matching the other filters (so the counts say what each phase filter would show) and
    the total matching. `ordered`: the runs are `newest_first` already."""
    labels = parse_selector(query.label)
    counts = dict.fromkeys(PHASES, 0)
    matching = []
    for run in runs:
        if query.namespace and run["namespace"] != query.namespace:
            continue
        if query.workflow and run["workflow"] != query.workflow:
            continue
        if query.search and query.search not in run["name"].lower():
            continue
        if query.since is not None and (parse_time(run["created"]) or 0.0) < query.since:
            continue
        if labels and not all(r.matches(run["labels"]) for r in labels):
            continue
        counts[run["phase"]] = counts.get(run["phase"], 0) + 1
        if query.phases and run["phase"] not in query.phases:
            continue
        matching.append(run)
    if not ordered:
        matching = newest_first(matching)
    page = matching[query.offset : query.offset + query.limit]
    return {"items": page, "total": len(matching), "offset": query.offset, "counts": counts}


@dataclass
class RunIndex:
    """The summaries of every run the user may read, kept current by a watch; listeners get
    each change."""

    kube: Kube
    namespaces: list[str]
    """Namespaces to watch when the user may not list runs cluster-wide."""
    runs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    scope: list[str | None] = field(default_factory=list)
    """What is watched: [None] for all namespaces, else the namespaces allowed."""
    refused: dict[str, str] = field(default_factory=dict)
    """Namespaces the user may not list runs of, with the API server's message."""
    version: int = 0
    listeners: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _ordered: tuple[int, list[Mapping[str, Any]]] = (-1, [])

    def ordered(self) -> list[Mapping[str, Any]]:
        """The runs `newest_first`, sorted once per change rather than once per request."""
        if self._ordered[0] != self.version:
            self._ordered = (self.version, newest_first(self.runs.values()))
        return self._ordered[1]

    async def start(self) -> None:
        """Find the scope and list it (its refusals raised as they come), then watch it in the
        background."""
        if await self._allowed(None):
            self.scope = [None]
        else:
            self.scope = [ns for ns in dict.fromkeys(self.namespaces) if await self._allowed(ns)]
        versions = [await self._list(namespace) for namespace in self.scope]
        self._tasks = [
            asyncio.create_task(self._follow(ns, version), name=f"ui-watch-{ns or '*'}")
            for ns, version in zip(self.scope, versions, strict=True)
        ]
        self.ready.set()

    async def stop(self) -> None:
        """Stop watching."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _allowed(self, namespace: str | None) -> bool:
        try:
            await self.kube.get(path_of(RUNS, namespace), limit="1")
        except ApiError as exc:
            if exc.status == 403:  # 401 (a bad token) is the request's answer, not a scope
                self.refused[namespace or "*"] = exc.message
                return False
            raise
        return True

    async def _follow(self, namespace: str | None, version: str) -> None:
        while True:
            try:
                await self._watch(namespace, version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # listing again heals whatever went wrong
                log.warning("watching runs in %s: %s; listing again", namespace or "*", exc)
                await asyncio.sleep(RETRY_SECONDS)
            try:
                version = await self._list(namespace)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listing runs in %s: %s", namespace or "*", exc)
                await asyncio.sleep(RETRY_SECONDS)

    async def _list(self, namespace: str | None) -> str:
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        token = ""
        while True:
            query = {"limit": str(LIST_PAGE)} | ({"continue": token} if token else {})
            listing = await self.kube.get(path_of(RUNS, namespace), **query) or {}
            for item in listing.get("items") or []:
                run = summary(item)
                seen[(run["namespace"], run["name"])] = run
            token = str((listing.get("metadata") or {}).get("continue") or "")
            if not token:
                version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
                break
        gone = [k for k in self.runs if (namespace is None or k[0] == namespace) and k not in seen]
        for key in gone:
            self._changed(self.runs.pop(key), deleted=True)
        for key, run in seen.items():
            if self.runs.get(key) != run:
                self.runs[key] = run
                self._changed(run)
        return version

    async def _watch(self, namespace: str | None, version: str) -> None:
        while True:
            query = {
                "watch": "true",
                "allowWatchBookmarks": "true",
                "resourceVersion": version,
                "timeoutSeconds": str(WATCH_SECONDS),
            }
            pending = b""
            async for chunk in self.kube.stream(path_of(RUNS, namespace), **query):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        version = self._apply(json.loads(line), version)

    def _apply(self, event: Mapping[str, Any], version: str) -> str:
        """Fold one watch event; returns the resourceVersion to resume from."""
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            raise RuntimeError(f"watch error: {obj.get('message', obj)}")
        resource_version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind == "BOOKMARK":
            return resource_version
        run = summary(obj)
        key = (run["namespace"], run["name"])
        if kind == "DELETED":
            if self.runs.pop(key, None) is not None:
                self._changed(run, deleted=True)
        elif self.runs.get(key) != run:
            self.runs[key] = run
            self._changed(run)
        return resource_version

    def _changed(self, run: Mapping[str, Any], *, deleted: bool = False) -> None:
        self.version += 1
        message = {"version": self.version, "run": run, "deleted": deleted}
        for queue in list(self.listeners):
            if queue.full():
                # A listener that does not keep up is told to reload instead of being
                # handed an ever longer backlog.
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait({"version": self.version, "reset": True})
            else:
                queue.put_nowait(message)
