"""The Secrets a run may use, and the one way the operator reads them.

The operator reads Secrets with its own rights, on behalf of whoever created the run, who may
not be allowed to read them. So a Secret is usable by runs only when someone who can write it
said so, by labelling it `baton.dev/workflow-secret=true`; and only in the run's own namespace
(the name is checked by `path_of`, so no reference leaves it). Without the label, a run that
names the Secret fails with `SecretNotAllowed` (not retried: the label is a decision, not a
delay), and the Secret's content never reaches the operator's memory beyond that check.

HTTP headers read the value here; Job env vars stay `secretKeyRef`s for the kubelet, but the
Job is created only after the same check, since the kubelet would resolve any Secret of the
namespace.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from baton.api.labels import WORKFLOW_SECRET
from baton.api.names import InvalidNameError
from baton.executors.attempts import ActivityError
from baton.store.kube import ApiError, Kube, core_path


async def opted_in_secret(
    kube: Kube, namespace: str, name: str, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Secret `name` of `namespace` when it exists and is opted in (whole-Secret uses: a
    pool's `envFrom` and volumes); ActivityError otherwise."""
    details = dict(details or {"secret": name})
    try:
        path = core_path("secrets", namespace, name)
    except InvalidNameError as exc:
        raise ActivityError(
            "InvalidName", f"secretKeyRef: {exc}", details, non_retryable=True
        ) from None
    try:
        secret = await kube.get(path)
    except ApiError as exc:
        raise ActivityError(
            "SecretUnavailable",
            f"cannot read secret {namespace}/{name}: {exc.status} {exc.reason}",
            {**details, "status": exc.status},
        ) from None
    if secret is None:
        raise ActivityError("SecretUnavailable", f"secret {namespace}/{name} not found", details)
    labels = (secret.get("metadata") or {}).get("labels") or {}
    if labels.get(WORKFLOW_SECRET) != "true":
        raise ActivityError(
            "SecretNotAllowed",
            f"secret {namespace}/{name} is not open to workflow runs: whoever owns it can allow "
            f"it with `kubectl label secret {name} -n {namespace} {WORKFLOW_SECRET}=true`",
            details,
            non_retryable=True,
        )
    return secret


async def usable_secret(kube: Kube, namespace: str, ref: Any) -> tuple[str, str, str]:
    """Check that Secret `ref` (`{name, key}`) of `namespace` exists, is opted in and has the
    key; its (name, key, base64 value). ActivityError otherwise."""
    name = str(ref.get("name", "")) if isinstance(ref, Mapping) else ""
    key = str(ref.get("key", "")) if isinstance(ref, Mapping) else ""
    details = {"secret": name, "key": key}
    secret = await opted_in_secret(kube, namespace, name, details)
    encoded = (secret.get("data") or {}).get(key)
    if not isinstance(encoded, str):
        raise ActivityError(
            "SecretUnavailable", f"secret {namespace}/{name} has no key {key!r}", details
        )
    return name, key, encoded


async def secret_text(kube: Kube, namespace: str, ref: Any) -> str:
    """The value of a usable Secret's key as text fit for an HTTP header; read now and never
    stored."""
    name, key, encoded = await usable_secret(kube, namespace, ref)
    details = {"secret": name, "key": key}
    try:
        value = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ActivityError(
            "SecretUnavailable",
            f"key {key!r} of secret {namespace}/{name} is not UTF-8 text",
            details,
        ) from None
    if any(c in value for c in "\r\n\0"):
        raise ActivityError(
            "SecretUnavailable",
            f"key {key!r} of secret {namespace}/{name} holds a line break or NUL, which a "
            "header cannot carry (a trailing newline? create it with --from-literal)",
            details,
        )
    return value
