"""`baton-worker module:attr`: serve activities over HTTP with uvicorn."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from baton_activities.activity import Activity
from baton_activities.app import Worker
from baton_activities.auth import TOKENS_ENV, Tokens


def load(target: str) -> Worker:
    """The Worker named by `module:attr`: a Worker, an @activity, or a list of activities;
    `module` alone serves every @activity defined at the top of that module."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    if not attr:
        return Worker(_activities_of(module))
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, Worker):
        return obj
    if isinstance(obj, Activity):
        return Worker([obj])
    if isinstance(obj, list | tuple) and all(isinstance(a, Activity) for a in obj):
        return Worker(obj)
    raise SystemExit(f"baton-worker: {target} is not a Worker, an @activity or a list of them")


def _activities_of(module: ModuleType) -> list[Activity[..., Any]]:
    found = [v for v in vars(module).values() if isinstance(v, Activity)]
    if not found:
        raise SystemExit(f"baton-worker: module {module.__name__} defines no @activity")
    return found


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="baton-worker", description="Serve Baton activities to a WorkerPool."
    )
    parser.add_argument("target", help="module:attr of a Worker, or a module of @activity")
    parser.add_argument("--host", default=os.environ.get("BATON_WORKER_HOST", "0.0.0.0"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("BATON_WORKER_PORT", "8080"))
    )
    parser.add_argument(
        "--graceful-timeout",
        type=float,
        default=None,
        help="seconds the tasks in flight get to finish after SIGTERM (default: no limit; "
        "set the pod's terminationGracePeriodSeconds to match)",
    )
    parser.add_argument(
        "--heartbeat-interval", type=float, default=None, help="least seconds between heartbeats"
    )
    parser.add_argument(
        "--tokens",
        action="append",
        metavar="DIR",
        help="a directory of accepted bearer tokens, one per file (a mounted token Secret; "
        f"repeatable; default: ${TOKENS_ENV}, which a WorkerPool's pods have). Without any, "
        "every caller is accepted",
    )
    parser.add_argument("--log-level", default=os.environ.get("BATON_WORKER_LOG_LEVEL", "info"))
    parser.add_argument(
        "--app-dir", default=".", help="directory put first on sys.path (default: .)"
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, os.path.abspath(args.app_dir))
    worker = load(args.target)
    if args.heartbeat_interval is not None:
        worker.heartbeat_interval = args.heartbeat_interval
    if args.tokens:
        worker.tokens = Tokens(args.tokens)

    import uvicorn

    uvicorn.run(
        worker,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="on",
        timeout_graceful_shutdown=args.graceful_timeout,
        access_log=False,
    )


if __name__ == "__main__":
    main()
