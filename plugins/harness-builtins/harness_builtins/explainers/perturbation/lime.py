"""LIME through Captum with superpixel features (SLIC or grid)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model
from harness_builtins.explainers._common import check_at_least, check_positive
from harness_builtins.explainers.perturbation._common import (
    Superpixels,
    attribute_per_image,
    check_perturbation,
)


def binary_cosine_kernel(kernel_width: float) -> Any:
    """Return LIME's image kernel: ``exp(-d^2 / width^2)``, ``d`` the cosine distance to all-ones.

    ``d`` is measured between the perturbed sample's binary feature vector and
    the unperturbed all-ones vector, as the ``lime`` package does for images.
    """

    def similarity(
        _original: Tensor, _perturbed: Tensor, interpretable: Tensor, **_: Any
    ) -> Tensor:
        z = interpretable.float()
        cos = z.sum(dim=1) / (z.norm(dim=1) * z.shape[1] ** 0.5).clamp(min=1e-12)
        return torch.exp(-((1 - cos) ** 2) / kernel_width**2)

    return similarity


class Lime(Explainer):
    """Local surrogate (LIME) on superpixels, fitted by Captum for each image.

    Random subsets of superpixels are replaced by the baseline; a weighted
    ridge regression of the explained logit on the subsets' indicator vectors
    gives one coefficient per superpixel, painted over its pixels. Perturbations
    run through the model in batches of ``perturbations_per_eval`` images.

    Parameters
    ----------
    n_samples : int, default=200
        Perturbed samples per image.
    perturbations_per_eval : int, default=64
        Perturbed images per forward pass.
    segmentation : {"slic", "grid"}, default="slic"
        SLIC superpixels of the grayscale image, or a regular grid.
    n_segments : int, default=50
        Target number of SLIC segments.
    compactness : float, default=0.3
        SLIC compactness on the image scaled to [0, 1] (higher: more square segments).
    grid_size : int, default=8
        Cells per side of the grid segmentation.
    baseline : {"mean", "zero", "min"}, default="mean"
        Value replacing a removed superpixel: the image's mean, 0 or its minimum.
    kernel_width : float, default=0.25
        Width of the exponential kernel on the cosine distance (``lime`` package default).
    alpha : float, default=1.0
        Ridge regularisation of the surrogate (``lime`` package default).

    References
    ----------
    M. T. Ribeiro, S. Singh and C. Guestrin, "'Why Should I Trust You?':
    Explaining the Predictions of Any Classifier", KDD 2016.
    """

    name: ClassVar[str] = "captum.lime"
    version: ClassVar[str] = "2"  # 2: perturbations drawn per sample id (1: one stream per batch)
    citation: ClassVar[str] = (
        "Ribeiro, Singh and Guestrin, 'Why Should I Trust You?': Explaining the Predictions "
        "of Any Classifier, KDD 2016"
    )
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        needs=frozenset(),
        deterministic=False,
    )
    execution_params: ClassVar[frozenset[str]] = frozenset({"perturbations_per_eval"})

    def __init__(
        self,
        *,
        n_samples: int = 200,
        perturbations_per_eval: int = 64,
        segmentation: str = "slic",
        n_segments: int = 50,
        compactness: float = 0.3,
        grid_size: int = 8,
        baseline: str = "mean",
        kernel_width: float = 0.25,
        alpha: float = 1.0,
    ) -> None:
        self.n_samples = n_samples
        self.perturbations_per_eval = perturbations_per_eval
        self.segmentation = segmentation
        self.n_segments = n_segments
        self.compactness = compactness
        self.grid_size = grid_size
        self.baseline = baseline
        self.kernel_width = kernel_width
        self.alpha = alpha

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[Lime]:
        """Return small instances for the conformance kit."""
        return [
            cls(n_samples=16, perturbations_per_eval=16, segmentation="grid", grid_size=4),
            cls(n_samples=16, perturbations_per_eval=16, n_segments=8, baseline="zero"),
        ]

    def check_params(self) -> None:
        """Check the superpixel, baseline, sampling and kernel parameters."""
        check_perturbation(
            self.name, self._superpixels(), self.baseline, self.n_samples,
            self.perturbations_per_eval,
        )  # fmt: skip
        check_positive(self.name, "kernel_width", self.kernel_width)
        check_at_least(self.name, "alpha", self.alpha, 0.0)

    def _superpixels(self) -> Superpixels:
        return Superpixels(self.segmentation, self.n_segments, self.compactness, self.grid_size)

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        from captum._utils.models.linear_model import SkLearnRidge
        from captum.attr import Lime as CaptumLime

        spec = self._superpixels()

        def make(forward: Any) -> CaptumLime:
            return CaptumLime(
                forward,
                interpretable_model=SkLearnRidge(alpha=float(self.alpha)),
                similarity_func=binary_cosine_kernel(float(self.kernel_width)),
            )

        pixels = attribute_per_image(
            model,
            batch,
            targets,
            make=make,
            spec=spec,
            baseline=self.baseline,
            who=self.name,
            n_samples=self.n_samples,
            perturbations_per_eval=self.perturbations_per_eval,
        )
        return Attribution(pixels=pixels)
