"""Which cluster and namespace the run commands address: kubeconfig, context and namespace,
chosen as kubectl chooses them.

`--kubeconfig`, else $KUBECONFIG (a list of files, merged), else ~/.kube/config, else (see
`baton.cli.cluster`) the pod's service account inside a cluster; `--context`, else the
kubeconfig's current context; `-n/--namespace`, else the context's namespace, else `default`.
Pure apart from reading the kubeconfig files; connecting is `baton.cli.cluster.open_cluster`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from baton.cli import CommandError

DEFAULT_NAMESPACE = "default"


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
