"""Kubernetes object names: the rules, and the field types that carry them.

A name that reaches an API path decides which object the operator reads or writes, with the
operator's rights, not the user's. Every such name is checked here twice: in the CRD schema, so
the API server refuses a bad one when it is applied, and again in `baton.store.kube.path_of`,
the one function that builds API paths, so a name that a template produced at run time, or that
came from anywhere else, cannot climb out of its namespace (`../../kube-system/secrets/x`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

SUBDOMAIN_MAX = 253
LABEL_MAX = 63

SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""RFC 1123 subdomain: the rule for the names of Secrets, ConfigMaps, Jobs, Workflows, runs."""
LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""RFC 1123 label: the rule for namespace names (and Services)."""

TEMPLATED_SUBDOMAIN_PATTERN = r"^([a-z0-9.-]|\$\{\{.*\}\})+$"
"""A subdomain, or a template that renders to one: checked again once rendered."""


class InvalidNameError(ValueError):
    """A name that is not a valid Kubernetes object name; the message names the rule."""


@dataclass(frozen=True)
class NameRule:
    """One of Kubernetes' name rules, checked with a message that says what it allows."""

    pattern: re.Pattern[str]
    limit: int
    kind: str
    punctuation: str

    def check(self, value: str, what: str) -> str:
        """`value` when it follows the rule; InvalidNameError naming `what` otherwise."""
        if len(value) > self.limit or not self.pattern.match(value):
            raise InvalidNameError(
                f"{what} {value[:80]!r} is not a valid {self.kind}: at most {self.limit} "
                f"lowercase letters, digits and {self.punctuation}, starting and ending with a "
                "letter or digit"
            )
        return value


SUBDOMAIN = NameRule(re.compile(SUBDOMAIN_PATTERN), SUBDOMAIN_MAX, "Kubernetes name", "'-' and '.'")
LABEL = NameRule(re.compile(LABEL_PATTERN), LABEL_MAX, "namespace name", "'-'")


def check_subdomain(value: str, what: str) -> str:
    """`value` when it is a valid object name; InvalidNameError naming `what` otherwise."""
    return SUBDOMAIN.check(value, what)


def check_label(value: str, what: str) -> str:
    """`value` when it is a valid RFC 1123 label (a namespace name); InvalidNameError else."""
    return LABEL.check(value, what)


ObjectName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=SUBDOMAIN_MAX,
        pattern=SUBDOMAIN_PATTERN,
        description="A Kubernetes object name in the run's namespace: lowercase letters, "
        "digits, '-' and '.'.",
    ),
]

TemplatedObjectName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        pattern=TEMPLATED_SUBDOMAIN_PATTERN,
        description="A Kubernetes object name in the run's namespace (lowercase letters, "
        "digits, '-' and '.'), which may interpolate `${{ }}`; the rendered name is checked "
        "before use.",
    ),
]
