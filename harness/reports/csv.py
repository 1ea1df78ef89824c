"""``leaderboard.csv``: one row per cell, flat."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.reports.tables import RECORD_COLUMNS
from harness.stages import atomic_write


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as CSV (nested fields as JSON strings)."""
    flat = frame[RECORD_COLUMNS].copy()
    for col in ("notes", "plugins"):
        flat[col] = flat[col].map(lambda d: "" if not d else json.dumps(d, sort_keys=True))
    atomic_write(path, lambda p: flat.to_csv(p, index=False, float_format="%.6g"))
    return path
