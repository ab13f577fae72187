"""The token that lets the operator, and only it, post tasks to a pool's workers, and how it is
rotated without a task refused (pure: the handler reads the Secret and the clock, and applies
what `plan` returns).

Each pool owns a Secret `<pool>-worker-token` (created by the operator, owned by the pool,
labelled `baton.dev/pool`), mounted read-only into the pool's workers. Its keys:

- `current`: the token the operator sends, as `Authorization: Bearer <token>`;
- `next`: during a rotation, the coming token, accepted before anyone sends it;
- `previous`: after a rotation, the old token, accepted while workers still hold it.

Workers accept the value of every key (baton_activities reads the mounted directory), so a
rotation is three writes, `propagation` apart — the time the kubelet takes to bring a changed
Secret into every pod (its sync period plus its cache's TTL, about a minute by default):

  1. add `next` (workers come to accept it; the operator still sends `current`);
  2. `current` := `next`, `previous` := old `current` (the operator sends the new token, which
     every worker already accepts; a worker that has not seen the change still accepts the
     old one it has as `current`);
  3. drop `previous` (no one sends it any more; it stops working once workers see the change).

A rotation is asked for by annotating the pool `baton.dev/rotate-token=<any new value>`; the
Secret's annotation `baton.dev/rotated-for` records the last value served, so each new value
rotates once. The stage's start time is the Secret's annotation `baton.dev/rotation-since`, so
an operator restarted mid-rotation carries on where it was.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

ROTATE = "baton.dev/rotate-token"
"""Annotation on a WorkerPool: a new value asks for a new token."""
ROTATED_FOR = "baton.dev/rotated-for"
"""Annotation on the token Secret: the pool's `baton.dev/rotate-token` value last served."""
SINCE = "baton.dev/rotation-since"
"""Annotation on the token Secret: when the rotation's current stage began (epoch seconds)."""

SUFFIX = "-worker-token"
"""The token Secret's name is the pool's name and this."""

MOUNT_PATH = "/var/run/baton/worker-token"
"""Where the token Secret is mounted in a worker pod."""

TOKENS_ENV = "BATON_WORKER_TOKENS"
"""The environment variable naming the directory of accepted tokens to `baton-worker`."""


class Key(StrEnum):
    """The keys of a token Secret."""

    CURRENT = "current"
    NEXT = "next"
    PREVIOUS = "previous"


def secret_name(pool: str) -> str:
    """The name of a pool's token Secret."""
    return f"{pool}{SUFFIX}"


@dataclass(frozen=True)
class Tokens:
    """The decoded tokens of a Secret and its rotation annotations."""

    values: Mapping[Key, str] = field(default_factory=dict)
    rotated_for: str = ""
    since: float = 0.0

    @classmethod
    def of(cls, secret: Mapping[str, Any] | None) -> Tokens:
        """The tokens of a Secret as read from the API (base64 `data`); empty without one."""
        if not secret:
            return cls()
        data = secret.get("data") or {}
        values: dict[Key, str] = {}
        for key in Key:
            raw = data.get(key.value)
            if isinstance(raw, str) and raw:
                try:
                    values[key] = base64.b64decode(raw, validate=True).decode("ascii")
                except (ValueError, UnicodeDecodeError):
                    continue  # a mangled key is replaced by the next stage
        notes = (secret.get("metadata") or {}).get("annotations") or {}
        try:
            since = float(notes.get(SINCE) or 0.0)
        except ValueError:
            since = 0.0
        return cls(values, str(notes.get(ROTATED_FOR) or ""), since)

    @property
    def current(self) -> str | None:
        """The token the operator sends."""
        return self.values.get(Key.CURRENT)


@dataclass(frozen=True)
class Plan:
    """What to write to the token Secret: its `data` (text) and annotations; None when it is
    as it should be."""

    data: Mapping[str, str]
    annotations: Mapping[str, str]
    stage: str
    """What this write does, for the log and the pool's Event."""


def plan(
    tokens: Tokens, *, requested: str, now: float, propagation: float, fresh: str
) -> Plan | None:
    """The next write of a pool's token Secret, or None. `requested` is the pool's
    `baton.dev/rotate-token` annotation ("" without one), `fresh` a new random token used when
    a token is needed."""
    values = dict(tokens.values)
    current = values.get(Key.CURRENT)

    def write(stage: str, new: dict[Key, str], rotated_for: str) -> Plan:
        data = {key.value: value for key, value in new.items()}
        notes = {ROTATED_FOR: rotated_for, SINCE: repr(now)}
        return Plan(data, notes, stage)

    if current is None:
        # No Secret yet, or one without a usable `current`: start with a fresh token and
        # count any pending request as served (there is nothing old to retire).
        return write("created", {Key.CURRENT: fresh}, requested)
    settled = now - tokens.since >= propagation
    if Key.NEXT in values:
        if not settled:
            return None
        return write(
            "switched to the new token",
            {Key.CURRENT: values[Key.NEXT], Key.PREVIOUS: current},
            tokens.rotated_for,
        )
    if Key.PREVIOUS in values:
        if not settled:
            return None
        return write("retired the old token", {Key.CURRENT: current}, tokens.rotated_for)
    if requested and requested != tokens.rotated_for:
        return write("rotation started", {Key.CURRENT: current, Key.NEXT: fresh}, requested)
    return None
