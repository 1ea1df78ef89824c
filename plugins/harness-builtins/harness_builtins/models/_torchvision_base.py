"""Shared base of the torchvision CNNs: channels, head, local weights, freezing, hooks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from harness.contracts import Dataset, DatasetInfo, FitContext, ModelTags, TorchModel
from harness.errors import PluginError, did_you_mean
from harness_builtins.models import _weights

log = logging.getLogger(__name__)


def _keep_eval(module: nn.Module, args: tuple[Any, ...]) -> None:
    """Forward pre-hook that keeps a frozen BatchNorm on its running statistics."""
    module.eval()


def make_relus_out_of_place(module: nn.Module) -> int:
    """Turn every in-place ReLU of ``module`` into an out-of-place one; return how many."""
    count = 0
    for sub in module.modules():
        if isinstance(sub, nn.ReLU | nn.ReLU6 | nn.LeakyReLU | nn.ELU) and sub.inplace:
            sub.inplace = False
            count += 1
    return count


class TorchvisionCNN(TorchModel):
    """A torchvision classification CNN adapted to the dataset's channels and outputs.

    Subclasses name the torchvision builder (``arch``), the first convolution,
    the classifier head and the default CAM layer. Every in-place ReLU is made
    out-of-place, so forward and backward hooks (Grad-CAM, LRP) see intact tensors.

    Parameters
    ----------
    epochs : int
        Training epochs of :meth:`fit` (Adam, shuffled batches).
    lr : float
        Learning rate.
    batch_size : int
        Training batch size.
    weights : str or None
        None for random initialisation; ``"imagenet"`` for torchvision's cached
        ImageNet checkpoint under ``torch.hub.get_dir()/checkpoints`` (never
        downloaded); or the path of a local state dict file. The first
        convolution is adapted to the input channels (3-channel kernels are
        summed for 1 channel) and a head of the wrong size is re-initialised.
    freeze : sequence of str
        Layer-name prefixes whose parameters stay fixed during training, e.g.
        ``["conv1", "bn1", "layer1", "layer2"]``; their BatchNorm layers keep
        their running statistics.
    cam_layer : str or None
        Dotted name of the layer for CAM methods; None uses the class default.
    """

    #: After training (or loading a trained state) the weights take channels-last
    #: memory order (activations follow), the layout oneDNN's convolutions prefer on
    #: CPU: input gradients 1.2-1.3x and eager forwards 1.3-1.4x faster at 128 px on
    #: this 2-core CPU (docs/benchmarks.md), the same values up to float rounding.
    #: Training always runs in torch's default layout: a few epochs from random
    #: weights amplify rounding differences into a different model (training
    #: channels-last was 1.24-1.33x faster, but moved the quickstart's Grad-CAM
    #: pointing game from 0.88 to 0.48), so the trained weights never depend on the
    #: layout. An execution detail, not a parameter (a parameter would enter the
    #: model's cache key and seed): set it to False in a subclass (or on an instance
    #: used outside a run) to keep torch's layout throughout.
    channels_last: bool = True
    arch: ClassVar[str]
    weights_url: ClassVar[str]
    first_conv: ClassVar[str]
    head: ClassVar[str]

    def __init__(
        self,
        *,
        epochs: int = 5,
        lr: float = 1e-3,
        batch_size: int = 32,
        weights: str | None = None,
        freeze: Sequence[str] = (),
        cam_layer: str | None = None,
    ) -> None:
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weights = weights
        self.freeze = freeze
        self.cam_layer = cam_layer

    @classmethod
    def conformance_instances(cls, tmp_dir: Path) -> list[TorchvisionCNN]:
        """Return small, fast instances for the conformance kit."""
        return [cls(epochs=1, batch_size=8)]

    def get_tags(self) -> ModelTags:
        """Return the class tags, with ``target_layer`` set to ``cam_layer`` when given."""
        return replace(self.tags, target_layer=self.cam_layer or self.tags.target_layer)

    def fit(self, dataset: Dataset, ids: Sequence[str], context: FitContext) -> None:
        """Train with :meth:`TorchModel.fit` (default layout), then recompute BatchNorm statistics.

        BatchNorm running averages lag far behind weights that Adam moves fast
        during a short training; evaluated with them, a model that classifies
        its training batches perfectly can be at chance. One extra pass over
        the training images, without gradients, replaces them by the exact
        statistics of the final weights ("precise BN", Wu and Johnson 2021).
        Then the weights take the inference layout (``channels_last``).
        """
        self.module.to(memory_format=torch.contiguous_format)
        super().fit(dataset, ids, context)
        self._recalibrate_batchnorm(dataset, ids, context)
        self._inference_layout()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a trained state (strict), then take the inference layout."""
        super().load_state_dict(state)
        self._inference_layout()

    def _inference_layout(self) -> None:
        """Channels-last weights when ``channels_last`` (trained weights stay as they are)."""
        if self.channels_last:
            self.module.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def _recalibrate_batchnorm(
        self, dataset: Dataset, ids: Sequence[str], context: FitContext
    ) -> None:
        norms = [
            m
            for m in self.module.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.track_running_stats
            and all(p.requires_grad for p in m.parameters())
        ]
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the pass
        self.module.train()
        batch_size = int(getattr(self, "batch_size", 32))
        for batch in dataset.iter_batches(ids, batch_size):
            self._logits(batch.to(context.device))
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        self.module.eval()

    def _architecture(self, num_outputs: int) -> nn.Module:
        """Return the torchvision architecture with ``num_outputs`` outputs, random weights."""
        import torchvision

        builder = getattr(torchvision.models, self.arch)
        module: nn.Module = builder(weights=None, num_classes=num_outputs)
        return module

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        if info.channels < 1 or info.num_outputs < 1:
            raise PluginError(
                f"model {self.name!r}: expected at least 1 input channel and 1 output, got "
                f"{info.channels} channel(s) and {info.num_outputs} output(s).",
                plugin=self.name,
            )
        module = self._architecture(info.num_outputs)
        self._set_input_channels(module, info.channels)
        if self.weights is not None:
            path = _weights.resolve_path(self.name, str(self.weights), self.arch, self.weights_url)
            state = _weights.load_state(self.name, path)
            _weights.load_into(self.name, module, state, self.first_conv, self.head, path)
            log.info("%s: loaded weights from %s", self.name, path)
        make_relus_out_of_place(module)
        self._freeze(module)
        return module

    def _set_input_channels(self, module: nn.Module, channels: int) -> None:
        parent_name, _, attr = self.first_conv.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        old = getattr(parent, attr)
        if not isinstance(old, nn.Conv2d):
            raise PluginError(
                f"model {self.name!r}: {self.first_conv} is not a Conv2d", plugin=self.name
            )
        if old.in_channels == channels:
            return
        new = nn.Conv2d(
            channels,
            old.out_channels,
            kernel_size=old.kernel_size,  # type: ignore[arg-type]  # tuple of two ints
            stride=old.stride,  # type: ignore[arg-type]
            padding=old.padding,  # type: ignore[arg-type]
            bias=old.bias is not None,
        )
        setattr(parent, attr, new)

    def _freeze(self, module: nn.Module) -> None:
        prefixes = [str(p) for p in self.freeze]
        if not prefixes:
            return

        def frozen(name: str) -> bool:
            return any(frozen_by(p, name) for p in prefixes)

        names = [n for n, _ in module.named_parameters()]
        for prefix in prefixes:
            if not any(frozen_by(prefix, n) for n in names):
                layers = [
                    n for n, m in module.named_modules() if n and any(True for _ in m.parameters())
                ]
                raise PluginError(
                    f"model {self.name!r}: freeze entry {prefix!r} matches no parameter - expected "
                    f"a layer-name prefix.{did_you_mean(prefix, layers)}",
                    plugin=self.name,
                )
        for name, param in module.named_parameters():
            if frozen(name):
                param.requires_grad_(False)
        for name, sub in module.named_modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm) and frozen(name):
                sub.register_forward_pre_hook(_keep_eval)
        log.info("%s: froze %s", self.name, ", ".join(prefixes))


def frozen_by(prefix: str, name: str) -> bool:
    """Return whether the parameter ``name`` lies under the layer ``prefix``."""
    return name == prefix or name.startswith(prefix + ".")
