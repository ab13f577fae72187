"""Reading kubeconfig files as kubectl does: which files, merged how, which context and namespace.

`--kubeconfig` (one file), else $KUBECONFIG (a list of files, merged), else ~/.kube/config;
`--context`, else the kubeconfig's current context; the namespace of that context. Used by
`baton.store.kube.open_connection`, which the operator and the CLI both connect through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_NAMESPACE = "default"


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be used; the message is one line naming the file and fix."""


def kubeconfig_files(flag: str | None, environ: Mapping[str, str], home: Path) -> list[Path]:
    """The kubeconfig files to read, in kubectl's order of precedence; [] when there is none.

    `--kubeconfig` names one file, which must exist; $KUBECONFIG is a `:`-separated list whose
    missing entries are skipped; ~/.kube/config counts when it exists."""
    if flag:
        path = Path(flag).expanduser()
        if not path.is_file():
            raise KubeconfigError(f"--kubeconfig {flag}: no such file")
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
            raise KubeconfigError(f"kubeconfig {path}: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise KubeconfigError(f"kubeconfig {path}: not a kubeconfig")
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
        raise KubeconfigError(f"kubeconfig {where}: no current context; pass --context")
    if name not in known:
        flag = "--context" if context else "current-context"
        raise KubeconfigError(f'{flag} "{name}" is not a context of kubeconfig {where}')
    return str(name)
