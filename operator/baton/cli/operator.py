"""`baton operator`: run the operator, out of cluster (kubeconfig) or in cluster."""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

from baton.cli import CommandError
from baton.settings import UNCOMMITTED_JOB_TTL_SECONDS, OperatorSettings

RECURSION_LIMIT = 20_000
"""Frames the operator may nest: copies of a watched object recurse per level of nesting."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `baton operator`."""
    parser = subparsers.add_parser(
        "operator",
        help="run the Baton operator",
        description="Drive WorkflowRuns to completion. Out of cluster it uses the kubeconfig "
        "(--kubeconfig, $KUBECONFIG or ~/.kube/config), in a Pod its service account.",
    )
    defaults = OperatorSettings()
    parser.add_argument("--kubeconfig", help="path of the kubeconfig")
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: the whole cluster",
    )
    parser.add_argument(
        "--standalone", action="store_true", help="run without peering (one replica only)"
    )
    parser.add_argument(
        "--peering", default=defaults.peering, help="peering name shared by the replicas"
    )
    parser.add_argument(
        "--priority",
        type=_priority,
        default=defaults.priority,
        help="peering priority of this replica: the highest alive one works; 'auto' gives each "
        "start a distinct priority above the ones started before it (replicas of a Deployment)",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=defaults.peering_lifetime,
        metavar="SECONDS",
        help="how long a replica's keep-alive stays valid: a standby takes over at most this "
        "long after the active replica died without leaving the peering",
    )
    parser.add_argument(
        "--allow-link-local-http",
        action="store_true",
        help="let HTTP activities reach link-local and cloud metadata addresses",
    )
    limits = parser.add_argument_group(
        "HTTP limits",
        "connections and calls in flight; a call over a limit waits, holding no connection "
        "(docs/install.md, 'HTTP limits')",
    )
    limits.add_argument(
        "--http-default-timeout",
        type=float,
        default=defaults.http_default_timeout,
        metavar="SECONDS",
        help="timeout of an HTTP step's attempt when the step sets no startToClose "
        "(default %(default)s)",
    )
    limits.add_argument(
        "--http-max-connections",
        type=int,
        default=defaults.http_max_connections,
        metavar="N",
        help="connections of HTTP steps, and so their calls in flight (default %(default)s)",
    )
    limits.add_argument(
        "--http-calls-per-namespace",
        type=int,
        default=defaults.http_calls_per_namespace,
        metavar="N",
        help="HTTP calls one namespace may have in flight; below --http-max-connections "
        "(default %(default)s)",
    )
    limits.add_argument(
        "--http-calls-per-run",
        type=int,
        default=defaults.http_calls_per_run,
        metavar="N",
        help="HTTP calls one run, with its child runs, may have in flight (default %(default)s)",
    )
    limits.add_argument(
        "--worker-max-connections",
        type=int,
        default=defaults.worker_max_connections,
        metavar="N",
        help="connections of worker dispatch, and so worker tasks in flight (default %(default)s)",
    )
    limits.add_argument(
        "--worker-calls-per-namespace",
        type=int,
        default=defaults.worker_calls_per_namespace,
        metavar="N",
        help="worker tasks one namespace may have in flight; below --worker-max-connections "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--allow-service-account",
        action="append",
        default=[],
        metavar="PATTERN",
        help="let Job steps and WorkerPools run as ServiceAccounts matching this shell-style "
        "pattern, e.g. 'ci-*' (repeatable); default: none, a step or pool naming one fails",
    )
    parser.add_argument(
        "--allow-job-pod-annotation",
        action="append",
        default=[],
        metavar="PATTERN",
        help="let Job steps set pod annotation keys matching this shell-style pattern, e.g. "
        "'sidecar.istio.io/*' (repeatable); default: none, a step setting one fails",
    )
    parser.add_argument(
        "--liveness",
        default=defaults.liveness_endpoint,
        metavar="URL",
        help="liveness endpoint for probes, e.g. http://0.0.0.0:8080/healthz ('' disables)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=defaults.metrics_port,
        metavar="PORT",
        help="port of the Prometheus /metrics endpoint (0 disables)",
    )
    parser.add_argument(
        "--no-kube-events",
        action="store_true",
        help="post no Kubernetes Events (run phase changes, failed and retried steps)",
    )
    parser.add_argument(
        "--step-events",
        action="store_true",
        help="also post a Kubernetes Event for each step that succeeds (one API write per step)",
    )
    parser.add_argument(
        "--status-interval",
        metavar="SECONDS",
        type=_seconds,
        default=defaults.status_interval,
        help="how long a run's status may lag its history when nothing a user watches changed: "
        "at most one status write per run per SECONDS between phase changes, waits and errors, "
        "which are written at once (default %(default)s; 0: a status write per step)",
    )
    parser.add_argument(
        "--job-ttl",
        metavar="SECONDS",
        type=_job_ttl,
        default=defaults.job_ttl_seconds,
        help="how long a finished Job, and its pod with its logs, is kept once its run has "
        "recorded the outcome (default %(default)s); until then it is kept, up to a week",
    )
    parser.add_argument(
        "--resumes-in-flight",
        metavar="N",
        type=_positive,
        default=defaults.resumes_in_flight,
        help="runs resuming at once after a start; the others wait, the most urgent first "
        "(what the user sent, timers due soonest) (default %(default)s)",
    )
    parser.add_argument(
        "--shard",
        metavar="NAME",
        type=_shard,
        help="handle only WorkflowRuns and WorkerPools labelled baton.dev/shard=NAME (what "
        "the operator creates for them gets the label too); without it, only those without "
        "the label",
    )
    parser.add_argument(
        "--history-key-file",
        metavar="PATH",
        default=os.environ.get("BATON_HISTORY_KEY_FILE") or None,
        help="file holding the secret key that seals run histories against editing "
        "(default $BATON_HISTORY_KEY_FILE; without one, edits by someone who knows Baton "
        "are not detected)",
    )
    parser.add_argument(
        "--history-chunk-bytes",
        type=_chunk_bytes,
        default=defaults.history_chunk_bytes,
        metavar="BYTES",
        help="start a run's next history ConfigMap beyond this size (default: 256 KiB)",
    )
    parser.add_argument("--log-format", choices=["plain", "full", "json"], default="full")
    parser.add_argument("--verbose", "-v", action="store_true", help="log more")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Configure logging and run until stopped."""
    if args.standalone and args.priority:
        raise CommandError("--priority has no effect with --standalone; drop one of them")
    try:
        settings = operator_settings(args)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    run_operator = import_operator()
    configure_logging(verbose=args.verbose, log_format=args.log_format)
    # The API server stores a run's input however deep it nests, and every copy of a watched
    # object (kopf's own included) recurses once or twice per level: at Python's default of
    # 1000 frames a 500-level input killed each event of its run before Baton could refuse
    # it. Python-to-Python calls do not grow the C stack (3.11+), so the limit is cheap.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    run_operator(settings)
    return 0


QUIET_LOGGERS = ("kopf.objects",)
"""Loggers that write a line at INFO for every watch event ("Handler ... succeeded"): formatted
and written once per step, for what the runs' status and history already say. They log
warnings and errors still, and all with --verbose. (The HTTP client, aiohttp, logs no line per
request.)"""


def configure_logging(*, verbose: bool, log_format: str) -> None:
    """kopf's log handler and format on the root logger; the per-event loggers quiet."""
    import kopf

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat[log_format.upper()])
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


def import_operator() -> Callable[[OperatorSettings], None]:
    """The operator's entry point, imported: kopf, the Kubernetes client and the handlers.

    Imported here, not at the top: they take CPU-seconds to import, which every other `baton`
    command would pay at start-up (bench/operator_startup.py measures them). kopf imports
    kubernetes_asyncio too, first: it is made lazy before (baton/store/lazykube.py)."""
    from baton.store import lazykube

    lazykube.install()
    from baton.handlers.operator import run

    return run


def operator_settings(args: argparse.Namespace) -> OperatorSettings:
    """The settings the parsed flags ask for; ValueError naming the flag when they conflict."""
    return OperatorSettings(
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        peering=args.peering,
        standalone=args.standalone,
        priority=auto_priority(time.time()) if args.priority == "auto" else args.priority,
        peering_lifetime=args.peering_lifetime,
        allow_link_local_http=args.allow_link_local_http,
        pod_service_accounts=tuple(args.allow_service_account),
        job_pod_annotations=tuple(args.allow_job_pod_annotation),
        http_default_timeout=args.http_default_timeout,
        http_max_connections=args.http_max_connections,
        http_calls_per_namespace=args.http_calls_per_namespace,
        http_calls_per_run=args.http_calls_per_run,
        worker_max_connections=args.worker_max_connections,
        worker_calls_per_namespace=args.worker_calls_per_namespace,
        liveness_endpoint=args.liveness or None,
        kube_events=not args.no_kube_events,
        step_events=args.step_events,
        status_interval=args.status_interval,
        job_ttl_seconds=args.job_ttl,
        resumes_in_flight=args.resumes_in_flight,
        metrics_port=args.metrics_port,
        shard=args.shard,
        history_chunk_bytes=args.history_chunk_bytes,
        history_key=_history_key(args.history_key_file),
    )


def _shard(text: str) -> str:
    if not _LABEL_VALUE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a label value: up to 63 letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit"
        )
    return text


_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


_MAX_CHUNK_BYTES = 1024 * 1024
"""A chunk grows by one batch past the size it closes at, and etcd refuses objects over
1.5 MiB: a larger setting would let an append fail for good."""


def _chunk_bytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= _MAX_CHUNK_BYTES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a number of bytes from 1 to {_MAX_CHUNK_BYTES}"
        )
    return value


_MAX_RESUMES_IN_FLIGHT = 10_000


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= _MAX_RESUMES_IN_FLIGHT:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a whole number from 1 to {_MAX_RESUMES_IN_FLIGHT}"
        )
    return value


_MAX_STATUS_INTERVAL = 3600.0
"""An hour: past that a status would tell a user watching it nothing useful."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= _MAX_STATUS_INTERVAL:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a number of seconds from 0 to {_MAX_STATUS_INTERVAL:g}"
        )
    return value


def _job_ttl(text: str) -> int:
    if not text.isdigit() or int(text) > UNCOMMITTED_JOB_TTL_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a whole number of seconds from 0 to {UNCOMMITTED_JOB_TTL_SECONDS} (a week)"
        )
    return int(text)


def _priority(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: an integer or 'auto'") from None


def auto_priority(now: float) -> int:
    """A peering priority for `--priority auto`: the start time in milliseconds, times 1000,
    plus a random 0-999. Replicas sharing one command line (a Deployment) thus never have the
    same priority — with which kopf pauses them all — and the newest start wins, so a rolling
    update hands over to the new pod. Below 2**53 until the year 2255 (exact in JSON)."""
    return int(now * 1000) * 1000 + secrets.randbelow(1000)


def _history_key(path: str | None) -> bytes:
    """The history key in the file at `path` (surrounding whitespace dropped); empty without."""
    if path is None:
        return b""
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise CommandError(f"--history-key-file: cannot read {path}: {exc.strerror}") from None
    if len(key) < 32:
        raise CommandError(
            f"--history-key-file: {path} holds {len(key)} bytes; use at least 32 random bytes"
        )
    return key
