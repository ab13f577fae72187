"""The shell's side of updates: reading `spec.updates`, answering refusals, publishing answers.

A run's loop takes each entry of `spec.updates` once, in list order, as an `UpdateRequested`.
The engine's `refusal` decides it against the state as it is at that point of the batch: an
accepted request becomes the `UpdateAccepted` event the engine folds (its answer is then part
of the state, recorded by the history like any event); a refused one is answered here and the
run is left untouched — no event, no change of state, as a rejected Update leaves no trace in
a Temporal history.

What the shell keeps is written in the run's status beside the engine's part:
- `status.updatesSeen`, the cursor: entries of `spec.updates` answered so far. A crash before
  the status write leaves it behind; the entries after it are taken again and those already
  answered (by id, in the state or among the refusals) are skipped, so nothing is applied twice;
- the refusals, entries of `status.updates` with `outcome: Refused` (the latest
  `MAX_RESULTS`). One lost to a crash is validated again on restart, harmlessly: it changed
  nothing.

A finished run's loop has ended; an update sent to it needs one to answer it (refused: the run
has finished), so `unanswered` runs get a loop again (`Registry._needs_loop`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from baton.engine import Definition, State
from baton.engine.events import UpdateAccepted, UpdateRequested
from baton.engine.state import UpdateOutcome, rfc3339, to_millis
from baton.engine.updates import MAX_RESULTS, refusal

SEEN = "updatesSeen"
_REASON_LIMIT = 1000
"""Characters of a refusal's reason kept: a validator's message may interpolate the payload."""


@dataclass
class Answers:
    """One run loop's bookkeeping of `spec.updates`."""

    seen: int = 0
    """Entries of spec.updates taken so far (answered, or folded to be answered)."""
    refused: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Refusals by id, oldest first, as written in status.updates."""
    unwritten: bool = False
    """A refusal was made that no status write carries yet."""

    @staticmethod
    def from_status(status: Mapping[str, Any]) -> Answers:
        """The bookkeeping a run's status records."""
        refused = {
            key: dict(answer)
            for key, answer in (status.get("updates") or {}).items()
            if answer.get("outcome") == UpdateOutcome.REFUSED
        }
        return Answers(seen=int(status.get(SEEN) or 0), refused=refused)

    def requests(self, spec: Mapping[str, Any]) -> list[UpdateRequested]:
        """The entries of `spec.updates` not taken yet, in list order; they count as taken."""
        entries = spec.get("updates") or []
        new = [
            UpdateRequested(str(entry["id"]), str(entry["name"]), entry.get("payload"))
            for entry in entries[self.seen :]
        ]
        self.seen = max(self.seen, len(entries))
        return new

    def answer(
        self, definition: Definition, state: State, request: UpdateRequested, now: float
    ) -> UpdateAccepted | None:
        """The event that accepts `request`, or None when it is refused (answered here) or was
        answered before (a request taken again after a crash, or an id sent twice)."""
        if request.id in state.updates or request.id in self.refused:
            # Taken again after a crash that lost the cursor's write: write it now, so a
            # finished run is not given a loop again for it.
            self.unwritten = True
            return None
        reason = refusal(definition, state, request, now)
        if reason is None:
            return request.accepted()
        if len(reason) > _REASON_LIMIT:
            reason = reason[: _REASON_LIMIT - 3] + "..."
        self.refused[request.id] = {
            "name": request.name,
            "outcome": UpdateOutcome.REFUSED.value,
            "reason": reason,
            "at": rfc3339(to_millis(now)),
        }
        while len(self.refused) > MAX_RESULTS:
            del self.refused[next(iter(self.refused))]
        self.unwritten = True
        return None

    def publish(self, status: dict[str, Any]) -> None:
        """Add the refusals and the cursor to the status about to be written."""
        if self.refused:
            status["updates"] = {**(status.get("updates") or {}), **self.refused}
        status[SEEN] = self.seen
        self.unwritten = False

    def unanswered(self, body: Mapping[str, Any]) -> bool:
        """True when `body` has entries of spec.updates this loop has not taken."""
        return len((body.get("spec") or {}).get("updates") or []) > self.seen


def accepted_answers(status: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's part of `status.updates`: the answers of accepted updates."""
    return {
        key: answer
        for key, answer in (status.get("updates") or {}).items()
        if answer.get("outcome") != UpdateOutcome.REFUSED
    }


def unanswered(body: Mapping[str, Any]) -> bool:
    """True when the run has entries of spec.updates its status has not answered yet."""
    return Answers.from_status(body.get("status") or {}).unanswered(body)
