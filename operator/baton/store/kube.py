"""The one Kubernetes API client of Baton's shell and CLI: plain JSON over REST paths.

kubernetes_asyncio provides the connection (kubeconfig and in-cluster login, TLS, token
refresh); everything above it speaks JSON dicts, as kopf does, so the operator needs no typed
model per resource kind. `Kube` counts its writes: they are the operator's throughput limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from baton.api.labels import GROUP, VERSION
from baton.api.names import check_label, check_subdomain
from baton.store.kubeconfig import (
    DEFAULT_NAMESPACE,
    KubeconfigError,
    check_context,
    context_namespace,
    kubeconfig_files,
    merged_kubeconfig,
)

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
IN_CLUSTER_NAMESPACE = IN_CLUSTER_TOKEN.parent / "namespace"

PatchKind = Literal["merge", "json", "strategic"]
_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


class ApiError(Exception):
    """A request the API server refused; `status` is the HTTP status (409 conflict, ...)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}")


@dataclass
class Connection:
    """A logged-in client, the namespace the kubeconfig context names, and the task renewing
    an exec plugin's token (EKS, GKE, OIDC helpers), which long-lived processes need."""

    kube: Kube
    namespace: str
    refresher: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Stop renewing the token and close the connection pool."""
        if self.refresher is not None:
            self.refresher.cancel()
        await self.kube.close()


async def open_connection(
    kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None
) -> Connection:
    """Connect as kubectl would: `kubeconfig` (else $KUBECONFIG, else ~/.kube/config, else the
    pod's service account), `context` (else the current one); `namespace` else the context's,
    else `default`. KubeconfigError (one line) when no usable configuration is found."""
    files = kubeconfig_files(kubeconfig, os.environ, Path.home())
    if files:
        where = os.pathsep.join(str(f) for f in files)
        merged = merged_kubeconfig(files)
        chosen = check_context(merged, context, where)
        configuration = client.Configuration()
        try:
            # Given `where` explicitly, the library merges the same files the same way and
            # does not fall back on the $KUBECONFIG it read at import time.
            loader = await config.load_kube_config(
                config_file=where,
                context=chosen,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, OSError, ValueError) as exc:
            raise KubeconfigError(f"kubeconfig {where}: {exc}") from None
        api = client.ApiClient(configuration)
        default = context_namespace(merged, chosen) or DEFAULT_NAMESPACE
        refresher = _token_refresher(loader, configuration)
    elif IN_CLUSTER_TOKEN.exists():
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api = client.ApiClient()
        default = _in_cluster_namespace()
        refresher = None
    else:
        raise KubeconfigError(
            "no kubeconfig: set KUBECONFIG, pass --kubeconfig, or run inside a cluster"
        )
    return Connection(Kube(api), namespace or default, refresher)


def _token_refresher(loader: Any, configuration: client.Configuration) -> asyncio.Task[None] | None:
    user = getattr(loader, "_user", None)
    if user is None or "exec" not in user:
        return None
    task = asyncio.get_running_loop().create_task(
        config.refresh_token(loader, configuration), name="kubeconfig-token-refresh"
    )
    # A failed renewal keeps the old token; the request it then fails is what gets reported.
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


def _in_cluster_namespace() -> str:
    try:
        return IN_CLUSTER_NAMESPACE.read_text(encoding="utf-8").strip() or DEFAULT_NAMESPACE
    except OSError:
        return DEFAULT_NAMESPACE


def path_of(
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    *,
    group: str = GROUP,
    version: str = VERSION,
    subresource: str | None = None,
) -> str:
    """The REST path of a resource collection or object (`group=""` for the core API).

    The one place API paths are built. `namespace` and `name` may come from users (a template
    rendered at run time, a field of a resource), so each is checked against Kubernetes' name
    rules and escaped: InvalidNameError for `..`, `/`, `%2e` and anything else a name cannot
    hold, so no path leaves the namespace and the kind it was built for."""
    base = f"/api/{version}" if group == "" else f"/apis/{group}/{version}"
    parts = [base]
    if namespace is not None:
        parts.append(f"namespaces/{quote(check_label(namespace, 'namespace'), safe='')}")
    parts.append(plural)
    if name is not None:
        parts.append(quote(check_subdomain(name, f"{plural} name"), safe=""))
    if subresource is not None:
        parts.append(subresource)
    return "/".join(parts)


def core_path(plural: str, namespace: str | None = None, name: str | None = None) -> str:
    """Path in the core (`v1`) API: configmaps, secrets, pods, events, namespaces."""
    return path_of(plural, namespace, name, group="", version="v1")


def batch_path(namespace: str, name: str | None = None) -> str:
    """Path of batch/v1 Jobs."""
    return path_of("jobs", namespace, name, group="batch", version="v1")


class Kube:
    """JSON requests to the API server through one authenticated connection pool."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.writes: Counter[str] = Counter()
        """Writes sent, by verb and resource (`patch workflowruns/status`), for metrics."""
        self.reads: Counter[str] = Counter()
        """Reads sent, by verb and resource (`get configmaps`, `list jobs`), for metrics: an
        idle operator should send none."""
        self.conflicts = 0
        """Writes refused with 409."""
        self.write_errors: Counter[str] = Counter()
        """Writes the API server refused or failed, by verb, resource and HTTP status
        (`patch workflowruns/status 422`), for metrics."""

    @classmethod
    async def connect(cls, kubeconfig: str | None = None) -> Kube:
        """A client logged in as `open_connection` describes (no token renewal: for short
        tasks such as benchmarks and tests)."""
        return (await open_connection(kubeconfig)).kube

    async def close(self) -> None:
        """Close the connection pool."""
        await self.api.close()

    async def get(self, path: str, **query: str) -> dict[str, Any] | None:
        """The object at `path`, or None when it does not exist."""
        try:
            return await self._call("GET", path, query=query)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        """The items of the collection at `path`."""
        query = {"labelSelector": label_selector} if label_selector else {}
        listing = await self._call("GET", path, query=query)
        items: list[dict[str, Any]] = listing.get("items") or []
        return items

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create `body` in the collection at `path`; ApiError 409 when it exists."""
        return await self._call("POST", path, body=body)

    async def patch(self, path: str, body: Any, *, kind: PatchKind = "merge") -> dict[str, Any]:
        """Patch the object at `path` (a merge patch unless `kind` says otherwise)."""
        return await self._call("PATCH", path, body=body, content_type=_PATCH_CONTENT_TYPES[kind])

    async def delete(self, path: str, *, propagation: str = "Background") -> bool:
        """Delete the object at `path`; False when it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            await self._call("DELETE", path, body=body)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def stream(self, path: str, **query: str) -> AsyncIterator[bytes]:
        """The body of a GET of `path` as it arrives, chunk by chunk, for text that is not JSON
        and may not end (`pods/NAME/log?follow=true`). No overall timeout: the caller stops."""
        try:
            response = await self.api.call_api(
                path,
                "GET",
                query_params=list(query.items()),
                header_params={"Accept": "*/*"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _preload_content=False,
            )
        except ApiException as exc:
            raise _api_error(exc) from None
        try:
            if not 200 <= response.status <= 299:
                body = await response.text()
                raise _error_of(response.status, response.reason, body)
            async for chunk in response.content.iter_any():
                yield chunk
        finally:
            response.release()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        if method != "GET":
            self.writes[f"{method.lower()} {_resource_of(path)}"] += 1
        else:
            self.reads[f"{_read_verb(path)} {_resource_of(path)}"] += 1
        try:
            response = await self.api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                response_types_map={200: "object", 201: "object", 202: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )
        except ApiException as exc:
            if exc.status == 409:
                self.conflicts += 1
            if method != "GET":
                self.write_errors[f"{method.lower()} {_resource_of(path)} {exc.status}"] += 1
            raise _api_error(exc) from None
        return response if isinstance(response, dict) else {}


def _resource_of(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if "namespaces" in parts:
        parts = parts[parts.index("namespaces") + 2 :]
    else:
        parts = parts[2:] if parts[0] == "api" else parts[3:]
    if len(parts) >= 3:
        return f"{parts[0]}/{parts[2]}"
    return parts[0] if parts else path


def _read_verb(path: str) -> str:
    """`list` for a collection's path, `get` for an object's (or its subresource's)."""
    parts = [p for p in path.split("/") if p]
    if "namespaces" in parts and parts.index("namespaces") + 2 < len(parts):
        parts = parts[parts.index("namespaces") + 2 :]
    else:
        parts = parts[2:] if parts[0] == "api" else parts[3:]
    return "list" if len(parts) == 1 else "get"


def _api_error(exc: ApiException) -> ApiError:
    return _error_of(exc.status, exc.reason, exc.body)


def _error_of(status: int | None, reason: str | None, body: Any) -> ApiError:
    """The ApiError of a refused request: the message of the Status object in its body."""
    message = reason or ""
    with contextlib.suppress(TypeError, ValueError, AttributeError):  # not a Status: keep reason
        message = json.loads(body or "{}").get("message") or message
    return ApiError(int(status or 0), str(reason or ""), str(message))
