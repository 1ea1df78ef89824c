"""LRP through Zennit: the EpsilonPlusFlat and EpsilonGammaBox composites."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from torch import Tensor

from harness.errors import PluginError
from harness_builtins.explainers._common import check_positive
from harness_builtins.explainers.propagation._common import ZennitLRP

if TYPE_CHECKING:
    from zennit.canonizers import Canonizer
    from zennit.core import Composite

_REFERENCES = (
    "Bach et al., On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise "
    "Relevance Propagation, PLoS ONE 2015; Montavon et al., Layer-Wise Relevance Propagation: "
    "An Overview, 2019; Anders et al., Software for Dataset-wide XAI: From Local Explanations "
    "to Global Insights with Zennit, CoRelAy, and ViRelAy, 2021"
)


class LRPEpsilonPlusFlat(ZennitLRP):
    """LRP with the flat rule on the first layer, z+ on convolutions, epsilon on dense layers.

    Zennit's ``EpsilonPlusFlat`` composite with the canonizer of the model's
    architecture (ResNet, VGG, or a sequential BatchNorm merge; DenseNet is
    refused with a CapabilityError). Returns (N, C, H, W) relevance whose sum
    approximates the explained logit.

    Parameters
    ----------
    epsilon : float, default=1e-6
        Stabiliser of the epsilon rule on fully connected layers.

    References
    ----------
    S. Bach et al., "On Pixel-Wise Explanations for Non-Linear Classifier Decisions
    by Layer-Wise Relevance Propagation", PLoS ONE 2015. G. Montavon et al.,
    "Layer-Wise Relevance Propagation: An Overview", 2019. C. J. Anders et al.,
    "Software for Dataset-wide XAI: From Local Explanations to Global Insights with
    Zennit, CoRelAy, and ViRelAy", 2021.
    """

    name: ClassVar[str] = "zennit.lrp_epsilon_plus_flat"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _REFERENCES

    def __init__(self, *, epsilon: float = 1e-6) -> None:
        self.epsilon = epsilon

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[LRPEpsilonPlusFlat]:
        """Return small instances for the conformance kit."""
        return [cls()]

    def check_params(self) -> None:
        """Check the epsilon rule's stabiliser."""
        check_positive(self.name, "epsilon", self.epsilon)

    def _composite(self, images: Tensor, canonizers: list[Canonizer]) -> Composite:
        from zennit.composites import EpsilonPlusFlat

        return EpsilonPlusFlat(epsilon=float(self.epsilon), canonizers=canonizers)


class LRPEpsilonGammaBox(ZennitLRP):
    """LRP with the z-box rule on the first layer, gamma on convolutions, epsilon on dense layers.

    Zennit's ``EpsilonGammaBox`` composite with the canonizer of the model's
    architecture. The z-box rule needs the lowest and highest possible input
    values: ``low`` / ``high`` when given, otherwise each image's own minimum
    and maximum (so a row's relevance does not depend on the rest of the batch).

    Parameters
    ----------
    epsilon : float, default=1e-6
        Stabiliser of the epsilon rule on fully connected layers.
    gamma : float, default=0.25
        Weight of positive contributions in the gamma rule.
    low, high : float or None, default=None
        Input bounds of the z-box rule; None takes each image's min / max.

    References
    ----------
    G. Montavon et al., "Layer-Wise Relevance Propagation: An Overview", 2019.
    C. J. Anders et al., "Software for Dataset-wide XAI", 2021.
    """

    name: ClassVar[str] = "zennit.lrp_epsilon_gamma_box"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _REFERENCES

    def __init__(
        self,
        *,
        epsilon: float = 1e-6,
        gamma: float = 0.25,
        low: float | None = None,
        high: float | None = None,
    ) -> None:
        self.epsilon = epsilon
        self.gamma = gamma
        self.low = low
        self.high = high

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[LRPEpsilonGammaBox]:
        """Return small instances for the conformance kit."""
        return [cls(), cls(gamma=0.5, low=-3.0, high=3.0)]

    def check_params(self) -> None:
        """Check epsilon, gamma and the z-box bounds (low below high when both are given)."""
        check_positive(self.name, "epsilon", self.epsilon)
        check_positive(self.name, "gamma", self.gamma)
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise PluginError(
                f"explainer {self.name!r}: low, high - expected low < high, got "
                f"{self.low!r} and {self.high!r}.",
                plugin=self.name,
            )

    def _composite(self, images: Tensor, canonizers: list[Canonizer]) -> Composite:
        from zennit.composites import EpsilonGammaBox

        dims = tuple(range(1, images.dim()))
        low = (
            images.amin(dim=dims, keepdim=True) if self.low is None else images.new_tensor(self.low)
        )
        high = (
            images.amax(dim=dims, keepdim=True)
            if self.high is None
            else images.new_tensor(self.high)
        )
        return EpsilonGammaBox(
            low=low.expand_as(images).clone(),
            high=high.expand_as(images).clone(),
            epsilon=float(self.epsilon),
            gamma=float(self.gamma),
            canonizers=canonizers,
        )
