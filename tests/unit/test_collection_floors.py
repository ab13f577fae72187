"""The test-count check CI runs (tests/collection_floors.py) and the floors it keeps."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from collection_floors import FloorError, check, folders_with_tests, read_floors


def test_a_folder_below_its_floor_fails_naming_the_folder_and_the_floor() -> None:
    problems, _ = check({"tests/unit": 809}, Counter({"tests/unit": 790}))
    assert len(problems) == 1
    assert problems[0].startswith("tests/unit: 790 tests collected, fewer than its floor of 809")


def test_a_folder_above_its_floor_passes_and_asks_for_the_floor_to_be_raised() -> None:
    problems, notes = check({"tests/unit": 809}, Counter({"tests/unit": 812}))
    assert problems == []
    assert notes == [
        "tests/unit: 812 collected, floor 809: raise the floor in "
        "tests/collection-floors.txt to 812"
    ]


def test_a_folder_without_a_floor_and_a_floor_without_a_folder_both_fail() -> None:
    problems, _ = check({"tests/gone": 3}, Counter({"tests/new": 4}))
    assert problems == [
        "tests/gone: has a floor but no tests; remove its line",
        "tests/new: 4 tests and no floor; add `tests/new 4` to tests/collection-floors.txt",
    ]


def test_a_floor_line_that_is_not_folder_and_count_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    floors = tmp_path / "floors.txt"
    floors.write_text("# comment\ntests/unit 809\ntests/integration many\n")
    with pytest.raises(FloorError, match=r"floors.txt:3: write `<folder> <count>`"):
        read_floors(floors)


def test_every_test_folder_of_the_repository_has_a_floor() -> None:
    assert sorted(read_floors()) == folders_with_tests()
