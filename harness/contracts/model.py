"""Model contract, capability protocols and a generic torch training base."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, final, runtime_checkable

import torch
from torch import Tensor, nn

from harness.contracts.component import Component
from harness.contracts.data import Batch, DatasetInfo
from harness.contracts.tags import ModelTags, Task
from harness.contracts.validation import check_labels, check_logits
from harness.device import exact_cuda
from harness.errors import CapabilityError, PluginError

if TYPE_CHECKING:
    from harness.contracts.dataset import Dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitContext:
    """What the runner hands a model to train: device, seed and a progress callback."""

    device: torch.device
    seed: int = 0
    progress: Callable[[int, int], None] | None = None


@runtime_checkable
class SupportsTorchModule(Protocol):
    """A model backed by a ``torch.nn.Module``."""

    module: nn.Module


@runtime_checkable
class SupportsTargetLayer(Protocol):
    """A model that names a convolutional layer for CAM methods."""

    def target_layer(self) -> nn.Module:
        """Return the layer whose activations CAM methods weight."""
        ...


@runtime_checkable
class SupportsRandomisation(Protocol):
    """A model whose layers can be re-initialised for sanity checks."""

    def randomisable_layers(self) -> list[tuple[str, nn.Module]]:
        """Return (name, layer) pairs with ``reset_parameters``, output layer first."""
        ...


class Model(Component, abc.ABC):
    """Base class of models; subclasses implement building, fitting and ``_logits``.

    ``build(info)`` creates the architecture for a dataset (loading pretrained
    weights from a local path when asked), ``fit`` trains it, ``state_dict`` /
    ``load_state_dict`` move it through the checkpoint cache (tensors only,
    loaded with ``weights_only=True``). ``logits`` is differentiable for models
    tagged ``differentiable``.
    """

    tags: ClassVar[ModelTags] = ModelTags()
    task: Task = Task.MULTICLASS
    #: The same architecture trained on permuted labels; set by the runner only
    #: for metrics that declare ``Need.LABEL_RANDOMISED_MODEL`` (data randomisation).
    label_randomised: Model | None = None
    #: The number of columns ``logits`` must have (classes or labels of the
    #: dataset); set by the runner right after ``build``. None: not checked.
    expected_outputs: int | None = None

    def get_tags(self) -> ModelTags:
        """Return this instance's tags (class tags unless a parameter changes them)."""
        return self.tags

    @abc.abstractmethod
    def build(self, info: DatasetInfo) -> None:
        """Create the architecture for ``info``; sets ``self.task``."""

    @abc.abstractmethod
    def fit(self, dataset: Dataset, ids: Sequence[str], context: FitContext) -> None:
        """Train on the samples ``ids`` of ``dataset``."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Tensor]:
        """Return the trained state as tensors (no pickled objects)."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore a state returned by :meth:`state_dict`."""

    @abc.abstractmethod
    def to(self, device: torch.device | str) -> Model:
        """Move the model to ``device`` and return it."""

    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """The device the model computes on."""

    @abc.abstractmethod
    def _logits(self, batch: Batch) -> Tensor:
        """Return raw scores (N, K) for ``batch`` (already on the model's device)."""

    @final
    def logits(self, batch: Batch) -> Tensor:
        """Return checked raw scores (N, K); differentiable for differentiable models.

        K must equal ``expected_outputs`` when it is set.
        """
        out = self._logits(batch.to(self.device))
        return check_logits(out, len(batch), model=self)

    @final
    def predict_proba(self, batch: Batch) -> Tensor:
        """Return probabilities: softmax for multi-class, sigmoid for multi-label."""
        with torch.inference_mode():
            return self.probabilities(self.logits(batch))

    def probabilities(self, logits: Tensor) -> Tensor:
        """Map logits to probabilities according to the task."""
        if self.task is Task.MULTILABEL:
            return torch.sigmoid(logits)
        return torch.softmax(logits, dim=-1)


def _resolve(module: nn.Module, dotted: str, owner: str) -> nn.Module:
    try:
        return module.get_submodule(dotted)
    except AttributeError as exc:
        names = [n for n, _ in module.named_modules() if n]
        from harness.errors import did_you_mean

        raise PluginError(  # a misspelt cam_layer is a configuration error, not a skip
            f"model {owner!r}: cam_layer - no layer named {dotted!r}.{did_you_mean(dotted, names)}",
            plugin=owner,
        ) from exc


class TorchModel(Model, abc.ABC):
    """A model wrapping an ``nn.Module``, with a generic supervised training loop.

    Subclasses implement ``_build_module(info)`` and may override ``_forward``.
    They declare the keyword parameters ``epochs``, ``lr`` and ``batch_size``
    used by :meth:`fit`, and may declare ``cam_layer`` (a dotted layer name) to
    override the default CAM layer.
    """

    module: nn.Module

    @abc.abstractmethod
    def _build_module(self, info: DatasetInfo) -> nn.Module:
        """Return the architecture for ``info`` (pretrained weights loaded locally)."""

    def build(self, info: DatasetInfo) -> None:
        """Create ``self.module`` on the CPU, in eval mode."""
        self.task = info.task
        self.module = self._build_module(info).eval()

    def _forward(self, batch: Batch) -> Tensor:
        if batch.images is None:
            raise CapabilityError(f"model {self.name!r} needs images", plugin=self.name)
        out: Tensor = self.module(batch.images)
        return out

    def _logits(self, batch: Batch) -> Tensor:
        return self._forward(batch)

    @property
    def device(self) -> torch.device:
        """The device of the module's first parameter (CPU if it has none)."""
        param = next(self.module.parameters(), None)
        return torch.device("cpu") if param is None else param.device

    def to(self, device: torch.device | str) -> TorchModel:
        """Move the module to ``device`` (a CUDA device is made exact: :func:`~harness.device.exact_cuda`)."""
        device = torch.device(device)
        exact_cuda(device)
        self.module.to(device)
        return self

    def state_dict(self) -> dict[str, Tensor]:
        """Return the module's state dict, detached on the CPU."""
        return {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load a state dict into the module (strict)."""
        self.module.load_state_dict(state)
        self.module.eval()

    def target_layer(self) -> nn.Module:
        """Return the CAM layer: the ``cam_layer`` parameter or the tag default."""
        name = getattr(self, "cam_layer", None) or self.get_tags().target_layer
        if not name:
            raise CapabilityError(f"model {self.name!r} declares no target layer", plugin=self.name)
        return _resolve(self.module, name, self.name)

    def randomisable_layers(self) -> list[tuple[str, nn.Module]]:
        """Return layers with ``reset_parameters``, output layer first (cascading order)."""
        layers = [
            (n, m)
            for n, m in self.module.named_modules()
            if n and hasattr(m, "reset_parameters") and any(True for _ in m.parameters(False))
        ]
        return layers[::-1]

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Cross-entropy (multi-class) or BCE masked to known labels (multi-label)."""
        if self.task is Task.MULTILABEL:
            known = labels >= 0
            if not bool(known.any()):
                return logits.sum() * 0.0
            target = labels.clamp(min=0).to(logits.dtype)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
            return loss[known].mean()
        return nn.functional.cross_entropy(logits, labels)

    def check_params(self) -> None:
        """Check the training settings :meth:`fit` reads: epochs >= 0, batch_size >= 1, lr > 0."""
        epochs = getattr(self, "epochs", 1)
        batch_size = getattr(self, "batch_size", 32)
        for param, value, least in (("epochs", epochs, 0), ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise PluginError(
                    f"model {self.name!r}: {param} - expected an integer >= {least}, got {value!r}.",
                    plugin=self.name,
                )
        lr = getattr(self, "lr", 1e-3)
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
            raise PluginError(
                f"model {self.name!r}: lr - expected a positive number, got {lr!r}.",
                plugin=self.name,
            )

    def fit(self, dataset: Dataset, ids: Sequence[str], context: FitContext) -> None:
        """Train with Adam for ``self.epochs`` epochs over shuffled batches."""
        self.check_params()
        epochs = int(getattr(self, "epochs", 1))
        batch_size = int(getattr(self, "batch_size", 32))
        lr = float(getattr(self, "lr", 1e-3))
        if not ids:
            raise PluginError(f"model {self.name!r}: no training samples", plugin=self.name)
        torch.manual_seed(context.seed)
        self.to(context.device)
        params = [p for p in self.module.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr)
        steps_per_epoch = -(-len(ids) // batch_size)
        self.module.train()
        for epoch in range(epochs):
            total = 0.0
            for step, batch in enumerate(
                dataset.iter_batches(ids, batch_size, shuffle=True, seed=context.seed + epoch)
            ):
                batch = batch.to(context.device)
                check_labels(batch, self.task, self.expected_outputs, dataset=dataset)
                opt.zero_grad(set_to_none=True)
                loss = self.loss(self.logits(batch), batch.labels)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += float(loss.detach())
                if context.progress is not None:
                    context.progress(epoch * steps_per_epoch + step + 1, epochs * steps_per_epoch)
            log.info(
                "%s epoch %d/%d loss %.4f", self.name, epoch + 1, epochs, total / steps_per_epoch
            )
        self.module.eval()
