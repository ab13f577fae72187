"""kubernetes_asyncio made lazy (baton/store/lazykube.py): an operator start imports only the
client modules it uses, and the package still exports every name it exported, as the same
classes. Each case runs in a fresh interpreter: what is imported is the subject."""

from __future__ import annotations

import json
import subprocess
import sys

MODULE_BUDGET = 60
"""kubernetes_asyncio modules an operator start may load (it loaded about 900 before)."""

PUBLIC_NAMES = """
import json, types
import kubernetes_asyncio
from kubernetes_asyncio import client
from kubernetes_asyncio.client import api, models
found = {}
for package in (kubernetes_asyncio, client, api, models):
    found[package.__name__] = sorted(
        f"{name}={getattr(package, name).__module__}.{getattr(package, name).__qualname__}"
        for name in dir(package)
        if not name.startswith("_") and isinstance(getattr(package, name), type)
    )
found["version"] = [kubernetes_asyncio.__version__, client.__version__]
print(json.dumps(found))
"""


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return done.stdout


def test_operator_start_imports_only_the_client_modules_it_uses() -> None:
    code = (
        "import sys\n"
        "from baton.cli.operator import import_operator\n"
        "import_operator()\n"
        "print(len([m for m in sys.modules if m.startswith('kubernetes_asyncio')]))"
    )
    assert int(run(code)) <= MODULE_BUDGET


def test_lazy_packages_export_the_same_classes_as_the_library() -> None:
    lazy = json.loads(run(f"from baton.store import lazykube\nlazykube.install()\n{PUBLIC_NAMES}"))
    eager = json.loads(run(PUBLIC_NAMES))
    assert lazy == eager
    assert len(eager["kubernetes_asyncio.client.models"]) > 500


def test_install_leaves_an_already_imported_library_alone() -> None:
    code = (
        "import sys, kubernetes_asyncio\n"
        "before = sys.modules['kubernetes_asyncio.client']\n"
        "from baton.store import lazykube\n"
        "print(lazykube.install(), sys.modules['kubernetes_asyncio.client'] is before)"
    )
    assert run(code).split() == ["False", "True"]
