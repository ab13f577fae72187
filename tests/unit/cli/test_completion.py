"""Shell completion: what the word at the cursor completes to (pure), and the bash script as
bash runs it (the cluster's names are completed in tests/integration/test_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from baton.cli.completion import (
    Kind,
    Want,
    analyse,
    kubectl_complete,
    signal_names,
    update_names,
)
from baton.cli.kubeconfig import Target
from baton.cli.main import build_parser

VENV_BIN = Path(sys.executable).parent


def want(*words: str) -> Want:
    """The completion of the last word."""
    return analyse(build_parser(), list(words), len(words) - 1)


def test_commands_complete_without_the_hidden_one() -> None:
    completed = want("").words
    assert {"get", "describe", "logs", "lint", "resubmit", "retry", "completion"} <= set(completed)
    assert "__complete" not in completed


def test_options_of_the_command() -> None:
    assert {"-o", "--output", "--all-namespaces", "--namespace"} <= set(want("get", "--").words)


def test_choices_of_an_option() -> None:
    assert want("get", "-o", "").words == ("json", "yaml", "wide", "name")
    assert want("history", "-o", "").words == ("json", "yaml", "wide")


def test_run_names_come_from_the_cluster_the_line_names() -> None:
    completion = want("describe", "-n", "shop", "--kubeconfig=/k", "")
    assert completion.kind is Kind.RUNS
    assert completion.target == Target("/k", None, "shop")


def test_a_signal_name_completes_from_the_run_given() -> None:
    completion = want("signal", "purchase-1", "")
    assert (completion.kind, completion.run) == (Kind.SIGNALS, "purchase-1")


def test_an_update_name_completes_from_the_run_given() -> None:
    completion = want("update", "cart-1", "")
    assert (completion.kind, completion.run) == (Kind.UPDATES, "cart-1")


def test_update_names_are_the_handlers_of_the_workflow() -> None:
    spec = {"updates": [{"name": "removeItem"}, {"name": "addItem"}, {"set": {}}]}
    assert update_names(spec) == ["addItem", "removeItem"]


def test_steps_of_logs_and_queries_of_query() -> None:
    assert want("logs", "r", "-f", "").kind is Kind.STEPS
    assert want("query", "r", "").kind is Kind.QUERIES


def test_an_alias_completes_as_its_command() -> None:
    assert want("retry", "").kind is Kind.RUNS


def test_workflow_names_for_run_and_files_for_lint() -> None:
    assert want("run", "").kind is Kind.WORKFLOWS
    assert want("lint", "a.yaml", "").kind is Kind.FILES


def test_nothing_after_the_last_positional() -> None:
    assert want("describe", "r", "").kind is Kind.NOTHING


def test_signal_names_are_waited_for_at_any_depth_or_handled() -> None:
    spec = {
        "signalHandlers": [{"signal": "updatePriority", "set": {}}],
        "steps": [
            {"name": "a", "waitForSignal": {"name": "approve"}},
            {"name": "p", "parallel": {"branches": [
                {"name": "b", "steps": [{"name": "c", "waitForSignal": {"name": "cancelOrder"}}]},
            ]}},
        ],
    }  # fmt: skip
    assert signal_names(spec) == ["approve", "cancelOrder", "updatePriority"]


@pytest.mark.parametrize(
    ("line", "cursor", "completed"),
    [
        ("baton ge", 1, "get"),
        ("baton get -o w", 3, "wide"),
        ("baton retry --ti", 2, "--timeout"),
        ("baton completion ''", 2, "bash fish zsh"),
    ],
)
def test_bash_evaluates_the_script_and_completes(line: str, cursor: int, completed: str) -> None:
    script = (
        "source <(baton completion bash)\n"
        f"COMP_WORDS=({line}); COMP_CWORD={cursor}; _baton\n"
        'echo "${COMPREPLY[*]}"\n'
    )
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == f"{completed}\n"
    assert done.stderr == ""


def test_the_scripts_call_the_program_they_complete() -> None:
    for shell in ("bash", "zsh", "fish"):
        done = subprocess.run(
            [str(VENV_BIN / "baton"), "completion", shell],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert "__complete" in done.stdout
        assert "kubectl-baton" in done.stdout


def test_kubectls_plugin_protocol_filters_and_ends_with_a_directive(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert kubectl_complete(["__complete", "get", "-o", "w"]) == 0
    assert capsys.readouterr().out == "wide\n:4\n"
    kubectl_complete(["lint", ""])
    assert capsys.readouterr().out == ":0\n"  # files: kubectl's shell completes them
