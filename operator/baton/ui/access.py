"""Whose rights each request of the web view uses: the one place a request gets its `Kube`.

Two modes, as Argo's server has them:

- `kubeconfig` (`baton ui` on a laptop): every request acts as the user of the kubeconfig the
  command line uses (`--kubeconfig`, `--context`), so the page shows exactly what `kubectl`
  would show that user, and nothing has to be installed in the cluster. The server listens on
  127.0.0.1 only.
- `token` (the chart's `ui.enabled` deployment): every request acts with the caller's own bearer
  token (`Authorization: Bearer ...`), never with the server's service account; a request
  without one is refused with 401 before anything is read. The server's own configuration
  gives only the API server's address and CA.

`Access.kube(request)` is the only way the handlers reach the cluster.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from kubernetes_asyncio import client
from starlette.requests import HTTPConnection

from baton.store.kube import Connection, Kube


class AuthMode(StrEnum):
    """How requests are authenticated to the API server."""

    KUBECONFIG = "kubeconfig"
    TOKEN = "token"


class UnauthenticatedError(Exception):
    """A request in token mode that carries no bearer token."""


class Access(Protocol):
    """Gives each request the `Kube` it must act with."""

    def identity(self, request: HTTPConnection) -> str:
        """Who the request acts as (a key for per-user caches; never the credential itself)."""

    def kube(self, request: HTTPConnection) -> AbstractAsyncContextManager[Kube]:
        """An async context giving the request's `Kube`; UnauthenticatedError when it has none."""

    async def open(self, request: HTTPConnection) -> Kube:
        """A `Kube` acting as the request's user that outlives the request (the runs index's
        watch); give it back with `release`."""

    async def release(self, kube: Kube) -> None:
        """Give back a `Kube` from `open`."""

    async def close(self) -> None:
        """Release what the access holds."""


@dataclass
class KubeconfigAccess:
    """Every request as the kubeconfig's user, through one shared connection."""

    connection: Connection

    def identity(self, request: HTTPConnection) -> str:
        return "kubeconfig"

    @asynccontextmanager
    async def kube(self, request: HTTPConnection) -> AsyncIterator[Kube]:
        yield self.connection.kube

    async def open(self, request: HTTPConnection) -> Kube:
        return self.connection.kube

    async def release(self, kube: Kube) -> None:
        return None  # the shared connection is closed with the access

    async def close(self) -> None:
        await self.connection.close()


def bearer_token(request: HTTPConnection) -> str:
    """The caller's bearer token (the Authorization header); UnauthenticatedError without one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    raise UnauthenticatedError(
        "this view needs your Kubernetes bearer token (Authorization header)"
    )


@dataclass
class TokenAccess:
    """Every request with the caller's own bearer token; the server's configuration gives the
    API server's address and CA only."""

    host: str
    ca_file: str | None
    verify: bool = True

    def identity(self, request: HTTPConnection) -> str:
        return "token:" + hashlib.sha256(bearer_token(request).encode()).hexdigest()

    @asynccontextmanager
    async def kube(self, request: HTTPConnection) -> AsyncIterator[Kube]:
        kube = await self.open(request)
        try:
            yield kube
        finally:
            await kube.close()

    async def open(self, request: HTTPConnection) -> Kube:
        token = bearer_token(request)
        configuration = client.Configuration(host=self.host)
        configuration.api_key = {"BearerToken": f"Bearer {token}"}
        configuration.ssl_ca_cert = self.ca_file
        configuration.verify_ssl = self.verify
        return Kube(client.ApiClient(configuration))

    async def release(self, kube: Kube) -> None:
        await kube.close()

    async def close(self) -> None:
        return None


def server_of(connection: Connection) -> tuple[str, str | None, bool]:
    """The API server address, CA file and TLS verification of a connection (its credentials
    are not taken)."""
    configuration = connection.kube.api.configuration
    return (
        str(configuration.host),
        configuration.ssl_ca_cert,
        bool(configuration.verify_ssl),
    )
