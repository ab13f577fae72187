"""baton.failpoints: parsing, and the exit on the named hit in a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from baton.failpoints import ENV, EXIT_STATUS, parse

SCRIPT = """
from baton.failpoints import failpoint
for i in range(1, 6):
    print(i, flush=True)
    failpoint("here")
    failpoint("elsewhere")
print("end", flush=True)
"""


def test_parse_names_and_counts() -> None:
    assert parse("") == {}
    assert parse("a") == {"a": 1}
    assert parse(" a:3 , b ,") == {"a": 3, "b": 1}
    with pytest.raises(ValueError, match="starts at 1"):
        parse("a:0")


def run(spec: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if spec is not None:
        env[ENV] = spec
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=False
    )


def test_exits_on_the_named_hit_only() -> None:
    result = run("here:3")
    assert result.returncode == EXIT_STATUS
    assert result.stdout.split() == ["1", "2", "3"]
    assert "baton failpoint here hit 3: exiting" in result.stderr


@pytest.mark.parametrize("spec", [None, "other:1"], ids=["unarmed", "armed-elsewhere"])
def test_does_nothing_unless_armed(spec: str | None) -> None:
    result = run(spec)
    assert result.stdout.split() == ["1", "2", "3", "4", "5", "end"]
    assert "failpoint" not in result.stderr
    assert result.returncode == 0
