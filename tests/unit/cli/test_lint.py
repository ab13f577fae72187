"""`baton lint`: offline checks of Workflow files, every problem with its field, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baton.cli.main import main

EXAMPLES = Path(__file__).parents[3] / "examples"

HEADER = "apiVersion: baton.dev/v1alpha1\nkind: Workflow\n"
CLEAN = (
    HEADER + "metadata: {name: clean}\nspec:\n  steps:\n    - {name: a, http: {url: 'http://x'}}\n"
)
SCHEMA = HEADER + (
    "metadata: {name: schema}\nspec:\n  steps:\n"
    "    - name: a\n      http: {urll: 'http://x'}\n      retry: {maxAttempts: many}\n"
)
COMPILE = HEADER + (
    "metadata: {name: compile}\nspec:\n  steps:\n"
    "    - {name: a, needs: [nope], http: {url: 'http://x'}}\n"
)


def lint(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["lint", *argv])
    return code, capsys.readouterr().out.splitlines()


def test_the_examples_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*/*.yaml") if "mocks" not in p.name)
    code, lines = lint(capsys, *files)
    assert code == 0, lines
    assert all(line.endswith(": ok") for line in lines)


def test_every_schema_problem_is_reported_with_its_field_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(f"{CLEAN}---\n{SCHEMA}", encoding="utf-8")
    code, lines = lint(capsys, str(path))
    assert code == 1
    assert lines == [
        f"{path}: Workflow clean: ok",
        f"{path}:8: Workflow schema: spec.steps[0].http.url: field required",
        f"{path}:8: Workflow schema: spec.steps[0].http.urll: unknown field; did you mean 'url'?",
        f"{path}:8: Workflow schema: spec.steps[0].retry.maxAttempts: input should be a valid "
        "integer, unable to parse string as an integer, got 'many'",
    ]


def test_a_definition_the_engine_refuses_names_step_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(COMPILE, encoding="utf-8")
    code, lines = lint(capsys, "--quiet", str(path))
    assert code == 1
    assert lines == [
        f"{path}:1: Workflow compile: step 'a', field 'needs': unknown step 'nope' "
        "(not a step of this workflow)"
    ]


def test_an_inline_workflow_of_a_run_is_compiled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "apiVersion: baton.dev/v1alpha1\nkind: WorkflowRun\nmetadata: {name: r}\nspec:\n"
        "  workflow:\n    steps:\n      - {name: a, needs: [a], http: {url: 'http://x'}}\n",
        encoding="utf-8",
    )
    code, lines = lint(capsys, str(path))
    assert code == 1
    assert lines[0].startswith(f"{path}:1: WorkflowRun r: spec.workflow: step 'a', field 'needs'")


def test_unreadable_empty_and_broken_files_are_problems_and_the_rest_is_still_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    (tmp_path / "broken.yaml").write_text("a: [\n", encoding="utf-8")
    (tmp_path / "clean.yaml").write_text(CLEAN, encoding="utf-8")
    names = ("missing.yaml", "empty.yaml", "broken.yaml", "clean.yaml")
    code, lines = lint(capsys, *(str(tmp_path / n) for n in names))
    assert code == 1
    assert lines == [
        f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory",
        f"{tmp_path / 'empty.yaml'}: no document: expected a Workflow, WorkflowRun or WorkerPool",
        f"{tmp_path / 'broken.yaml'}:2: not YAML: expected the node content, but found "
        "'<stream end>'",
        f"{tmp_path / 'clean.yaml'}: Workflow clean: ok",
    ]


def test_json_lists_the_problems_for_machines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(COMPILE, encoding="utf-8")
    code = main(["lint", "-o", "json", str(path)])
    assert code == 1
    assert json.loads(capsys.readouterr().out) == [
        {
            "file": str(path),
            "line": 1,
            "kind": "Workflow",
            "name": "compile",
            "message": "step 'a', field 'needs': unknown step 'nope' (not a step of this workflow)",
        }
    ]
