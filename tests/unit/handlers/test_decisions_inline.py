"""Where the run loop decides: inline for a run whose decisions are bounded by its definition,
in a worker thread for one that may fan out (a forEach), whose single decision can start
thousands of instances and would otherwise hold every run's event loop."""

from __future__ import annotations

import yaml

from baton.api.workflow import WorkflowSpec
from baton.engine import Definition, compile_definition
from baton.handlers.runs import may_fan_out


def _definition(text: str) -> Definition:
    return compile_definition(WorkflowSpec.model_validate(yaml.safe_load(text)))


def test_a_chain_of_steps_is_decided_inline() -> None:
    definition = _definition(
        """
        steps:
          - {name: a, http: {url: "http://a.test/"}}
          - {name: b, http: {url: "http://b.test/"}}
          - name: both
            parallel:
              branches:
                - {name: one, steps: [{name: c, set: {x: "1"}}]}
                - {name: two, steps: [{name: d, sleep: {duration: 1s}}]}
        """
    )
    assert may_fan_out(definition) is False


def test_a_for_each_anywhere_is_decided_in_a_worker_thread() -> None:
    definition = _definition(
        """
        steps:
          - {name: a, http: {url: "http://a.test/"}}
          - name: outer
            parallel:
              branches:
                - name: only
                  steps:
                    - name: each
                      forEach:
                        items: "input.items"
                        step: {name: item, set: {x: "${{ item }}"}}
        """
    )
    assert may_fan_out(definition) is True
