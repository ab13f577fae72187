"""The `helm` fixture: the binary hack/controlplane.sh builds (pinned in hack/go.mod), built on
first use when Go is there. The chart tests are skipped, saying why, only when Go is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from chartkit import CONTROLPLANE, Helm, go_available


@pytest.fixture(scope="session")
def helm() -> Helm:
    bin_dir = Path(
        subprocess.run(
            [str(CONTROLPLANE), "bin-dir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    binary = bin_dir / "helm"
    if not binary.exists():
        if not go_available():
            pytest.skip(
                "helm is built from Go modules by hack/controlplane.sh and Go is not installed"
            )
        subprocess.run([str(CONTROLPLANE), "build"], check=True)
    return Helm(binary)
