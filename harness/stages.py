"""Stage content keys and the artefact cache.

A stage key is the sha256 of canonical JSON over (stage, plugin name, version,
params hash, upstream keys, seed). Artefacts are ``.pt`` tensor files (loaded
with ``weights_only=True``) or JSON, each with a JSON sidecar written last: a
stage is complete exactly when its sidecar exists, so a run killed at any
moment leaves either a complete artefact or none.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
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


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary file next to ``path``, then rename it to ``path``.

    Readers see the old file or the new one, never half of it; when ``write`` or
    the rename fails (full disk, Ctrl-C) the temporary file is removed and the
    error raised again.
    """
    # unique per process and call: workers on other hosts may share the folder (and a pid)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def prepare_folder(path: Path, option: str) -> None:
    """Create the folder ``path`` (given by ``option``) or raise one StoreError saying why.

    Run up front, so an output or cache folder under a file, on a read-only
    file system or without write permission stops the run before any work.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"{option}: {path}: cannot create the folder ({exc.strerror or exc}) "
            "- expected a writable folder path, got one that cannot be created"
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise StoreError(
            f"{option}: {path}: the folder is not writable - expected a writable folder, "
            "got one without write permission"
        )


def _save_tensors(tensors: Mapping[str, Tensor]) -> Callable[[Path], None]:
    """Return a writer of ``tensors`` (through a Python file, so a full disk raises OSError)."""

    def write(path: Path) -> None:
        with path.open("wb") as f:
            torch.save(dict(tensors), f)

    return write


class ArtefactCache:
    """Content-addressed artefacts under ``root`` (outside the package)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        return self.root / key[:2]

    def _sidecar(self, key: str) -> Path:
        return self._dir(key) / f"{key}.json"

    def _write(self, path: Path, write: Callable[[Path], object]) -> None:
        """Write one file of a stage atomically; an OSError becomes a StoreError naming it."""
        try:
            atomic_write(path, write)
        except OSError as exc:
            raise StoreError(
                f"cannot write stage artefact {path}: {exc.strerror or exc} - expected a "
                f"writable stage cache with free space in {self.root}; free some space (or pass "
                "--cache-dir) and rerun the same command to resume"
            ) from exc

    def has(self, key: str) -> bool:
        """Return True when the stage ``key`` completed earlier."""
        return self._sidecar(key).exists()

    def meta(self, key: str) -> dict[str, Any]:
        """Return the sidecar metadata of a completed stage."""
        path = self._sidecar(key)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
            raise StoreError(f"{path}: unreadable stage sidecar: {exc}") from exc
        if not isinstance(data, dict):
            raise StoreError(
                f"{path}: unreadable stage sidecar - expected a JSON object, got {type(data).__name__}"
            )
        return data

    def save(
        self,
        key: str,
        *,
        tensors: Mapping[str, Tensor] | None = None,
        data: Any = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Store tensors and/or JSON data for ``key``; the sidecar is written last.

        Raises
        ------
        StoreError
            When a file cannot be written (full disk, no permission); nothing partial is left.
        """
        folder = self._dir(key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{folder}: cannot create the stage cache folder: {exc.strerror or exc}"
            ) from exc
        if tensors is not None:
            cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            self._write(folder / f"{key}.pt", _save_tensors(cpu))
        if data is not None:
            text = canonical_json(data)
            self._write(folder / f"{key}.data.json", lambda p: p.write_text(text))
        side = canonical_json({"key": key, **dict(meta or {})})
        self._write(self._sidecar(key), lambda p: p.write_text(side))

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
        except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
            raise StoreError(f"{path}: cannot load cached data: {exc}") from exc

    def drop(self, key: str) -> None:
        """Forget a stage (``--force``, or an entry that cannot be read).

        The sidecar goes first: a stage is complete exactly when its sidecar exists,
        so a drop interrupted half-way leaves an incomplete stage, never a broken one.
        """
        self._sidecar(key).unlink(missing_ok=True)
        for path in self._dir(key).glob(f"{key}.*"):
            path.unlink(missing_ok=True)
