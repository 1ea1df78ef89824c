"""Third-party plugins that misbehave fail with messages naming the plugin, sample and shapes.

A model with the wrong number of logit columns, a dataset whose ``_get`` raises
or returns a sample of another shape, and an explainer returning NumPy arrays
must each fail their own cells with a harness error instead of a raw torch or
NumPy error (or, worse for the logits, silently produce scores).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor, nn

from harness.contracts import (
    Attribution,
    Batch,
    ClassificationMetric,
    Dataset,
    DatasetInfo,
    Explainer,
    ExplainerTags,
    FitContext,
    Modality,
    Sample,
    Task,
    TorchModel,
)
from harness.contracts.validation import check_attribution, check_logits, check_samples
from harness.errors import CapabilityError, ContractViolation, DataError
from harness.plugin_manager import Registries, registries_with
from harness.runner import RunOptions, run_benchmark


class Squares(Dataset):
    """Two-class 8x8 images; ``mode`` breaks one training sample on purpose."""

    name: ClassVar[str] = "mis.squares"

    def __init__(self, *, n: int = 8, mode: str = "ok", bad: int = 3) -> None:
        self.n = n
        self.mode = mode
        self.bad = bad

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            modality=Modality.IMAGE, task=Task.MULTICLASS, class_names=("a", "b"), image_size=(8, 8)
        )

    def splits(self) -> Mapping[str, Sequence[str]]:
        ids = [f"s{i}" for i in range(self.n)]
        return {"train": ids[: self.n // 2], "val": [], "test": ids[self.n // 2 :]}

    def _get(self, sample_id: str) -> Sample:
        i = int(sample_id[1:])
        image = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(i))
        image[0, 2:4, 2:4] += 2.0 * (i % 2)
        sample = Sample(id=sample_id, label=torch.tensor(i % 2), image=image)
        if i == self.bad:
            if self.mode == "oserror":
                raise OSError(f"cannot read image file of {sample_id}")
            if self.mode == "capability":
                raise CapabilityError("no images here", plugin=self.name)
            if self.mode == "image":
                return dataclasses.replace(sample, image=image[:, :-1])
            if self.mode == "label":
                return dataclasses.replace(sample, label=torch.tensor([0, 1]))
            if self.mode == "mask":
                return dataclasses.replace(sample, mask=torch.zeros(3, 8, 8, dtype=torch.bool))
        if self.mode == "mask":
            return dataclasses.replace(sample, mask=torch.zeros(2, 8, 8, dtype=torch.bool))
        return sample


class Wide(TorchModel):
    """A tiny CNN with ``extra`` more (or fewer, when negative) outputs than classes."""

    name: ClassVar[str] = "mis.wide"

    def __init__(
        self, *, extra: int = 0, epochs: int = 1, lr: float = 1e-2, batch_size: int = 4
    ) -> None:
        self.extra = extra
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size

    def _build_module(self, info: DatasetInfo) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(info.channels, 2, 3, padding=1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2, info.num_outputs + self.extra),
        )


class Accuracy(ClassificationMetric):
    name: ClassVar[str] = "mis.accuracy"

    def _compute(self, labels: Tensor, probs: Tensor, task: Task) -> float:
        return float((probs.argmax(1) == labels).double().mean())


class NumpyMaps(Explainer):
    """Returns its maps as NumPy arrays (``field`` says which)."""

    name: ClassVar[str] = "mis.numpy"
    tags: ClassVar[ExplainerTags] = ExplainerTags()

    def __init__(self, *, field: str = "pixels") -> None:
        self.field = field

    def _explain(self, model: Any, batch: Batch, targets: Tensor) -> Attribution:
        source = batch.images[:, 0] if self.field == "pixels" else batch.tokens  # type: ignore[index]
        return Attribution(**{self.field: source.float().numpy()})  # type: ignore[union-attr]


def _registries() -> Registries:
    plugins = {"datasets": [Squares], "models": [Wide], "metrics": [Accuracy]}
    return registries_with(plugins, distribution="mis-dist", version="0.1")


def _run(tmp_path: Path, body: str) -> list[dict[str, Any]]:
    spec = tmp_path / "mis.yaml"
    spec.write_text(
        "benchmark: mis\nmetrics: [mis.accuracy]\nbootstrap: {n: 10}\n" + textwrap.dedent(body)
    )
    options = RunOptions(spec_path=spec, output=tmp_path / "out", progress=False)
    run_benchmark(options, _registries())
    rows: list[dict[str, Any]] = json.loads((tmp_path / "out" / "results.json").read_text())
    return rows


def _model(extra: int = 0) -> Wide:
    model = Wide(extra=extra)
    model.build(Squares().info())
    model.expected_outputs = 2
    return model


# --- logits with the wrong number of classes ---------------------------------------------


def test_check_logits_compares_columns_with_num_outputs() -> None:
    model = _model()
    with pytest.raises(
        ContractViolation,
        match=r"model 'mis.wide' returned logits \(3, 5\); expected \(3, 2\) - one column per class",
    ):
        check_logits(torch.zeros(3, 5), 3, model=model)
    assert check_logits(torch.zeros(3, 2), 3, model=model).shape == (3, 2)
    model.expected_outputs = None  # not built by the runner: K is not known, any K passes
    assert check_logits(torch.zeros(3, 5), 3, model=model).shape == (3, 5)


@pytest.mark.parametrize(("extra", "k"), [(3, 5), (-1, 1)])
def test_training_stops_at_the_first_step_on_wrong_columns(extra: int, k: int) -> None:
    model = _model(extra)
    dataset = Squares()
    with pytest.raises(ContractViolation, match=rf"returned logits \(4, {k}\); expected \(4, 2\)"):
        model.fit(dataset, dataset.splits()["train"], FitContext(device=torch.device("cpu")))


def test_wrong_columns_fail_the_group_instead_of_scoring(tmp_path: Path) -> None:
    rows = _run(
        tmp_path,
        """
        dataset: {name: mis.squares}
        models:
          - {name: mis.wide, label: right}
          - {name: mis.wide, params: {extra: 3}, label: five}
        """,
    )
    by_model = {r["model"]: r for r in rows}
    assert by_model["right"]["status"] == "ok"
    five = by_model["five"]
    assert five["status"] == "failed" and five["value"] is None
    assert five["error"].startswith(
        "model five on mis.squares: ContractViolation: model 'mis.wide'"
    )
    assert "expected (4, 2) - one column per class" in five["error"]


# --- dataset failures ---------------------------------------------------------------------


def test_get_errors_become_data_errors_naming_dataset_and_sample() -> None:
    dataset = Squares(mode="oserror")
    with pytest.raises(
        DataError,
        match=r"dataset 'mis.squares': sample 's3' - expected it to load, got OSError: "
        r"cannot read image file of s3",
    ) as info:
        dataset.load(["s1", "s2", "s3"])
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(CapabilityError, match="no images here"):  # harness errors pass unchanged
        Squares(mode="capability").load(["s3"])


@pytest.mark.parametrize(
    ("mode", "field", "expected", "got"),
    [
        ("image", "image", (1, 8, 8), (1, 7, 8)),
        ("label", "label", (), (2,)),
        ("mask", "mask", (2, 8, 8), (3, 8, 8)),
    ],
)
def test_sample_of_another_shape_names_sample_field_and_shapes(
    mode: str, field: str, expected: tuple[int, ...], got: tuple[int, ...]
) -> None:
    dataset = Squares(mode=mode)
    message = (
        f"dataset 'mis.squares': sample 's3': {field} - expected shape {expected} "
        f"(that of sample 's1', the batch's first with a {field}), got shape {got}."
    )
    with pytest.raises(DataError) as info:
        dataset.load(["s1", "s2", "s3", "s4"])
    assert str(info.value) == message
    assert len(dataset.load(["s1", "s2", "s4"])) == 3


def test_a_missing_label_is_named() -> None:
    dataset = Squares(mode="label")
    broken = dataclasses.replace(dataset._get("s2"), label=None)
    with pytest.raises(DataError, match="sample 's2': label - expected a torch.Tensor"):
        check_samples([dataset._get("s1"), broken], ["s1", "s2"], dataset=dataset)


def test_dataset_errors_are_labelled_with_the_dataset(tmp_path: Path) -> None:
    rows = _run(
        tmp_path,
        """
        datasets:
          - {name: mis.squares, params: {mode: image, bad: 1}, label: shape}
          - {name: mis.squares, params: {mode: oserror, bad: 6}, label: unreadable}
        models: [mis.wide]
        """,
    )
    errors = {r["dataset"]: r["error"] for r in rows}
    assert {r["status"] for r in rows} == {"failed"}
    assert errors["shape"].startswith(
        "dataset shape: DataError: dataset 'mis.squares': sample 's1'"
    )
    assert "image - expected shape (1, 8, 8)" in errors["shape"]
    assert errors["unreadable"] == (
        "dataset unreadable: DataError: dataset 'mis.squares': sample 's6' - expected it to load, "
        "got OSError: cannot read image file of s6"
    )


# --- explainers returning NumPy arrays ----------------------------------------------------


@pytest.mark.parametrize(("field", "what"), [("pixels", "pixel"), ("tokens", "token")])
def test_numpy_attributions_are_contract_violations(field: str, what: str) -> None:
    batch = Squares().load(["s0", "s1"])
    batch = dataclasses.replace(batch, tokens=torch.ones(2, 5, dtype=torch.long))
    explainer = NumpyMaps(field=field)
    out = explainer._explain(_model(), batch, torch.zeros(2, dtype=torch.long))
    with pytest.raises(
        ContractViolation,
        match=rf"explainer 'mis.numpy' returned {what} attributions of type ndarray; "
        r"expected a torch.Tensor",
    ):
        check_attribution(out, batch, explainer=explainer)
