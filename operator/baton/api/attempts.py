"""The names of what one attempt of a step creates in Kubernetes: a Job, or a child run (and,
by the same rule, a step's memoization cache: `memo_name`); and the name of the object holding
a mutex or semaphore (`lock_object_name`).

One function for both, so a Job and a child run of the same attempt follow one rule. A name is
the run's name and the step key (for people reading `kubectl get`), cut to fit, then a hash of
the run's **uid** and the exact key, then the attempt:

    order-charge-card-5f0c2a91d3-1
    <run name + key, cut>-<sha256(uid/key), 10 hex>-<attempt>

Why the uid and not the name: the readable part is cut at 63 characters, so two runs whose names
differ only past the cut shared their children's and Jobs' names while the hash covered the key
alone, and a recursive workflow's tenth level, its parent's name cut to the same prefix, got its
parent's own name and waited on itself forever. A uid is unique to one object for the life of
the cluster: a run and its namesake recreated later, two near-equal names, and every level of a
recursion each get names of their own. 63 characters keeps a Job's name a valid label value (its
pods carry it as `job-name`) and a child run's name short enough for the objects named after it.
"""

from __future__ import annotations

import hashlib
import re

NAME_LIMIT = 63
"""Longest name made here: a Job's name becomes its pods' `job-name` label value."""
DIGEST_CHARS = 10
"""Hex characters of the hash: 40 bits, so among a million attempts of one namespace the chance
of any two sharing a name is below one in a million (a birthday bound of n²/2⁴¹)."""

_NOT_IN_NAME = re.compile(r"[^a-z0-9]+")
_NOT_AN_END = "-."


def attempt_name(run_name: str, run_uid: str, key: str, attempt: int) -> str:
    """The deterministic name of the Job or child run of `key`'s `attempt` in run `run_uid`.

    A valid Kubernetes object name of at most 63 characters, whatever `run_name` and `key` hold
    (a key is a step path like `items[3].charge-card` or `pay/compensate`)."""
    slug = _NOT_IN_NAME.sub("-", key.lower()).strip("-")
    digest = hashlib.sha256(f"{run_uid}/{key}".encode()).hexdigest()[:DIGEST_CHARS]
    tail = f"{digest}-{attempt}"
    head = "-".join(part for part in (run_name.lower(), slug) if part)
    head = head[: NAME_LIMIT - len(tail) - 1].rstrip(_NOT_AN_END)
    return f"{head}-{tail}" if head else tail


def legacy_attempt_name(run_name: str, key: str, attempt: int) -> str:
    """The name the rule before this one gave (`<run>-<key>-<attempt>`, a hash of the key alone
    when the key had to be changed or the name cut). Nothing is named by it any more: it words
    the `ChildFailed` message of a child whose end was recorded before ends carried the child's
    name, so a history recorded then replays to the very status it was recorded with."""
    slug = _NOT_IN_NAME.sub("-", key.lower()).strip("-")
    tail = f"-{attempt}"
    name = f"{run_name}-{slug}{tail}"
    if slug == key and len(name) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    tail = f"-{digest}{tail}"
    head = f"{run_name}-{slug}"[: NAME_LIMIT - len(tail)].rstrip("-")
    return f"{head}{tail}"


LOCK_DIGEST_CHARS = 16
"""Hex characters of a lock object's hash: 64 bits. Two lock names sharing one object would
make them one lock (each would wait for the other's holders), so the margin is wider than an
attempt's; the object also records the name it is for, and the store refuses a mismatch."""


def lock_object_name(kind: str, name: str) -> str:
    """The name of the ConfigMap holding the lock `name` of `kind` (mutex, semaphore) in a
    namespace: `baton-<kind>-<readable name, cut>-<sha256(kind/name), 16 hex>`. Any lock name
    (up to 253 characters of anything) gives a valid object name, and the same name always the
    same object, so every run and every operator restart finds the lock's one object."""
    slug = _NOT_IN_NAME.sub("-", name.lower()).strip("-")
    digest = hashlib.sha256(f"{kind}/{name}".encode()).hexdigest()[:LOCK_DIGEST_CHARS]
    head = f"baton-{kind}-{slug}"[: NAME_LIMIT - LOCK_DIGEST_CHARS - 1].rstrip(_NOT_AN_END)
    return f"{head}-{digest}"


def memo_name(workflow_name: str, workflow_uid: str, step: str) -> str:
    """The name of the ConfigMap holding the memoization cache of `step` in the Workflow
    `workflow_uid`: the same rule as an attempt's, with `memo` in place of the attempt. The
    Workflow's uid, not its name, makes the hash: a Workflow deleted and applied again gets a
    new, empty cache even before the garbage collector removed the old one. At most 66
    characters (a ConfigMap's name may have 253)."""
    return attempt_name(workflow_name, workflow_uid, step, 0).removesuffix("-0") + "-memo"
