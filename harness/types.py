"""Shared type aliases."""

from __future__ import annotations

from typing import TypeAlias

SampleId: TypeAlias = str
ParamsHash: TypeAlias = str
StageKey: TypeAlias = str
JSONScalar: TypeAlias = str | int | float | bool | None
