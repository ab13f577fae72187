"""`continueAsNew`: end the run and have a fresh run of the same Workflow go on with new input
(Temporal's continue-as-new), so a process that runs forever never grows one history.

The step renders the next run's input, names the successor and marks the run ending
(`Ending.CONTINUED`): nothing new starts, what is in flight is cancelled, `finally` and `onExit`
steps run (`run.outcome` is ContinuedAsNew), and nothing is compensated — the run did its work.
Once the run's own steps ended the successor is `ready`: `decide` then has the `ContinueAsNew`
command in flight until the shell reports `SuccessorCreated`, which ends the run
`ContinuedAsNew`. The command is derived from the state like every start, so a crash anywhere
re-issues it, and its deterministic name makes the re-issue find the run the first issue made.

`repeat.continueAsNewEvery` asks for the same successor from `baton.engine.repeat`, carrying the
run's input, its `vars` and the step's iteration count (`request`).

The successor's name is `<lineage>-<hash of this run's uid>-<number>`: readable (the lineage's
first run, then the generation), and unique to this run, so no two runs' successors collide and
a run recreated under an old name does not find its namesake's successor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baton.api.attempts import attempt_name
from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.errors import StepError
from baton.engine.kinds.base import Kind
from baton.engine.limits import input_problem
from baton.engine.scope import Scope
from baton.engine.state import Ending, State, StepState, Successor
from baton.engine.values import expression_error, render
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine

SUCCESSOR_KEY = "continue-as-new"
"""The key of the ContinueAsNew command among the run's commands in flight."""


def successor_name(state: State) -> str:
    """The deterministic name of the run `state`'s run continues as."""
    return attempt_name(state.lineage or state.run_name, state.uid, "", state.continuation + 1)


def request(
    m: Machine,
    input: Any,
    *,
    vars: dict[str, Any] | None = None,
    iterations: dict[str, int] | None = None,
) -> str:
    """Ask for the successor: the run ends (`Ending.CONTINUED`) and, once its own steps ended,
    the shell creates the successor. Returns the successor's name."""
    s = m.state
    s.successor = Successor(name=successor_name(s), input=input, vars=vars, iterations=iterations)
    s.ending = Ending.CONTINUED
    return s.successor.name


class ContinueAsNew(Kind):
    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        assert sd.continue_input is not None
        try:
            value = render(sd.continue_input, m.context(scope, sd.name))
        except EvaluationError as exc:
            error = expression_error(str(exc), sd.name, "continueAsNew.input")
            m.step_failed(sd, scope, path, step, error)
            return
        # The input becomes the next run's spec.input: bounded as any run's input is, or the
        # successor would be refused after this run had ended.
        problem = input_problem(value)
        if problem is None:
            problem = m.d.input_problem(value)
        if problem is not None:
            error = StepError("InvalidInput", f"continueAsNew.{problem}", step=sd.name)
            m.step_failed(sd, scope, path, step, error)
            return
        name = request(m, value)
        # Not through `execution_succeeded`: no repeat or compensation applies to an ending.
        m.finish(step, StepPhase.SUCCEEDED, output={"run": name, "input": value})
