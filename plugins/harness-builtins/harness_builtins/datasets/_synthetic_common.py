"""Shared generator of synthetic chest radiographs: anatomy, findings, splits.

Every function draws from an explicit ``torch.Generator`` and works on whole
batches of images at once (N, H, W), so a dataset is a pure function of its
seed and parameters. Coordinates are normalised to [-1, 1] (x to the image's
right, y downwards); image right is the patient's left, where the heart sits.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from harness.contracts import Dataset, DatasetInfo, Sample
from harness.errors import DataError

log = logging.getLogger(__name__)

CHUNK = 256
"""Images generated per chunk; each chunk has its own seed, bounding peak memory."""


@dataclass(frozen=True)
class Anatomy:
    """A batch of normal radiographs before findings are added.

    ``image`` (N, H, W) raw intensities; ``lungs`` the visible lung fields (lung
    minus heart and mediastinum); ``heart`` the cardiac silhouette; ``costophrenic``
    the lower lateral recess of each lung; all masks bool (N, H, W).
    """

    image: Tensor
    lungs: Tensor
    heart: Tensor
    costophrenic: Tensor


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def grid(size: int) -> tuple[Tensor, Tensor]:
    """Return (y, x) coordinate grids of shape (1, size, size) in [-1, 1]."""
    axis = torch.linspace(-1.0, 1.0, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return y[None], x[None]


def soft_ellipse(
    y: Tensor, x: Tensor, cy: Tensor, cx: Tensor, ry: Tensor, rx: Tensor, sharpness: float = 12.0
) -> Tensor:
    """Return a soft (N, H, W) ellipse indicator in [0, 1]; per-sample centres and radii (N,)."""
    d = ((x - cx[:, None, None]) / rx[:, None, None]) ** 2 + (
        (y - cy[:, None, None]) / ry[:, None, None]
    ) ** 2
    return torch.sigmoid((1.0 - d) * sharpness)


def smooth_noise(n: int, size: int, cells: int, gen: torch.Generator) -> Tensor:
    """Return (N, H, W) unit-scale noise, smooth over about ``size / cells`` pixels."""
    coarse = torch.randn(n, 1, cells, cells, generator=gen)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[:, 0]


def draw_anatomy(
    n: int,
    size: int,
    gen: torch.Generator,
    *,
    noise_level: float,
    heart_scale: Tensor | None = None,
) -> Anatomy:
    """Draw ``n`` normal chest radiographs with jittered anatomy.

    Parameters
    ----------
    n, size
        Number of images and their side in pixels.
    gen
        Source of all randomness.
    noise_level
        Standard deviation of the smooth and fine noise, relative to the lung contrast (0.3).
    heart_scale
        Optional (N,) factor on the heart's width; values about 1.4 draw cardiomegaly.
    """
    y, x = grid(size)
    sep = _uniform(n, 0.36, 0.42, gen)
    lung_cy = _uniform(n, -0.10, 0.0, gen)
    lung_rx = _uniform(n, 0.24, 0.33, gen)
    lung_ry = _uniform(n, 0.52, 0.68, gen)
    right = soft_ellipse(y, x, lung_cy, -sep, lung_ry, lung_rx)
    left = soft_ellipse(y, x, lung_cy, sep, lung_ry, lung_rx)
    lungs = torch.maximum(right, left)

    scale = torch.ones(n) if heart_scale is None else heart_scale
    heart_rx = _uniform(n, 0.27, 0.31, gen) * scale
    heart_ry = _uniform(n, 0.22, 0.26, gen) * scale.sqrt()
    heart = soft_ellipse(
        y, x, lung_cy + lung_ry * 0.55, _uniform(n, 0.10, 0.16, gen), heart_ry, heart_rx
    )
    mediastinum = torch.sigmoid((0.11 - x.abs()) * 40.0) * torch.sigmoid((0.55 - y) * 20.0)
    body = soft_ellipse(
        y,
        x,
        torch.full((n,), 0.15),
        torch.zeros(n),
        torch.full((n,), 1.2),
        _uniform(n, 0.80, 0.90, gen),
        6.0,
    )

    period = _uniform(n, 0.15, 0.19, gen)[:, None, None]
    phase = _uniform(n, 0.0, 1.0, gen)[:, None, None]
    bend = _uniform(n, 0.25, 0.45, gen)[:, None, None]
    ribs = torch.cos(2 * torch.pi * ((y - bend * x**2) / period + phase)).clamp(min=0) ** 3

    soft_tissue = torch.maximum(heart, mediastinum)
    visible = lungs * (1.0 - soft_tissue)
    air = _uniform(n, 0.24, 0.36, gen)[:, None, None]
    image = 0.05 + 0.45 * body - air * visible + 0.05 * soft_tissue + 0.10 * ribs * body
    noise = smooth_noise(n, size, max(4, size // 8), gen) + 0.5 * torch.randn(
        n, size, size, generator=gen
    )
    image = image + noise_level * 0.3 * noise

    lung_mask = visible > 0.5
    base = (lung_cy + lung_ry)[:, None, None]
    recess = (
        lung_mask
        & (y > base - 0.4 * lung_ry[:, None, None])
        & (x.abs() > sep[:, None, None] - 0.08)
    )
    return Anatomy(image=image, lungs=lung_mask, heart=heart > 0.5, costophrenic=recess)


def sample_centres(region: Tensor, margin: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Pick one pixel per image uniformly inside ``region`` shrunk by ``margin`` pixels.

    Rows whose shrunk region is empty fall back to the full region. Returns (cy, cx) in pixels.
    """
    n, h, w = region.shape
    k = 2 * margin + 1
    outside = (~region).float()[:, None]
    shrunk = (
        F.max_pool2d(outside, k, stride=1, padding=margin)[:, 0] < 0.5 if margin > 0 else region
    )
    empty = ~shrunk.flatten(1).any(1)
    weights = torch.where(empty[:, None, None], region, shrunk).flatten(1).float()
    weights[~weights.any(1)] = 1.0
    idx = torch.multinomial(weights, 1, generator=gen)[:, 0]
    return (idx // w).float(), (idx % w).float()


def blobs(
    size: int, cy: Tensor, cx: Tensor, radius: Tensor, present: Tensor, region: Tensor
) -> tuple[Tensor, Tensor]:
    """Return soft disk profiles (N, H, W) and their exact masks inside ``region``.

    The profile is 1 inside radius ``radius`` (pixels) with a half-pixel soft edge,
    limited to ``region`` and zero where ``present`` is False; the mask is the
    set of pixels whose profile exceeds one half.
    """
    pix = torch.arange(size, dtype=torch.float32)
    dy = pix[None, :, None] - cy[:, None, None]
    dx = pix[None, None, :] - cx[:, None, None]
    dist = (dy**2 + dx**2).sqrt()
    profile = torch.sigmoid((radius[:, None, None] - dist) * 2.0)
    profile = profile * region * present[:, None, None]
    return profile, profile > 0.5


def standardise(images: Tensor) -> Tensor:
    """Scale each image to zero mean and unit variance (removes global intensity cues)."""
    mean = images.mean(dim=(-2, -1), keepdim=True)
    std = images.std(dim=(-2, -1), keepdim=True).clamp(min=1e-6)
    return (images - mean) / std


def chunk_seeds(n: int, seed: int) -> list[tuple[int, int]]:
    """Return (rows, seed) per chunk of at most :data:`CHUNK` images."""
    return [(min(CHUNK, n - start), seed * 1_000_003 + start) for start in range(0, n, CHUNK)]


def stratified_splits(
    ids: Sequence[str], strata: Tensor, fractions: Sequence[float], seed: int
) -> dict[str, list[str]]:
    """Split ``ids`` into train/val/test by ``fractions``, stratified by ``strata`` (N,).

    Each stratum is shuffled with ``seed`` and cut at the cumulative fractions,
    so the splits are disjoint, cover every id and are stable for a given seed.
    """
    gen = torch.Generator().manual_seed(seed + 7919)
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for value in torch.unique(strata).tolist():
        members = torch.nonzero(strata == value)[:, 0]
        rows: list[int] = members[torch.randperm(len(members), generator=gen)].tolist()
        cut1 = round(len(rows) * fractions[0])
        cut2 = cut1 + round(len(rows) * fractions[1])
        out["train"] += rows[:cut1]
        out["val"] += rows[cut1:cut2]
        out["test"] += rows[cut2:]
    return {k: [ids[i] for i in sorted(v)] for k, v in out.items()}


def check_params(owner: str, checks: Mapping[str, tuple[bool, str, object]]) -> None:
    """Raise :class:`DataError` for the first failed check ``name -> (ok, expected, got)``."""
    for name, (ok, expected, got) in checks.items():
        if not ok:
            raise DataError(
                f"dataset {owner!r}: parameter {name} - expected {expected}, got {got!r}."
            )


@dataclass(frozen=True)
class Generated:
    """A whole synthetic dataset held in memory."""

    images: Tensor  # (N, 1, H, W) float
    labels: Tensor  # (N,) or (N, K) int64
    masks: Tensor  # (N, K, H, W) bool
    ids: tuple[str, ...]
    splits: dict[str, list[str]]
    index: dict[str, int]


class SyntheticDataset(Dataset, abc.ABC):
    """Lazy, cached generation shared by the synthetic datasets.

    Subclasses set ``id_prefix``, draw the labels of all images in
    ``_draw_labels`` and render one chunk of images in ``_render``; this base
    generates on first use, caches in memory and serves samples and splits.
    Subclasses declare the parameters ``n``, ``image_size``, ``seed`` and
    ``split_fractions``.
    """

    id_prefix: ClassVar[str]
    class_names: ClassVar[tuple[str, ...]]
    n: int
    image_size: int
    seed: int
    split_fractions: tuple[float, float]

    @abc.abstractmethod
    def _check(self) -> None:
        """Raise :class:`DataError` on invalid parameters."""

    @abc.abstractmethod
    def _draw_labels(self, gen: torch.Generator) -> Tensor:
        """Return the ground-truth labels of all ``n`` images."""

    @abc.abstractmethod
    def _render(self, labels: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        """Return images (n, 1, H, W) and masks (n, K, H, W) for one chunk's labels."""

    def info(self) -> DatasetInfo:
        """Describe the dataset: 1-channel square images, the class tags and ``class_names``."""
        return DatasetInfo(
            modality=self.tags.modality,
            task=self.tags.task,
            class_names=self.class_names,
            provides=self.tags.provides,
            channels=1,
            image_size=(self.image_size, self.image_size),
        )

    def _observed(self, labels: Tensor, gen: torch.Generator) -> Tensor:
        """Return the labels as the dataset reports them (default: the ground truth)."""
        return labels

    def _strata(self, labels: Tensor) -> Tensor:
        """Return the (N,) values the splits are stratified by."""
        return labels if labels.dim() == 1 else (labels == 1).sum(1)

    def splits(self) -> Mapping[str, Sequence[str]]:
        """Return the stratified train/val/test ids."""
        return self._data().splits

    def _get(self, sample_id: str) -> Sample:
        data = self._data()
        row = data.index.get(sample_id)
        if row is None:
            raise DataError(
                f"dataset {self.name!r}: unknown sample id {sample_id!r} - expected one of "
                f"{data.ids[0]!r} ... {data.ids[-1]!r}."
            )
        return Sample(
            id=sample_id, label=data.labels[row], image=data.images[row], mask=data.masks[row]
        )

    def _data(self) -> Generated:
        cached: Generated | None = getattr(self, "_generated", None)
        if cached is None:
            self._check()
            cached = self._generate()
            self._generated = cached
        return cached

    def _generate(self) -> Generated:
        gen = torch.Generator().manual_seed(self.seed)
        truth = self._draw_labels(gen)
        images, masks = [], []
        start = 0
        for rows, chunk_seed in chunk_seeds(self.n, self.seed):
            img, msk = self._render(truth[start : start + rows], chunk_seed)
            images.append(img)
            masks.append(msk)
            start += rows
        ids = tuple(f"{self.id_prefix}-{i:05d}" for i in range(self.n))
        splits = stratified_splits(ids, self._strata(truth), self.split_fractions, self.seed)
        log.info(
            "%s: generated %d images of %dx%d", self.name, self.n, self.image_size, self.image_size
        )
        return Generated(
            images=torch.cat(images),
            labels=self._observed(truth, gen),
            masks=torch.cat(masks),
            ids=ids,
            splits=splits,
            index={s: i for i, s in enumerate(ids)},
        )

    def _common_checks(self) -> dict[str, tuple[bool, str, object]]:
        fractions = self.split_fractions
        return {
            "n": (self.n >= 5, "an integer >= 5", self.n),
            "image_size": (self.image_size >= 16, "an integer >= 16", self.image_size),
            "split_fractions": (
                len(fractions) == 2 and min(fractions) > 0 and sum(fractions) < 1,
                "two positive fractions summing below 1",
                fractions,
            ),
        }
