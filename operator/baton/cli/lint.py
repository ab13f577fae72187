"""`baton lint FILE...`: check Workflow files offline, for editors and CI pipelines.

Every document of every file is loaded with the models the CRDs are generated from (every
schema problem, each naming its field), and every Workflow — and every WorkflowRun's inline
`spec.workflow` — goes through the engine's own `compile_definition`, the compile the operator
runs when the Workflow is applied (an unknown `needs`, a cycle, a broken CEL expression, a bad
inputSchema: named by step and field). Nothing touches a cluster. The exit code is 0 when
everything is clean and 1 when anything is not, so a pipeline fails on the first bad file
without stopping the report at it.

What lint cannot know offline: whether a child workflow or a WorkerPool a step names exists in
the cluster, and the CRD's CEL rules the API server itself enforces on apply.

The engine and pydantic are imported when the command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from baton.cli.output import Output, add_output_argument, dump, output_of

EXIT_PROBLEMS = 1
"""Exit code when any file has a problem (2 stays for usage errors, as in every command)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where (file, line of its document, kind and name) and what."""

    file: str
    line: int
    """Line of the document's first line (1-based); a YAML syntax error's own line; 0 when
    the file itself is the problem (unreadable, empty)."""
    kind: str
    name: str
    message: str
    """`field: what is wrong`, the field as written in YAML or named by step and field."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f"{self.kind} {self.name}: " if self.kind else ""
        return f"{where}: {what}{self.message}"


@dataclass(frozen=True)
class Checked:
    """A resource that passed: its file, kind and name."""

    file: str
    kind: str
    name: str


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `baton lint`."""
    parser = subparsers.add_parser(
        "lint",
        help="check Workflow files offline: schema and compile, every error with its field",
        description="Load every document of each FILE as the API server would (Workflow, "
        "WorkflowRun, WorkerPool) and compile each Workflow with the engine, as the operator "
        "does on apply. Prints every problem as FILE:LINE: KIND NAME: FIELD: MESSAGE; exits 0 "
        "when all files are clean, 1 when any is not. Needs no cluster.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only problems, not the clean resources"
    )
    add_output_argument(parser, [Output.JSON, Output.YAML], what="the problems")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Lint every file; print problems (and, unless quiet, what passed) in file order."""
    results = [result for path in args.files for result in lint_file(path)]
    problems = [result for result in results if isinstance(result, Problem)]
    output = output_of(args)
    if output is not None:
        print(dump([asdict(p) for p in problems], output))
        return EXIT_PROBLEMS if problems else 0
    for result in results:
        if isinstance(result, Problem):
            print(result)
        elif not args.quiet:
            print(f"{result.file}: {result.kind} {result.name}: ok")
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        files = len({p.file for p in problems})
        print(f"{count} in {files} of {len(args.files)} files", file=sys.stderr)
        return EXIT_PROBLEMS
    return 0


def lint_file(path: Path) -> Iterator[Problem | Checked]:
    """The problems and clean resources of one file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        yield Problem(str(path), 0, "", "", f"cannot read: {exc.strerror or exc}")
        return
    yield from lint_text(text, str(path))


def lint_text(text: str, source: str) -> Iterator[Problem | Checked]:
    """The problems and clean resources of a YAML text (`source` names it in the results)."""
    import yaml

    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        yield Problem(source, line, "", "", f"not YAML: {reason}")
        return
    documents = yaml.safe_load_all(text)
    found = False
    for node, document in zip(nodes, documents, strict=True):
        if document is None:
            continue
        found = True
        yield from _lint_document(document, source, node.start_mark.line + 1)
    if not found:
        yield Problem(source, 0, "", "", "no document: expected a Workflow, WorkflowRun or "
                      "WorkerPool")  # fmt: skip


def _lint_document(document: Any, source: str, line: int) -> Iterator[Problem | Checked]:
    from baton.api.resources import ResourceError, Workflow, WorkflowRun, load_resource
    from baton.engine import DefinitionError, compile_definition

    kind = str(document.get("kind") or "") if isinstance(document, Mapping) else ""
    metadata = document.get("metadata") if isinstance(document, Mapping) else None
    name = str(metadata.get("name") or "") if isinstance(metadata, Mapping) else ""
    try:
        resource = load_resource(document)
    except ResourceError as exc:
        for message in exc.messages:
            yield Problem(source, line, kind, name, message)
        return
    spec, where = None, ""
    if isinstance(resource, Workflow):
        spec = resource.spec
    elif isinstance(resource, WorkflowRun) and resource.spec.workflow is not None:
        spec, where = resource.spec.workflow, "spec.workflow: "
    if spec is not None:
        try:
            compile_definition(spec)
        except DefinitionError as exc:
            yield Problem(source, line, kind, name, f"{where}{exc}")
            return
    yield Checked(source, kind, name)
