"""Group setup stages: splits, trained checkpoint, test predictions, classification scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial

import torch
from torch import Tensor

from harness.contracts import ClassificationMetric, Dataset, FitContext, Model
from harness.draws import seed_everything
from harness.errors import ContractViolation, DataError
from harness.pipeline.context import (
    Computed,
    RunContext,
    cached,
    key_seed,
    ok_row,
    record,
)
from harness.planner import Cell
from harness.stages import stage_key
from harness.stats import bootstrap_statistic


@dataclass
class Trained:
    """A trained model with the keys of the stages that made it."""

    dkey: str
    mkey: str
    dataset: Dataset
    model: Model
    splits: dict[str, list[str]]
    model_key: str
    predictions_key: str
    labels: Tensor
    probs: Tensor
    ids: list[str]


def _splits(ctx: RunContext, dataset: Dataset) -> tuple[str, dict[str, list[str]]]:
    key = stage_key("splits", dataset, seed=ctx.spec.seed)

    def compute() -> Computed:
        splits = {k: list(v) for k, v in dataset.splits().items()}
        for name, ids in splits.items():
            odd = next((i for i in ids if not isinstance(i, str)), None)
            if odd is not None:
                raise DataError(
                    f"dataset {dataset.name!r}: split {name!r} holds sample id {odd!r} of type "
                    f"{type(odd).__name__} - expected str ids (the ones its _get accepts)"
                )
        for name in ("train", "test"):
            if not splits.get(name):
                raise DataError(
                    f"dataset {dataset.name!r}: split {name!r} is empty or missing; got splits {sorted(splits)}"
                )
        return None, splits

    _, splits, _ = cached(ctx, key, f"splits of {dataset.name}", compute)
    return key, splits


def predict(
    model: Model, dataset: Dataset, ids: Sequence[str], batch_size: int = 64
) -> tuple[Tensor, Tensor]:
    """Return (labels, probabilities) of ``ids`` on the model's device, batched."""
    labels, probs = [], []
    for batch in dataset.iter_batches(ids, batch_size):
        probs.append(model.predict_proba(batch).cpu())
        labels.append(batch.labels.cpu())
    return torch.cat(labels), torch.cat(probs)


def model_stage_key(model: Model, splits_key: str, seed: int, device: torch.device) -> str:
    """Return the checkpoint's stage key; a non-CPU device is part of it.

    Weights trained (and explanations computed) on a GPU differ from the CPU's
    (other random generators, other kernels), so cached artefacts of one device
    never stand in for another's; every later stage's key follows.
    """
    extra = {} if device.type == "cpu" else {"device": device.type}
    return stage_key("model", model, [splits_key], seed, extra)


def train(ctx: RunContext, dkey: str, mkey: str) -> Trained:
    """Run the splits, checkpoint and prediction stages of one group."""
    info, dataset = ctx.plugins.datasets[dkey]
    splits_key, splits = _splits(ctx, dataset)
    model = ctx.plugins.models[mkey].clone()
    model_key = model_stage_key(model, splits_key, ctx.spec.seed, ctx.device)
    seed_everything(key_seed(model_key))  # initial weights must not depend on what ran before
    model.build(info)
    model.expected_outputs = info.num_outputs  # logits are checked against it from the first step
    ctx.progress.stage(f"training {mkey} on {dkey}")

    def fit() -> Computed:
        steps = partial(ctx.progress.substep, unit="steps")
        model.fit(dataset, splits["train"], FitContext(ctx.device, ctx.spec.seed, progress=steps))
        return model.state_dict(), None

    state, _, _ = cached(ctx, model_key, f"training {mkey}", fit)
    model.load_state_dict(state)
    model.to(ctx.device)
    pred_key = stage_key("predictions", None, [model_key], ctx.spec.seed, {"split": "test"})
    ctx.progress.stage(f"predicting {mkey} on {dkey}")

    def run_predict() -> Computed:
        labels, probs = predict(model, dataset, splits["test"])
        return {"labels": labels, "probs": probs}, splits["test"]

    preds, ids, _ = cached(ctx, pred_key, f"predictions of {mkey}", run_predict)
    return Trained(
        dkey,
        mkey,
        dataset,
        model,
        splits,
        model_key,
        pred_key,
        preds["labels"],
        preds["probs"],
        list(ids),
    )


def score_classification(ctx: RunContext, trained: Trained, cell: Cell) -> None:
    """Score one classification metric on the test predictions, with a bootstrap interval."""
    metric = ctx.plugins.metrics[cell.metric]
    if not isinstance(metric, ClassificationMetric):
        raise ContractViolation(
            f"metric {cell.metric!r} has no explainer but is not a ClassificationMetric"
        )
    boot = ctx.spec.bootstrap  # part of the key: the cached summary holds the interval
    key = stage_key(
        "score", metric, [trained.predictions_key], ctx.spec.seed, {"bootstrap": asdict(boot)}
    )
    task = trained.model.task

    def compute() -> Computed:
        stat = metric.resample_statistic(trained.labels, trained.probs, task)
        s = bootstrap_statistic(
            len(trained.ids), stat, n_boot=boot.n, confidence=boot.confidence, seed=key_seed(key)
        )
        return None, {"value": s.value, "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n}

    _, s, seconds = cached(ctx, key, f"{cell.metric} of {cell.model}", compute)
    record(ctx, ok_row(ctx, cell, s, seconds=seconds, stage_key=key))
