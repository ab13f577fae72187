"""The worker: an ASGI app serving registered activities on Baton's worker protocol.

    POST /activities/<name>   Authorization: Bearer <token>
                              {"input", "idempotencyKey", "attempt", "run", "heartbeatDetails"}
      → 200 application/json      {"output": ...} | {"error": {type, message, nonRetryable}}
      → 200 application/x-ndjson  {"heartbeat": ...}\\n ... then the result line
      → 401                       no accepted token (baton_activities.auth)
    GET  /healthz             200 (readiness and liveness probes)
    GET  /activities          the names this worker serves (token required)
    GET  /metrics             Prometheus metrics (baton_activities.metrics)

Tokens: with `tokens` (or `BATON_WORKER_TOKENS`, which the operator sets in a pool's pods)
every task and listing needs an accepted bearer token; without either, the worker accepts any
caller and says so in its log at start-up — for a worker on a developer's machine only.

The answer is plain JSON unless the activity heartbeats before it finishes: the first
heartbeat starts a newline-delimited JSON stream (heartbeat lines, at most one per
`heartbeat_interval`, then the result line). A closed connection cancels the task. A task
whose idempotency key is already running or recently answered is not run twice: the request
joins the running task or gets the first answer. On shutdown the server stops accepting
connections and the tasks in flight run to their end (see `baton-worker --graceful-timeout`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pydantic_core import to_jsonable_python

from baton_activities.activity import Activity
from baton_activities.auth import TOKENS_ENV, Tokens
from baton_activities.context import ActivityContext, RunInfo, _current, threadsafe_beat
from baton_activities.errors import error_of
from baton_activities.metrics import CONTENT_TYPE, Outcome, WorkerMetrics

log = logging.getLogger("baton_activities")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""Largest task request read (inputs live in a workflow's status: far smaller)."""

NDJSON = "application/x-ndjson"


@dataclass(eq=False)
class _Listener:
    """One request waiting on a task: the latest heartbeat not yet sent to it."""

    beat: asyncio.Event = field(default_factory=asyncio.Event)
    details: Any = None


@dataclass(eq=False)
class _Task:
    """A task running (or finished) for one idempotency key."""

    ctx: ActivityContext
    future: asyncio.Task[dict[str, Any]]
    listeners: set[_Listener] = field(default_factory=set)

    def beat(self, details: Any) -> None:
        for listener in self.listeners:
            listener.details = details
            listener.beat.set()


class Worker:
    """An ASGI app serving `activities` (serve it with `baton-worker module:attr` or any ASGI
    server).

    `heartbeat_interval`: the least time between two heartbeat lines sent to the operator.
    `remembered`: how many answers are kept by idempotency key for a repeated request.
    `tokens`: the bearer tokens accepted (default: those `BATON_WORKER_TOKENS` names; no check
    when it is unset)."""

    def __init__(
        self,
        activities: Iterable[Activity[..., Any]] = (),
        *,
        heartbeat_interval: float = 1.0,
        remembered: int = 1024,
        tokens: Tokens | None = None,
    ) -> None:
        self.activities: dict[str, Activity[..., Any]] = {}
        for act in activities:
            self.register(act)
        self.heartbeat_interval = heartbeat_interval
        self.remembered = remembered
        self.tokens = tokens if tokens is not None else Tokens.from_env()
        self.metrics = WorkerMetrics()
        self._running: dict[str, _Task] = {}
        self._answers: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def register(self, act: Activity[..., Any]) -> None:
        """Serve one more activity; two with one name are a mistake."""
        if not isinstance(act, Activity):
            raise TypeError(f"{act!r} is not an @activity")
        if act.name in self.activities and self.activities[act.name] is not act:
            raise ValueError(f"two activities are named {act.name!r}")
        self.activities[act.name] = act

    @property
    def in_flight(self) -> int:
        """Tasks running now."""
        return len(self._running)

    async def drain(self) -> None:
        """Wait for every task in flight to finish."""
        while self._running:
            await asyncio.gather(
                *(t.future for t in list(self._running.values())), return_exceptions=True
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/healthz":
            await _send_json(send, 200, {"status": "ok", "inFlight": self.in_flight})
        elif path == "/metrics":
            await send(_response_start(200, CONTENT_TYPE))
            await send({"type": "http.response.body", "body": self.metrics.exposition()})
        elif not self._authorized(scope):
            self.metrics.unauthorized.inc()
            await _send_json(
                send,
                401,
                _error("Unauthorized", "a bearer token of the pool's token Secret is required"),
                www_authenticate='Bearer realm="baton-worker"',
            )
        elif path in ("/activities", "/activities/"):
            await _send_json(send, 200, {"activities": sorted(self.activities)})
        elif path.startswith("/activities/"):
            if method != "POST":
                await _send_json(send, 405, _error("MethodNotAllowed", "use POST"), allow="POST")
                return
            await self._task(unquote(path[len("/activities/") :]), scope, receive, send)
        else:
            await _send_json(send, 404, _error("NotFound", f"no route {path}"))

    def _authorized(self, scope: Scope) -> bool:
        return self.tokens is None or self.tokens.accepts(_header(scope, b"authorization"))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.tokens is None:
                    log.warning(
                        "no tokens (%s unset): any client can post tasks to this worker; "
                        "a WorkerPool's pods always have them",
                        TOKENS_ENV,
                    )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.drain()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _task(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        act = self.activities.get(name)
        if act is None:
            await _send_json(
                send, 404, _error("ActivityNotFound", f"this worker has no activity {name!r}")
            )
            return
        body = await _read_body(receive)
        if body is None:
            await _send_json(send, 413, _error("RequestTooLarge", "task request too large"))
            return
        try:
            request = json.loads(body)
        except ValueError as exc:
            await _send_json(send, 400, _error("BadRequest", f"the body is not JSON: {exc}"))
            return
        if not isinstance(request, dict):
            await _send_json(send, 400, _error("BadRequest", "the body is not a JSON object"))
            return
        key = str(request.get("idempotencyKey") or _header(scope, b"idempotency-key") or "")
        seen = f"{act.name}\n{key}" if key else ""
        answer = self._answers.get(seen) if seen else None
        if answer is not None:
            await _send_json(send, 200, answer)
            return
        task = self._running.get(seen) if seen else None
        if task is None:
            task = self._start(act, key, seen, request)
        await self._follow(task, receive, send)

    def _start(
        self, act: Activity[..., Any], key: str, seen: str, request: dict[str, Any]
    ) -> _Task:
        given = request.get("run")
        run: dict[str, Any] = given if isinstance(given, dict) else {}
        attempt = request.get("attempt")
        ctx = ActivityContext(
            activity=act.name,
            idempotency_key=key,
            attempt=attempt if isinstance(attempt, int) else 1,
            heartbeat_details=request.get("heartbeatDetails"),
            run=RunInfo(
                name=str(run.get("name") or ""),
                namespace=str(run.get("namespace") or ""),
                uid=str(run.get("uid") or ""),
            ),
        )
        future = asyncio.create_task(self._execute(act, ctx, request.get("input")))
        task = _Task(ctx, future)
        # Set before the task first runs (create_task only schedules it).
        ctx._beat = threadsafe_beat(asyncio.get_running_loop(), task.beat)
        running_key = seen or f"anonymous/{id(task)}"
        self._running[running_key] = task

        def finished(f: asyncio.Task[dict[str, Any]]) -> None:
            self._running.pop(running_key, None)
            if seen and not f.cancelled():
                self._answers[seen] = f.result()
                while len(self._answers) > self.remembered:
                    self._answers.popitem(last=False)

        future.add_done_callback(finished)
        return task

    async def _execute(
        self, act: Activity[..., Any], ctx: ActivityContext, data: Any
    ) -> dict[str, Any]:
        token = _current.set(ctx)
        began = time.monotonic()
        outcome, error_type = Outcome.COMPLETED, None
        self.metrics.started(act.name)
        try:
            log.info("%s %s: started", act.name, ctx.idempotency_key)
            output = await act.run(data)
            answer = {"output": to_jsonable_python(output)}
            log.info("%s %s: completed", act.name, ctx.idempotency_key)
        except asyncio.CancelledError:
            ctx._cancelled.set()
            outcome = Outcome.CANCELLED
            log.info("%s %s: cancelled", act.name, ctx.idempotency_key)
            raise
        except Exception as exc:
            error = error_of(exc)
            level = logging.INFO if error["type"] == "InvalidInput" else logging.WARNING
            log.log(
                level,
                "%s %s: failed: %s: %s",
                act.name,
                ctx.idempotency_key,
                error["type"],
                error["message"],
                exc_info=level == logging.WARNING,
            )
            answer = {"error": error}
            outcome, error_type = Outcome.FAILED, str(error["type"])
        finally:
            _current.reset(token)
            self.metrics.finished(act.name, outcome, time.monotonic() - began, error_type)
        return answer

    async def _follow(self, task: _Task, receive: Receive, send: Send) -> None:
        """Answer one request from `task`: plain JSON, or a heartbeat stream then the result."""
        listener = _Listener()
        task.listeners.add(listener)
        disconnected = asyncio.create_task(_disconnect(receive))
        streaming = False
        loop = asyncio.get_running_loop()
        next_beat = 0.0
        try:
            while not task.future.done():
                delay = next_beat - loop.time()
                beat = asyncio.create_task(_beat_after(listener, delay))
                try:
                    await asyncio.wait(
                        [task.future, beat, disconnected], return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    beat.cancel()
                if disconnected.done():
                    task.listeners.discard(listener)
                    if not task.listeners and not task.future.done():
                        task.ctx._cancelled.set()
                        task.future.cancel()
                    return
                if task.future.done():
                    break
                if listener.beat.is_set():
                    listener.beat.clear()
                    if not streaming:
                        streaming = True
                        await send(_response_start(200, NDJSON))
                    line = _line({"heartbeat": to_jsonable_python(listener.details)})
                    await send({"type": "http.response.body", "body": line, "more_body": True})
                    next_beat = loop.time() + self.heartbeat_interval
            if task.future.cancelled():
                answer = {"error": _error("Cancelled", "the task was cancelled")["error"]}
            else:
                answer = task.future.result()
            if streaming:
                await send({"type": "http.response.body", "body": _line(answer)})
            else:
                await _send_json(send, 200, answer)
        finally:
            task.listeners.discard(listener)
            disconnected.cancel()


async def _beat_after(listener: _Listener, delay: float) -> None:
    if delay > 0:
        await asyncio.sleep(delay)
    await listener.beat.wait()


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(receive: Receive) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        body += message.get("body", b"")
        if len(body) > MAX_REQUEST_BYTES:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "nonRetryable": False}}


def _line(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _response_start(status: int, content_type: str, **headers: str) -> Message:
    raw = [(b"content-type", content_type.encode())]
    raw += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http.response.start", "status": status, "headers": raw}


async def _send_json(send: Send, status: int, data: Any, **headers: str) -> None:
    await send(_response_start(status, "application/json", **headers))
    await send({"type": "http.response.body", "body": _line(data)})
