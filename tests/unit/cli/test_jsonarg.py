"""JSON given on the command line, inline or from a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from baton.cli import CommandError
from baton.cli.jsonarg import json_argument


def test_inline_json_of_any_type() -> None:
    assert json_argument('{"a": [1, 2]}', "--input") == {"a": [1, 2]}
    assert json_argument("3", "--payload") == 3
    assert json_argument("null", "--payload") is None


def test_at_file_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text('{"id": 7}\n', encoding="utf-8")
    assert json_argument(f"@{path}", "--input") == {"id": 7}


def test_bad_inline_json_names_the_flag_and_position() -> None:
    with pytest.raises(CommandError) as caught:
        json_argument("{oops", "--payload")
    assert str(caught.value).startswith("--payload: not JSON (")
    assert "line 1 column 2" in str(caught.value)


def test_bad_json_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{\n  1\n}", encoding="utf-8")
    with pytest.raises(CommandError, match=r"bad\.json: not JSON .* line 2"):
        json_argument(f"@{path}", "--input")


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"nope\.json: No such file or directory"):
        json_argument(f"@{tmp_path / 'nope.json'}", "--input")
