"""A bad stage-cache entry is recomputed; a failed artefact write leaves nothing behind."""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from _core_plugins import toy_registries, write_toy_spec

import harness.stages
from harness.errors import StoreError
from harness.pipeline.context import cached
from harness.runner import RunOptions, run_benchmark
from harness.stages import ArtefactCache, atomic_write
from harness.store import DB_NAME

KEY = "ab" + "0" * 30


def _ctx(root: Path) -> Any:
    return SimpleNamespace(cache=ArtefactCache(root), force=False, forced=set())


class Stage:
    """A stage computation that counts its calls and returns fixed tensors and data."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        self.calls += 1
        return {"x": torch.arange(1000.0)}, {"labels": [1, 2, 3]}


def _halve(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "artefact truncated to half": lambda d: _halve(d / f"{KEY}.pt"),
    "artefact missing": lambda d: (d / f"{KEY}.pt").unlink(),
    "sidecar truncated": lambda d: _halve(d / f"{KEY}.json"),
    "sidecar not JSON": lambda d: (d / f"{KEY}.json").write_bytes(b"\xff\xfe garbage"),
    "sidecar not an object": lambda d: (d / f"{KEY}.json").write_text("[1, 2]"),
    "data truncated": lambda d: _halve(d / f"{KEY}.data.json"),
    "data missing": lambda d: (d / f"{KEY}.data.json").unlink(),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_a_bad_cache_entry_is_recomputed_once_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, corrupt: str
) -> None:
    ctx, stage = _ctx(tmp_path), Stage()
    cached(ctx, KEY, "attributions of e", stage)
    CORRUPTIONS[corrupt](tmp_path / KEY[:2])
    with caplog.at_level(logging.WARNING):
        tensors, data, _ = cached(ctx, KEY, "attributions of e", stage)
    assert stage.calls == 2
    assert torch.equal(tensors["x"], torch.arange(1000.0)) and data == {"labels": [1, 2, 3]}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "attributions of e" in warning and "recomputing" in warning
    assert str(tmp_path / KEY[:2] / KEY) in warning  # names the bad file
    tensors, data, _ = cached(ctx, KEY, "attributions of e", stage)  # repaired: a cache hit
    assert stage.calls == 2 and torch.equal(tensors["x"], torch.arange(1000.0))


def test_an_interrupted_drop_leaves_an_incomplete_stage_not_a_broken_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ArtefactCache(tmp_path)
    cache.save(KEY, tensors={"x": torch.ones(3)}, data=[1], meta={"tensors": True, "data": True})
    real_unlink = Path.unlink

    def unlink_once(self: Path, missing_ok: bool = False) -> None:
        real_unlink(self, missing_ok=missing_ok)
        raise KeyboardInterrupt  # killed right after the first deletion

    monkeypatch.setattr(Path, "unlink", unlink_once)
    with pytest.raises(KeyboardInterrupt):
        cache.drop(KEY)
    monkeypatch.undo()
    assert not cache.has(KEY)


def _enospc_after_half(path: Path) -> None:
    path.write_bytes(b"x" * 1000)
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space"), KeyboardInterrupt()])
def test_atomic_write_removes_its_temporary_file_and_keeps_the_old_one(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "leaderboard.md"
    target.write_text("old\n")

    def write(path: Path) -> None:
        path.write_text("half of the new")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, write)
    assert [p.name for p in tmp_path.iterdir()] == ["leaderboard.md"]
    assert target.read_text() == "old\n"


def test_a_full_disk_while_saving_a_stage_is_a_store_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        harness.stages.torch, "save", lambda obj, f: _enospc_after_half(Path(f.name))
    )
    cache = ArtefactCache(tmp_path)
    with pytest.raises(StoreError) as info:
        cache.save(KEY, tensors={"x": torch.ones(3)}, meta={"tensors": True})
    artefact = tmp_path / KEY[:2] / f"{KEY}.pt"
    assert f"cannot write stage artefact {artefact}: No space left on device" in str(info.value)
    assert list((tmp_path / KEY[:2]).iterdir()) == []  # no sidecar, no temporary file
    assert not cache.has(KEY)


def _values(out: Path) -> list[tuple[str, str, float]]:
    with sqlite3.connect(out / DB_NAME) as conn:
        rows = conn.execute(
            "SELECT metric, status, value FROM results WHERE run_id = "
            "(SELECT MAX(run_id) FROM runs) ORDER BY metric"
        ).fetchall()
    conn.close()
    return [(str(m), str(s), float(v)) for m, s, v in rows]


def test_a_rerun_over_truncated_artefacts_recomputes_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    options = RunOptions(
        spec_path=write_toy_spec(tmp_path, metrics="[toy.mass, toy.accuracy]"),
        output=tmp_path / "out",
        progress=False,
    )
    regs = toy_registries()
    assert run_benchmark(options, regs).ok == 2
    first = _values(tmp_path / "out")
    artefacts = sorted((tmp_path / "out" / ".cache").glob("*/*.pt"))
    assert artefacts
    for path in artefacts:
        _halve(path)
    with caplog.at_level(logging.WARNING):
        summary = run_benchmark(options, regs)
    assert (summary.ok, summary.failed) == (2, 0)
    assert _values(tmp_path / "out") == first
    warned = [r.getMessage() for r in caplog.records if "recomputing" in r.getMessage()]
    assert len(warned) == len(artefacts)


def test_a_full_disk_stops_the_run_without_failing_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        harness.stages.torch, "save", lambda obj, f: _enospc_after_half(Path(f.name))
    )
    out = tmp_path / "out"
    options = RunOptions(
        spec_path=write_toy_spec(tmp_path, metrics="[toy.mass, toy.accuracy]"),
        output=out,
        progress=False,
    )
    with pytest.raises(StoreError, match="No space left on device.*rerun the same command"):
        run_benchmark(options, toy_registries())
    with sqlite3.connect(out / DB_NAME) as conn:
        statuses = conn.execute("SELECT status FROM results").fetchall()
        runs = conn.execute("SELECT status FROM runs").fetchall()
    conn.close()
    assert ("failed",) not in statuses  # nothing blamed on the model or explainer
    assert runs == [("running",)]  # left resumable
    assert not list((out / ".cache").rglob("*.tmp"))
    monkeypatch.undo()
    assert run_benchmark(options, toy_registries()).ok == 2  # the rerun resumes
    assert json.loads((out / "results.json").read_text())
