"""Helpers of the chart tests: helm (the binary hack/controlplane.sh builds) and object lookups."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "baton"
CONTROLPLANE = ROOT / "hack" / "controlplane.sh"
KUBE_VERSION = "1.36.0"


def go_available() -> bool:
    return shutil.which("go") is not None or Path("/usr/local/go/bin/go").exists()


@dataclass
class Helm:
    """`helm` with the chart's path filled in; `template` parses what it renders."""

    binary: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            check=check,
            env={**os.environ, "HELM_CACHE_HOME": "/tmp/baton-helm-cache"},
        )

    def template(self, *values: str, tests: bool = False, **sets: str) -> list[dict[str, Any]]:
        """The chart's objects rendered with `--set key=value` for each of `sets` (dots in
        keys spelt `__`) and raw arguments `values`; with `tests`, only the `helm test`
        hooks."""
        args = ["template", "baton", str(CHART), "--namespace", "baton-system"]
        args += ["--kube-version", KUBE_VERSION, *values]
        args += [] if tests else ["--skip-tests"]
        for key, value in sets.items():
            args += ["--set", f"{key.replace('__', '.')}={value}"]
        out = self.run(*args).stdout
        docs = [doc for doc in yaml.safe_load_all(out) if doc]
        if tests:
            return [doc for doc in docs if is_test_hook(doc)]
        return docs

    def refused(self, *args: str) -> str:
        """Render with `args`, expecting a refusal; returns helm's error message."""
        result = self.run(
            "template", "baton", str(CHART), "--kube-version", KUBE_VERSION, *args, check=False
        )
        assert result.returncode != 0, f"helm accepted {args}"
        return result.stderr


def is_test_hook(obj: dict[str, Any]) -> bool:
    """Whether `obj` is one of the objects `helm test` creates."""
    annotations = obj["metadata"].get("annotations") or {}
    return bool(annotations.get("helm.sh/hook") == "test")


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = by_kind(objects, kind)
    return found


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
"""Prefix of the labels that add a ClusterRole's rules to Kubernetes' view, edit or admin."""


def aggregated(role: dict[str, Any]) -> set[str]:
    """The user-facing roles (view, edit, admin) `role` is aggregated into."""
    labels = role["metadata"].get("labels") or {}
    return {k.removeprefix(AGGREGATE) for k, v in labels.items() if k.startswith(AGGREGATE) and v}


def operator_role(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The operator's ClusterRole (not those aggregated into the user-facing roles)."""
    (found,) = [r for r in by_kind(objects, "ClusterRole") if not aggregated(r)]
    return found
