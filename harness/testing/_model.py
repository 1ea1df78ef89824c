"""Model checks: build, logits and probabilities, fit, checkpoints, gradients and layers."""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from harness.contracts import (
    Batch,
    Dataset,
    FitContext,
    Modality,
    Model,
    SupportsRandomisation,
    SupportsTargetLayer,
    SupportsTorchModule,
    Task,
)
from harness.testing._common import Check, close, fail, shape
from harness.testing._select import device, fixture_batch, fixture_combos, fixture_dataset

_PROTOTYPE: dict[tuple[object, ...], Model] = {}


def combos(model: Model) -> list[tuple[Modality, Task]]:
    """Return the fixture (modality, task) pairs ``model``'s tags accept, preferred first."""
    tags = model.get_tags()
    found = fixture_combos(tags.modalities, tags.tasks)
    if not found:
        fail(
            model,
            "fixtures",
            "tags.modalities x tags.tasks",
            "a pair with a fixture dataset",
            sorted((m.value, t.value) for m in tags.modalities for t in tags.tasks),
        )
    return found


def built(
    model: Model, modality: Modality, task: Task, *, fresh: bool = False
) -> tuple[Model, Dataset]:
    """Return a clone of ``model`` built on the fixture dataset, on the fixture device.

    Building large architectures is slow, so the last prototype is kept and
    deep-copied; ``fresh=True`` builds anew (with a different RNG state).
    """
    dataset = fixture_dataset(modality, task)
    key = (type(model), model.params_hash(), modality, task)
    if not fresh and key in _PROTOTYPE:
        return copy.deepcopy(_PROTOTYPE[key]), dataset
    out = model.clone()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1 if fresh else 0)
        out.build(dataset.info())
    out.to(device())
    if not fresh:
        _PROTOTYPE.clear()
        _PROTOTYPE[key] = out
        return copy.deepcopy(out), dataset
    return out, dataset


def _primary(model: Model) -> tuple[Model, Dataset, Batch]:
    modality, task = combos(model)[0]
    instance, dataset = built(model, modality, task)
    return instance, dataset, fixture_batch(dataset)


def check_model_predict(model: Model) -> None:
    """On every fixture it accepts: finite (N, K) logits on its device, probabilities in [0, 1]."""
    name = "check_model_predict"
    for modality, task in combos(model):
        where = f"on {modality.value} / {task.value} data"
        instance, dataset = built(model, modality, task)
        info, batch = dataset.info(), fixture_batch(dataset)
        if instance.task is not info.task:
            fail(model, name, f"model.task after build {where}", info.task, instance.task)
        with torch.no_grad():
            logits = instance.logits(batch)
        n, k = len(batch), info.num_outputs
        if shape(logits) != (n, k) or not logits.is_floating_point():
            fail(
                model,
                name,
                f"logits {where}",
                f"float ({n}, {k})",
                f"{logits.dtype} {shape(logits)}",
            )
        if logits.device != instance.device:
            fail(model, name, f"logits device {where}", instance.device, logits.device)
        if task is Task.MULTICLASS and k > 1 and _looks_like_probabilities(logits):
            fail(
                model,
                name,
                f"logits {where}",
                "raw scores (the harness applies softmax / sigmoid itself; drop the softmax "
                "at the end of forward)",
                "rows that are all >= 0 and sum to 1, i.e. probabilities",
            )
        probs = instance.predict_proba(batch)
        if shape(probs) != (n, k) or not bool(((probs >= 0) & (probs <= 1)).all()):
            fail(model, name, f"predict_proba {where}", f"({n}, {k}) values in [0, 1]", probs)
        if task is Task.MULTICLASS and not close(probs.sum(dim=1), torch.ones(n), atol=1e-5):
            fail(model, name, f"predict_proba row sums {where}", "1", probs.sum(dim=1).tolist())


def _looks_like_probabilities(logits: Tensor) -> bool:
    """Whether every row is non-negative and sums to 1 (a softmax left in ``forward``)."""
    x = logits.detach().double()
    return bool((x >= 0).all()) and close(
        x.sum(dim=1), torch.ones(len(x), dtype=x.dtype), atol=1e-5
    )


def check_model_batch_independence(model: Model) -> None:
    """In eval mode, a row's logits do not depend on the other rows of its batch."""
    instance, _, batch = _primary(model)
    with torch.no_grad():
        together = instance.logits(batch)
        alone = torch.cat([instance.logits(batch.index([i])) for i in range(len(batch))])
    if not close(together, alone, atol=1e-5):
        module = getattr(instance, "module", None)
        training = (
            [n or "(root)" for n, m in module.named_modules() if m.training]
            if isinstance(module, nn.Module)
            else []
        )
        hint = (
            f" (modules in training mode after build: {', '.join(training[:3])})"
            if training
            else ""
        )
        fail(
            model,
            "check_model_batch_independence",
            "logits of rows scored alone",
            "the rows scored in one batch",
            f"a max difference of {float((together - alone).abs().max()):.3g}{hint}",
        )


def _state_copy(model: Model, check: str) -> dict[str, Tensor]:
    state = model.state_dict()
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        fail(model, check, "state_dict()", "a dict of str -> torch.Tensor", type(state).__name__)
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def quick(model: Model) -> Model:
    """Return ``model`` with ``epochs=1`` when it has that parameter (no need to converge)."""
    return model.clone().set_params(epochs=1) if "epochs" in model.param_names() else model


def check_model_fit(model: Model) -> None:
    """Check that ``fit`` on a tiny dataset runs, changes the state, leaves logits repeatable."""
    name = "check_model_fit"
    instance, dataset, batch = _primary(quick(model))
    before = _state_copy(instance, name)
    instance.fit(dataset, dataset.splits()["train"], FitContext(device=device(), seed=0))
    after = _state_copy(instance, name)
    same = before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    if same:
        fail(model, name, "state_dict after fit", "a changed state", "the state before fit")
    with torch.no_grad():
        first, second = instance.logits(batch), instance.logits(batch)
    if not bool(torch.isfinite(first).all()) or not torch.equal(first, second):
        fail(
            model,
            name,
            "logits after fit",
            "finite and identical on a repeat (eval mode)",
            "NaN or different values",
        )


def check_model_state_round_trip(model: Model) -> None:
    """State survives torch.save + torch.load(weights_only=True) into a freshly built instance."""
    name = "check_model_state_round_trip"
    instance, dataset, batch = _primary(model)
    state = _state_copy(instance, name)
    if not state:
        if "epochs" in instance.param_names():
            instance.set_params(epochs=1)
        instance.fit(dataset, dataset.splits()["train"], FitContext(device=device(), seed=0))
        state = _state_copy(instance, name)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    modality, task = combos(model)[0]
    other, _ = built(model, modality, task, fresh=True)
    other.load_state_dict(loaded)
    other.to(instance.device)
    with torch.no_grad():
        want, got = instance.logits(batch), other.logits(batch)
    if not close(want, got, rtol=1e-5, atol=1e-6):
        fail(
            model,
            name,
            "logits after a checkpoint round trip",
            "the original logits",
            f"a max difference of {float((want - got).abs().max()):.3g}",
        )


def check_model_differentiable(model: Model) -> None:
    """Check for finite, non-zero gradients (w.r.t. images if any) when tagged differentiable."""
    name = "check_model_differentiable"
    instance, _, batch = _primary(model)
    if batch.images is None:
        logits = instance.logits(batch)
        if not logits.requires_grad:
            fail(model, name, "logits", "a tensor that requires grad", "no autograd graph")
        return
    x = batch.images.detach().clone().requires_grad_(True)
    logits = instance.logits(batch.with_images(x))
    if not logits.requires_grad:
        fail(model, name, "logits of images requiring grad", "a differentiable output", "no graph")
    (grad,) = torch.autograd.grad(logits.sum(), x)
    if not bool(torch.isfinite(grad).all()) or not bool(grad.abs().sum() > 0):
        fail(model, name, "d logits / d images", "finite and not all zero", "NaN or zeros")


def check_model_target_layer(model: Model) -> None:
    """Check that the tagged target layer is a submodule with (N, C, h, w) activations."""
    name = "check_model_target_layer"
    instance, _, batch = _primary(model)
    if not isinstance(instance, SupportsTargetLayer) or not isinstance(
        instance, SupportsTorchModule
    ):
        fail(
            model, name, "model", "module and target_layer() (tags.target_layer is set)", "neither"
        )
    layer = instance.target_layer()
    if not isinstance(layer, nn.Module) or not any(m is layer for m in instance.module.modules()):
        fail(model, name, "target_layer()", "a submodule of model.module", type(layer).__name__)
    seen: list[Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        with torch.no_grad():
            instance.logits(batch)
    finally:
        handle.remove()
    if (
        not seen
        or not isinstance(seen[0], Tensor)
        or seen[0].dim() != 4
        or seen[0].shape[0] != len(batch)
    ):
        got = shape(seen[0]) if seen and isinstance(seen[0], Tensor) else "no tensor output"
        fail(model, name, "target layer activations", f"({len(batch)}, C, h, w)", got)


def check_model_randomisable_layers(model: Model) -> None:
    """``randomisable_layers()`` lists named submodules whose reset changes the logits."""
    name = "check_model_randomisable_layers"
    instance, _, batch = _primary(model)
    if not isinstance(instance, SupportsRandomisation) or not isinstance(
        instance, SupportsTorchModule
    ):
        fail(
            model,
            name,
            "model",
            "module and randomisable_layers() (tagged randomisable)",
            "neither",
        )
    layers = instance.randomisable_layers()
    if not layers:
        fail(model, name, "randomisable_layers()", "at least one layer", "an empty list")
    for layer_name, layer in layers:
        if instance.module.get_submodule(layer_name) is not layer or not hasattr(
            layer, "reset_parameters"
        ):
            fail(
                model,
                name,
                f"layer {layer_name!r}",
                "the submodule of that name with reset_parameters",
                type(layer).__name__,
            )
    with torch.no_grad():
        before = instance.logits(batch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(123)
            layers[0][1].reset_parameters()  # type: ignore[operator]
        after = instance.logits(batch)
    if torch.equal(before, after):
        fail(
            model,
            name,
            f"logits after resetting {layers[0][0]!r}",
            "changed logits",
            "the same logits",
        )


def checks(model: Model) -> Iterator[tuple[str, Check]]:
    """Yield the model checks that apply to ``model``'s tags."""
    tags = model.get_tags()
    selected = [
        check_model_predict,
        check_model_batch_independence,
        check_model_fit,
        check_model_state_round_trip,
    ]
    if tags.differentiable:
        selected.append(check_model_differentiable)
    if tags.target_layer is not None:
        selected.append(check_model_target_layer)
    if tags.randomisable:
        selected.append(check_model_randomisable_layers)
    for check in selected:
        yield check.__name__, check  # type: ignore[misc]
