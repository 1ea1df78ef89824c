"""Region perturbation AOPC (Samek et al. 2017)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from harness.contracts import Attribution, Batch, ExplanationMetric, MetricTags, Model, Scores
from harness.contracts.tags import MetricKind, Modality, Need
from harness.errors import PluginError
from harness.metrics import _engine
from harness.metrics._scale import tame_rows
from harness.metrics.faithfulness import _common as C

if TYPE_CHECKING:
    from harness.contracts import Explainer

_OUTPUTS = ("probability", "logit")


def _padding(dim: int, patch: int) -> tuple[int, int]:
    """Return the padding before / after ``dim`` to a multiple of ``patch`` (Quantus's split)."""
    total = (-dim) % patch
    return total // 2, total - total // 2


def patch_ids(h: int, w: int, patch: int, device: torch.device) -> tuple[Tensor, int]:
    """Return the row-major patch id (H * W,) of every pixel and the number of patches."""
    (top, bottom), (left, right) = _padding(h, patch), _padding(w, patch)
    rows = (torch.arange(h, device=device) + top) // patch
    cols = (torch.arange(w, device=device) + left) // patch
    n_w = (w + left + right) // patch
    n_patches = ((h + top + bottom) // patch) * n_w
    return (rows[:, None] * n_w + cols[None, :]).reshape(-1), n_patches


def patch_sums(pixels: Tensor, patch: int) -> Tensor:
    """Return the summed attribution (N, patches) of every patch, in :func:`patch_ids` order.

    A padded view summed over each patch's pixels: deterministic on every
    device (a scatter-add with atomics is not on CUDA) and padding adds zeros.
    """
    n, h, w = pixels.shape
    (top, bottom), (left, right) = _padding(h, patch), _padding(w, patch)
    padded = F.pad(pixels, (left, right, top, bottom))
    n_h, n_w = padded.shape[1] // patch, padded.shape[2] // patch
    return padded.view(n, n_h, patch, n_w, patch).sum(dim=(2, 4)).reshape(n, -1)


class RegionPerturbation(ExplanationMetric):
    """AOPC of the target score as square regions are replaced in attribution order.

    The image is tiled by ``patch_size`` x ``patch_size`` patches (padded to a
    multiple of the patch size and split as Quantus does). Patches are ranked
    by their summed attribution and replaced by the baseline one at a time,
    most relevant first (``order="morf"``) or least relevant first
    (``"lerf"``), for ``regions`` steps. The curve holds the drops
    ``p_0 - p_k`` (Quantus ``RegionPerturbation``'s curve, softmax probability)
    and the value is Samek et al.'s ``AOPC = 1 / (L + 1) * sum_{k=0}^{L} (p_0 - p_k)``.

    Direction: for MoRF a faithful attribution makes the score drop early, so
    AOPC is higher for better attributions; for LeRF a faithful attribution
    keeps the score, so the value returned is ``-AOPC`` and higher stays better.

    Parameters
    ----------
    patch_size : int, default=8
        Side of a square region in pixels.
    order : {"morf", "lerf"}, default="morf"
        Most or least relevant region first.
    regions : int, default=100
        Regions replaced (Quantus ``regions_evaluation``); capped at the number of patches.
    baseline : {"black", "zero", "mean", "blur", "uniform"} or float, default="black"
        The replacement; ``"black"`` is the per-sample minimum, as in Quantus;
        ``"uniform"`` is Samek et al.'s: uniform noise between the image's
        minimum and maximum, one fixed noise image per sample id.
    output : {"probability", "logit"}, default="probability"
        Score of the target class.

    References
    ----------
    Samek et al. "Evaluating the Visualization of What a Deep Neural Network Has
    Learned." IEEE TNNLS 2017.
    """

    name: ClassVar[str] = "faithfulness.region_perturbation"
    version: ClassVar[str] = "2"  # 2: patch sums by a padded view (summation order)
    higher_is_better: ClassVar[bool] = True
    citation: ClassVar[str] = (
        "Samek et al. Evaluating the Visualization of What a Deep Neural Network Has "
        "Learned. IEEE TNNLS 2017."
    )
    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.FAITHFULNESS,
        needs=frozenset({Need.PIXEL_ATTRIBUTIONS}),
        modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
    )

    def __init__(
        self,
        *,
        patch_size: int = 8,
        order: str = "morf",
        regions: int = 100,
        baseline: str | float = "black",
        output: str = "probability",
    ) -> None:
        self.patch_size = patch_size
        self.order = order
        self.regions = regions
        self.baseline = baseline
        self.output = output

    def check_params(self) -> None:
        """Refuse a non-positive patch size or region count, an unknown order, baseline or output.

        A patch larger than the image is refused when the image is seen.
        """
        C.positive(self.name, "patch_size", self.patch_size)
        C.positive(self.name, "regions", self.regions)
        C.choice(self.name, "order", self.order, C.ORDERS)
        C.choice(self.name, "output", self.output, _OUTPUTS)
        C.check_baseline(self.name, self.baseline)

    @_engine.engine_scope
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        images, pixels = C.images_of(self.name, batch, attribution)
        patch, regions, order, output = self.patch_size, self.regions, self.order, self.output
        n, _, h, w = images.shape
        if patch > min(h, w):
            raise PluginError(
                f"metric {self.name!r}: parameter patch_size={patch} - expected at most the "
                f"image's side ({h} x {w} px), got {patch}.",
                plugin=self.name,
            )
        ids, n_patches = patch_ids(h, w, patch, images.device)
        patch_rank = C.ranks(patch_sums(tame_rows(pixels), patch), descending=order == "morf")
        pixel_rank = patch_rank[:, ids]
        steps = min(regions, n_patches) + 1  # step 0: the unperturbed image
        counts = torch.arange(steps, device=images.device)
        base = C.baseline_images(images, self.baseline, batch.ids)
        make = C.threshold_maker(images, base, images, pixel_rank, steps, counts)
        curve = _engine.evaluate(model, batch, targets, steps, make, output=output)
        drops = curve[:, :1] - curve[:, 1:]
        value = C.aopc(drops)
        return Scores(values=value if order == "morf" else -value, curves={"drop": drops})
