"""`baton test` as a command: readable output, exit codes, one-line errors for bad input."""

from __future__ import annotations

import json
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


def test_expect_refuses_a_phase_that_does_not_exist(capsys: pytest.CaptureFixture[str]) -> None:
    folder = EXAMPLES / "purchase-saga"
    args = ["test", str(folder / "workflow.yaml"), "--input", f"@{folder / 'input.json'}"]
    assert main([*args, "--expect", "Succeded"]) == 2
    err = capsys.readouterr().err
    assert "--expect: 'Succeded' is not a phase a run ends in" in err
    assert "Succeeded, Failed, Compensated, CompensationFailed, Cancelled, TimedOut" in err


def test_expect_refuses_a_phase_no_run_ends_in(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["test", str(EXAMPLES / "hello" / "run.yaml"), "--expect", "Running"]
    assert main(args) == 2
    assert "'Running' is not a phase a run ends in" in capsys.readouterr().err


def test_a_run_file_with_an_inline_workflow_runs_with_its_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["test", str(EXAMPLES / "hello" / "run.yaml"), "--expect", "Succeeded"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == "hello: Succeeded after 2s (virtual)"
    assert 'output: "hello Baton"' in out


RUN_OF_REF = """
apiVersion: baton.dev/v1alpha1
kind: WorkflowRun
metadata: {name: approve-7}
spec:
  workflowRef: {name: approval}
  input: {amount: 7}
  signals: [{name: decide, payload: {ok: true}}]
"""

APPROVAL = """
apiVersion: baton.dev/v1alpha1
kind: Workflow
metadata: {name: approval}
spec:
  steps:
    - name: wait-for-it
      waitForSignal: {name: decide}
  output: {amount: "${{ input.amount }}", ok: "${{ steps['wait-for-it'].output.ok }}"}
"""


def test_a_run_file_next_to_its_workflow_runs_with_its_input_and_signals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "workflow.yaml").write_text(APPROVAL, encoding="utf-8")
    (tmp_path / "mocks.yaml").write_text("steps: {}\n", encoding="utf-8")
    run_file = tmp_path / "run.yaml"
    run_file.write_text(RUN_OF_REF, encoding="utf-8")
    assert main(["test", str(run_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["phase"] == "Succeeded"
    assert result["output"] == {"amount": 7, "ok": True}


def test_a_run_whose_workflow_is_nowhere_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_file = tmp_path / "run.yaml"
    run_file.write_text(RUN_OF_REF, encoding="utf-8")
    err = error_of(run_file, capsys)
    assert "the run's workflowRef 'approval' is neither in the file nor" in err


def test_a_mock_for_an_unknown_step_is_one_line_naming_the_known_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = EXAMPLES / "purchase-saga"
    mocks = tmp_path / "mocks.yaml"
    mocks.write_text("steps:\n  paay: [{output: {}}]\n", encoding="utf-8")
    args = ["test", str(folder / "workflow.yaml"), "--input", f"@{folder / 'input.json'}"]
    assert main([*args, "--mocks", str(mocks)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "mocks: steps.paay: no step of that name" in err
    assert "known: " in err
    assert "pay" in err.split("known: ")[1].split(", ")
