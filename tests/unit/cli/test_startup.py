"""What `baton` loads before it runs a command: `--help`, `--version` and shell completion must
start fast, so building the parser imports no heavy module (bench/cli_startup.py times it)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from baton.cli.main import main

HEAVY = ("pydantic", "kubernetes_asyncio", "aiohttp", "cel", "yaml", "asyncio", "baton.engine")


def modules_loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    probe = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def test_building_the_parser_imports_no_heavy_module() -> None:
    loaded = modules_loaded_by("from baton.cli.main import build_parser; build_parser()")
    assert [m for m in HEAVY if m in loaded] == []


def test_help_imports_no_heavy_module() -> None:
    code = (
        "from baton.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    loaded = modules_loaded_by(code)
    assert [m for m in HEAVY if m in loaded] == []


def test_version_prints_the_package_and_api_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("baton 0.1.0 ")
    assert out.rstrip().endswith("(API baton.dev/v1alpha1)")


def test_the_cel_core_loads_without_the_cel_packages_own_cli() -> None:
    # `import cel` would import typer, rich and prompt_toolkit (~400 ms) for its REPL.
    loaded = modules_loaded_by("import baton.engine")
    assert "cel.cel" in loaded
    assert [m for m in ("typer", "rich", "prompt_toolkit", "pygments") if m in loaded] == []


def test_importing_cel_after_the_core_reuses_the_loaded_extension() -> None:
    loaded = modules_loaded_by(
        "from baton.expr.celcore import cel as core\nimport cel\nassert cel.compile is core.compile"
    )
    assert "cel.cli" in loaded


def test_operator_start_imports_one_http_client_library() -> None:
    # aiohttp serves the Kubernetes client and HTTP activities alike; a second client stack
    # (httpx, httpcore, anyio) would be imported and paid for at every start for nothing.
    loaded = modules_loaded_by("from baton.cli.operator import import_operator; import_operator()")
    assert "aiohttp" in loaded
    assert [m for m in ("httpx", "httpcore", "anyio", "rich", "pygments") if m in loaded] == []


@pytest.mark.parametrize("verbose", [False, True])
def test_operator_logs_no_line_per_watch_event_unless_verbose(
    verbose: bool,
) -> None:
    from baton.cli.operator import configure_logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging(verbose=verbose, log_format="plain")
    try:
        for name in ("kopf.objects",):
            assert logging.getLogger(name).isEnabledFor(logging.INFO) is verbose
            assert logging.getLogger(name).isEnabledFor(logging.WARNING)
    finally:
        for name in ("kopf.objects",):
            logging.getLogger(name).setLevel(logging.NOTSET)
        root.handlers[:], root.level = handlers, level
