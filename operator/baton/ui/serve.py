"""Running the web view: connect as `baton ui` was asked to, then serve with uvicorn until
interrupted. Prints the address once it listens (`make dev` and the browser tests read it)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import webbrowser

import uvicorn

from baton.cli import CommandError
from baton.cli.kubeconfig import Target
from baton.store.kube import open_connection
from baton.store.kubeconfig import KubeconfigError
from baton.ui.access import Access, AuthMode, KubeconfigAccess, TokenAccess, server_of
from baton.ui.server import create_app


def serve(
    target: Target,
    auth: str,
    address: str,
    port: int,
    namespaces: list[str],
    *,
    open_browser: bool,
) -> int:
    """`baton ui`: serve until interrupted; 0 when stopped. `namespaces` are shown to a user
    who may not list runs in all of them (default: the context's namespace)."""
    return asyncio.run(_serve(target, AuthMode(auth), address, port, namespaces, open_browser))


async def _serve(  # noqa: PLR0917 (the command's arguments, passed through)
    target: Target,
    auth: AuthMode,
    address: str,
    port: int,
    namespaces: list[str],
    open_browser: bool,
) -> int:
    try:
        connection = await open_connection(target.kubeconfig, target.context, target.namespace)
    except KubeconfigError as exc:
        raise CommandError(str(exc)) from None
    access: Access
    if auth is AuthMode.TOKEN:
        # Only where the API server is and how to trust it; never the server's own rights.
        host, ca_file, verify = server_of(connection)
        await connection.close()
        access = TokenAccess(host, ca_file, verify)
    else:
        access = KubeconfigAccess(connection)
    app = create_app(access, auth.value, namespaces or [connection.namespace])
    # Pages hold event streams open: on Ctrl-C they are cut after a moment, not waited for.
    config = uvicorn.Config(
        app,
        host=address,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            return 1
        await asyncio.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://{address}:{bound}/"
    print(f"baton ui: serving {url} ({auth.value} mode); Ctrl-C stops it", flush=True)
    if open_browser:
        webbrowser.open(url)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    print("baton ui: stopped", file=sys.stderr)
    return 0
