"""Entry-point module: lazy targets, so discovery imports nothing heavy."""

from __future__ import annotations

from collections.abc import Mapping

import harness


@harness.hookimpl
def harness_datasets() -> Mapping[str, str]:
    """Register the checkerboard dataset."""
    return {"thirdparty.checkerboard": "harness_thirdparty.checkerboard:Checkerboard"}


@harness.hookimpl
def harness_explainers() -> Mapping[str, str]:
    """Register the gradient-norm explainer."""
    return {"thirdparty.gradient_norm": "harness_thirdparty.gradient_norm:GradientNorm"}


@harness.hookimpl
def harness_metrics() -> Mapping[str, str]:
    """Register the mass-in-mask metric."""
    return {"thirdparty.mass_in_mask": "harness_thirdparty.mass_in_mask:MassInMask"}
