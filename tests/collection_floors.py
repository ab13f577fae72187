"""Fail when a test folder collects fewer tests than its floor in tests/collection-floors.txt.

A test file renamed so pytest no longer picks it up, a class that lost its `Test` prefix or a
module that fails to import can make tests vanish while the session still ends green. CI
(`.ci/run`, or `make test-counts`) collects every folder under tests/ and compares its count with
the folder's floor:

    uv run python tests/collection_floors.py

Fewer tests than the floor fails, naming the folder; more prints a reminder to raise the floor
in the same commit, so it keeps up with the suite. A folder under tests/ without a floor fails too.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parent
REPO = TESTS.parent
FLOORS = TESTS / "collection-floors.txt"


class FloorError(Exception):
    """The floors file cannot be read, or the tests cannot be collected."""


def read_floors(path: Path = FLOORS) -> dict[str, int]:
    """`{folder: floor}` from lines `tests/unit 809` (blank lines and `#` comments skipped)."""
    floors: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise FloorError(f"{path.name}:{number}: write `<folder> <count>`, not {line!r}")
        floors[parts[0].rstrip("/")] = int(parts[1])
    return floors


def folders_with_tests() -> list[str]:
    """Every folder directly under tests/ that holds tests, as `tests/<name>`."""
    return sorted(
        f"tests/{folder.name}"
        for folder in TESTS.iterdir()
        if folder.is_dir() and any(folder.rglob("test_*.py"))
    )


def collect(folders: list[str]) -> Counter[str]:
    """How many tests each folder has in the session `make test` runs (pytest's `testpaths`),
    skipped ones included."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 5):  # 5: nothing collected, which the floors then report
        raise FloorError(
            f"collecting the tests failed (pytest exit {result.returncode}):\n"
            f"{result.stdout[-4000:]}{result.stderr[-2000:]}"
        )
    counts: Counter[str] = Counter(dict.fromkeys(folders, 0))
    for line in result.stdout.splitlines():
        if "::" in line:
            counts["/".join(Path(line.split("::", 1)[0]).parts[:2])] += 1
    return counts


def check(floors: dict[str, int], counts: Counter[str]) -> tuple[list[str], list[str]]:
    """(problems, notes): a folder below its floor, or without one, or a floor of no folder."""
    problems: list[str] = []
    notes: list[str] = []
    for folder in sorted(set(floors) | set(counts)):
        if folder not in floors:
            problems.append(
                f"{folder}: {counts[folder]} tests and no floor; add `{folder} {counts[folder]}` "
                f"to {FLOORS.relative_to(REPO)}"
            )
        elif folder not in counts:
            problems.append(f"{folder}: has a floor but no tests; remove its line")
        elif counts[folder] < floors[folder]:
            problems.append(
                f"{folder}: {counts[folder]} tests collected, fewer than its floor of "
                f"{floors[folder]}: a test file is no longer collected (renamed, an import "
                "that fails, a class without the Test prefix), or tests were removed on "
                f"purpose: then lower the floor in {FLOORS.relative_to(REPO)} in the same "
                "commit and say why"
            )
        elif counts[folder] > floors[folder]:
            notes.append(
                f"{folder}: {counts[folder]} collected, floor {floors[folder]}: raise the floor "
                f"in {FLOORS.relative_to(REPO)} to {counts[folder]}"
            )
        else:
            notes.append(f"{folder}: {counts[folder]} collected, at its floor")
    return problems, notes


def main() -> int:
    try:
        floors = read_floors()
        counts = collect(folders_with_tests())
    except FloorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    problems, notes = check(floors, counts)
    for note in notes:
        print(note)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
