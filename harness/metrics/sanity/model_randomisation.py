"""Model parameter randomisation tests (Adebayo et al., 2018): cascading and independent."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from harness.contracts.metric import ExplanationMetric, Scores
from harness.contracts.tags import MetricKind, MetricTags, Modality, Need
from harness.errors import CapabilityError, PluginError
from harness.metrics.sanity._common import prepare, rank_rows, spearman_rows, ssim_rows

if TYPE_CHECKING:
    from harness.contracts.data import Attribution, Batch
    from harness.contracts.explainer import Explainer
    from harness.contracts.model import Model

log = logging.getLogger(__name__)

_ADEBAYO = "Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018"
_TAGS = MetricTags(
    kind=MetricKind.SANITY,
    needs=frozenset({Need.EXPLAINER, Need.RANDOMISABLE, Need.PIXEL_ATTRIBUTIONS}),
    modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
)


def _reset(layer: nn.Module, seed: int, device: torch.device) -> None:
    """Re-initialise ``layer`` as under ``torch.manual_seed(seed)``; the global RNG is restored.

    Seeds only the generators in use (the CPU one, and CUDA's for a CUDA model):
    ``torch.manual_seed`` also initialises every other backend lazily, which
    costs about a millisecond per call.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        layer.reset_parameters()  # type: ignore[operator]


class _ModelRandomisation(ExplanationMetric):
    """Shared loop; ``_cascading`` chooses cascading or independent randomisation."""

    tags: ClassVar[MetricTags] = _TAGS
    higher_is_better: ClassVar[bool] = False
    bounds: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)
    citation: ClassVar[str] = _ADEBAYO
    _cascading: ClassVar[bool] = True

    def __init__(
        self,
        *,
        max_layers: int | None = None,
        order: str = "top_down",
        similarity: str = "spearman",
        absolute: bool = True,
        seed: int = 42,
    ) -> None:
        self.max_layers = max_layers
        self.order = order
        self.similarity = similarity
        self.absolute = absolute
        self.seed = seed

    def _layers(self, model: Model) -> list[tuple[str, nn.Module]]:
        if self.order not in ("top_down", "bottom_up"):
            raise PluginError(
                f"{self.name}: order={self.order!r} - expected 'top_down' or 'bottom_up'.",
                plugin=self.name,
            )
        if self.similarity not in ("spearman", "ssim"):
            raise PluginError(
                f"{self.name}: similarity={self.similarity!r} - expected 'spearman' or 'ssim'.",
                plugin=self.name,
            )
        layers = getattr(model, "randomisable_layers", None)
        if not model.get_tags().randomisable or layers is None:
            raise CapabilityError(
                f"metric {self.name!r} needs a randomisable model; {model.name!r} is not",
                plugin=self.name,
            )
        out: list[tuple[str, nn.Module]] = list(layers())
        if self.order == "bottom_up":
            out = out[::-1]
        return out if self.max_layers is None else out[: int(self.max_layers)]

    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        if explainer is None or attribution.pixels is None:
            raise CapabilityError(
                f"metric {self.name!r} needs an explainer and pixel attributions", plugin=self.name
            )
        randomised = copy.deepcopy(model)  # the caller's model is never modified
        layers = self._layers(randomised)
        reference = prepare(attribution.pixels, self.absolute)
        reference_ranks = rank_rows(reference.flatten(1))
        spearman, ssim, undefined = [], [], 0
        for name, layer in layers:
            # independent: keep the layer's trained state (a copy; it may alias on the CPU)
            trained = None if self._cascading else copy.deepcopy(layer.state_dict())
            _reset(layer, self.seed + 1, model.device)
            maps = prepare(explainer.explain(randomised, batch, targets).pixels, self.absolute)  # type: ignore[arg-type]
            if trained is not None:
                layer.load_state_dict(trained)
            rho, defined = spearman_rows(reference, maps, reference_ranks)
            undefined += int((~defined).sum())
            spearman.append(rho)
            ssim.append(ssim_rows(reference, maps))
            log.debug("%s: layer %s randomised", self.name, name)
        curves = {"spearman": torch.stack(spearman, dim=1), "ssim": torch.stack(ssim, dim=1)}
        values = curves[self.similarity].mean(dim=1)
        notes = {
            "layers": float(len(layers)),
            "undefined_spearman_fraction": undefined / max(1, len(layers) * len(batch)),
        }
        return Scores(values=values, curves=curves, notes=notes)


class CascadingRandomisation(_ModelRandomisation):
    """Cascading model parameter randomisation, scored per layer (lower is better).

    A deep copy of the model has its layers re-initialised one after another
    from the output layer down (``order="top_down"``), accumulating; after
    each layer the explainer re-explains the same batch and targets, and each
    row's new map is compared with its original map by Spearman rank
    correlation and SSIM (both curves are returned, (N, L)). The value is the
    mean over layers of ``similarity``: an explanation that stays similar while
    the model is destroyed fails the sanity check. Maps are compared as
    absolute values by default (Adebayo et al. report both). Layers come from
    ``model.randomisable_layers()``; each is re-initialised with
    ``reset_parameters()`` under ``torch.manual_seed(seed + 1)``, as
    ``quantus.MPRT(seed=seed)`` does, so both produce the same random weights.
    A constant map has no rank correlation; it counts as 0 (reported in
    ``notes["undefined_spearman_fraction"]``).

    Parameters
    ----------
    max_layers : int or None, default=None
        Randomise only the first ``max_layers`` layers in ``order``.
    order : {"top_down", "bottom_up"}, default="top_down"
        Output layer first (the paper's cascade) or input layer first.
    similarity : {"spearman", "ssim"}, default="spearman"
        The curve whose mean is the value.
    absolute : bool, default=True
        Compare absolute maps.
    seed : int, default=42
        Seed of the re-initialisation.

    References
    ----------
    Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim. "Sanity Checks for
    Saliency Maps." NeurIPS 2018.
    """

    name: ClassVar[str] = "sanity.cascading_randomisation"
    version: ClassVar[str] = "1"
    _cascading: ClassVar[bool] = True


class IndependentRandomisation(_ModelRandomisation):
    """Independent model parameter randomisation: one layer at a time, others intact.

    As :class:`CascadingRandomisation`, except that the copy is restored to the
    trained weights before each layer is re-initialised, so each point of the
    curve measures one layer alone.

    Parameters
    ----------
    max_layers : int or None, default=None
        Randomise only the first ``max_layers`` layers in ``order``.
    order : {"top_down", "bottom_up"}, default="top_down"
        The order of the layers in the curve.
    similarity : {"spearman", "ssim"}, default="spearman"
        The curve whose mean is the value.
    absolute : bool, default=True
        Compare absolute maps.
    seed : int, default=42
        Seed of the re-initialisation.

    References
    ----------
    Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim. "Sanity Checks for
    Saliency Maps." NeurIPS 2018.
    """

    name: ClassVar[str] = "sanity.independent_randomisation"
    version: ClassVar[str] = "1"
    _cascading: ClassVar[bool] = False
