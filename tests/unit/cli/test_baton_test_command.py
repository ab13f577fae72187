"""`baton test` as a command: readable output, exit codes, one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from baton.cli.main import main

EXAMPLES = Path(__file__).parents[3] / "examples"

GOOD_STEP = "    - name: ok\n      http: {url: 'http://x'}\n"


def write_workflow(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "workflow.yaml"
    path.write_text(
        "apiVersion: baton.dev/v1alpha1\nkind: Workflow\nmetadata: {name: w}\n"
        f"spec:\n  steps:\n{steps}",
        encoding="utf-8",
    )
    return path


def error_of(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["test", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, f"expected one line, got {err!r}"
    return err


def test_readable_timeline_names_phase_steps_and_compensations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = EXAMPLES / "purchase-saga"
    code = main(
        [
            "test",
            str(folder / "workflow.yaml"),
            "--input",
            f"@{folder / 'input.json'}",
            "--mocks",
            str(folder / "mocks.yaml"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == "property-purchase: Compensated after 2h3s (virtual)"
    assert "compensations: pay, reserve" in out
    assert "error: TitleDisputed: the title is under dispute (step transfer)" in out


def test_expect_exits_one_when_the_phase_differs(capsys: pytest.CaptureFixture[str]) -> None:
    folder = EXAMPLES / "purchase-saga"
    args = ["test", str(folder / "workflow.yaml"), "--input", f"@{folder / 'input.json'}"]
    args += ["--mocks", str(folder / "mocks.yaml"), "--json"]
    assert main([*args, "--expect", "Succeeded"]) == 1
    assert "expected Succeeded, the run ended Compensated" in capsys.readouterr().err
    assert main([*args, "--expect", "Compensated"]) == 0


def test_the_console_script_runs_an_example() -> None:
    folder = EXAMPLES / "manual-approval"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "baton.cli.main", "test", str(folder / "workflow.yaml")),
            *("--input", f"@{folder / 'input.json'}", "--mocks", str(folder / "mocks.yaml")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Succeeded after 7d (virtual)" in done.stdout


def test_unknown_step_kind_names_the_step_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workflow(tmp_path, GOOD_STEP + "    - name: bad\n      htpp: {url: 'http://x'}\n")
    assert "spec.steps[1].htpp: unknown field; did you mean 'http'?" in error_of(path, capsys)


def test_two_kinds_in_one_step_names_the_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workflow(
        tmp_path, "    - name: both\n      http: {url: 'http://x'}\n      sleep: {duration: 1s}\n"
    )
    err = error_of(path, capsys)
    assert "spec.steps[0]" in err
    assert "step 'both' must have exactly one kind" in err
    assert "found http and sleep" in err


def test_cycle_in_needs_names_the_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_workflow(
        tmp_path,
        "    - {name: a, needs: [b], http: {url: 'http://x'}}\n"
        "    - {name: b, needs: [a], http: {url: 'http://x'}}\n",
    )
    err = error_of(path, capsys)
    assert "field 'needs'" in err
    assert "cycle" in err


def test_undefined_step_in_an_expression_names_step_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = "    - {name: b, when: 'steps.nope.output.x', sleep: {duration: 1s}}\n"
    path = write_workflow(tmp_path, GOOD_STEP + bad)
    err = error_of(path, capsys)
    assert "step 'b'" in err
    assert "'when'" in err
    assert "nope" in err


def test_malformed_duration_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workflow(tmp_path, "    - {name: nap, sleep: {duration: 5 minutes}}\n")
    err = error_of(path, capsys)
    assert "spec.steps[0].sleep.duration" in err
    assert "malformed duration '5 minutes'" in err


def test_input_that_is_not_json_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workflow(tmp_path, GOOD_STEP)
    assert main(["test", str(path), "--input", "{oops"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("baton: error: --input: not JSON")
    assert err.count("\n") == 1


def test_a_missing_workflow_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("example", ["lease-expiry", "rent-collection"])
def test_the_computed_time_and_retry_rule_examples_succeed_with_their_mocks(
    example: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = EXAMPLES / example
    args = ["test", str(folder / "workflow.yaml"), "--input", f"@{folder / 'input.json'}"]
    assert main([*args, "--mocks", str(folder / "mocks.yaml"), "--expect", "Succeeded"]) == 0
    out = capsys.readouterr().out
    expected = {
        "lease-expiry": '"closedAt": "1970-01-13T00:10:00Z"',
        "rent-collection": '"charged": 8',
    }
    assert expected[example] in out
