"""kubernetes_asyncio's packages, imported lazily: a name's module loads when it is first read.

`import kubernetes_asyncio` runs the package's `__init__` modules, which import every API class
and every model of the Kubernetes API, about 900 modules and the larger part of an operator
restart's CPU (docs/performance.md, "Restart cost"), while Baton uses the connection pieces only
(`ApiClient`, `Configuration`, the kubeconfig and in-cluster loaders, `ApiException`) and kopf,
which imports the package whenever it is installed, reads two model classes. `install()` puts
in place of the four package modules that do this (the root, `client`, `client.api`,
`client.models`) modules built from the same `__init__` source, with its statements other than
imports of kubernetes_asyncio's own modules run as they are, and those imports turned into
names that import their module the first time they are read (PEP 562 `__getattr__`). Every name
the package exports is still there, as the same object, and submodules import as usual; what
changes is when their code runs.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

PACKAGE = "kubernetes_asyncio"
LAZY_PACKAGES = (PACKAGE, f"{PACKAGE}.client", f"{PACKAGE}.client.api", f"{PACKAGE}.client.models")
"""The packages whose `__init__` imports what Baton does not use."""


def install() -> bool:
    """Make the packages lazy, unless one of them is imported already (then it is too late to
    matter and the real ones stay) or the library is not laid out as expected. True when the
    lazy packages are in place."""
    if any(name in sys.modules for name in LAZY_PACKAGES):
        return False
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(next(iter(spec.submodule_search_locations)))
    modules = []
    for name in LAZY_PACKAGES:
        init = root.joinpath(*name.split(".")[1:], "__init__.py")
        try:
            tree = ast.parse(init.read_text(encoding="utf-8"), str(init))
        except (OSError, SyntaxError, ValueError):
            return False
        modules.append(_lazy_package(name, init, tree))
    for module in modules:
        sys.modules[module.__name__] = module
    return True


def _lazy_package(name: str, init: Path, tree: ast.Module) -> types.ModuleType:
    """The package `name`, its own imports of kubernetes_asyncio modules deferred."""
    deferred: dict[str, tuple[str, str | None]] = {}  # name -> (module, attribute or None)
    kept: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _ours(node.module or ""):
            for alias in node.names:
                deferred[alias.asname or alias.name] = (node.module or "", alias.name)
        elif isinstance(node, ast.Import) and all(_ours(a.name) and a.asname for a in node.names):
            for alias in node.names:
                deferred[alias.asname or alias.name] = (alias.name, None)
        else:
            kept.append(node)
    spec = importlib.machinery.ModuleSpec(name, None, origin=str(init), is_package=True)
    spec.submodule_search_locations = [str(init.parent)]
    spec.has_location = True
    module = types.ModuleType(name)
    module.__spec__ = spec
    module.__file__ = str(init)
    module.__path__ = [str(init.parent)]
    module.__package__ = name

    def __getattr__(attribute: str) -> Any:  # noqa: N807 - PEP 562's name
        found = deferred.get(attribute)
        if found is None:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        source = importlib.import_module(found[0])
        value = source if found[1] is None else getattr(source, found[1])
        setattr(module, attribute, value)  # read once: later reads are plain lookups
        return value

    def __dir__() -> list[str]:  # noqa: N807 - PEP 562's name
        return sorted(set(vars(module)) | set(deferred))

    vars(module).update(__getattr__=__getattr__, __dir__=__dir__)
    exec(compile(ast.Module(kept, []), str(init), "exec"), vars(module))
    return module


def _ours(module: str) -> bool:
    return module.startswith(f"{PACKAGE}.")
