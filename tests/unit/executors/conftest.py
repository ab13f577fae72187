"""Fixtures of the executor unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from executorkit import Server


@pytest.fixture
def server() -> Iterator[Server]:
    """A local HTTP server; script it through `server.routes[path] = Reply(...)`."""
    httpd = Server()
    httpd.start()
    yield httpd
    httpd.stop()
