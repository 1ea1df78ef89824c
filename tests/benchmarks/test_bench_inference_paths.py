"""Explainers' inference paths, each against the path it replaced, in one process.

- Perturbation explainers (LIME, occlusion) with their no-gradient forwards
  through the engine's verified graph (``harness.inference``) against eager
  forwards (``_engine.configure(freeze=False)``), on the ResNet18 setup.
- The random logit test of LIME in a run (the explainer repeats the
  attribution's draws, ``harness.draws.explainer_seed``) with the attribution's
  forwards remembered against recomputing them (``configure(cache=False)``).
- The built-in ResNet18 plugin with channels-last weights (its default after
  training) against torch's default layout: an input gradient and an eager
  forward pass at 128 px.

Both paths run alternately, best of N; the row's "ours s" is the new path and
its note the old path's time over it. No Quantus counterpart.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from harness_builtins.models.torchvision_cnn import ResNet18

from harness import get_explainer, get_metric
from harness.chunking import explain_chunks
from harness.contracts import DatasetInfo, Modality, Task
from harness.draws import explainer_seed
from harness.metrics import _engine

pytestmark = pytest.mark.benchmark


def _record(bench: Any, setup: str, what: str, cmp: Any, old: str) -> None:
    """Record the new path (``cmp.ours``) against the old one (``cmp.quantus``) in one row."""
    helpers = inspect.getmodule(type(bench))
    diff = helpers.max_abs_diff(cmp.ours, cmp.quantus.double().numpy())
    bench.record(
        helpers.BenchRow(
            setup=setup, metric=what, ours_s=cmp.ours_s, quantus_s=None, forwards=0,
            floor_s=0.0, max_abs_diff=diff, threads=torch.get_num_threads(),
            note=f"{old}: {cmp.quantus_s / cmp.ours_s:.2f}x slower; no Quantus counterpart",
        )
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("captum.lime", {"n_samples": 96, "perturbations_per_eval": 64, "segmentation": "grid"}),
        ("captum.occlusion", {"window": 8, "stride": 8, "perturbations_per_eval": 64}),
    ],
)
def test_perturbation_explainers_through_the_graph(
    bench: Any, resnet18_setup: Any, name: str, params: dict[str, Any]
) -> None:
    setup = resnet18_setup
    explainer = get_explainer(name, **params)
    rows = len(setup.batch)

    def graph() -> torch.Tensor:
        torch.manual_seed(0)
        (part,), _ = explain_chunks(setup.model, explainer, setup.batch, setup.targets, rows)
        return part.pixels

    def eager() -> torch.Tensor:
        with _engine.configure(freeze=False):
            return graph()

    graph()  # builds the graph (a one-off per model and input shape)
    cmp = bench.interleaved(graph, eager, repeats=2, before=lambda: None)
    _record(bench, setup.name, f"explain {name} (graph)", cmp, "eager forwards")


def test_random_logit_of_lime_from_remembered_forwards(bench: Any, resnet18_setup: Any) -> None:
    setup = resnet18_setup
    lime = get_explainer("captum.lime", n_samples=96, perturbations_per_eval=64)
    metric = get_metric("sanity.random_logit")
    rows = len(setup.batch)
    with explainer_seed(7):  # the attribution, as the explain stage makes it
        (attribution,), _ = explain_chunks(setup.model, lime, setup.batch, setup.targets, rows)

    def remembered() -> torch.Tensor:
        with explainer_seed(7):
            return metric.evaluate(
                setup.model, setup.batch, setup.targets, attribution, explainer=lime
            ).values

    def recomputed() -> torch.Tensor:
        with _engine.configure(cache=False):
            return remembered()

    cmp = bench.interleaved(remembered, recomputed, repeats=2, before=lambda: None)
    _record(bench, setup.name, "random logit of LIME (remembered)", cmp, "recomputed forwards")


def test_channels_last_resnet18(bench: Any) -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 1, 128, 128)
    info = DatasetInfo(Modality.IMAGE, Task.MULTICLASS, ("a", "b"), image_size=(128, 128))
    models = {}
    for channels_last in (True, False):
        torch.manual_seed(0)
        model = ResNet18()
        model.channels_last = channels_last
        model.build(info)
        model.load_state_dict(model.state_dict())  # trained state loaded: inference layout
        models[channels_last] = model.module

    def input_gradient(net: torch.nn.Module) -> Any:
        def grad() -> torch.Tensor:
            xx = x.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(net(xx)[:, 0].sum(), xx)
            return g

        return grad

    def eager_forward(net: torch.nn.Module) -> Any:
        def forward() -> torch.Tensor:
            with torch.no_grad():
                out: torch.Tensor = net(x)
                return out

        return forward

    for what, make in (("input gradient", input_gradient), ("eager forward", eager_forward)):
        new, old = make(models[True]), make(models[False])
        new()
        old()
        cmp = bench.interleaved(new, old, repeats=3, before=lambda: None)
        _record(bench, "resnet18-128px", f"{what} (channels-last)", cmp, "default layout")
