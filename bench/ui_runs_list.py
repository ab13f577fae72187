"""Benchmark: the web view's runs list with 10,000 runs in the cluster.

Creates N WorkflowRuns (default 10,000) in a namespace of a running cluster (`make dev`'s, or
any you may write to), with phases spread over them as the operator would write them, starts
`baton ui` against it and measures, with the user's kubeconfig as the view uses it:

- start: from `baton ui` starting to its runs index being built (the LIST of every run);
- api: the /api/runs answer (a page of 50, counts over all) with no filter, a phase filter,
  a name search and a label selector: median and 95th percentile over repeated requests;
- page load: headless Chromium (/usr/bin/chromium) from navigation to the table's rows drawn;
- update latency: from a run's status write (a phase change) to the page showing it, and
  from a run's creation to its row on the page — pushed by the watch, no reload.

Run: uv run python bench/ui_runs_list.py --kubeconfig PATH [--runs N] [--namespace NS] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from baton.store.kube import Kube, core_path, path_of

PHASES = ["Succeeded"] * 6 + ["Failed", "Running", "Compensated", "Cancelled"]
CONCURRENCY = 32


def manifest(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {
            "name": f"bench-{index:05}",
            "labels": {"team": f"t{index % 7}", "baton.dev/phase": PHASES[index % len(PHASES)]},
        },
        "spec": {"workflowRef": {"name": f"flow-{index % 5}"}},
    }


async def populate(kube: Kube, namespace: str, count: int) -> float:
    """Create the runs and write each a status; seconds taken."""
    if await kube.get(core_path("namespaces", None, namespace)) is None:
        await kube.create(core_path("namespaces"), {"metadata": {"name": namespace}})
    existing = {r["metadata"]["name"] for r in await kube.list(path_of("workflowruns", namespace))}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        if f"bench-{index:05}" not in existing:
            queue.put_nowait(index)
    start = time.perf_counter()

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            created = await kube.create(path_of("workflowruns", namespace), manifest(index))
            phase = PHASES[index % len(PHASES)]
            status = {"phase": phase, "progress": "1/1", "currentStep": "step"}
            await kube.patch(
                path_of(
                    "workflowruns", namespace, created["metadata"]["name"], subresource="status"
                ),
                {"status": status},
            )

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - start


def get(url: str) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = json.loads(response.read())
    return time.perf_counter() - start, body


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


async def touch(kube: Kube, namespace: str, name: str, phase: str) -> None:
    path = path_of("workflowruns", namespace, name, subresource="status")
    await kube.patch(path, {"status": {"phase": phase}})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--namespace", default="bench-ui")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    args = parser.parse_args()

    async def connect() -> Kube:
        return await Kube.connect(args.kubeconfig)

    loop = asyncio.new_event_loop()
    kube = loop.run_until_complete(connect())
    took = loop.run_until_complete(populate(kube, args.namespace, args.runs))
    print(
        f"{args.runs} runs in namespace {args.namespace} ({took:.0f} s to create what was missing)"
    )

    started = time.perf_counter()
    ui = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baton.cli.main",
            "ui",
            "--port",
            "0",
            "--kubeconfig",
            args.kubeconfig,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert ui.stdout is not None
        line = ui.stdout.readline()
        url = line.split()[3]
        listening = time.perf_counter() - started
        first, body = get(f"{url}api/runs")
        print(f"start: listening after {listening:.1f} s (imports), runs index built "
              f"{first:.2f} s later; {body['total']} runs")  # fmt: skip
        for label, query in (
            ("no filter", ""),
            ("phase=Failed", "?phase=Failed"),
            ("search", "?search=bench-042"),
            ("label team=t3", "?label=team%3Dt3"),
            ("page 100", "?offset=5000"),
        ):
            samples = [get(f"{url}api/runs{query}")[0] for _ in range(args.rounds)]
            print(f"api {label:<14} {percentiles(samples)}")
        # Playwright's sync API runs a loop of its own in this thread: the cluster's client
        # (bound to `loop`) runs in another thread meanwhile.
        runner = threading.Thread(target=loop.run_forever, daemon=True)
        runner.start()
        try:
            browser(url, loop, kube, args.namespace, args.rounds)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            runner.join()
    finally:
        ui.terminate()
        ui.wait(timeout=20)
        if not args.keep:
            loop.run_until_complete(kube.delete(core_path("namespaces", None, args.namespace)))
        loop.run_until_complete(kube.close())
    return 0


def browser(
    url: str, loop: asyncio.AbstractEventLoop, kube: Kube, namespace: str, rounds: int
) -> None:
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        print("page: no /usr/bin/chromium (apt-get install -y chromium); skipped")
        return
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        page = chromium.new_page(viewport={"width": 1440, "height": 900})
        loads = []
        for _ in range(max(3, rounds // 4)):
            start = time.perf_counter()
            page.goto(f"{url}runs")
            page.wait_for_selector("[data-testid=run-row]")
            loads.append(time.perf_counter() - start)
        print(f"page load      {percentiles(loads)}")
        page.wait_for_selector("[data-testid=live].on")
        updates = []
        names = [
            row.get_attribute("data-run") or ""
            for row in page.query_selector_all("[data-testid=run-row]")
        ]
        for number, shown in enumerate(names[: max(3, rounds // 2)]):
            name = shown.split("/", 1)[1]
            phase = "Failed" if number % 2 else "Cancelled"
            start = time.perf_counter()
            asyncio.run_coroutine_threadsafe(touch(kube, namespace, name, phase), loop).result()
            page.wait_for_selector(f'[data-run="{shown}"] [data-phase="{phase}"]', timeout=60_000)
            updates.append(time.perf_counter() - start)
        print(f"update (row)   {percentiles(updates)}")
        created = []
        for number in range(max(3, rounds // 4)):
            body = manifest(number)
            body["metadata"]["name"] = f"bench-new-{int(time.time())}-{number}"
            start = time.perf_counter()
            create = kube.create(path_of("workflowruns", namespace), body)
            asyncio.run_coroutine_threadsafe(create, loop).result()
            page.wait_for_selector(
                f'[data-run="{namespace}/{body["metadata"]["name"]}"]', timeout=60_000
            )
            created.append(time.perf_counter() - start)
        print(f"update (new)   {percentiles(created)}")
        chromium.close()


if __name__ == "__main__":
    sys.exit(main())
