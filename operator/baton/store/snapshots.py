"""Owned ConfigMaps that hold JSON for a run: its definition snapshot and its large outputs.

Definition snapshot. A run copies the Workflow spec it starts with into `<run>-definition`, so
editing or deleting the Workflow never changes a run in flight; the run's status points at it.

Output offload. An output whose JSON exceeds the threshold leaves the status for a ConfigMap
named after its content hash (`<run>-out-<sha>`), and the status keeps `{"$ref": name}` in its
place. Content addressing makes the write idempotent (a retry after a crash writes the same
object) and shares one ConfigMap between the places that hold the same output. Both are owned by
the run, so deleting the run deletes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from baton.executors.base import RunRef
from baton.failpoints import failpoint
from baton.store.kube import Kube, core_path
from baton.store.objects import belongs_to, create_config_map, owned_config_map

REF = "$ref"
OUTPUT_KEYS = frozenset({"output", "stepOutput"})
"""Keys of status objects whose values are step or run outputs (and may be offloaded)."""


def compact_json(value: Any) -> str:
    """The canonical JSON text Baton stores."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class Snapshots:
    """Reads and writes a run's JSON ConfigMaps."""

    def __init__(
        self, kube: Kube, run: RunRef, owner: Mapping[str, Any], labels: Mapping[str, str]
    ) -> None:
        self._kube = kube
        self._run = run
        self._owner = dict(owner)
        self._labels = dict(labels)
        self._known: dict[str, Any] = {}
        """Offloaded outputs already written or read, by ConfigMap name."""

    @property
    def definition_name(self) -> str:
        """Name of the definition snapshot ConfigMap."""
        return f"{self._run.name}-definition"

    async def save_definition(self, spec: Mapping[str, Any]) -> str:
        """Store the definition snapshot (idempotent: an existing one is kept as it is)."""
        await self._put(self.definition_name, "definition", compact_json(spec))
        return self.definition_name

    async def load_definition(self, name: str) -> dict[str, Any] | None:
        """The stored definition, or None when the snapshot is missing."""
        value = await self._get(name)
        return value if isinstance(value, dict) else None

    async def offload(self, status: Mapping[str, Any], threshold: int) -> dict[str, Any]:
        """`status` with every output larger than `threshold` bytes replaced by a reference,
        after writing it to its ConfigMap."""
        result = await self._offload(status, threshold)
        assert isinstance(result, dict)
        return result

    async def inline(self, status: Mapping[str, Any]) -> dict[str, Any]:
        """Inverse of `offload`: references replaced by the outputs they point at."""
        result = await self._inline(status)
        assert isinstance(result, dict)
        return result

    async def _offload(self, node: Any, threshold: int) -> Any:
        if isinstance(node, Mapping):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key in OUTPUT_KEYS and value is not None:
                    text = compact_json(value)
                    if len(text.encode()) > threshold:
                        out[key] = {REF: await self._store_output(text, value)}
                        continue
                out[key] = await self._offload(value, threshold)
            return out
        if isinstance(node, list):
            return [await self._offload(v, threshold) for v in node]
        return node

    async def _inline(self, node: Any) -> Any:
        if isinstance(node, Mapping):
            if set(node) == {REF}:
                return await self._load_output(str(node[REF]))
            return {k: await self._inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [await self._inline(v) for v in node]
        return node

    async def _store_output(self, text: str, value: Any) -> str:
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        name = f"{self._run.name}-out-{digest}"
        if name not in self._known:
            await self._put(name, "output", text)
            failpoint("after-output-offload")
            self._known[name] = value
        return name

    async def _load_output(self, name: str) -> Any:
        if name not in self._known:
            value = await self._get(name)
            if value is None:
                raise LookupError(f"offloaded output {name} is missing")
            self._known[name] = value
        return self._known[name]

    async def _put(self, name: str, part: str, text: str) -> None:
        body = owned_config_map(
            self._run,
            self._owner,
            self._labels,
            name=name,
            part=part,
            data={"json": text},
            immutable=True,
        )
        # Already there when written before a crash: same name, same content.
        await create_config_map(self._kube, self._run, body)

    async def _get(self, name: str) -> Any:
        config_map = await self._kube.get(core_path("configmaps", self._run.namespace, name))
        if config_map is None or not belongs_to(config_map, self._run):
            return None
        return json.loads((config_map.get("data") or {}).get("json", "null"))
