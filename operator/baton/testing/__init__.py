"""Offline, time-skipping runs of workflows with mocked activities (`baton test`).

From pytest::

    from baton.testing import run_workflow, load_workflows

    def test_purchase_compensates_when_transfer_fails():
        result = run_workflow(
            load_workflows("examples/purchase-saga/workflow.yaml"),
            input={"propertyId": "villa-7", "payment": {"amount": 2_500_000}},
            mocks={
                "steps": {
                    "reserve": [{"output": {"id": "r-1"}}],
                    "pay": [{"output": {"id": "pay-1", "amount": 2_500_000}}],
                    "transfer": [{"error": {"type": "TitleDisputed"}}],
                },
                "signals": [{"name": "manualApproval", "payload": {"ok": True}, "at": "2h"}],
            },
        )
        assert result.phase == "Compensated"
        assert result.compensations == ["pay", "reserve"]
"""

from baton.testing.mocks import MockError, MockOutcome, Mocks, MockSignal
from baton.testing.runner import (
    StepReport,
    TestResult,
    TimelineEntry,
    WorkflowTestError,
    load_workflows,
    run_workflow,
)

__all__ = [
    "MockError",
    "MockOutcome",
    "MockSignal",
    "Mocks",
    "StepReport",
    "TestResult",
    "TimelineEntry",
    "WorkflowTestError",
    "load_workflows",
    "run_workflow",
]
