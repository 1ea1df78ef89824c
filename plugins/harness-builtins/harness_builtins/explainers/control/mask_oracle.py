"""Ground-truth-mask control: each row's lesion or finding mask, used as its attribution."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from torch import Tensor

from harness.contracts import (
    Attribution,
    Batch,
    Explainer,
    ExplainerTags,
    Modality,
    Model,
    Need,
    Output,
)
from harness.errors import CapabilityError, DataError, PluginError
from harness_builtins.explainers._common import images_of


class GroundTruthMask(Explainer):
    """The ground-truth mask of each row's target as a float pixel map, ignoring the model.

    Row ``i`` gets ``batch.masks[i, targets[i]]`` as 1.0 inside the lesion or
    finding and 0.0 outside: the class mask for multi-class data, the mask of
    the explained finding for multi-label data (one mask per finding). It is
    the ceiling of every localisation metric, as ``control.random`` is its
    floor: a localisation metric that does not score this control strictly
    better than random attributions cannot tell a perfect map from noise, and
    the leaderboard flags it. The map says nothing about the model, so the
    control is no reference for faithfulness or sanity metrics.

    A batch without masks raises :class:`~harness.errors.CapabilityError`, so
    the cells of datasets that provide none are recorded as skipped.

    References
    ----------
    L. Arras, A. Osman and W. Samek, "CLEVR-XAI: A benchmark dataset for the
    ground truth evaluation of neural network explanations", Information
    Fusion 81, 2022 (ground-truth masks as the reference of localisation metrics).
    """

    name: ClassVar[str] = "control.mask"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = (
        "Arras, Osman and Samek, CLEVR-XAI: A benchmark dataset for the ground truth "
        "evaluation of neural network explanations, Information Fusion 2022"
    )
    tags: ClassVar[ExplainerTags] = ExplainerTags(
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
        needs=frozenset({Need.MASKS}),
        deterministic=True,
        output=frozenset({Output.PIXEL}),
    )

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[GroundTruthMask]:
        """Return small instances for the conformance kit."""
        return [cls()]

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        images = images_of(batch, self.name)
        masks = batch.masks
        if masks is None:
            raise CapabilityError(
                f"explainer {self.name!r}: batch masks - expected ground-truth masks "
                "(a dataset that provides masks), got none.",
                plugin=self.name,
            )
        n, _, h, w = images.shape
        if masks.dim() != 4 or masks.shape[0] != n or tuple(masks.shape[2:]) != (h, w):
            raise DataError(
                f"explainer {self.name!r}: batch masks - expected a (N, K, H, W) tensor with "
                f"(N, H, W) = {(n, h, w)}, got {tuple(masks.shape)}."
            )
        k = masks.shape[1]
        if n and (int(targets.min()) < 0 or int(targets.max()) >= k):
            raise PluginError(
                f"explainer {self.name!r}: targets - expected indices in [0, {k}), "
                f"got {targets.tolist()}.",
                plugin=self.name,
            )
        return Attribution(pixels=batch.target_masks(targets).to(model.device).float())
