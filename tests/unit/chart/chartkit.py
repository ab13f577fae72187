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

    def template(self, *values: str, **sets: str) -> list[dict[str, Any]]:
        """The chart's objects rendered with `--set key=value` for each of `sets` (dots in
        keys spelt `__`) and raw arguments `values`."""
        args = ["template", "baton", str(CHART), "--namespace", "baton-system"]
        args += ["--kube-version", KUBE_VERSION, *values]
        for key, value in sets.items():
            args += ["--set", f"{key.replace('__', '.')}={value}"]
        out = self.run(*args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def refused(self, *args: str) -> str:
        """Render with `args`, expecting a refusal; returns helm's error message."""
        result = self.run(
            "template", "baton", str(CHART), "--kube-version", KUBE_VERSION, *args, check=False
        )
        assert result.returncode != 0, f"helm accepted {args}"
        return result.stderr


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = by_kind(objects, kind)
    return found
