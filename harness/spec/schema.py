"""Frozen dataclasses describing a validated benchmark spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TARGET_POLICIES: tuple[str, ...] = ("label", "predicted", "positive", "top_k")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class PluginSpec:
    """One plugin entry: registered name, parameters and the label shown in tables.

    ``label`` defaults to the name; give one to run a plugin twice with
    different parameters.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def key(self) -> str:
        """The name under which results are stored and shown."""
        return self.label or self.name


@dataclass(frozen=True)
class ExplainSpec:
    """Which rows get explained.

    ``split`` and ``n`` choose the samples (a seeded subset); ``targets`` says
    which output to explain: the true ``label`` (multi-class), the
    ``predicted`` class, every ``positive`` label (multi-label) or the
    ``top_k`` predicted labels (paper 003 explains the top 3).
    """

    split: str = "test"
    n: int = 32
    targets: str = "label"
    k: int = 3
    batch_size: int = 16


@dataclass(frozen=True)
class BootstrapSpec:
    """Bootstrap confidence interval settings."""

    n: int = 1000
    confidence: float = 0.95


@dataclass(frozen=True)
class Spec:
    """A validated benchmark spec."""

    file: str
    benchmark: str
    version: int
    seed: int
    device: str
    datasets: tuple[PluginSpec, ...]
    models: tuple[PluginSpec, ...]
    explainers: tuple[PluginSpec, ...]
    metrics: tuple[PluginSpec, ...]
    explain: ExplainSpec = ExplainSpec()
    bootstrap: BootstrapSpec = BootstrapSpec()
    spec_hash: str = ""
