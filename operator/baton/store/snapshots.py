"""Owned ConfigMaps that hold JSON for a run: its definition snapshot and its large outputs.

Definition snapshot. A run copies the Workflow spec it starts with, so editing or deleting the
Workflow never changes a run in flight; the run's status points at it (`status.definition`).
It travels in the create of the run's first history chunk (`<run>-history-0`, data key
`definition`, see baton.store.history), so a run's start is one write; runs started by earlier
versions, and definitions too large to share a chunk with a batch, have `<run>-definition`
(data key `json`). Both forms carry the same seal and are read alike.

Output offload. An output whose JSON exceeds the threshold leaves the status for a ConfigMap
named after its content hash (`<run>-out-<sha>`), and the status keeps `{"$ref": name}` in its
place. Content addressing makes the write idempotent (a retry after a crash writes the same
object) and shares one ConfigMap between the places that hold the same output. Both are owned by
the run, so deleting the run deletes them.

Integrity. The definition snapshot carries `baton.dev/mac`, an HMAC under the operator's history
key of the run's uid and the snapshot's text, and an offloaded output must hash to the name it
is stored under: a definition or output replaced by someone who can edit ConfigMaps in the
namespace is refused (`SnapshotTamperedError`) instead of being run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from baton.failpoints import failpoint
from baton.store.history import DEFINITION, HistoryCorruptError
from baton.store.kube import Kube, core_path
from baton.store.objects import belongs_to, create_config_map, owned_config_map
from baton.store.ref import RunRef
from baton.store.startup import ConfigMapIndex

REF = "$ref"
MAC_ANNOTATION = "baton.dev/mac"
GENERATION_ANNOTATION = "baton.dev/workflow-generation"
_DEFINITION_CONTEXT = b"baton-definition-v1"
OUTPUT_KEYS = frozenset({"output", "stepOutput"})
"""Keys of status objects whose values are step or run outputs (and may be offloaded)."""


def compact_json(value: Any) -> str:
    """The canonical JSON text Baton stores (UTF-8, not `\\u` escapes: a ConfigMap holds
    bytes, and escapes would triple a non-ASCII text)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class SnapshotLostError(HistoryCorruptError):
    """The definition snapshot or an offloaded output the status points at is gone."""

    reason = "SnapshotLost"


class SnapshotTamperedError(HistoryCorruptError):
    """The definition snapshot or an offloaded output is not what Baton stored."""

    reason = "SnapshotTampered"


class Snapshots:
    """Reads and writes a run's JSON ConfigMaps."""

    def __init__(
        self,
        kube: Kube,
        run: RunRef,
        owner: Mapping[str, Any],
        labels: Mapping[str, str],
        *,
        key: bytes = b"",
        index: ConfigMapIndex | None = None,
    ) -> None:
        self._key = key
        self._kube = kube
        self._index = index
        """Where the definition is read from while the operator starts (baton.store.startup)."""
        self._run = run
        self._owner = dict(owner)
        self._labels = dict(labels)
        self._known: dict[str, Any] = {}
        """Offloaded outputs already written or read, by ConfigMap name."""

    @property
    def definition_name(self) -> str:
        """Name of the definition snapshot's own ConfigMap (the earlier form, and a large
        definition's)."""
        return f"{self._run.name}-definition"

    def seal_definition(
        self, spec: Mapping[str, Any], generation: int
    ) -> tuple[str, dict[str, str]]:
        """The snapshot's text of `spec`, taken from generation `generation` of its Workflow,
        and the annotations that seal it."""
        text = compact_json(spec)
        return text, {
            GENERATION_ANNOTATION: str(generation),
            MAC_ANNOTATION: self._definition_mac(text, generation),
        }

    async def save_definition(self, spec: Mapping[str, Any], generation: int = 0) -> str:
        """Store the definition snapshot in its own ConfigMap (idempotent: an existing one is
        kept as it is); its name."""
        text, annotations = self.seal_definition(spec, generation)
        await self._put(self.definition_name, "definition", text, annotations=annotations)
        return self.definition_name

    async def load_definition(
        self, name: str, *, verify: bool = True, config_map: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], int] | None:
        """The definition stored in ConfigMap `name` (its own, or the run's first history
        chunk) and the Workflow generation it was taken from, or None when the snapshot is
        missing; SnapshotTamperedError when it is not the one Baton stored for this run.
        `config_map` is that ConfigMap when the caller read it already. `verify=False` skips
        the seal (readers without the operator's key, such as `baton describe`, which only
        display it)."""
        if config_map is not None:
            pass
        elif self._index is not None:
            config_map = await self._index.read(self._run.namespace, name)
        else:
            config_map = await self._kube.get(core_path("configmaps", self._run.namespace, name))
        if config_map is None or not belongs_to(config_map, self._run):
            return None
        data = config_map.get("data") or {}
        if name == self.definition_name:
            text = str(data.get("json", "null"))
        elif DEFINITION in data:
            text = str(data[DEFINITION])
        else:
            return None  # a first chunk written without one (the run's snapshot is its own)
        annotations = config_map["metadata"].get("annotations") or {}
        generation = str(annotations.get(GENERATION_ANNOTATION, ""))
        mac = str(annotations.get(MAC_ANNOTATION) or "")
        if not generation.isdigit() or (
            verify and not hmac.compare_digest(mac, self._definition_mac(text, int(generation)))
        ):
            raise SnapshotTamperedError(
                f"definition snapshot ConfigMap {name!r} does not verify: it was not written by "
                "Baton for this run, or was replaced since"
            )
        value = json.loads(text)
        if not isinstance(value, dict):
            raise SnapshotTamperedError(f"definition snapshot ConfigMap {name!r} is not a spec")
        return value, int(generation)

    def _definition_mac(self, text: str, generation: int) -> str:
        message = b"\n".join(
            [_DEFINITION_CONTEXT, self._run.uid.encode(), str(generation).encode(), text.encode()]
        )
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

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
            config_map = await self._kube.get(core_path("configmaps", self._run.namespace, name))
            text = ((config_map or {}).get("data") or {}).get("json")
            if config_map is None or not belongs_to(config_map, self._run) or text is None:
                raise SnapshotLostError(f"offloaded output ConfigMap {name!r} is gone")
            digest = hashlib.sha256(str(text).encode()).hexdigest()[:16]
            if not name.endswith(f"-out-{digest}"):
                raise SnapshotTamperedError(f"offloaded output ConfigMap {name!r} was changed")
            self._known[name] = json.loads(text)
        return self._known[name]

    async def _put(
        self, name: str, part: str, text: str, annotations: Mapping[str, str] | None = None
    ) -> None:
        body = owned_config_map(
            self._run,
            self._owner,
            self._labels,
            name=name,
            part=part,
            data={"json": text},
            annotations=annotations,
            immutable=True,
        )
        # Already there when written before a crash: same name, same content.
        await create_config_map(self._kube, self._run, body)
