"""The web view's HTTP server: a Starlette app on uvicorn serving the page and its JSON API.

Routes (every `/api` answer is JSON; an API server refusal is passed on with its own status
and message, as the page shows it):

- `GET /api/info`: the mode, what the runs list covers, namespaces refused;
- `GET /api/runs?namespace&workflow&phase&label&since&search&offset&limit`: a page of runs with
  phase counts (`baton.ui.index.select`), `GET /api/runs/events`: their changes as
  server-sent events;
- `GET /api/runs/NS/NAME`: a run with its definition, graph, timeline, attempts, history, child
  runs, Events, Job pods and signals; `.../outputs/REF` an offloaded output; `.../logs?key&attempt`
  a Job step's pod log (`&follow=1`: streamed live while the pod writes);
  `POST .../signal|update|cancel|suspend|resume|redrive` the actions;
- `GET /api/workflows`, `GET /api/workflows/NS/NAME`, `POST /api/workflows/NS/NAME/runs`;
- `GET /api/pools` (each pool's `history` from the operator's metrics with `--metrics-url`);
- anything else: the page (`static/index.html`), which routes by its URL: deep links.

Every request reaches the cluster through `Access` (whose rights) and reads through
`baton.cli.runread`, writes through `baton.cli.runactions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from baton.api.names import InvalidNameError
from baton.cli import CommandError, runactions
from baton.cli.completion import signal_names, update_names
from baton.cli.podlogs import choose_pod
from baton.cli.runpatch import new_update_id, run_manifest, signal_value, update_value
from baton.cli.runread import (
    POOLS,
    WORKFLOWS,
    output_refs,
    pod_log,
    read_children,
    read_definition,
    read_events,
    read_job_pods,
    read_output,
    read_run,
    read_run_history,
)
from baton.cli.timeline import rfc3339
from baton.engine.events import event_detail, event_step
from baton.engine.inputs import input_problem
from baton.store.history import HistoryCorruptError
from baton.store.kube import ApiError, Kube, path_of
from baton.ui import model
from baton.ui.access import Access, UnauthenticatedError
from baton.ui.index import Query, QueryError, RunIndex, select, summary
from baton.ui.logfollow import follow_log
from baton.ui.poolmetrics import PoolMetrics, sampling, with_history

STATIC = Path(__file__).parent / "static"
LOG_BYTES = 1024 * 1024
"""Most of a pod log one request returns (its end is what matters; kubectl's limitBytes)."""
BATCH_SECONDS = 0.2
"""Changes pushed to a page are gathered this long, so a burst is one message."""
HEARTBEAT_SECONDS = 15.0
INDEX_IDLE_SECONDS = 600.0
"""A token's runs index is dropped after this long without a request (token mode)."""
QUEUE_SIZE = 2000

log = logging.getLogger(__name__)


class HttpError(Exception):
    """An answer other than 200, with a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Entry:
    index: RunIndex
    kube: Kube | None
    used: float


@dataclass
class Indexes:
    """One runs index per identity (the one user in kubeconfig mode; a token in token mode)."""

    access: Access
    namespaces: list[str]
    entries: dict[str, _Entry] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, request: Request) -> RunIndex:
        identity = self.access.identity(request)
        now = time.monotonic()
        async with self.lock:
            for other, entry in list(self.entries.items()):
                if other != identity and now - entry.used > INDEX_IDLE_SECONDS:
                    await self._drop(other)
            found = self.entries.get(identity)
            if found is None:
                kube = await self.access.open(request)
                index = RunIndex(kube, self.namespaces)
                try:
                    await index.start()
                except BaseException:
                    await index.stop()
                    await self.access.release(kube)
                    raise
                found = self.entries[identity] = _Entry(index, kube, now)
            found.used = now
            return found.index

    async def _drop(self, identity: str) -> None:
        entry = self.entries.pop(identity)
        await entry.index.stop()
        if entry.kube is not None:
            await self.access.release(entry.kube)

    async def close(self) -> None:
        for identity in list(self.entries):
            await self._drop(identity)


Handler = Callable[[Request, Kube], Awaitable[Response]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A route that acts with the request's own rights, and words every failure as JSON."""

    async def endpoint(request: Request) -> Response:
        access: Access = request.app.state.access
        try:
            async with access.kube(request) as kube:
                return await handler(request, kube)
        except UnauthenticatedError as exc:
            return _error(401, str(exc), {"WWW-Authenticate": "Bearer"})
        except HttpError as exc:
            return _error(exc.status, exc.message)
        except ApiError as exc:
            return _error(exc.status or 502, " ".join(exc.message.split()) or exc.reason)
        except (InvalidNameError, QueryError) as exc:
            return _error(400, str(exc))
        except CommandError as exc:
            return _error(404, str(exc))

    return endpoint


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def _json(value: Any) -> JSONResponse:
    return JSONResponse(value)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HttpError(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise HttpError(400, "the request body must be a JSON object")
    return body


async def _message(request: Request, what: str) -> tuple[str, Any, bool]:
    """A signal's or an update's `{name, payload}` from the request body: the name, the
    payload, and whether one was given (a `null` payload is one)."""
    body = await _body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise HttpError(400, f"name: the {what}'s name is required")
    return name.strip(), body.get("payload"), "payload" in body


# -- runs -----------------------------------------------------------------------------------------


async def info(request: Request, kube: Kube) -> Response:
    index = await request.app.state.indexes.get(request)
    return _json(
        {
            "mode": request.app.state.mode,
            "scope": ["*" if ns is None else ns for ns in index.scope],
            "refused": index.refused,
        }
    )


async def runs_page(request: Request, kube: Kube) -> Response:
    query = Query.parse(request.query_params, time.time())
    index = await request.app.state.indexes.get(request)
    page = select(index.ordered(), query, ordered=True)
    page["version"] = index.version
    page["workflows"] = sorted({r["workflow"] for r in index.runs.values()})
    page["namespaces"] = sorted({r["namespace"] for r in index.runs.values()})
    return _json(page)


async def runs_events(request: Request, kube: Kube) -> Response:
    index = await request.app.state.indexes.get(request)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_SIZE)
    index.listeners.add(queue)

    async def stream() -> AsyncIterator[str]:
        try:
            yield f"data: {json.dumps({'version': index.version, 'hello': True})}\n\n"
            while True:
                try:
                    first = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                batch = [first]
                await asyncio.sleep(BATCH_SECONDS)
                while not queue.empty():
                    batch.append(queue.get_nowait())
                message: dict[str, Any] = {"version": batch[-1]["version"]}
                if any(m.get("reset") for m in batch):
                    message["reset"] = True
                else:
                    message["runs"] = [m["run"] for m in batch if not m["deleted"]][-200:]
                    message["deleted"] = [m["run"] for m in batch if m["deleted"]][-200:]
                yield f"data: {json.dumps(message)}\n\n"
        finally:
            index.listeners.discard(queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _existing_run(kube: Kube, request: Request) -> dict[str, Any]:
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    run = await read_run(kube, namespace, name)
    if run is None:
        raise HttpError(404, f'workflowrun "{name}" not found in namespace "{namespace}"')
    return run


async def run_detail(request: Request, kube: Kube) -> Response:
    run = await _existing_run(kube, request)
    metadata, spec, status = run["metadata"], run.get("spec") or {}, run.get("status") or {}
    problems: list[str] = []

    async def optional(what: str, read: Awaitable[Any], default: Any) -> Any:
        """Parts of the page a user may lack the rights for (Events, pods) or that may be
        damaged (history): the rest of the page is still shown, with the reason."""
        try:
            return await read
        except ApiError as exc:
            problems.append(f"{what}: {' '.join(exc.message.split()) or exc.reason}")
        except HistoryCorruptError as exc:
            problems.append(f"{what}: {exc}")
        return default

    definition = await optional("definition", read_definition(kube, run), None)
    children = await optional("child runs", read_children(kube, run), [])
    entries = await optional("history", read_run_history(kube, run), [])
    events = await optional("events", read_events(kube, run), [])
    pods = await optional("pods", read_job_pods(kube, run), [])
    now = time.time()
    start = model.run_start(status, entries)
    consumed = int(status.get("signalsConsumed") or 0)
    return _json(
        {
            "run": {"metadata": metadata, "spec": spec, "status": status},
            "summary": summary(run),
            "definition": definition,
            "graph": model.run_graph(definition, status, children),
            "timeline": model.timeline(status, entries, definition, now),
            "attempts": model.step_attempts(str(metadata["uid"]), entries, start),
            "history": [
                {
                    "at": entry.at - (start or entry.at),
                    "time": rfc3339(entry.at),
                    "type": entry.event.type,
                    "step": event_step(entry.event),
                    "detail": event_detail(entry.event),
                    "event": entry.event.to_json(),
                }
                for entry in entries
            ],
            "children": [summary(child) for child in children],
            "events": [_event(e) for e in events],
            "pods": [asdict(pod) for pod in pods],
            "signals": {
                "sent": [
                    {"index": i, **s, "taken": i < consumed}
                    for i, s in enumerate(spec.get("signals") or [])
                ],
                "accepted": signal_names(definition or {}),
            },
            "updates": {
                "sent": model.updates_sent(spec, status),
                "accepted": update_names(definition or {}),
            },
            "locks": model.lock_holds(status),
            "outputRefs": sorted(set(output_refs(status))),
            "problems": problems,
            "now": now,
        }
    )


def _event(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": event.get("type", ""),
        "reason": event.get("reason", ""),
        "message": event.get("message", ""),
        "count": event.get("count") or 1,
        "time": event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp"),
    }


async def run_output(request: Request, kube: Kube) -> Response:
    run = await _existing_run(kube, request)
    ref = request.path_params["ref"]
    if ref not in output_refs(run.get("status") or {}):
        raise HttpError(404, f"the run's status refers to no offloaded output {ref!r}")
    try:
        return _json({"ref": ref, "output": await read_output(kube, run, ref)})
    except HistoryCorruptError as exc:
        raise HttpError(409, str(exc)) from None


async def run_logs(request: Request, kube: Kube) -> Response:
    run = await _existing_run(kube, request)
    key = request.query_params.get("key") or None
    attempt_text = request.query_params.get("attempt")
    attempt = int(attempt_text) if attempt_text and attempt_text.isdigit() else None
    pods = await read_job_pods(kube, run)
    chosen = choose_pod(run["metadata"]["name"], pods, key, attempt, run.get("status") or {})
    if request.query_params.get("follow") in ("1", "true"):
        access: Access = request.app.state.access
        own = await access.open(request)  # the stream outlives this handler's `kube`
        log = pod_log(own, run["metadata"]["namespace"], chosen.name, follow=True)
        return await follow_log(log, lambda: access.release(own), chosen.describe())
    chunks = []
    async for chunk in pod_log(
        kube, run["metadata"]["namespace"], chosen.name, limit_bytes=LOG_BYTES
    ):
        chunks.append(chunk)
    return PlainTextResponse(
        b"".join(chunks).decode("utf-8", "replace"), headers={"X-Pod": chosen.describe()}
    )


async def run_action(request: Request, kube: Kube) -> Response:
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    action = request.path_params["action"]
    try:
        if action == "signal":
            signal_name, payload, has_payload = await _message(request, "signal")
            signal = signal_value(signal_name, payload, has_payload=has_payload)
            index = await runactions.send_signal(kube, namespace, name, signal)
            return _json({"message": f'signal "{signal_name}" sent (spec.signals[{index}])'})
        if action == "update":
            update_name, payload, has_payload = await _message(request, "update")
            update = update_value(new_update_id(), update_name, payload, has_payload=has_payload)
            index = await runactions.send_update(kube, namespace, name, update)
            return _json(
                {
                    "message": f'update "{update["name"]}" sent (spec.updates[{index}], id '
                    f"{update['id']}); its answer appears under Updates",
                    "id": update["id"],
                }
            )
        if action in ("cancel", "suspend", "resume"):
            field_name, value = {
                "cancel": ("cancel", True),
                "suspend": ("suspend", True),
                "resume": ("suspend", False),
            }[action]
            await runactions.set_flag(kube, namespace, name, field_name, value)
            done = {"cancel": "cancel requested", "suspend": "suspend requested"}
            return _json({"message": done.get(action, "resumed")})
        if action == "redrive":
            count = await runactions.redrive(kube, namespace, name)
            return _json({"message": f"redrive {count} requested"})
    except runactions.RunNotFoundError:
        raise HttpError(404, f'workflowrun "{name}" not found in namespace "{namespace}"') from None
    except runactions.RaceLostError as exc:
        raise HttpError(409, str(exc)) from None
    raise HttpError(
        404, f"unknown action {action!r}: signal, update, cancel, suspend, resume, redrive"
    )


# -- workflows and pools --------------------------------------------------------------------------


async def _scope(request: Request) -> list[str | None]:
    index: RunIndex = await request.app.state.indexes.get(request)
    return index.scope


async def _list_everywhere(request: Request, kube: Kube, plural: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for namespace in await _scope(request):
        items += await kube.list(path_of(plural, namespace))
    return items


async def workflows(request: Request, kube: Kube) -> Response:
    index: RunIndex = await request.app.state.indexes.get(request)
    found = await _list_everywhere(request, kube, WORKFLOWS)
    rows = []
    for workflow in found:
        metadata = workflow["metadata"]
        runs = [
            r
            for r in index.runs.values()
            if r["namespace"] == metadata["namespace"] and r["workflow"] == metadata["name"]
        ]
        counts: dict[str, int] = {}
        for run in runs:
            counts[run["phase"]] = counts.get(run["phase"], 0) + 1
        rows.append(
            {
                "namespace": metadata["namespace"],
                "name": metadata["name"],
                "generation": metadata.get("generation"),
                "created": metadata.get("creationTimestamp"),
                "steps": len((workflow.get("spec") or {}).get("steps") or []),
                "runs": len(runs),
                "counts": counts,
                "conditions": (workflow.get("status") or {}).get("conditions") or [],
            }
        )
    rows.sort(key=lambda r: (r["namespace"], r["name"]))
    metrics: PoolMetrics | None = request.app.state.metrics
    if metrics is None:
        return _json({"items": rows, "metrics": None})
    with_history(rows, metrics)
    return _json({"items": rows, "metrics": metrics.state()})


async def workflow_detail(request: Request, kube: Kube) -> Response:
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    workflow = await kube.get(path_of(WORKFLOWS, namespace, name))
    if workflow is None:
        raise HttpError(404, f'workflow "{name}" not found in namespace "{namespace}"')
    index: RunIndex = await request.app.state.indexes.get(request)
    runs = [r for r in index.runs.values() if r["namespace"] == namespace and r["workflow"] == name]
    runs.sort(key=lambda r: r["created"], reverse=True)
    generations: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        generations.setdefault(str(run.get("generation") or "?"), []).append(run)
    spec = workflow.get("spec") or {}
    return _json(
        {
            "workflow": workflow,
            "graph": model.run_graph(spec, {}, []),
            "generation": workflow["metadata"].get("generation"),
            "generations": [
                {"generation": g, "runs": rs[:50], "total": len(rs)}
                for g, rs in sorted(generations.items(), reverse=True)
            ],
            "inputSchema": spec.get("inputSchema"),
        }
    )


async def start_run(request: Request, kube: Kube) -> Response:
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    body = await _body(request)
    workflow = await kube.get(path_of(WORKFLOWS, namespace, name))
    if workflow is None:
        raise HttpError(404, f'workflow "{name}" not found in namespace "{namespace}"')
    value = body.get("input")
    problem = input_problem((workflow.get("spec") or {}).get("inputSchema"), value)
    if problem is not None:
        raise HttpError(422, problem)
    run_name = body.get("name") or None
    if run_name is not None and not isinstance(run_name, str):
        raise HttpError(400, "name: a run name is a string")
    manifest = run_manifest(name, input=value, has_input="input" in body, name=run_name)
    created = await kube.create(path_of("workflowruns", namespace), manifest)
    return _json({"namespace": namespace, "name": created["metadata"]["name"]})


async def pools(request: Request, kube: Kube) -> Response:
    found = await _list_everywhere(request, kube, POOLS)
    rows = []
    for pool in found:
        metadata, spec, status = pool["metadata"], pool.get("spec") or {}, pool.get("status") or {}
        rows.append(
            {
                "namespace": metadata["namespace"],
                "name": metadata["name"],
                "spec": spec,
                "status": status,
            }
        )
    rows.sort(key=lambda r: (r["namespace"], r["name"]))
    metrics: PoolMetrics | None = request.app.state.metrics
    if metrics is None:
        return _json({"items": rows, "metrics": None})
    with_history(rows, metrics)
    return _json({"items": rows, "metrics": metrics.state()})


# -- the app --------------------------------------------------------------------------------------

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def _host_name(host: str) -> str:
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


class GuardMiddleware:
    """What other web pages in the user's browser must not do with the user's rights.

    - A write (POST) must be JSON (`Content-Type: application/json`): another site's form or
      script can only send that cross-origin after a CORS preflight, which this server never
      allows; and a write whose `Origin` is not this server's own is refused.
    - In kubeconfig mode the server acts with the kubeconfig's rights, so it answers only
      requests addressed to a loopback name: a site whose DNS name rebinds to 127.0.0.1 (DNS
      rebinding) reaches the port but sends its own name as `Host`, and is refused.
    """

    def __init__(self, app: Any, *, loopback_only: bool) -> None:
        self.app = app
        self.loopback_only = loopback_only

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            host = headers.get("host", "")
            problem = None
            if self.loopback_only and _host_name(host) not in LOOPBACK_HOSTS:
                problem = f"Host {host!r} is not this machine: the view answers 127.0.0.1 only"
            elif scope["method"] not in ("GET", "HEAD"):
                kind = headers.get("content-type", "").split(";")[0].strip().lower()
                origin = headers.get("origin")
                if kind != "application/json":
                    problem = "a write must be sent as application/json"
                elif origin is not None and origin not in (f"http://{host}", f"https://{host}"):
                    problem = f"a write from another site ({origin}) is refused"
            if problem is not None:
                await _error(403, problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


def create_app(
    access: Access, mode: str, namespaces: list[str], metrics: PoolMetrics | None = None
) -> Starlette:
    """The web view's app, acting through `access`; WorkerPools over time from `metrics` (the
    operator's /metrics) when given."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with sampling(metrics):
                yield
        finally:
            await app.state.indexes.close()
            await access.close()

    routes = [
        Route("/api/info", _endpoint(info)),
        Route("/api/runs", _endpoint(runs_page)),
        Route("/api/runs/events", _endpoint(runs_events)),
        Route("/api/runs/{namespace}/{name}", _endpoint(run_detail)),
        Route("/api/runs/{namespace}/{name}/outputs/{ref}", _endpoint(run_output)),
        Route("/api/runs/{namespace}/{name}/logs", _endpoint(run_logs)),
        Route("/api/runs/{namespace}/{name}/{action}", _endpoint(run_action), methods=["POST"]),
        Route("/api/workflows", _endpoint(workflows)),
        Route("/api/workflows/{namespace}/{name}", _endpoint(workflow_detail)),
        Route("/api/workflows/{namespace}/{name}/runs", _endpoint(start_run), methods=["POST"]),
        Route("/api/pools", _endpoint(pools)),
        Route("/api/{rest:path}", lambda request: _error(404, "no such API")),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/{rest:path}", page),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(GuardMiddleware, loopback_only=mode == "kubeconfig")],
    )
    app.state.access = access
    app.state.mode = mode
    app.state.indexes = Indexes(access, namespaces)
    app.state.metrics = metrics
    return app
