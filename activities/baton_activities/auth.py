"""Who may post tasks to a worker: the bearer tokens of the pool's token Secret.

The operator creates a Secret per WorkerPool (keys `current`, and during a rotation `next` or
`previous`), mounts it into the pool's workers and names the directory in
`BATON_WORKER_TOKENS`. A task is run only when its `Authorization: Bearer <token>` matches the
content of one of the files there; every key is accepted, so the operator can switch the token
it sends while the kubelet brings the change to each pod (docs/architecture.md, "Worker
protocol"). The files are read again at most once per `refresh` seconds: a rotation needs no
restart. A directory that is missing or empty accepts nothing.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

TOKENS_ENV = "BATON_WORKER_TOKENS"
"""Directories of accepted tokens, separated by `os.pathsep`."""


class Tokens:
    """The tokens a worker accepts: each non-hidden file of `directories` holds one."""

    def __init__(
        self,
        directories: Sequence[str | os.PathLike[str]],
        *,
        refresh: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directories = [Path(d) for d in directories]
        self.refresh = refresh
        self._clock = clock
        self._read_at: float | None = None
        self._tokens: tuple[bytes, ...] = ()

    @classmethod
    def from_env(cls) -> Tokens | None:
        """The tokens `BATON_WORKER_TOKENS` names; None when it is unset (no check)."""
        value = os.environ.get(TOKENS_ENV, "")
        if not value:
            return None
        return cls([part for part in value.split(os.pathsep) if part])

    def current(self) -> tuple[bytes, ...]:
        """The accepted tokens, read again when the last read is `refresh` seconds old."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self.refresh:
            self._tokens = tuple(self._read())
            self._read_at = now
        return self._tokens

    def accepts(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header value carries an accepted bearer token."""
        if not authorization:
            return False
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False
        presented = given.strip().encode()
        # Compared in constant time, each of them: the answer's timing says nothing.
        matches = [hmac.compare_digest(presented, token) for token in self.current()]
        return any(matches)

    def _read(self) -> list[bytes]:
        found = []
        for directory in self.directories:
            try:
                entries = sorted(directory.iterdir())
            except OSError:
                continue
            for entry in entries:
                # A mounted Secret holds `..data` and timestamped directories beside its keys.
                if entry.name.startswith("."):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    value = entry.read_bytes().strip()
                except OSError:
                    continue
                if value:
                    found.append(value)
        return found
