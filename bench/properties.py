"""The engine's property tests, deep: generated workflows with thousands of examples.

CI runs tests/unit/engine/test_generated_workflows.py and test_properties.py under the `ci`
hypothesis profile: derandomized, a few dozen examples per property, a few tens of seconds.
This runs them under the `deep` profile (tests/unit/conftest.py): random seeds, EXAMPLES per
property, hypothesis's example database kept in .hypothesis/ so a failure found once is tried
first next time. A failure prints its falsifying workflow as YAML and a `@reproduce_failure`
blob; `--seed` repeats a whole run.

Run: uv run python bench/properties.py [--examples 2000] [--seed N] [-k name]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    "tests/unit/engine/test_generated_workflows.py",
    "tests/unit/engine/test_properties.py",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples per property")
    parser.add_argument("--seed", type=int, help="hypothesis seed, to repeat a run")
    parser.add_argument("-k", dest="select", help="pytest -k expression")
    options = parser.parse_args()
    env = {
        **os.environ,
        "HYPOTHESIS_PROFILE": "deep",
        "BATON_DEEP_EXAMPLES": str(options.examples),
    }
    command = [sys.executable, "-m", "pytest", *FILES, "-q", "--hypothesis-show-statistics"]
    if options.seed is not None:
        command.append(f"--hypothesis-seed={options.seed}")
    if options.select:
        command += ["-k", options.select]
    started = time.monotonic()
    code = subprocess.call(command, cwd=ROOT, env=env)
    print(f"{options.examples} examples per property: {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
