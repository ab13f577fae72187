"""The run commands without a cluster: their arguments, and the one-line errors they give
before any request is sent. (tests/integration/test_cli.py drives them against a cluster.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from baton.cli.main import build_parser, main
from baton.cli.runs import run_selector
from baton.store.kube import IN_CLUSTER_TOKEN


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, f"expected one line, got {err!r}"
    return err.removeprefix("baton: error: ").strip()


def test_every_run_command_takes_the_cluster_flags() -> None:
    parser = build_parser()
    for argv in (
        ["run", "w"],
        ["wait", "r"],
        ["signal", "r", "go"],
        ["update", "r", "addItem"],
        ["cancel", "r"],
        ["suspend", "r"],
        ["resume", "r"],
        ["redrive", "r"],
        ["history", "r"],
        ["get"],
        ["get", "r"],
    ):
        args = parser.parse_args([*argv, "-n", "shop", "--kubeconfig", "k", "--context", "c"])
        assert (args.namespace, args.kubeconfig, args.context) == ("shop", "k", "c")


def test_run_arguments() -> None:
    args = build_parser().parse_args(
        ["run", "purchase", "--input", "{}", "--name", "p1", "--wait", "--timeout", "5m"]
    )
    assert (args.workflow, args.input, args.name, args.wait, args.timeout) == (
        "purchase",
        "{}",
        "p1",
        True,
        "5m",
    )


def test_timeout_without_wait_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = one_error_line(capsys, ["run", "w", "--timeout", "1m"])
    assert err.startswith("--timeout is how long --wait waits")


def test_a_malformed_timeout_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = one_error_line(capsys, ["run", "w", "--wait", "--timeout", "5 minutes"])
    assert err.startswith("--timeout: malformed duration '5 minutes'")
    err = one_error_line(capsys, ["run", "w", "--run-timeout", "soon"])
    assert err.startswith("--run-timeout: malformed duration 'soon'")


def test_bad_json_is_refused_before_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    err = one_error_line(capsys, ["signal", "r", "go", "--payload", "{oops", "--kubeconfig", "/x"])
    assert err.startswith("--payload: not JSON")
    err = one_error_line(capsys, ["run", "w", "--input", "[1,", "--kubeconfig", "/x"])
    assert err.startswith("--input: not JSON")


def test_an_update_id_that_cannot_be_a_status_key_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = one_error_line(capsys, ["update", "r", "addItem", "--id", "a.b", "--kubeconfig", "/x"])
    assert err.startswith("--id 'a.b': 1 to 64 letters, digits, '_' or '-'")


def test_an_update_with_bad_json_or_timeout_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = one_error_line(capsys, ["update", "r", "u", "--payload", "{oops", "--kubeconfig", "/x"])
    assert err.startswith("--payload: not JSON")
    err = one_error_line(capsys, ["update", "r", "u", "--timeout", "soon", "--kubeconfig", "/x"])
    assert err.startswith("--timeout: malformed duration 'soon'")


def test_no_kubeconfig_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if IN_CLUSTER_TOKEN.exists():
        pytest.skip("inside a pod the service account is the fallback, not an error")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    err = one_error_line(capsys, ["get"])
    assert err == "no kubeconfig: set KUBECONFIG, pass --kubeconfig, or run inside a cluster"


def test_a_missing_kubeconfig_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    err = one_error_line(capsys, ["cancel", "r", "--kubeconfig", str(tmp_path / "nope")])
    assert err == f"--kubeconfig {tmp_path / 'nope'}: no such file"


def test_an_unreachable_server_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Port 1 on the loopback refuses connections; nothing else about the cluster matters.
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n",
        encoding="utf-8",
    )
    err = one_error_line(capsys, ["get", "--kubeconfig", str(kubeconfig)])
    assert err.startswith("cannot reach the API server at http://127.0.0.1:1")


def test_run_and_all_namespaces_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_error_line(capsys, ["get", "r", "-A"]) == "give RUN or --all-namespaces, not both"


def test_an_exec_plugin_login_runs_the_plugin_and_reports_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The plugin really runs (it writes a marker file and prints its credential); the command
    # then fails on the unreachable server, with its token-renewal task wound down cleanly.
    marker = tmp_path / "plugin-ran"
    credential = (
        '{"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", '
        '"status": {"token": "t-1"}}'
    )
    script = f"open({str(marker)!r}, 'w').close(); print({credential!r})"
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "users": [
                    {
                        "name": "u",
                        "user": {
                            "exec": {
                                "apiVersion": "client.authentication.k8s.io/v1beta1",
                                "command": sys.executable,
                                "args": ["-c", script],
                                "interactiveMode": "Never",
                            }
                        },
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    err = one_error_line(capsys, ["get", "--kubeconfig", str(kubeconfig)])
    assert err.startswith("cannot reach the API server at http://127.0.0.1:1")
    assert marker.exists()


def test_get_filters_become_one_label_selector() -> None:
    selector = run_selector("Failed", "property-purchase", "team=payments")
    assert selector == "baton.dev/phase=Failed,baton.dev/workflow=property-purchase,team=payments"


def test_get_without_filters_selects_everything() -> None:
    assert run_selector(None, None, None) == ""


def test_get_refuses_an_unknown_phase_naming_the_phases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    error = one_error_line(capsys, ["get", "--phase", "broken"])
    assert "--phase: unknown phase 'broken'" in error
    assert "Succeeded, Failed" in error


def test_get_refuses_a_run_name_with_filters(capsys: pytest.CaptureFixture[str]) -> None:
    error = one_error_line(capsys, ["get", "r1", "--phase", "failed"])
    assert "give RUN or --phase/--workflow/-l" in error
