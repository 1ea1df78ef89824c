"""Test against the installed distribution, or the source tree when it is not installed.

Equivalent to pytest's ``pythonpath = ["."]`` for runs started from another
root (the harness repository collects these tests too).
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

if importlib.util.find_spec("harness_thirdparty") is None:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
