"""Shell completion: `baton completion bash|zsh|fish` prints a script to source, and the hidden
`baton __complete INDEX WORD...` answers it.

argparse has no completion of its own, and the values worth completing (runs, workflows, the
signals a run's workflow waits for, its steps and queries) live in the cluster, so the scripts
are thin: each hands the words of the command line and the cursor's index to
`baton __complete`, which reads the parser `baton.cli.main` builds — subcommands, options, their
choices, positionals — and prints one directive line, `words` or `files`, then the candidates,
one a line. The shell filters them by the word being typed (`files`: its own file completion).

Which positional or option completes from the cluster is one table, `COMPLETERS`, by argument
name; the cluster is asked with the `-n/--namespace`, `--kubeconfig` and `--context` given on the
line, through `baton.cli.cluster` (imported only then, and given `LOOKUP_SECONDS`). A failure
completes nothing and prints nothing: a completion must never garble the terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from baton.cli import CommandError
from baton.cli.kubeconfig import Target

LOOKUP_SECONDS = 5.0
"""How long a completion waits for the cluster before completing nothing."""


class Kind(StrEnum):
    """What a word completes to."""

    NOTHING = "nothing"
    WORDS = "words"
    """Fixed candidates: subcommands, options, choices."""
    FILES = "files"
    RUNS = "runs"
    WORKFLOWS = "workflows"
    SIGNALS = "signals"
    """The signals the run's workflow waits for or handles."""
    UPDATES = "updates"
    """The update handlers of the run's workflow."""
    STEPS = "steps"
    """The run's step keys."""
    QUERIES = "queries"
    NAMESPACES = "namespaces"
    CONTEXTS = "contexts"


COMPLETERS: Mapping[tuple[str, str], Kind] = {
    ("*", "run"): Kind.RUNS,
    ("*", "runs"): Kind.RUNS,
    ("*", "workflow"): Kind.WORKFLOWS,
    ("*", "namespace"): Kind.NAMESPACES,
    ("*", "context"): Kind.CONTEXTS,
    ("*", "kubeconfig"): Kind.FILES,
    ("signal", "name"): Kind.SIGNALS,
    ("update", "name"): Kind.UPDATES,
    ("logs", "step"): Kind.STEPS,
    ("query", "name"): Kind.QUERIES,
}
"""What an argument completes to, by (command, argument name); `*` for every command. An
argument of type Path completes to files; anything else not listed, to nothing."""

BASH = r"""# bash completion for baton; load it with: source <(baton completion bash)
_baton() {
    local IFS=$'\n' out directive
    out=$("${COMP_WORDS[0]}" __complete "$((COMP_CWORD - 1))" "${COMP_WORDS[@]:1}" 2>/dev/null) \
        || return 0
    directive=${out%%$'\n'*}
    if [[ $directive == files ]]; then
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}"))
    elif [[ $out == *$'\n'* ]]; then
        COMPREPLY=($(compgen -W "${out#*$'\n'}" -- "${COMP_WORDS[COMP_CWORD]}"))
    fi
}
complete -F _baton baton kubectl-baton
"""

ZSH = r"""#compdef baton kubectl-baton
# zsh completion for baton; load it with: source <(baton completion zsh)  (after compinit)
_baton() {
    local -a lines
    lines=("${(@f)$("${words[1]}" __complete "$((CURRENT - 2))" "${(@)words[2,-1]}" 2>/dev/null)}")
    if [[ ${lines[1]} == files ]]; then
        _files
    elif (( ${#lines} > 1 )); then
        compadd -- "${(@)lines[2,-1]}"
    fi
}
if [[ ${funcstack[1]} == _baton ]]; then
    _baton "$@"
else
    compdef _baton baton kubectl-baton
fi
"""

FISH = r"""# fish completion for baton; load it with: baton completion fish | source
function __baton_complete
    set -l before (commandline -opc)
    set -l current (commandline -ct)
    set -l out ($before[1] __complete (count $before[2..-1]) $before[2..-1] "$current" 2>/dev/null)
    if test "$out[1]" = files
        __fish_complete_path "$current"
    else
        printf '%s\n' $out[2..-1]
    end
end
complete -c baton -f -a '(__baton_complete)'
complete -c kubectl-baton -f -a '(__baton_complete)'
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `baton completion SHELL` and the hidden `baton __complete`."""
    parser = subparsers.add_parser(
        "completion",
        help="print the shell completion script for bash, zsh or fish",
        description="Print a script that makes SHELL complete baton's commands, options and, "
        "from the cluster, run, workflow, signal, step and query names. bash: "
        "`source <(baton completion bash)` (in ~/.bashrc); zsh: `source <(baton completion "
        "zsh)` after compinit; fish: `baton completion fish | source` (or save it as "
        "~/.config/fish/completions/baton.fish).",
    )
    parser.add_argument("shell", choices=sorted(SCRIPTS), metavar="SHELL")
    parser.set_defaults(handler=_script)
    # Added without help, so `baton --help` does not list it: the scripts call it.
    hidden = subparsers.add_parser("__complete")
    hidden.add_argument("index", type=int)
    hidden.add_argument("words", nargs=argparse.REMAINDER)
    hidden.set_defaults(handler=_complete)


def _script(args: argparse.Namespace) -> int:
    sys.stdout.write(SCRIPTS[args.shell])
    return 0


def _complete(args: argparse.Namespace) -> int:
    words: list[str] = list(args.words)
    index = min(max(args.index, 0), len(words))
    if index == len(words):
        words.append("")  # the cursor is on a new, empty word
    kind, candidates = complete(words, index)
    print(Kind.FILES.value if kind is Kind.FILES else Kind.WORDS.value)
    for candidate in candidates:
        print(candidate)
    return 0


def complete(words: list[str], index: int) -> tuple[Kind, list[str]]:
    """`words[index]`'s completion: FILES (the shell's own), or WORDS and the candidates."""
    from baton.cli.main import build_parser

    try:
        want = analyse(build_parser(), words, index)
        if want.kind in (Kind.WORDS, Kind.FILES):
            return want.kind, list(want.words)
        if want.kind is Kind.NOTHING:
            return Kind.WORDS, []
        return Kind.WORDS, lookup(want)
    except Exception:  # a completion never prints an error: it completes nothing
        return Kind.WORDS, []


COBRA_DEFAULT = 0
COBRA_NO_FILES = 4
"""Directives of kubectl's (cobra's) completion protocol: the last line, `:<number>`."""


def kubectl_complete(argv: list[str] | None = None) -> int:
    """`kubectl_complete-baton`: completion of `kubectl baton ...`.

    kubectl (1.26 and later) completes a plugin's arguments by running
    `kubectl_complete-baton __complete WORD... CURRENT` and reading cobra's protocol: the
    candidates, one a line, then `:<directive>`."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["__complete"]:
        words = words[1:]
    if not words:
        words = [""]
    kind, candidates = complete(words, len(words) - 1)
    for candidate in candidates:
        if candidate.startswith(words[-1]):  # cobra's programs filter; the shells may not
            print(candidate)
    print(f":{COBRA_DEFAULT if kind is Kind.FILES else COBRA_NO_FILES}")
    return 0


# -- reading the command line -------------------------------------------------------------------


@dataclass(frozen=True)
class Want:
    """What the word at the cursor should complete to, and what the line says about where."""

    kind: Kind
    words: tuple[str, ...] = ()
    run: str | None = None
    """The RUN given on the line (for signals, steps and queries)."""
    target: Target = field(default_factory=lambda: Target(None, None, None))


def analyse(parser: argparse.ArgumentParser, words: Sequence[str], index: int) -> Want:
    """What `words[index]` completes to, from the parser's subcommands and arguments."""
    commands = _subcommands(parser)
    command_at = next(
        (i for i, w in enumerate(words[:index]) if w in commands and not w.startswith("-")), None
    )
    if command_at is None:
        current = words[index]
        if current.startswith("-"):
            return Want(Kind.WORDS, _options(parser))
        return Want(Kind.WORDS, tuple(name for name in commands if not name.startswith("_")))
    command = words[command_at]
    sub = commands[command]
    name = _canonical(parser, command)
    target = _target(words)
    options = {s: a for a in sub._actions for s in a.option_strings}
    previous = words[index - 1] if index - 1 > command_at else ""
    action = options.get(previous)
    if action is not None and action.nargs != 0:
        return _for_argument(name, action, target, _positionals(sub, words, command_at, index))
    current = words[index]
    if current.startswith("-"):
        return Want(Kind.WORDS, _options(sub))
    given = _positionals(sub, words, command_at, index)
    positionals = [a for a in sub._actions if not a.option_strings]
    slot = min(len(given), len(positionals) - 1) if positionals else -1
    if slot < 0:
        return Want(Kind.NOTHING)
    action = positionals[slot]
    if action.nargs not in ("+", "*", argparse.REMAINDER) and len(given) >= len(positionals):
        return Want(Kind.NOTHING)
    return _for_argument(name, action, target, given)


def _for_argument(
    command: str, action: argparse.Action, target: Target, given: Sequence[str]
) -> Want:
    if action.choices is not None:
        return Want(Kind.WORDS, tuple(str(c) for c in action.choices))
    kind = COMPLETERS.get((command, action.dest)) or COMPLETERS.get(("*", action.dest))
    if kind is None:
        kind = Kind.FILES if action.type is Path else Kind.NOTHING
    return Want(kind, run=given[0] if given else None, target=target)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _canonical(parser: argparse.ArgumentParser, command: str) -> str:
    """The command's own name when `command` is an alias (`retry` is `resubmit`)."""
    sub = _subcommands(parser)[command]
    return sub.prog.split()[-1]


def _options(parser: argparse.ArgumentParser) -> tuple[str, ...]:
    return tuple(
        s for a in parser._actions if a.help != argparse.SUPPRESS for s in a.option_strings
    )


def _positionals(
    sub: argparse.ArgumentParser, words: Sequence[str], command_at: int, index: int
) -> list[str]:
    """The positional words between the command and the cursor (option values skipped)."""
    options = {s: a for a in sub._actions for s in a.option_strings}
    given = []
    skip = False
    for word in words[command_at + 1 : index]:
        if skip:
            skip = False
        elif word.startswith("-"):
            action = options.get(word.split("=", 1)[0])
            skip = action is not None and action.nargs != 0 and "=" not in word
        else:
            given.append(word)
    return given


CLUSTER_FLAGS = {
    "-n": "namespace",
    "--namespace": "namespace",
    "--kubeconfig": "kubeconfig",
    "--context": "context",
}


def _target(words: Sequence[str]) -> Target:
    """The cluster flags given anywhere on the line (`-n ns`, `--namespace=ns`)."""
    found: dict[str, str] = {}
    for position, word in enumerate(words):
        flag, equals, inline = word.partition("=")
        if flag not in CLUSTER_FLAGS:
            continue
        following = words[position + 1] if position + 1 < len(words) else ""
        value = inline if equals else following
        if value:
            found[CLUSTER_FLAGS[flag]] = value
    return Target(found.get("kubeconfig"), found.get("context"), found.get("namespace"))


# -- the cluster's names ------------------------------------------------------------------------


def lookup(want: Want) -> list[str]:
    """The candidates `want` asks the cluster (or the kubeconfig) for."""
    if want.kind is Kind.CONTEXTS:
        import os

        from baton.store.kubeconfig import kubeconfig_files, merged_kubeconfig

        files = kubeconfig_files(want.target.kubeconfig, os.environ, Path.home())
        config = merged_kubeconfig(files)
        return sorted(str(c.get("name")) for c in config.get("contexts") or [] if c.get("name"))
    import asyncio

    from baton.cli import cluster

    try:
        return asyncio.run(
            asyncio.wait_for(cluster.names(want.target, want.kind, want.run), LOOKUP_SECONDS)
        )
    except (CommandError, TimeoutError):
        return []


def signal_names(spec: Mapping[str, Any]) -> list[str]:
    """The signals a Workflow spec waits for (`waitForSignal`, at any depth) or handles."""
    names = {
        str(h.get("signal")) for h in spec.get("signalHandlers") or [] if isinstance(h, Mapping)
    }
    names.update(_waited(spec.get("steps") or []))
    names.discard("")
    return sorted(names)


def update_names(spec: Mapping[str, Any]) -> list[str]:
    """The names of a Workflow spec's update handlers."""
    handlers = spec.get("updates") or []
    return sorted({str(h["name"]) for h in handlers if isinstance(h, Mapping) and h.get("name")})


def _waited(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        wait = value.get("waitForSignal")
        if isinstance(wait, Mapping) and wait.get("name"):
            yield str(wait["name"])
        for item in value.values():
            yield from _waited(item)
    elif isinstance(value, list):
        for item in value:
            yield from _waited(item)
