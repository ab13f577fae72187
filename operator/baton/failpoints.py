"""Failpoints: named places where a test can make the operator die on the spot.

A test facility, not a feature. `failpoint("after-history-append")` does nothing unless the
environment variable `BATON_FAILPOINTS`, read once at import, names that point; then the process
exits at once with `os._exit(137)` — no cleanup, no flushed buffers, as if killed by SIGKILL —
on the point's first hit, or on its n-th hit with `name:n`. Several points are separated by
commas: `BATON_FAILPOINTS=after-history-append:3,after-status-write`. Before exiting, one line
goes straight to stderr (`baton failpoint <name> hit <n>: exiting`), so a test can tell a
failpoint exit from a crash.

Without the variable a call is one dict lookup on an empty dict. The points the run loop has
(baton.handlers.runs), in the order a batch passes them:

- `before-history-append`: the batch is decided (results of earlier commands folded in) but
  nothing is written;
- `after-history-append`: the batch is in the history, status does not show it yet;
- `after-status-write`: the batch is committed and the status written, or left behind when
  nothing a user watches changed (the status is a projection, written at most once per
  `--status-interval` then); the batch's commands not performed (but its stops, which are
  performed before the status write);
- `after-command`: one command of the batch was performed (or handed to its executor), the
  ones after it not: a crash there leaves a fan-out (forEach, parallel) half started;
- `after-perform`: the commands were handed to their executors (which work in the background).

And inside the writes and commands of a batch:

- `history-chunk-closed` (baton.store.history): the full history chunk is closed, the next one
  not created;
- `after-journal-write` (baton.store.journal): a journal write (the batches of every run that
  queued one) is in the namespace's journal, no waiting run loop has heard so yet;
- `after-journal-compaction` (baton.store.history): a run's journaled batches are in its chunk
  and still in the journal (their removal not written);
- `after-output-offload` (baton.store.snapshots): a large output's ConfigMap is written, the
  status that refers to it not;
- `after-child-create` (baton.handlers.runs): a child run exists, its parent has not seen it;
- `after-successor-create` (baton.executors.successor): the run a run continues as exists,
  the run has not heard of it;
- `after-lock-grant` (baton.store.locks): a lock object lists a run among its holders (an ask
  granted at once, or a waiter granted by a release), the run's history does not say so yet.

And in a Schedule's pass (baton.handlers.schedules):

- `after-schedule-start`: one run of the pass was created, the ones after it not, and the
  status does not count it;
- `before-schedule-status`: the pass's runs were created (and cancels and deletes sent), its
  status not written.

tests/integration/test_crash.py kills the operator at the run loop's points,
tests/integration/test_history_journal.py at the journal's, tests/integration/test_crash_windows.py
at the others, each in the window it guards, and
tests/integration/test_schedules.py at the schedule's.
"""

from __future__ import annotations

import os
from collections import Counter

ENV = "BATON_FAILPOINTS"
EXIT_STATUS = 137
"""What a shell reports for a process killed by SIGKILL (128 + 9)."""


def parse(spec: str) -> dict[str, int]:
    """`name[:n],...` as {name: n}; n defaults to 1."""
    points: dict[str, int] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, _, count = item.partition(":")
        hit = int(count) if count else 1
        if hit < 1:
            raise ValueError(f"{ENV}: {item!r}: the hit count starts at 1")
        points[name.strip()] = hit
    return points


_armed: dict[str, int] = parse(os.environ.get(ENV, ""))
_hits: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Exit the process here when `BATON_FAILPOINTS` arms `name` and this is the hit it names."""
    if name not in _armed:
        return
    _hits[name] += 1
    if _hits[name] == _armed[name]:
        os.write(2, f"baton failpoint {name} hit {_hits[name]}: exiting\n".encode())
        os._exit(EXIT_STATUS)
