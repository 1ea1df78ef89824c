"""Integrated Gradients through Captum."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model, Need
from harness_builtins.explainers._common import (
    BASELINES,
    baseline_images,
    captum_forward,
    check_choice,
    check_positive,
    images_of,
)


class IntegratedGradients(Explainer):
    """Path integral of the gradient from a baseline to the input, times their difference.

    Captum's ``IntegratedGradients`` with a Gauss-Legendre rule; attributions of
    a row sum to approximately ``f(x) - f(baseline)`` for the explained logit
    (completeness). Interpolated images run in chunks of ``internal_batch_size``
    rows, each a single forward and backward pass.

    Parameters
    ----------
    n_steps : int, default=32
        Points of the integration rule.
    internal_batch_size : int, default=64
        Rows (images x steps) per forward pass; bounds memory.
    baseline : {"zero", "mean", "min"}, default="zero"
        Start of the path: zeros, or each image's mean or minimum.

    References
    ----------
    M. Sundararajan, A. Taly and Q. Yan, "Axiomatic Attribution for Deep
    Networks", ICML 2017.
    """

    name: ClassVar[str] = "captum.integrated_gradients"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Sundararajan, Taly and Yan, Axiomatic Attribution for Deep Networks, ICML 2017"
    )
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        needs=frozenset({Need.GRADIENTS}),
        deterministic=True,
    )
    execution_params: ClassVar[frozenset[str]] = frozenset({"internal_batch_size"})

    def __init__(
        self, *, n_steps: int = 32, internal_batch_size: int = 64, baseline: str = "zero"
    ) -> None:
        self.n_steps = n_steps
        self.internal_batch_size = internal_batch_size
        self.baseline = baseline

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[IntegratedGradients]:
        """Return small instances for the conformance kit."""
        return [cls(n_steps=4, internal_batch_size=16), cls(n_steps=4, baseline="mean")]

    def check_params(self) -> None:
        """Check the step count, batch size and baseline."""
        check_positive(self.name, "n_steps", self.n_steps)
        check_positive(self.name, "internal_batch_size", self.internal_batch_size)
        check_choice(self.name, "baseline", self.baseline, BASELINES)

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        from captum.attr import IntegratedGradients as CaptumIG

        images = images_of(batch, self.name).detach()
        forward, rows = captum_forward(model, batch)
        with torch.enable_grad():
            attr = CaptumIG(forward).attribute(
                images,
                baselines=baseline_images(images, self.baseline),
                target=targets,
                additional_forward_args=(rows,),
                n_steps=int(self.n_steps),
                internal_batch_size=int(self.internal_batch_size),
            )
        return Attribution(pixels=attr.detach())
