"""IoU and hit rate of a thresholded saliency map, as in CheXlocalize (Saporta et al., 2022)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from harness.metrics._params import choice, number_in, refuse
from harness.metrics._scale import tame_rows
from harness.metrics.localisation._common import MaskMetric, minmax

_CHEXLOCALIZE = (
    "Saporta et al., Benchmarking saliency methods for chest X-ray interpretation, "
    "Nature Machine Intelligence 2022"
)


def otsu_levels(levels: Tensor, bins: int = 256) -> Tensor:
    """Batched Otsu threshold of integer levels, as ``skimage.filters.threshold_otsu``.

    Parameters
    ----------
    levels : Tensor
        (N, P) int64 values in ``0 .. bins - 1``.
    bins : int, default=256
        Number of levels.

    Returns
    -------
    Tensor
        (N,) int64 thresholds ``t``; the foreground is ``levels > t``. The first
        maximiser of the between-class variance wins, as in scikit-image; a
        constant row gets its own value (an empty foreground).
    """
    n = levels.shape[0]
    hist = torch.zeros(n, bins, dtype=torch.float64, device=levels.device)
    hist.scatter_add_(1, levels, torch.ones_like(levels, dtype=torch.float64))
    values = torch.arange(bins, dtype=torch.float64, device=levels.device)
    w0 = hist.cumsum(1)
    s0 = (hist * values).cumsum(1)
    total, total_sum = w0[:, -1:], s0[:, -1:]
    w1 = total - w0
    mu0 = s0 / w0.clamp(min=1)
    mu1 = (total_sum - s0) / w1.clamp(min=1)
    variance = w0 * w1 * (mu0 - mu1) ** 2
    variance = torch.where((w0 > 0) & (w1 > 0), variance, torch.full_like(variance, -1.0))
    best = variance.argmax(dim=1)
    constant = variance.max(dim=1).values < 0
    return torch.where(constant, levels[:, 0], best)


def check_threshold(metric: str, threshold: object) -> None:
    """Raise a PluginError unless ``threshold`` is "otsu" or a number in (0, 1]."""
    if threshold != "otsu" and (
        isinstance(threshold, str | bool)
        or not isinstance(threshold, int | float)
        or not 0.0 < float(threshold) <= 1.0
    ):
        raise refuse(metric, "threshold", threshold, "'otsu' or a number in (0, 1]")


def binarise(pixels: Tensor, threshold: str | float) -> Tensor:
    """Return the (N, P) bool segmentation of (N, H, W) maps, as CheXlocalize does.

    Each map is min-max normalised to [0, 1]. ``"otsu"`` quantises it to 256
    levels (``uint8(255 * map)``) and keeps levels above Otsu's threshold; a
    float ``t`` (in (0, 1], see :func:`check_threshold`) keeps pixels with
    normalised value ``>= t`` (a fraction of the row's maximum after the shift
    to 0). A constant map selects every pixel.
    """
    norm = minmax(tame_rows(pixels.flatten(1)))  # a span near float32's max overflows
    if threshold == "otsu":
        # 1e-4 of a level absorbs float rounding (4/6 * 255 can come out as 169.99998),
        # so a rescaled map lands on the same levels; uint8 truncation otherwise.
        levels = (norm.double() * 255 + 1e-4).floor().long().clamp(0, 255)
        t = otsu_levels(levels)
        span = pixels.flatten(1).amax(1) > pixels.flatten(1).amin(1)
        return torch.where(
            span[:, None], levels > t[:, None], torch.ones_like(levels, dtype=torch.bool)
        )
    return norm >= float(threshold)


def iou(pred: Tensor, masks: Tensor) -> Tensor:
    """Intersection over union of (N, P) bool segmentations and masks."""
    inter = (pred & masks).sum(1).double()
    union = (pred | masks).sum(1).double()
    return inter / union


class IoU(MaskMetric):
    """IoU between the thresholded saliency map and the ground-truth mask.

    Follows CheXlocalize: min-max normalise the map, binarise it with Otsu's
    method on 256 levels (their default) or at a fixed fraction (their tuned
    thresholds), then ``|pred & gt| / |pred | gt|``. The mask itself scores 1.

    Parameters
    ----------
    threshold : "otsu" or float, default="otsu"
        Otsu's threshold, or a fraction in (0, 1] of the normalised map.

    References
    ----------
    Saporta et al. "Benchmarking saliency methods for chest X-ray
    interpretation." Nature Machine Intelligence 4, 2022 (CheXlocalize).
    """

    name: ClassVar[str] = "localisation.iou"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _CHEXLOCALIZE

    def __init__(self, *, threshold: str | float = "otsu") -> None:
        self.threshold = threshold

    def check_params(self) -> None:
        """Refuse a threshold other than "otsu" or a number in (0, 1]."""
        check_threshold(self.name, self.threshold)

    def _localise(self, pixels: Tensor, masks: Tensor) -> Tensor:
        return iou(binarise(pixels, self.threshold), masks.flatten(1))


class HitRate(MaskMetric):
    """Hit (1) or miss (0) of a saliency map, as in CheXlocalize.

    ``criterion="max"`` (CheXlocalize's hit rate for saliency maps): a hit when
    the map's maximum lies in the mask; pixels tied at the maximum count by
    the fraction that hit (CheXlocalize takes ``np.argmax``, the first one).
    ``criterion="iou"``: a hit when the IoU of the thresholded map exceeds
    ``iou_cutoff`` (a detection-style hit, not CheXlocalize's default).

    Parameters
    ----------
    criterion : {"max", "iou"}, default="max"
        How a hit is decided.
    threshold : "otsu" or float, default="otsu"
        Binarisation for ``criterion="iou"``, as in :class:`IoU`.
    iou_cutoff : float, default=0.5
        IoU above which ``criterion="iou"`` counts a hit, in [0, 1) (an IoU
        never exceeds 1).

    References
    ----------
    Saporta et al. "Benchmarking saliency methods for chest X-ray
    interpretation." Nature Machine Intelligence 4, 2022 (CheXlocalize).
    """

    name: ClassVar[str] = "localisation.hit_rate"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _CHEXLOCALIZE

    def __init__(
        self, *, criterion: str = "max", threshold: str | float = "otsu", iou_cutoff: float = 0.5
    ) -> None:
        self.criterion = criterion
        self.threshold = threshold
        self.iou_cutoff = iou_cutoff

    def check_params(self) -> None:
        """Refuse an unknown criterion, a threshold as :class:`IoU` does, a cutoff outside [0, 1)."""
        choice(self.name, "criterion", self.criterion, ("max", "iou"))
        check_threshold(self.name, self.threshold)
        number_in(self.name, "iou_cutoff", self.iou_cutoff, "[0, 1)", 0, 1)

    def _localise(self, pixels: Tensor, masks: Tensor) -> Tensor:
        m = masks.flatten(1)
        if self.criterion == "iou":
            overlap = iou(binarise(pixels, self.threshold), m)
            return (overlap > self.iou_cutoff).double()
        a = pixels.flatten(1)
        top = a == a.max(dim=1, keepdim=True).values
        return (top & m).sum(1).double() / top.sum(1).double()
