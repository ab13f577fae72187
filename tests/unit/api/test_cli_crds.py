"""`baton crds` and the error handling of the `baton` entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from baton.api.crd import crd_files
from baton.cli.main import main


def test_crds_prints_every_crd_as_one_yaml_stream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["metadata"]["name"] for d in documents] == [
        "workflows.baton.dev",
        "workflowruns.baton.dev",
        "workerpools.baton.dev",
        "schedules.baton.dev",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    ]


def test_crds_output_writes_one_file_per_kind(tmp_path: Path) -> None:
    assert main(["crds", "--output", str(tmp_path / "out")]) == 0
    written = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()}
    assert written == crd_files()


def test_output_that_is_a_file_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "taken"
    target.write_text("", encoding="utf-8")
    assert main(["crds", "--output", str(target)]) == 2
    assert capsys.readouterr().err == f"baton: error: --output {target}: not a directory\n"


def test_unknown_command_is_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["crdz"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("baton: error: argument COMMAND: invalid choice: 'crdz'")


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("baton: error: the following arguments are required")


def test_an_unexpected_failure_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> dict[str, str]:
        raise RuntimeError("schema exploded")

    monkeypatch.delenv("BATON_DEBUG", raising=False)
    monkeypatch.setattr("baton.api.crd.crd_files", broken)  # imported when the command runs
    assert main(["crds"]) == 2
    assert capsys.readouterr().err == (
        "baton: error: unexpected RuntimeError: schema exploded "
        "(BATON_DEBUG=1 shows the traceback)\n"
    )
