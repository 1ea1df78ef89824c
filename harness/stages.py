"""Stage content keys and the artefact cache.

A stage key is the sha256 of canonical JSON over (stage, plugin name, version,
params hash, upstream keys, seed). Artefacts are ``.pt`` tensor files (loaded
with ``weights_only=True``) or JSON, each with a JSON sidecar written last: a
stage is complete exactly when its sidecar exists, so a run killed at any
moment leaves either a complete artefact or none.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harness.contracts.component import Component, canonical_json, sha256_of
from harness.errors import StoreError

log = logging.getLogger(__name__)


def stage_key(
    stage: str,
    plugin: Component | None,
    upstream: Sequence[str] = (),
    seed: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Return the content key of a stage."""
    content = {
        "stage": stage,
        "plugin": None
        if plugin is None
        else {"name": plugin.name, "version": plugin.version, "params": plugin.params_hash()},
        "upstream": list(upstream),
        "seed": seed,
        "extra": dict(extra or {}),
    }
    return sha256_of(content)[:32]


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


class ArtefactCache:
    """Content-addressed artefacts under ``root`` (outside the package)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        return self.root / key[:2]

    def _sidecar(self, key: str) -> Path:
        return self._dir(key) / f"{key}.json"

    def has(self, key: str) -> bool:
        """Return True when the stage ``key`` completed earlier."""
        return self._sidecar(key).exists()

    def meta(self, key: str) -> dict[str, Any]:
        """Return the sidecar metadata of a completed stage."""
        try:
            data: dict[str, Any] = json.loads(self._sidecar(key).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{self._sidecar(key)}: unreadable stage sidecar: {exc}") from exc
        return data

    def save(
        self,
        key: str,
        *,
        tensors: Mapping[str, Tensor] | None = None,
        data: Any = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Store tensors and/or JSON data for ``key``; the sidecar is written last."""
        folder = self._dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        if tensors is not None:
            cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            _atomic_write(folder / f"{key}.pt", lambda p: torch.save(cpu, p))
        if data is not None:
            text = canonical_json(data)
            _atomic_write(folder / f"{key}.data.json", lambda p: p.write_text(text))
        side = canonical_json({"key": key, **dict(meta or {})})
        _atomic_write(self._sidecar(key), lambda p: p.write_text(side))

    def load_tensors(self, key: str) -> dict[str, Tensor]:
        """Load the tensors of a completed stage (weights_only, never pickle)."""
        path = self._dir(key) / f"{key}.pt"
        try:
            out: dict[str, Tensor] = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise StoreError(f"{path}: cannot load cached tensors: {exc}") from exc
        return out

    def load_data(self, key: str) -> Any:
        """Load the JSON data of a completed stage."""
        path = self._dir(key) / f"{key}.data.json"
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path}: cannot load cached data: {exc}") from exc

    def drop(self, key: str) -> None:
        """Forget a stage (``--force``)."""
        for path in self._dir(key).glob(f"{key}*"):
            path.unlink(missing_ok=True)
