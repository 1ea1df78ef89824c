"""Local pretrained weights for torchvision CNNs: locate, load safely, adapt shapes.

Nothing here downloads: ImageNet weights are read from torchvision's cache
file under ``torch.hub.get_dir()/checkpoints`` when present, any other file
from its path, always with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from torch import Tensor, nn

from harness.errors import PluginError

log = logging.getLogger(__name__)

IMAGENET = "imagenet"
_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def imagenet_path(url: str) -> Path:
    """Return where torchvision caches the checkpoint published at ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def resolve_path(owner: str, weights: str, arch: str, url: str) -> Path:
    """Return the existing file for ``weights`` or raise one sentence saying how to get it."""
    if weights == IMAGENET:
        path = imagenet_path(url)
        if not path.is_file():
            raise PluginError(
                f"model {owner!r}: ImageNet weights not found at {path} - download them on a "
                f'connected machine with `python -c "import torchvision; torchvision.models.{arch}'
                f"(weights='IMAGENET1K_V1')\"` and copy {path.name} from that machine's "
                f"torch hub checkpoints folder to {path.parent} "
                "(nothing is downloaded at run time).",
                plugin=owner,
            )
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise PluginError(
            f"model {owner!r}: weights file not found at {path.resolve()} - expected a state dict "
            "saved with torch.save(module.state_dict(), path); set `weights` to an existing file, "
            f"to {IMAGENET!r} for torchvision's cached ImageNet weights, or to null for random "
            "initialisation.",
            plugin=owner,
        )
    return path


def load_state(owner: str, path: Path) -> dict[str, Tensor]:
    """Load a state dict of tensors from ``path`` (``weights_only=True``, on the CPU)."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise PluginError(
            f"model {owner!r}: cannot read weights file {path} - expected a tensor state dict "
            f"loadable with torch.load(weights_only=True), got error: {exc}",
            plugin=owner,
        ) from exc
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise PluginError(
            f"model {owner!r}: weights file {path} - expected a dict of parameter name to tensor, "
            f"got {type(raw).__name__}.",
            plugin=owner,
        )
    state = {}
    for key, value in raw.items():
        key = key.removeprefix("module.")
        match = _DENSENET_KEY.match(key)
        state[match.group(1) + match.group(2) if match else key] = value
    return state


def adapt_first_conv(weight: Tensor, channels: int) -> Tensor:
    """Map a first-conv kernel (O, C0, kh, kw) to ``channels`` inputs.

    The kernel is summed over its input channels and shared equally by the new
    ones, so a constant image gives the same response: for one channel this is
    the usual sum of the RGB filters.
    """
    if weight.shape[1] == channels:
        return weight
    return weight.sum(dim=1, keepdim=True).repeat(1, channels, 1, 1) / channels


def load_into(
    owner: str, module: nn.Module, state: dict[str, Tensor], first_conv: str, head: str, path: Path
) -> None:
    """Load ``state`` into ``module``, adapting the first conv and dropping a mismatched head."""
    target = module.state_dict()
    conv_key = f"{first_conv}.weight"
    if conv_key in state:
        state[conv_key] = adapt_first_conv(state[conv_key], target[conv_key].shape[1])
    head_keys = [k for k in (f"{head}.weight", f"{head}.bias") if k in state and k in target]
    if any(state[k].shape != target[k].shape for k in head_keys):
        log.info(
            "%s: re-initialising head %s for %d outputs", owner, head, target[head_keys[0]].shape[0]
        )
        for k in head_keys:
            del state[k]
    mismatched = [
        f"{k} {tuple(v.shape)} (expected {tuple(target[k].shape)})"
        for k, v in state.items()
        if k in target and v.shape != target[k].shape
    ]
    optional = (f"{head}.weight", f"{head}.bias")
    missing = [
        k
        for k in target
        if k not in state and k not in optional and not k.endswith("num_batches_tracked")
    ]
    unexpected = [k for k in state if k not in target]
    if mismatched or missing or unexpected:
        details = "; ".join(
            f"{what}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            for what, keys in (
                ("shape mismatch", mismatched),
                ("missing", missing),
                ("unexpected", unexpected),
            )
            if keys
        )
        raise PluginError(
            f"model {owner!r}: weights file {path} does not fit the architecture - {details}.",
            plugin=owner,
        )
    module.load_state_dict(state, strict=False)
