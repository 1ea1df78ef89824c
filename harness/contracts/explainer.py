"""Explainer contract: ``explain()`` validates, ``_explain()`` computes."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar, final

from torch import Tensor

from harness.contracts.component import Component
from harness.contracts.data import Attribution, Batch
from harness.contracts.tags import ExplainerTags
from harness.contracts.validation import check_attribution, require_explainer_needs

if TYPE_CHECKING:
    from harness.contracts.model import Model


class Explainer(Component, abc.ABC):
    """Base class for explanation methods; subclasses implement ``_explain`` only.

    ``targets`` holds one class (multi-class) or label index (multi-label) per
    row. The returned attribution has one row per batch row, on the model's
    device: ``pixels`` (N, H, W) for image inputs, ``tokens`` (N, L) for token
    inputs, ``sentences`` for generated-text explanations.
    """

    tags: ClassVar[ExplainerTags] = ExplainerTags()

    def get_tags(self) -> ExplainerTags:
        """Return this instance's tags (class tags unless a parameter changes them)."""
        return self.tags

    @final
    def explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        """Explain ``model``'s output for ``targets`` on ``batch``."""
        self.check_params()
        require_explainer_needs(self, model)
        batch = batch.to(model.device)
        targets = targets.to(model.device)
        out = self._explain(model, batch, targets)
        return check_attribution(out, batch, explainer=self)

    @abc.abstractmethod
    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        """Compute the attribution; inputs are already on the model's device."""
