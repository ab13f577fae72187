"""A real uvicorn server on 127.0.0.1 serving the sample activities, in a thread."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sdk_sample import worker
from sdkserver import serve

EXAMPLES = Path(__file__).parents[3] / "activities" / "examples"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(worker) as base:
        yield base


@pytest.fixture(scope="module")
def examples_url() -> Iterator[str]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import realestate

        with serve(realestate.worker) as base:
            yield base
    finally:
        sys.path.remove(str(EXAMPLES))
