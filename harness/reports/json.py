"""``results.json``: a list of result records."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.reports.tables import records
from harness.stages import atomic_write


def write_json(frame: pd.DataFrame, path: Path) -> Path:
    """Write the records of ``frame`` as a JSON list."""
    text = json.dumps(records(frame), indent=1, sort_keys=True, default=str) + "\n"
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path
