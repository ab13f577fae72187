"""`baton ui`: its flags, and what it refuses before it serves anything."""

from __future__ import annotations

import pytest

from baton.cli.main import main


def test_a_kubeconfig_view_is_never_offered_beyond_loopback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ui", "--address", "0.0.0.0"]) == 2
    error = capsys.readouterr().err
    assert "--address: with --auth kubeconfig the view listens on 127.0.0.1 only" in error


def test_a_port_out_of_range_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ui", "--port", "70000"]) == 2
    assert "--port: 70000 is not a port" in capsys.readouterr().err


def test_the_auth_mode_is_kubeconfig_or_token(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ui", "--auth", "basic"])
    assert "invalid choice: 'basic'" in capsys.readouterr().err


def test_without_a_kubeconfig_it_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("KUBECONFIG", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["ui", "--kubeconfig", "/nonexistent/kubeconfig"]) == 2
    assert "--kubeconfig /nonexistent/kubeconfig: no such file" in capsys.readouterr().err
