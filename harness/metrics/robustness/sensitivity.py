"""Max- and avg-sensitivity (Yeh et al., 2019) with batched re-explanation.

Default draws, from measurements with input x gradient, 16 rows, seeds 1 and 2
(largest relative per-row difference between the two runs; Spearman across rows
between them): small CNN at 32 px, avg-sensitivity 16 draws 3 % / 0.70, 32 draws
4 % / 0.91, 128 draws 1 % / 0.95; max-sensitivity 32 draws 10 % / 0.51, 64 draws
5 % / 0.86, 128 draws 6 % / 0.70; ResNet18 at 64 px, avg 32 draws 2 % / 0.75,
max 32 draws 4 % / 0.59. Values are stable in size; the ranking of rows with
similar sensitivity is not, which ``notes["run_agreement"]`` reports per cell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from harness.chunking import explain_chunk, explain_chunks
from harness.contracts.metric import ExplanationMetric, Scores
from harness.contracts.tags import MetricKind, MetricTags, Modality, Need
from harness.draws import base_seed, row_seeds, uniform_rows
from harness.errors import CapabilityError
from harness.metrics import _engine
from harness.metrics._correlation import rank_agreement
from harness.metrics._params import positive, positive_number
from harness.substeps import within

if TYPE_CHECKING:
    from harness.contracts.data import Attribution, Batch
    from harness.contracts.explainer import Explainer
    from harness.contracts.model import Model

log = logging.getLogger(__name__)

_YEH = "Yeh et al., On the (In)fidelity and Sensitivity of Explanations, NeurIPS 2019"


Noise = Callable[[int, int], Tensor]


def relative_changes(
    model: Model,
    explainer: Explainer,
    batch: Batch,
    targets: Tensor,
    reference: Tensor,
    noise: Tensor,
    chunk: int | None = None,
) -> Tensor:
    """Return (N, S) ``||a(x + noise_s) - a(x)|| / ||a(x)||`` for (N, S, C, H, W) ``noise``.

    :func:`drawn_relative_changes` with the rows of a tensor drawn up front.
    """
    return drawn_relative_changes(
        model, explainer, batch, targets, reference, noise.shape[1], lambda lo, hi: noise[lo:hi],
        chunk,
    )  # fmt: skip


def drawn_relative_changes(
    model: Model,
    explainer: Explainer,
    batch: Batch,
    targets: Tensor,
    reference: Tensor,
    samples: int,
    noise: Noise,
    chunk: int | None = None,
) -> Tensor:
    """Return (N, S) ``||a(x + noise_s) - a(x)|| / ||a(x)||`` (Frobenius norms).

    ``noise(lo, hi)`` returns the (hi - lo, S, C, H, W) perturbations of rows
    ``lo:hi``, added to ``batch.images``. Rows are perturbed a group at a time
    (as many rows' S copies as fit in a chunk, at least one row) and the
    copies explained ``chunk`` per call (None: :func:`explain_chunk`; an
    out-of-memory error halves the chunk and retries), so memory holds one
    group, never all N x S copies. A batch whose copies fit in one chunk is
    explained as it is. A zero reference map has no scale; its row reports
    the absolute change ``||a(x + noise_s)||``.
    """
    images = batch.images
    if images is None:
        raise CapabilityError("sensitivity needs image inputs")
    n, s = len(batch), int(samples)
    total = n * s
    size = int(chunk) if chunk else explain_chunk(images.device, tuple(images.shape[1:]), total)
    changes = torch.empty((n, s), dtype=torch.float64, device=images.device)
    lo = 0
    while lo < n:
        hi = min(n, lo + max(1, size // s))
        rows = batch if hi - lo == n else batch.index(torch.arange(lo, hi))
        perturbed = (noise(lo, hi) + images[lo:hi].detach().unsqueeze(1)).flatten(0, 1)
        copies = replace(rows, images=None).repeat_interleave(s).with_images(perturbed)
        with within(lo * s, total):  # copies explained, all groups of rows
            parts, size = explain_chunks(
                model, explainer, copies, targets[lo:hi].repeat_interleave(s), size
            )
        pixels = [p.pixels for p in parts if p.pixels is not None]
        if len(pixels) != len(parts):
            raise CapabilityError(
                f"sensitivity: explainer {explainer.name!r} - expected pixel attributions, got none"
            )
        maps = pixels[0] if len(pixels) == 1 else torch.cat(pixels)
        ref = reference[lo:hi].reshape(hi - lo, 1, -1).double()
        scale = ref.norm(dim=2)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        diff = maps.reshape(hi - lo, s, -1).double().sub_(ref)
        changes[lo:hi] = diff.norm(dim=2) / scale
        lo = hi
    return changes


class _Sensitivity(ExplanationMetric):
    """Shared sampling; subclasses reduce the (N, S) changes with max or mean."""

    tags: ClassVar[MetricTags] = MetricTags(
        kind=MetricKind.ROBUSTNESS,
        needs=frozenset({Need.EXPLAINER, Need.PIXEL_ATTRIBUTIONS}),
        modalities=frozenset({Modality.IMAGE}),
        deterministic=False,
    )
    execution_params: ClassVar[frozenset[str]] = frozenset({"chunk"})
    higher_is_better: ClassVar[bool] = False
    bounds: ClassVar[tuple[float, float] | None] = None  # [0, inf)
    citation: ClassVar[str] = _YEH

    def __init__(
        self, *, radius: float = 0.2, n_samples: int = 32, chunk: int | None = None
    ) -> None:
        self.radius = radius
        self.n_samples = n_samples
        self.chunk = chunk

    def check_params(self) -> None:
        """Refuse ``n_samples < 1``, a radius that is not a positive number, ``chunk < 1``."""
        positive(self.name, "n_samples", self.n_samples)
        positive_number(self.name, "radius", self.radius)
        if self.chunk is not None:
            positive(self.name, "chunk", self.chunk)

    def _reduce(self, changes: Tensor) -> Tensor:
        return changes.max(dim=1).values

    @_engine.engine_scope
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        if explainer is None or attribution.pixels is None or batch.images is None:
            raise CapabilityError(
                f"metric {self.name!r} needs an explainer, images and pixel attributions",
                plugin=self.name,
            )
        n, s, radius = len(batch), self.n_samples, float(self.radius)
        images = batch.images
        # each row from its own generator keyed by (seed, sample id): no batch dependence;
        # max and avg share the salt, so one global seed gives both the same draws
        seeds = row_seeds("robustness.sensitivity", base_seed(None), batch.ids)

        def noise(lo: int, hi: int) -> Tensor:
            out = torch.empty(
                (hi - lo, s, *images.shape[1:]), device=images.device, dtype=images.dtype
            )
            uniform_rows(seeds[lo:hi], out.shape[1:], out=out)
            # in place: the same numbers as (rand * 2 - 1) * radius, without two temporaries
            return out.mul_(2).sub_(1).mul_(radius)

        changes = drawn_relative_changes(
            model, explainer, batch, targets, attribution.pixels, s, noise, self.chunk
        )
        notes = {}
        if n >= 3 and s >= 2:
            half = s // 2
            agreement = rank_agreement(
                self._reduce(changes[:, :half]), self._reduce(changes[:, half:])
            )
            if agreement is not None:
                notes["run_agreement"] = agreement
        return Scores(values=self._reduce(changes), curves={"changes": changes}, notes=notes)


class MaxSensitivity(_Sensitivity):
    """Largest relative change of the explanation under uniform input noise; lower is better.

    ``max_s ||a(x + e_s) - a(x)|| / ||a(x)||`` over ``n_samples`` draws
    ``e_s ~ U[-radius, radius]`` per input element (an L-inf ball), with the
    explainer re-run for the same targets. This is ``quantus.MaxSensitivity``
    with its default uniform noise, difference and Frobenius norms (its
    ``lower_bound`` is ``radius``); given the same draws both agree to float
    rounding. Each row's draws come from its own generator, seeded from the
    sample id and one seed drawn from torch's global generator (seeded by the
    runner), so a row's value does not depend on the other rows of the batch.
    Perturbed copies are made for as many rows as fit in a chunk at a time
    and explained ``chunk`` rows per call. ``notes["run_agreement"]`` is the
    Spearman correlation across rows between the values of the first and
    second half of the draws (1 = rows ranked identically).

    Parameters
    ----------
    radius : float, default=0.2
        Half-width of the uniform noise (Quantus's default).
    n_samples : int, default=64
        Noise draws per row (Quantus: 200). The maximum is a tail statistic:
        measured two-seed differences per row were about 10 % at 32 draws and
        5 % at 64 (see the module notes).
    chunk : int or None, default=None
        Perturbed rows per explainer call; None sizes calls by input pixels
        (:func:`explain_chunk`: 2**17 per call on CPU, e.g. 128 images at
        32 x 32), halving on out-of-memory errors.

    References
    ----------
    Yeh, Hsieh, Suggala, Inouye, Ravikumar. "On the (In)fidelity and
    Sensitivity of Explanations." NeurIPS 2019.
    """

    name: ClassVar[str] = "robustness.max_sensitivity"
    version: ClassVar[str] = "2"  # 2: per-sample noise keyed by (seed, sample id)

    def __init__(
        self, *, radius: float = 0.2, n_samples: int = 64, chunk: int | None = None
    ) -> None:
        self.radius = radius
        self.n_samples = n_samples
        self.chunk = chunk


class AvgSensitivity(_Sensitivity):
    """Mean relative change of the explanation under uniform input noise; lower is better.

    As :class:`MaxSensitivity`, averaging over the draws instead of taking the
    maximum (``quantus.AvgSensitivity``).

    Parameters
    ----------
    radius : float, default=0.2
        Half-width of the uniform noise (Quantus's default).
    n_samples : int, default=32
        Noise draws per row (Quantus: 200); two seeds differed by 2-4 % per row.
    chunk : int or None, default=None
        Perturbed rows per explainer call; None sizes calls by input pixels
        (:func:`explain_chunk`: 2**17 per call on CPU, e.g. 128 images at
        32 x 32), halving on out-of-memory errors.

    References
    ----------
    Yeh, Hsieh, Suggala, Inouye, Ravikumar. "On the (In)fidelity and
    Sensitivity of Explanations." NeurIPS 2019.
    """

    name: ClassVar[str] = "robustness.avg_sensitivity"
    version: ClassVar[str] = "2"  # 2: per-sample noise keyed by (seed, sample id)

    def _reduce(self, changes: Tensor) -> Tensor:
        return changes.mean(dim=1)
