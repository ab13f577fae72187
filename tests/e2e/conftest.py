"""kind end-to-end fixtures: a Docker engine, kind and kubectl built from Go modules, a cluster.

Every test here is marked `e2e` and skipped, with one reason, where no Docker engine answers
(`docker info`). kind comes from hack/kind.sh (built from its Go module), kubectl and helm from
the control-plane build (hack/controlplane.sh): pytest-kind downloads nothing.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HACK = ROOT / "hack"
CLUSTER_NAME = "baton-e2e"
IMAGE = "baton-operator:e2e"


@functools.cache
def docker_problem() -> str | None:
    """Why the kind tests cannot run here, or None when a Docker engine answers."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker command: the kind end-to-end tests need a Docker engine"
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "docker info timed out: the kind end-to-end tests need a running Docker engine"
    if result.returncode != 0 or not result.stdout.strip():
        return "no Docker engine answers (docker info failed): the kind end-to-end tests need one"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e `e2e`; skip them all, with one reason, without Docker."""
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(item.path).parents]
    if not mine:
        return
    problem = docker_problem()
    for item in mine:
        item.add_marker(pytest.mark.e2e)
        if problem is not None:
            item.add_marker(pytest.mark.skip(reason=problem))


def _tool(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    """kubectl and helm, built by hack/controlplane.sh (at once when already built)."""
    subprocess.run([str(HACK / "controlplane.sh"), "build"], check=True)
    return Path(_tool(str(HACK / "controlplane.sh"), "bin-dir"))


@pytest.fixture(scope="session")
def kind_cluster(bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A kind cluster with the operator image built and loaded (pytest-kind's KindCluster,
    pointed at our kind and kubectl)."""
    from pytest_kind import KindCluster

    kind = Path(_tool(str(HACK / "kind.sh"), "path"))
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    cluster = KindCluster(
        CLUSTER_NAME, kubeconfig, kind_path=kind, kubectl_path=bin_dir / "kubectl"
    )
    cluster.create()
    try:
        subprocess.run(["docker", "build", "-t", IMAGE, str(ROOT)], check=True)
        cluster.load_docker_image(IMAGE)
        yield cluster
    finally:
        cluster.delete()
