"""The sanity metrics re-explain a few rows per call, never the whole explain set at once."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import harness
from harness.chunking import explain_chunk
from harness.contracts import Attribution, Batch, Explainer, Model
from harness.metrics.sanity import _common

SIZE = 128  # 1 x 128 x 128 inputs: explain_chunk's CPU budget of 2**17 values gives 8 rows
METRICS = [
    ("sanity.random_logit", {"similarity": "spearman", "agreement": False}),  # one draw
    ("sanity.data_randomisation", {"similarity": "spearman"}),
    ("sanity.cascading_randomisation", {}),
    ("sanity.independent_randomisation", {}),
]


class RecordingGradient(Explainer):
    """Input x gradient that records how many rows each call explains."""

    name = "test.recording_gradient"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def _explain(self, model: Model, batch: Batch, targets: Tensor) -> Attribution:
        self.calls.append(len(batch))
        assert batch.images is not None
        x = batch.images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            picked = model.logits(batch.with_images(x)).gather(1, targets.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(picked, x)
        return Attribution(pixels=(grad * x).detach().sum(dim=1))


@pytest.fixture(scope="module")
def case(toy_factory):
    setup = toy_factory(n=20, size=SIZE, classes=3, seed=5)
    setup.model.label_randomised = setup.model  # a twin for data randomisation
    yield setup
    setup.model.label_randomised = None


@pytest.mark.parametrize(("name", "params"), METRICS, ids=[m for m, _ in METRICS])
def test_calls_stay_within_the_chunk_and_values_equal_one_call(
    case, monkeypatch, name: str, params: dict
) -> None:
    metric = harness.get_metric(name, **params)
    explainer = RecordingGradient()
    chunked = metric.score(
        case.model, case.batch, case.targets, case.attribution, explainer=explainer
    )
    assert explainer.calls and max(explainer.calls) <= 8 < len(case.batch)
    assert len(explainer.calls) % 3 == 0  # 20 rows as 7 + 7 + 6, once per re-explained model
    monkeypatch.setattr(_common, "explain_chunk", lambda device, shape, total: total)
    whole = metric.score(
        case.model, case.batch, case.targets, case.attribution, explainer=RecordingGradient()
    )
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)


def test_the_chunk_is_the_adaptive_explain_chunk() -> None:
    assert explain_chunk(torch.device("cpu"), (1, SIZE, SIZE), 20) == 7
