"""The operator's Dockerfile keeps the promises the chart relies on (buildkit's linter, run by
`make lint` through hack/dockerfile-lint.sh, checks the rest)."""

from __future__ import annotations

import json
import re

import yaml
from chartkit import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_multi_stage_with_dependencies_installed_from_the_lock_file() -> None:
    steps = instructions()
    assert sum(1 for k, _ in steps if k == "FROM") >= 3
    runs = [arg for k, arg in steps if k == "RUN"]
    assert runs
    assert all("uv sync --locked" in r and "--no-dev" in r for r in runs)
    final = final_stage()
    assert not [arg for k, arg in final if k == "RUN"], "the runtime stage installs nothing"


def test_runtime_runs_baton_operator_as_a_numeric_non_root_user() -> None:
    final = dict(final_stage())
    user = final["USER"]
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    assert json.loads(final["ENTRYPOINT"]) == ["baton", "operator"]


def test_exposed_ports_are_the_charts_liveness_and_metrics_ports() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    exposed = {int(p) for p in dict(final_stage())["EXPOSE"].split()}
    assert exposed == {values["operator"]["livenessPort"], values["metrics"]["port"]}
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    uid = int(dict(final_stage())["USER"].split(":")[0])
    assert f"runAsUser: {uid}" in deployment


def test_the_build_context_is_only_what_the_image_needs() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1 :][:5] == [
        "!pyproject.toml",
        "!uv.lock",
        "!README.md",
        "!operator/",
        "!activities/pyproject.toml",  # uv checks the lock against the workspace's members
    ]
