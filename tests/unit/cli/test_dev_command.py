"""`baton dev`: runs the checkout's hack/dev.sh, or says why it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest

from baton.cli import CommandError, dev
from baton.cli.main import build_parser


def test_dev_finds_the_script_of_this_checkout() -> None:
    path = dev.script()
    assert path == Path(__file__).resolve().parents[3] / "hack" / "dev.sh"
    assert path.stat().st_mode & 0o111  # executable


def test_dev_outside_a_checkout_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"source checkout.*make dev"):
        dev.script(tmp_path)


def test_dev_takes_up_or_down(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["dev"]).action == "up"
    assert parser.parse_args(["dev", "down"]).action == "down"
    with pytest.raises(SystemExit):
        parser.parse_args(["dev", "sideways"])
    assert "invalid choice" in capsys.readouterr().err
