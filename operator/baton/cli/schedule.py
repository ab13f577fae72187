"""`baton schedule trigger|backfill|suspend|resume SCHEDULE`: requests to a Schedule.

Each request is a patch of the Schedule's spec, durable as soon as the API server took it: a
trigger or a backfill is appended to `spec.triggers` / `spec.backfills` (append-only lists the
operator handles once each, in order), suspend and resume set `spec.suspend` (and
`spec.note`). The operator carries them out (baton.handlers.schedules); nothing here starts a
run itself.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from baton.cli import CommandError
from baton.cli.kubeconfig import Target, add_cluster_arguments, target_of
from baton.cli.runs import Subparsers, _sync

OVERLAPS = ("skip", "bufferOne", "bufferAll", "cancelOther", "terminateOther", "allowAll")


def register(subparsers: Subparsers) -> None:
    """Add `schedule` and its subcommands."""
    parser = subparsers.add_parser(
        "schedule",
        help="trigger, backfill, suspend or resume a Schedule",
        description="Requests to a Schedule, recorded in its spec and carried out by the operator.",
    )
    commands = parser.add_subparsers(title="schedule commands", metavar="COMMAND", required=True)

    trigger = commands.add_parser(
        "trigger",
        help="start a run now",
        description="Append {at: now} to spec.triggers: the operator starts one run with this "
        "nominal time (under the schedule's overlap policy unless --overlap says otherwise).",
    )
    trigger.add_argument("schedule", metavar="SCHEDULE")
    trigger.add_argument("--overlap", choices=OVERLAPS, help="overlap policy for this start")
    add_cluster_arguments(trigger)
    trigger.set_defaults(handler=_trigger_handler)

    backfill = commands.add_parser(
        "backfill",
        help="start the runs of a past time range",
        description="Append {from, to} to spec.backfills: the operator starts a run for each "
        "time of the schedule in the range (both ends included) whose run does not exist.",
    )
    backfill.add_argument("schedule", metavar="SCHEDULE")
    backfill.add_argument("--from", dest="start", required=True, metavar="TIME", help="RFC 3339")
    backfill.add_argument("--to", dest="end", required=True, metavar="TIME", help="RFC 3339")
    backfill.add_argument(
        "--overlap", choices=OVERLAPS, help="overlap policy of these starts (default allowAll)"
    )
    add_cluster_arguments(backfill)
    backfill.set_defaults(handler=_backfill_handler)

    for name, value, text in (("suspend", True, "stop"), ("resume", False, "resume")):
        flag = commands.add_parser(
            name,
            help=f"{text} starting scheduled runs",
            description=f"Set spec.suspend to {str(value).lower()} (and spec.note to --note).",
        )
        flag.add_argument("schedule", metavar="SCHEDULE")
        flag.add_argument("--note", help="why (shown in the schedule's status)")
        add_cluster_arguments(flag)
        flag.set_defaults(handler=_suspend_handler, suspend=value)


def parse_time(text: str, flag: str) -> str:
    """`text` (RFC 3339, or a date) as RFC 3339 in UTC; CommandError naming `flag`."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"{flag}: {text!r} is not a time; write RFC 3339 like 2026-12-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def append_patch(field: str, entry: Mapping[str, Any], *, exists: bool) -> list[dict[str, Any]]:
    """The JSON patch that appends `entry` to `spec.<field>` (creating the list if absent)."""
    if exists:
        return [{"op": "add", "path": f"/spec/{field}/-", "value": dict(entry)}]
    return [
        {"op": "test", "path": f"/spec/{field}", "value": None},
        {"op": "add", "path": f"/spec/{field}", "value": [dict(entry)]},
    ]


def _trigger_handler(args: argparse.Namespace) -> int:
    entry: dict[str, Any] = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.overlap:
        entry["overlap"] = args.overlap
    return _sync(_append(target_of(args), args.schedule, "triggers", entry))


def _backfill_handler(args: argparse.Namespace) -> int:
    start, end = parse_time(args.start, "--from"), parse_time(args.end, "--to")
    if start > end:
        raise CommandError(f"--from ({start}) is after --to ({end})")
    entry: dict[str, Any] = {"from": start, "to": end}
    if args.overlap:
        entry["overlap"] = args.overlap
    return _sync(_append(target_of(args), args.schedule, "backfills", entry))


def _suspend_handler(args: argparse.Namespace) -> int:
    spec: dict[str, Any] = {"suspend": args.suspend}
    if args.note is not None:
        spec["note"] = args.note
    return _sync(_patch(target_of(args), args.schedule, {"spec": spec}))


async def _append(target: Target, schedule: str, field: str, entry: Mapping[str, Any]) -> int:
    from baton.cli.cluster import open_cluster
    from baton.store.kube import ApiError, path_of

    async with open_cluster(target) as (kube, namespace):
        path = path_of("schedules", namespace, schedule)
        current = await kube.get(path)
        if current is None:
            raise CommandError(f'schedule "{schedule}" not found in namespace "{namespace}"')
        exists = isinstance((current.get("spec") or {}).get(field), list)
        try:
            updated = await kube.patch(path, append_patch(field, entry, exists=exists), kind="json")
        except ApiError as exc:
            raise CommandError(f"the API server refused: {exc.message} ({exc.status})") from None
        index = len(updated["spec"][field]) - 1
        print(f"schedule/{schedule}: {field[:-1]} recorded (spec.{field}[{index}])")
        return 0


async def _patch(target: Target, schedule: str, body: Mapping[str, Any]) -> int:
    from baton.cli.cluster import open_cluster
    from baton.store.kube import ApiError, path_of

    async with open_cluster(target) as (kube, namespace):
        try:
            await kube.patch(path_of("schedules", namespace, schedule), body)
        except ApiError as exc:
            if exc.status == 404:
                raise CommandError(
                    f'schedule "{schedule}" not found in namespace "{namespace}"'
                ) from None
            raise CommandError(f"the API server refused: {exc.message} ({exc.status})") from None
        print(f"schedule/{schedule}: spec.suspend set to {str(body['spec']['suspend']).lower()}")
        return 0
