"""Benchmark: the CPU an operator (re)start spends importing its code, and on what.

A crashed or rescheduled operator drives no run until Python has imported kopf, the Kubernetes
client and Baton's handlers; on a busy node those CPU-seconds become many wall seconds. This
starts fresh interpreters that import what `baton operator` imports before it connects
(`baton.cli.operator.import_operator`) and prints the CPU seconds each spent (user + system, the
whole process: interpreter start-up included), median, min and max over `--rounds`, then the
import time of one `python -X importtime` start by top-level package. CPU time, unlike wall
time, barely depends on what else the machine runs.

Each round starts one interpreter importing the libraries as they load themselves (all of
kubernetes_asyncio's API classes and models; httpx with its command line) and one with Baton's
start-up as it is (baton/store/lazykube.py, `import_operator`), so the two are compared in the
same invocation. Two environments: `image` is what the container image installs (`uv sync
--no-dev`: no synchronous `kubernetes` client, no `pykube`, which kopf imports too when they are
present); `dev` is this virtual environment as it is.

Run: uv run python bench/operator_startup.py [--rounds 5] [--env image|dev|both]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from collections import Counter

TOP_IMPORTS = 12
ABSENT_FROM_IMAGE = ("kubernetes", "pykube")
"""Packages of the dev environment that the image lacks; kopf imports them when present."""


EAGER = "import kubernetes_asyncio, httpx; "
"""Imported first, the libraries load as they did before Baton made them lighter: lazykube
leaves an imported kubernetes_asyncio alone, and httpx has imported its command line."""


def program(env: str, eager: bool = False) -> str:
    hide = "".join(f"sys.modules[{name!r}] = None; " for name in ABSENT_FROM_IMAGE)
    return (
        "import sys, resource; "
        + (hide if env == "image" else "")
        + (EAGER if eager else "")
        + "from baton.cli.operator import import_operator; import_operator(); "
        "usage = resource.getrusage(resource.RUSAGE_SELF); "
        "print(usage.ru_utime + usage.ru_stime)"
    )


def cpu_seconds(code: str) -> float:
    """CPU seconds of a fresh interpreter running `code`, as it prints them."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def import_cost_by_package(env: str) -> list[tuple[int, str]]:
    """(microseconds, top-level package) of one start under `-X importtime`: each module's own
    import time summed by the package it belongs to, costliest first."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", program(env)],
        capture_output=True,
        text=True,
        check=True,
    )
    totals: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|", 2)
        if own.strip().isdigit():
            totals[name.strip().split(".")[0]] += int(own)
    return [(micros, name) for name, micros in totals.most_common(TOP_IMPORTS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--env", choices=["image", "dev", "both"], default="both")
    args = parser.parse_args()
    for env in ["image", "dev"] if args.env == "both" else [args.env]:
        lazy, eager = [], []
        for _ in range(args.rounds):  # alternating, so that a change of load touches both
            eager.append(cpu_seconds(program(env, eager=True)))
            lazy.append(cpu_seconds(program(env)))
        for label, times in (("as the libraries load themselves", eager), ("Baton's", lazy)):
            print(
                f"{env}: operator imports {label}, CPU seconds: median "
                f"{statistics.median(times):.2f} (min {min(times):.2f}, max {max(times):.2f}) "
                f"over {args.rounds} starts"
            )
        print(f"  ratio of the medians: {statistics.median(lazy) / statistics.median(eager):.2f}")
        print("  import time by package (one start under -X importtime, which inflates it):")
        for micros, name in import_cost_by_package(env):
            print(f"  {micros / 1e6:7.2f} s  {name}")


if __name__ == "__main__":
    main()
