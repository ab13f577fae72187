"""The CEL core: the Rust extension module of common-expression-language, without its package.

`import cel` runs the package's `__init__`, which imports the package's own interactive CLI
(typer, rich, prompt_toolkit, pygments): some 400 ms that every `baton lint`, `baton test` and
operator start would pay for nothing. The extension module `cel.cel` is all Baton uses
(`compile`, `Program`); it is loaded here from the package's directory without running the
package, and registered under its own name, so that a later `import cel` (bench/expressions.py)
takes this module instead of initialising the extension a second time (PyO3 refuses that).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from types import ModuleType

EXTENSION = "cel.cel"


def load() -> ModuleType:
    """The extension module, loaded once per interpreter."""
    loaded = sys.modules.get(EXTENSION)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("cel")
    locations = package.submodule_search_locations if package is not None else None
    spec = importlib.machinery.PathFinder.find_spec(EXTENSION, list(locations or []))
    if spec is None or spec.loader is None:
        raise ImportError("the CEL core is missing: install common-expression-language")
    module = importlib.util.module_from_spec(spec)
    sys.modules[EXTENSION] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[EXTENSION]
        raise
    return module


cel = load()
