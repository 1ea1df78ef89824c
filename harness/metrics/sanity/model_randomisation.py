"""Model parameter randomisation tests (Adebayo et al., 2018): cascading and independent."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from harness.contracts.metric import Scores
from harness.contracts.tags import MetricKind, MetricTags, Modality, Need
from harness.errors import CapabilityError
from harness.metrics import _engine
from harness.metrics._correlation import spearman_rows
from harness.metrics._params import choice, integer, optional_positive
from harness.metrics.sanity._common import (
    MapComparison,
    features,
    prepare,
    rank_maps,
    reexplain,
    ssim_rows,
    valid_features,
)
from harness.substeps import within

if TYPE_CHECKING:
    from harness.contracts.data import Attribution, Batch
    from harness.contracts.explainer import Explainer
    from harness.contracts.model import Model

log = logging.getLogger(__name__)

_GROUP_VALUES = 2**21
_ADEBAYO = "Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018"
_TAGS = MetricTags(
    kind=MetricKind.SANITY,
    needs=frozenset({Need.EXPLAINER, Need.RANDOMISABLE, Need.PIXEL_ATTRIBUTIONS}),
    modalities=frozenset({Modality.IMAGE, Modality.IMAGE_TEXT}),
)


def reset_layer(layer: nn.Module, seed: int) -> None:
    """Re-initialise ``layer`` as ``reset_parameters`` does on the CPU under ``torch.manual_seed(seed)``.

    The weights are the same on every device: a layer elsewhere (e.g. CUDA,
    whose generator gives other numbers, and depends on the GPU for large
    tensors) is re-initialised as a CPU copy whose state is then loaded into
    it. Only torch's CPU generator is seeded, inside ``fork_rng``, so the
    global random state is unchanged (``torch.manual_seed`` would also
    initialise every other backend, about a millisecond per call).
    """
    if all(t.device.type == "cpu" for t in layer.state_dict().values()):
        _reset_on_cpu(layer, seed)
    else:
        twin = copy.deepcopy(layer).cpu()
        _reset_on_cpu(twin, seed)
        layer.load_state_dict(twin.state_dict())


def _reset_on_cpu(layer: nn.Module, seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        layer.reset_parameters()  # type: ignore[operator]


def _compare(
    reference: Tensor, maps: list[Tensor], absolute: bool, valid: Tensor | None
) -> tuple[Tensor, ...]:
    """Return (N, G) Spearman, its defined mask and SSIM of G layers' maps vs the reference.

    Token scores (``valid`` given) have no SSIM: only the first two are returned.
    """
    stack = torch.stack(maps).to(reference.device)
    ranks = rank_maps(reference, absolute), rank_maps(stack, absolute)
    rho, defined = spearman_rows(*ranks, valid=valid)
    if valid is not None:
        return rho.T, defined.T
    ssim = ssim_rows(prepare(reference, absolute), prepare(stack, absolute))
    return rho.T, defined.T, ssim.T


class _ModelRandomisation(MapComparison):
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
        over: str = "pixels",
        pad_token: int = 0,
    ) -> None:
        self.max_layers = max_layers
        self.order = order
        self.similarity = similarity
        self.absolute = absolute
        self.seed = seed
        self.over = over
        self.pad_token = pad_token

    def check_params(self) -> None:
        """Refuse ``max_layers < 1``, an unknown order, similarity or ``over``, a non-int seed."""
        optional_positive(self.name, "max_layers", self.max_layers)
        choice(self.name, "order", self.order, ("top_down", "bottom_up"))
        super().check_params()
        integer(self.name, "seed", self.seed)

    def _layers(self, model: Model) -> list[tuple[str, nn.Module]]:
        layers = getattr(model, "randomisable_layers", None)
        if not model.get_tags().randomisable or layers is None:
            raise CapabilityError(
                f"metric {self.name!r} needs a randomisable model; {model.name!r} is not",
                plugin=self.name,
            )
        out: list[tuple[str, nn.Module]] = list(layers())
        if self.order == "bottom_up":
            out = out[::-1]
        out = out if self.max_layers is None else out[: self.max_layers]
        if not out:
            raise CapabilityError(
                f"{self.name}: randomisable layers - expected at least one, got none "
                f"(model {model.name!r}, max_layers={self.max_layers!r}).",
                plugin=self.name,
            )
        return out

    @_engine.engine_scope
    def _score(
        self,
        model: Model,
        batch: Batch,
        targets: Tensor,
        attribution: Attribution,
        explainer: Explainer | None,
    ) -> Scores:
        reference = features(attribution, self.over)
        if explainer is None or reference is None:
            raise CapabilityError(
                f"metric {self.name!r} needs an explainer and {self.over} attributions",
                plugin=self.name,
            )
        valid = valid_features(batch, self.over, self.pad_token)
        originals = self._layers(model)
        # the caller's model is never modified; a label-randomised twin is shared, not copied
        twin = model.label_randomised
        shared: dict[int, object] = {} if twin is None or twin is model else {id(twin): twin}
        randomised = copy.deepcopy(model, shared)
        layers = self._layers(randomised)
        # maps are compared in groups of layers, ~2**21 values each (one batched op per group)
        group = max(1, _GROUP_VALUES // reference.numel())
        pending: list[Tensor] = []
        parts: list[tuple[Tensor, ...]] = []
        for i, (name, layer) in enumerate(layers):
            reset_layer(layer, self.seed + 1)
            with within(i * len(batch), len(layers) * len(batch)):  # rows explained, all layers
                pending.append(reexplain(randomised, explainer, batch, targets, self.over))  # type: ignore[arg-type]
            if not self._cascading:  # independent: back to the caller's (untouched) weights
                layer.load_state_dict(originals[i][1].state_dict())
            log.debug("%s: layer %s randomised", self.name, name)
            if len(pending) == group or i == len(layers) - 1:
                parts.append(_compare(reference, pending, self.absolute, valid))
                pending = []
        rho, defined, *ssim = (torch.cat(p, dim=1) for p in zip(*parts, strict=True))
        curves = {"spearman": rho} | ({"ssim": ssim[0]} if ssim else {})
        values = curves[self.similarity].mean(dim=1)
        notes = {
            "layers": float(len(layers)),
            "undefined_spearman_fraction": float((~defined).double().mean()),
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
    A constant map against a varying one has no rank correlation and counts
    as 0; two constant maps count as 1 (nothing changed); both are reported in
    ``notes["undefined_spearman_fraction"]``.

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
    over : {"pixels", "tokens"}, default="pixels"
        Compare pixel maps, or token scores of text and image+text models
        (Spearman over the document's tokens, no SSIM curve; needs
        ``similarity="spearman"``).
    pad_token : int, default=0
        With ``over="tokens"``: the padding id, left out of the comparison.

    References
    ----------
    Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim. "Sanity Checks for
    Saliency Maps." NeurIPS 2018.
    """

    name: ClassVar[str] = "sanity.cascading_randomisation"
    version: ClassVar[str] = "2"  # 2: two constant maps score 1 (Spearman), not 0
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
    over : {"pixels", "tokens"}, default="pixels"
        Compare pixel maps, or token scores of text and image+text models
        (Spearman over the document's tokens, no SSIM curve; needs
        ``similarity="spearman"``).
    pad_token : int, default=0
        With ``over="tokens"``: the padding id, left out of the comparison.

    References
    ----------
    Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim. "Sanity Checks for
    Saliency Maps." NeurIPS 2018.
    """

    name: ClassVar[str] = "sanity.independent_randomisation"
    version: ClassVar[str] = "2"  # 2: two constant maps score 1 (Spearman), not 0
    _cascading: ClassVar[bool] = False
