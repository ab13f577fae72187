"""The `synchronization` field: a mutex or a semaphore slot a step, or a whole run, holds.

A step (any kind) or a Workflow's spec (the whole run) may declare one lock:

    synchronization: {mutex: "account-${{ input.id }}"}
    synchronization: {semaphore: {name: deploys, limit: 2}}
    synchronization: {semaphore: {name: deploys, configMapKeyRef: {name: limits, key: deploys}}}

Names are templates rendered when the step (or the run) starts. Locks live in the run's own
namespace, unless `namespace` names another one: a lock kept there, which the run may use only
when that namespace consents (its ConfigMap `baton-shared-locks`, see docs/language.md,
"Mutexes and semaphores", "Across namespaces"). The state of a lock is an object in the Kubernetes
API (`baton.store.locks`), never the operator's memory.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from baton.api.names import LABEL_MAX, LABEL_PATTERN, ObjectName

MAX_LOCK_NAME_LENGTH = 253
"""Characters of a rendered lock name; the lock object's name is derived from it (hashed)."""
MAX_SEMAPHORE_LIMIT = 10_000
"""Largest semaphore limit: the holders are listed in one object."""
SHARED_LOCKS_CONFIG_MAP = "baton-shared-locks"
"""The ConfigMap by which a namespace lets runs of other namespaces use its locks: each key is
a namespace allowed, its value the lock names allowed (`*`, or names and `prefix*`, one a line
or comma-separated)."""

LockName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="The lock's name, which may interpolate `${{ }}` (rendered when the step "
        f"starts, at most {MAX_LOCK_NAME_LENGTH} characters once rendered).",
    ),
]


class LockKind(StrEnum):
    """What a lock is: one holder at a time, or up to a limit."""

    MUTEX = "mutex"
    SEMAPHORE = "semaphore"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConfigMapKeyRef(_Model):
    """A key of a ConfigMap in the run's own namespace."""

    name: ObjectName = Field(description="Name of a ConfigMap in the run's namespace.")
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key in the ConfigMap's data; its value is the limit (a whole number).",
    )


class Semaphore(_Model):
    """A slot of a named semaphore: at most `limit` holders at once."""

    name: LockName
    limit: int | None = Field(
        None,
        ge=1,
        le=MAX_SEMAPHORE_LIMIT,
        description="Holders at once (give this or configMapKeyRef).",
    )
    config_map_key_ref: ConfigMapKeyRef | None = Field(
        None,
        alias="configMapKeyRef",
        description="Read the limit live from a ConfigMap key, so operators can change it.",
    )

    @model_validator(mode="after")
    def _one_limit(self) -> Semaphore:
        if (self.limit is None) == (self.config_map_key_ref is None):
            raise ValueError(
                "semaphore: give exactly one of limit (a number) or configMapKeyRef "
                "({name, key} of a ConfigMap holding the limit)"
            )
        return self


class Synchronization(_Model):
    """A lock held while the step (or the run) goes on: a mutex or a semaphore slot."""

    mutex: LockName | None = Field(None, description="Name of a mutex: one holder at a time.")
    semaphore: Semaphore | None = Field(None, description="A slot of a semaphore.")
    namespace: str | None = Field(
        None,
        min_length=1,
        max_length=LABEL_MAX,
        pattern=LABEL_PATTERN,
        description="Namespace keeping the lock, when not the run's own: allowed only if that "
        f"namespace lists the run's in its ConfigMap {SHARED_LOCKS_CONFIG_MAP}.",
    )

    @model_validator(mode="after")
    def _one_lock(self) -> Synchronization:
        if (self.mutex is None) == (self.semaphore is None):
            raise ValueError(
                'synchronization: give exactly one of mutex ("name") or semaphore ({name, limit})'
            )
        return self

    @property
    def kind(self) -> LockKind:
        """Mutex or semaphore."""
        return LockKind.MUTEX if self.mutex is not None else LockKind.SEMAPHORE


class LockStatus(_Model):
    """A lock a step (or the run, under `(run)`) asked for, in `.status.locks`."""

    kind: LockKind = Field(description="mutex or semaphore.")
    name: str = Field(description="The lock's name, as rendered.")
    requested_at: str = Field(alias="requestedAt", description="RFC 3339 time it was asked for.")
    granted_at: str | None = Field(
        None, alias="grantedAt", description="RFC 3339 time it was granted; unset while waiting."
    )
    limit: int | None = Field(None, description="Semaphores: the limit written in the step.")
    config_map_key_ref: ConfigMapKeyRef | None = Field(
        None, alias="configMapKeyRef", description="Semaphores: where the limit is read."
    )
    held_by: list[str] | None = Field(
        None, alias="heldBy", description="While waiting: the runs holding it."
    )
    problem: str | None = Field(
        None, description="Why no one new can take it (a limit that cannot be read)."
    )
    namespace: str | None = Field(
        None, description="Namespace keeping the lock, when not the run's own."
    )
    entered: bool | None = Field(None, description="Internal: the holder went past its wait.")
    message: str = Field("", description="`waiting for mutex X held by run Y`, or `holds mutex X`.")
