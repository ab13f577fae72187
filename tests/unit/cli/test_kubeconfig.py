"""Finding the kubeconfig, context and namespace the way kubectl does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from baton.store.kubeconfig import (
    KubeconfigError,
    check_context,
    context_namespace,
    kubeconfig_files,
    merged_kubeconfig,
)


def write(path: Path, current: str | None, *contexts: dict[str, Any]) -> Path:
    data: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "contexts": list(contexts)}
    if current:
        data["current-context"] = current
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def context(name: str, namespace: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        body["namespace"] = namespace
    return {"name": name, "context": body}


def test_the_flag_wins_over_the_environment(tmp_path: Path) -> None:
    flag = write(tmp_path / "flag", "a", context("a"))
    env = write(tmp_path / "env", "b", context("b"))
    assert kubeconfig_files(str(flag), {"KUBECONFIG": str(env)}, tmp_path) == [flag]


def test_a_missing_flag_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match=r"--kubeconfig .*nope: no such file"):
        kubeconfig_files(str(tmp_path / "nope"), {}, tmp_path)


def test_kubeconfig_lists_files_and_skips_missing_ones(tmp_path: Path) -> None:
    one = write(tmp_path / "one", "a", context("a"))
    two = write(tmp_path / "two", None, context("b"))
    listed = os.pathsep.join([str(one), str(tmp_path / "gone"), str(two)])
    assert kubeconfig_files(None, {"KUBECONFIG": listed}, tmp_path) == [one, two]


def test_the_home_kubeconfig_is_the_fallback(tmp_path: Path) -> None:
    assert kubeconfig_files(None, {}, tmp_path) == []
    (tmp_path / ".kube").mkdir()
    home = write(tmp_path / ".kube" / "config", "a", context("a"))
    assert kubeconfig_files(None, {}, tmp_path) == [home]


def test_merging_keeps_the_first_context_of_a_name_and_the_first_current_context(
    tmp_path: Path,
) -> None:
    one = write(tmp_path / "one", "a", context("a", "shop"))
    two = write(tmp_path / "two", "b", context("a", "other"), context("b", "billing"))
    merged = merged_kubeconfig([one, two])
    assert merged["current-context"] == "a"
    assert context_namespace(merged, None) == "shop"
    assert context_namespace(merged, "b") == "billing"


def test_a_context_without_namespace_gives_none(tmp_path: Path) -> None:
    merged = merged_kubeconfig([write(tmp_path / "k", "a", context("a"))])
    assert context_namespace(merged, None) is None


def test_unknown_or_missing_contexts_are_one_line_errors(tmp_path: Path) -> None:
    merged = merged_kubeconfig([write(tmp_path / "k", None, context("a"))])
    assert check_context(merged, "a", "k") == "a"
    with pytest.raises(KubeconfigError, match="no current context; pass --context"):
        check_context(merged, None, "k")
    with pytest.raises(KubeconfigError, match='--context "b" is not a context of kubeconfig k'):
        check_context(merged, "b", "k")


def test_a_kubeconfig_that_is_not_yaml_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("{\n", encoding="utf-8")
    with pytest.raises(KubeconfigError, match=r"kubeconfig .*bad: ") as caught:
        merged_kubeconfig([bad])
    assert "\n" not in str(caught.value)
