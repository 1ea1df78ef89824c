"""Ground-truth control: each row's lesion mask (or token rationale), used as its attribution."""

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

    With ``over="tokens"`` it gives the target's token rationale instead
    (``batch.rationales``, 1.0 on rationale tokens) for text and image+text
    models: the ceiling of the token localisation metrics.

    A batch without masks (rationales) raises
    :class:`~harness.errors.CapabilityError`, so the cells of datasets that
    provide none are recorded as skipped.

    Parameters
    ----------
    over : {"pixels", "tokens"}, default="pixels"
        Give the pixel mask or the token rationale of each row's target.

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

    def __init__(self, *, over: str = "pixels") -> None:
        self.over = over

    def get_tags(self) -> ExplainerTags:
        """Pixel masks, or token rationales with ``over="tokens"`` (checked: the planner reads these)."""
        if self.over not in ("pixels", "tokens"):
            raise PluginError(
                f"explainer {self.name!r}: parameter over={self.over!r} - expected 'pixels' or "
                "'tokens'.",
                plugin=self.name,
            )
        return self.tags if self.over == "pixels" else _TOKEN_TAGS

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[GroundTruthMask]:
        """Return small instances for the conformance kit."""
        return [cls(), cls(over="tokens")]

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        if self.get_tags() is _TOKEN_TAGS:
            return Attribution(tokens=self._rationales(batch, targets).to(model.device))
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

    def _rationales(self, batch: Batch, targets: Tensor) -> Tensor:
        rationales, tokens = batch.rationales, batch.tokens
        if rationales is None or tokens is None:
            raise CapabilityError(
                f"explainer {self.name!r}: batch rationales - expected token ids and token "
                "rationales (a dataset that provides rationales), got none.",
                plugin=self.name,
            )
        if rationales.dim() != 3 or tuple(rationales[:, 0].shape) != tuple(tokens.shape):
            raise DataError(
                f"explainer {self.name!r}: batch rationales - expected a (N, K, L) tensor with "
                f"(N, L) = {tuple(tokens.shape)}, got {tuple(rationales.shape)}."
            )
        return batch.target_rationales(targets).float()


_TOKEN_TAGS = ExplainerTags(
    modalities=frozenset({Modality.TEXT, Modality.IMAGE_TEXT}),
    needs=frozenset({Need.RATIONALES}),
    deterministic=True,
    output=frozenset({Output.TOKEN}),
)
