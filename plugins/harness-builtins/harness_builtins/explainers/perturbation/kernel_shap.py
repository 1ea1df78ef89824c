"""KernelSHAP through Captum with superpixel features (SLIC or grid)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor

from harness.contracts import Attribution, Batch, Explainer, ExplainerTags, Modality, Model
from harness_builtins.explainers.perturbation._common import (
    Superpixels,
    attribute_per_image,
    check_perturbation,
)


class KernelShap(Explainer):
    """Shapley values of superpixels, estimated by Captum's KernelSHAP for each image.

    Coalitions of superpixels are sampled from the Shapley kernel; absent
    superpixels take the baseline value. A linear regression on the coalition
    vectors, with the empty and full coalitions weighted heavily, gives one
    value per superpixel whose sum approximates ``f(x) - f(baseline)`` for the
    explained logit. Perturbations run in batches of ``perturbations_per_eval``.

    Parameters
    ----------
    n_samples : int, default=200
        Sampled coalitions per image.
    perturbations_per_eval : int, default=64
        Perturbed images per forward pass.
    segmentation : {"slic", "grid"}, default="slic"
        SLIC superpixels of the grayscale image, or a regular grid.
    n_segments : int, default=50
        Target number of SLIC segments.
    compactness : float, default=0.3
        SLIC compactness on the image scaled to [0, 1].
    grid_size : int, default=8
        Cells per side of the grid segmentation.
    baseline : {"mean", "zero", "min"}, default="mean"
        Value of an absent superpixel: the image's mean, 0 or its minimum.

    References
    ----------
    S. M. Lundberg and S.-I. Lee, "A Unified Approach to Interpreting Model
    Predictions", NeurIPS 2017.
    """

    name: ClassVar[str] = "captum.kernel_shap"
    version: ClassVar[str] = "2"  # 2: perturbations drawn per sample id (1: one stream per batch)
    citation: ClassVar[str] = (
        "Lundberg and Lee, A Unified Approach to Interpreting Model Predictions, NeurIPS 2017"
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
    ) -> None:
        self.n_samples = n_samples
        self.perturbations_per_eval = perturbations_per_eval
        self.segmentation = segmentation
        self.n_segments = n_segments
        self.compactness = compactness
        self.grid_size = grid_size
        self.baseline = baseline

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[KernelShap]:
        """Return small instances for the conformance kit."""
        return [
            cls(n_samples=16, perturbations_per_eval=16, segmentation="grid", grid_size=4),
            cls(n_samples=16, perturbations_per_eval=16, n_segments=8, baseline="zero"),
        ]

    def check_params(self) -> None:
        """Check the superpixel, baseline and sampling parameters."""
        check_perturbation(
            self.name, self._superpixels(), self.baseline, self.n_samples,
            self.perturbations_per_eval,
        )  # fmt: skip

    def _superpixels(self) -> Superpixels:
        return Superpixels(self.segmentation, self.n_segments, self.compactness, self.grid_size)

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        from captum.attr import KernelShap as CaptumKernelShap

        spec = self._superpixels()

        def make(forward: Any) -> CaptumKernelShap:
            return CaptumKernelShap(forward)

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
