"""How the cluster commands reach a cluster: kubeconfig, context and namespace, as kubectl does.

`--kubeconfig`, else $KUBECONFIG (a list of files, merged), else ~/.kube/config, else the pod's
service account when running inside a cluster; `--context`, else the kubeconfig's current
context; `-n/--namespace`, else the context's namespace, else `default`. `open_cluster` yields
a logged-in `Kube` (the one API client of Baton) and the namespace, and turns whatever can go
wrong on the way — no kubeconfig, an unknown context, an unreachable server — into a one-line
`CommandError`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.config.config_exception import ConfigException

from baton.cli import CommandError
from baton.store.kube import IN_CLUSTER_TOKEN, Kube

DEFAULT_NAMESPACE = "default"
IN_CLUSTER_NAMESPACE = IN_CLUSTER_TOKEN.parent / "namespace"


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every cluster command takes: -n/--namespace, --kubeconfig, --context."""
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "-n",
        "--namespace",
        metavar="NAMESPACE",
        help="namespace of the run (default: the kubeconfig context's namespace, else default)",
    )
    group.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    )
    group.add_argument("--context", metavar="NAME", help="kubeconfig context to use")


@dataclass(frozen=True)
class Target:
    """Where a command goes: the kubeconfig files (None inside a cluster), context, namespace."""

    kubeconfig: str | None
    context: str | None
    namespace: str | None


def target_of(args: argparse.Namespace) -> Target:
    """The `Target` the common flags of `args` ask for."""
    return Target(
        kubeconfig=getattr(args, "kubeconfig", None),
        context=getattr(args, "context", None),
        namespace=getattr(args, "namespace", None),
    )


def kubeconfig_files(flag: str | None, environ: Mapping[str, str], home: Path) -> list[Path]:
    """The kubeconfig files to read, in kubectl's order of precedence; [] when there is none.

    `--kubeconfig` names one file, which must exist; $KUBECONFIG is a `:`-separated list whose
    missing entries are skipped; ~/.kube/config counts when it exists."""
    if flag:
        path = Path(flag).expanduser()
        if not path.is_file():
            raise CommandError(f"--kubeconfig {flag}: no such file")
        return [path]
    listed = environ.get("KUBECONFIG")
    if listed:
        return [Path(p).expanduser() for p in listed.split(os.pathsep) if p and Path(p).is_file()]
    default = home / ".kube" / "config"
    return [default] if default.is_file() else []


def context_namespace(kubeconfig: Mapping[str, Any], context: str | None) -> str | None:
    """The namespace set on `context` (default: the current context) of a kubeconfig."""
    name = context or kubeconfig.get("current-context")
    for entry in kubeconfig.get("contexts") or []:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            namespace = (entry.get("context") or {}).get("namespace")
            return str(namespace) if namespace else None
    return None


def merged_kubeconfig(files: list[Path]) -> dict[str, Any]:
    """The kubeconfig `files` merged as kubectl merges them: the first file naming a context
    (or cluster, or user) wins, and so does the first `current-context`."""
    merged: dict[str, Any] = {"contexts": [], "clusters": [], "users": []}
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CommandError(f"kubeconfig {path}: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise CommandError(f"kubeconfig {path}: not a kubeconfig")
        for kind in ("contexts", "clusters", "users"):
            known = {entry.get("name") for entry in merged[kind]}
            merged[kind] += [
                entry
                for entry in data.get(kind) or []
                if isinstance(entry, dict) and entry.get("name") not in known
            ]
        if data.get("current-context") and "current-context" not in merged:
            merged["current-context"] = data["current-context"]
    return merged


def check_context(kubeconfig: Mapping[str, Any], context: str | None, where: str) -> str:
    """The context to use; a one-line error when it is unknown or none is set."""
    name = context or kubeconfig.get("current-context")
    known = [e.get("name") for e in kubeconfig.get("contexts") or []]
    if not name:
        raise CommandError(f"kubeconfig {where}: no current context; pass --context")
    if name not in known:
        flag = "--context" if context else "current-context"
        raise CommandError(f'{flag} "{name}" is not a context of kubeconfig {where}')
    return str(name)


@asynccontextmanager
async def open_cluster(target: Target) -> AsyncIterator[tuple[Kube, str]]:
    """A logged-in `Kube` and the namespace to work in; closes the connection afterwards."""
    files = kubeconfig_files(target.kubeconfig, os.environ, Path.home())
    if files:
        where = os.pathsep.join(str(f) for f in files)
        merged = merged_kubeconfig(files)
        context = check_context(merged, target.context, where)
        configuration = client.Configuration()
        try:
            # The library merges the same files the same way; given `where` explicitly, it
            # does not fall back on the $KUBECONFIG it read at import time.
            loader = await config.load_kube_config(
                config_file=where,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, OSError, ValueError) as exc:
            raise CommandError(f"kubeconfig {where}: {exc}") from None
        api = client.ApiClient(configuration)
        namespace = target.namespace or context_namespace(merged, context) or DEFAULT_NAMESPACE
        refresher = _token_refresher(loader, configuration)
    elif IN_CLUSTER_TOKEN.exists():
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api = client.ApiClient()
        namespace = target.namespace or _in_cluster_namespace()
        refresher = None
    else:
        raise CommandError(
            "no kubeconfig: set KUBECONFIG, pass --kubeconfig, or run inside a cluster"
        )
    kube = Kube(api)
    try:
        yield kube, namespace
    except aiohttp.ClientConnectionError as exc:
        raise CommandError(f"cannot reach the API server at {_host(api)}: {exc}") from None
    except TimeoutError:
        raise CommandError(f"the API server at {_host(api)} did not answer in time") from None
    finally:
        if refresher is not None:
            refresher.cancel()
        await kube.close()


def _token_refresher(loader: Any, configuration: client.Configuration) -> asyncio.Task[None] | None:
    """For logins by an exec plugin (EKS, GKE, OIDC helpers): a task that renews the token
    while a command runs, since `baton wait` can outlive a token of fifteen minutes."""
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


def _host(api: client.ApiClient) -> str:
    return str(getattr(api.configuration, "host", "") or "(unknown)")
