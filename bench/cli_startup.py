"""Benchmark: how long `baton --help` takes, and which imports it pays for.

`baton --help` (and every shell completion, which starts `baton` too) should answer in well
under half a second. This runs the installed console script a number of times and prints the
median and best wall time, then the slowest imports of one `python -X importtime` start, so a
heavy import that slipped into a module loaded at start-up is named, not just felt.

Run: uv run python bench/cli_startup.py [--rounds N] [COMMAND ...]   (default: --help)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BATON = Path(sys.executable).parent / "baton"
TOP_IMPORTS = 12


def wall_times(argv: list[str], rounds: int) -> list[float]:
    """Seconds of each of `rounds` runs of `baton argv`."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([str(BATON), *argv], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return times


def slowest_imports(argv: list[str]) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the top-level imports of one start, slowest first."""
    code = "import sys; from baton.cli.main import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    found = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|", 2)
        if not cumulative.strip().isdigit():
            continue  # the header line
        if not name.startswith(" ") or name.startswith("  "):
            continue  # nested imports: their parent's line counts them
        found.append((int(cumulative), name.strip()))
    return sorted(found, reverse=True)[:TOP_IMPORTS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("command", nargs="*", default=["--help"])
    args = parser.parse_args()
    times = wall_times(args.command, args.rounds)
    print(
        f"baton {' '.join(args.command)}: median {statistics.median(times) * 1000:.0f} ms, "
        f"best {min(times) * 1000:.0f} ms over {args.rounds} runs"
    )
    print("slowest top-level imports (cumulative):")
    for micros, name in slowest_imports(args.command):
        print(f"  {micros / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
