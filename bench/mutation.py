"""Mutation testing of the pure core (baton.engine, baton.expr, baton.pools) with mutmut.

mutmut changes the code one small edit at a time (a `<` for a `<=`, a constant, a dropped
argument...) and runs the tests that reach the changed function; a mutant the tests do not
notice ("survived") is code whose behaviour no test pins. The score is killed / (killed +
survived); docs/testing.md has the figures and what the survivors are.

mutmut imports the mutated copy from `mutants/src/`, so the script stages a tree of that shape
in `.mutation/` (gitignored): `src/baton` is a copy of operator/baton, plus the tests, the
examples they load and pyproject.toml. The editable install of `baton` stays on sys.path
behind `mutants/src`, which wins. mutmut remembers results in `.mutation/mutants/`: a second
run only tests what changed; `--fresh` starts over.

Run (one worker, niced: the machine is shared; `--only` scopes a run to some files):
    uv run --group mutation python bench/mutation.py pools           # 946 mutants
    uv run --group mutation python bench/mutation.py engine --only "engine/kinds/*"
    uv run --group mutation python bench/mutation.py --report        # score and survivors only

All of expr, or of the engine, takes hours on a shared 2-core machine (docs/testing.md has the
figures and what was scoped). Hypothesis runs derandomized here (profile `mutation`: the `ci`
profile with 10 examples per property and no shrinking), so a mutant is killed or not the
same way on every run, and a failing property kills at its first failing example.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".mutation"

PACKAGES = ("engine", "expr", "pools")
"""The pure core: what mutation testing covers."""

TESTS = {
    "engine": ["tests/unit/engine"],
    "expr": ["tests/unit/expr", "tests/unit/engine"],
    "pools": ["tests/unit/pools"],
}
"""The fast test selection per package: the unit tests that exercise it (the engine's tests
evaluate most expressions)."""

SKIPPED = ["tests/unit/engine/test_inputs.py::test_unique_items_compares_many_objects_in_one_pass"]
"""Tests of a time budget (a pytest-timeout marker): mutmut's tracing of the clean run makes
them overrun, and no mutant of the core is killed by them alone."""

PROPERTIES = [
    "tests/unit/engine/test_properties.py",
    "tests/unit/engine/test_generated_workflows.py",
]
"""The engine's hypothesis properties: run for engine mutants only (at the `mutation` profile's
few examples), left out for expr and pools, where they cost minutes and add little."""

# mutmut's names for the outcome of a mutant (its `results` command prints `name: status`).
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
SURVIVED = {"survived"}


def stage(packages: list[str], only: list[str]) -> None:
    """Lay out `.mutation/` for mutmut: src/baton, tests, pyproject.toml with its settings."""
    STAGE.mkdir(exist_ok=True)
    src = STAGE / "src" / "baton"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(ROOT / "operator" / "baton", src, ignore=shutil.ignore_patterns("__pycache__"))
    tests = STAGE / "tests"
    if tests.exists():
        shutil.rmtree(tests)
    shutil.copytree(ROOT / "tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    examples = STAGE / "examples"
    if examples.exists():
        shutil.rmtree(examples)
    shutil.copytree(ROOT / "examples", examples)
    selection = sorted({t for p in packages for t in TESTS[p]})
    if "engine" not in packages:
        selection += [f"--ignore={path}" for path in PROPERTIES]
    selection += [f"--deselect={test}" for test in SKIPPED]
    patterns = only or [f"{p}/*" for p in packages]
    only_mutate = ", ".join(f'"src/baton/{p}"' for p in patterns)
    args = ", ".join(f'"{t}"' for t in [*selection, "-p", "no:cacheprovider", "-x", "-q"])
    pyproject = (ROOT / "pyproject.toml").read_text()
    pyproject += f"""
[tool.mutmut]
source_paths = ["src/baton"]
also_copy = ["examples"]
only_mutate = [{only_mutate}]
pytest_add_cli_args_test_selection = [{args}]
"""
    (STAGE / "pyproject.toml").write_text(pyproject)


def run(max_children: int, mutants: list[str]) -> int:
    env = {**os.environ, "HYPOTHESIS_PROFILE": "mutation"}
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    command += mutants
    return subprocess.call(["nice", "-n", "10", *command], cwd=STAGE, env=env)


def results() -> dict[str, str]:
    """Every mutant's name and status, as mutmut recorded them."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=STAGE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name:
            found[name] = status
    return found


def report(found: dict[str, str]) -> dict[str, dict[str, object]]:
    """Per package: counts by status, the score, and the surviving mutants' names."""
    summary: dict[str, dict[str, object]] = {}
    for package in PACKAGES:
        mine = {n: s for n, s in found.items() if n.startswith(f"baton.{package}.")}
        if not mine:
            continue
        counts = Counter(mine.values())
        killed = sum(c for s, c in counts.items() if s in KILLED)
        survived = sum(c for s, c in counts.items() if s in SURVIVED)
        score = killed / (killed + survived) if killed + survived else None
        summary[package] = {
            "counts": dict(counts),
            "score": round(score * 100, 1) if score is not None else None,
            "survivors": sorted(n for n, s in mine.items() if s in SURVIVED),
        }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help=f"some of {', '.join(PACKAGES)} (all)")
    parser.add_argument("--report", action="store_true", help="only print the last results")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument("--max-children", type=int, default=1, help="parallel test processes")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--mutants",
        nargs="+",
        default=[],
        help="test these mutants again (names or globs, as --report prints them)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        help="mutate only these files of operator/baton (globs: engine/kinds/*, engine/retry.py)",
    )
    options = parser.parse_args()
    unknown = sorted(set(options.packages) - set(PACKAGES))
    if unknown:
        parser.error(f"unknown package {unknown[0]!r}: choose from {', '.join(PACKAGES)}")
    if not options.report:
        packages = options.packages or list(PACKAGES)
        if options.fresh and (STAGE / "mutants").exists():
            shutil.rmtree(STAGE / "mutants")
        stage(packages, options.only)
        code = run(options.max_children, options.mutants)
        if code != 0:
            print(f"mutmut exited {code}", file=sys.stderr)
    summary = report(results())
    for package, figures in summary.items():
        print(f"baton.{package}: score {figures['score']}%  {figures['counts']}")
        for name in figures["survivors"]:  # type: ignore[attr-defined]
            print(f"  survived: {name}")
    if options.json is not None:
        options.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
