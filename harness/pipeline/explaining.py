"""Explanation stages: the explain set, attributions per explainer, explanation scores."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor

from harness.chunking import explain_chunks
from harness.contracts import (
    Attribution,
    Batch,
    Explainer,
    ExplanationMetric,
    GenerationMetric,
    Need,
    Task,
)
from harness.draws import explainer_seed
from harness.errors import ContractViolation, SpecError
from harness.pipeline.context import (
    Computed,
    RunContext,
    cached,
    key_seed,
    ok_row,
    record,
    skip_cell,
)
from harness.pipeline.randomisation import attach_label_randomised
from harness.pipeline.training import Trained
from harness.planner import Cell
from harness.spec.schema import ExplainSpec
from harness.stages import stage_key
from harness.stats import bootstrap_mean, bootstrap_statistic
from harness.substeps import reporting

GALLERY_ROWS = 4
GALLERY_TOKENS = 80

log = logging.getLogger(__name__)


@dataclass
class ExplainSet:
    """The (sample, target) rows every explainer explains, loaded as one batch."""

    key: str
    batch: Batch
    targets: Tensor


def select_targets(
    policy: str, task: Task, labels: Tensor, probs: Tensor | None, k: int
) -> list[tuple[int, int]]:
    """Return (row, target) pairs for a target policy.

    ``label``: the true class (multi-class) or every positive label (multi-label);
    ``predicted``: the arg-max class; ``positive``: like ``label`` but, for
    multi-class data, only rows whose class is not the first (normal) class;
    ``top_k``: the ``k`` highest-scoring outputs.
    """
    n = len(labels)
    if policy in ("predicted", "top_k"):
        if probs is None:
            raise ValueError(f"target policy {policy!r} needs predictions")
        width = 1 if policy == "predicted" else min(k, probs.shape[1])
        top = probs.topk(width, dim=1).indices
        return [(i, int(t)) for i in range(n) for t in top[i]]
    if task is Task.MULTILABEL:
        return [(int(i), int(j)) for i, j in (labels == 1).nonzero().tolist()]
    pairs = [(i, int(labels[i])) for i in range(n)]
    return [p for p in pairs if p[1] != 0] if policy == "positive" else pairs


def explain_set(ctx: RunContext, trained: Trained) -> ExplainSet:
    """Choose the rows to explain: a seeded subset of the split and its targets."""
    spec = ctx.spec.explain
    if spec.split not in trained.splits:
        raise SpecError(
            ctx.spec.file,
            "explain.split",
            f"dataset has no split {spec.split!r}; splits: {sorted(trained.splits)}",
        )
    ids = trained.splits[spec.split]
    if 0 < len(ids) < spec.n:
        log.warning(
            "%s: explain.n=%d but split %r of dataset %r has %d rows; explaining all %d",
            ctx.spec.file, spec.n, spec.split, trained.dkey, len(ids), len(ids),
        )  # fmt: skip
    perm = torch.randperm(len(ids), generator=torch.Generator().manual_seed(ctx.spec.seed))
    chosen = [ids[i] for i in perm[: spec.n].tolist()]
    batch = trained.dataset.load(chosen)
    key = stage_key("explain_set", None, [trained.model_key], ctx.spec.seed, _chosen_by(spec))

    def compute() -> Computed:
        needs_probs = spec.targets in ("predicted", "top_k")
        probs = trained.model.predict_proba(batch).cpu() if needs_probs else None
        rows = select_targets(spec.targets, trained.model.task, batch.labels.cpu(), probs, spec.k)
        return None, {"rows": [r for r, _ in rows], "targets": [t for _, t in rows]}

    _, data, _ = cached(ctx, key, "explain set", compute)
    rows = torch.as_tensor(data["rows"], dtype=torch.long)
    return ExplainSet(key, batch.index(rows), torch.as_tensor(data["targets"], dtype=torch.long))


def _chosen_by(spec: ExplainSpec) -> dict[str, Any]:
    """Return the explain settings that decide the rows and targets (the explain set key).

    ``batch_size`` (rows per explainer call) and ``k`` (read only with
    ``targets: top_k``) change no value, so they stay at their defaults in the
    key: every seed below it (stochastic explainers, metric draws, bootstrap)
    is the same whatever they are set to, and existing caches stay valid.
    """
    chosen = asdict(spec)
    chosen["batch_size"] = ExplainSpec.batch_size
    if spec.targets != "top_k":
        chosen["k"] = ExplainSpec.k
    return chosen


def _concat(parts: list[Attribution]) -> Attribution:
    def cat(name: str) -> Tensor | None:
        values = [getattr(p, name) for p in parts]
        return None if any(v is None for v in values) else torch.cat([v.cpu() for v in values])

    sentences = [p.sentences for p in parts]
    joined = None if any(s is None for s in sentences) else tuple(x for s in sentences for x in s)  # type: ignore[union-attr]
    return Attribution(pixels=cat("pixels"), tokens=cat("tokens"), sentences=joined)


def attribution_seed(key: str) -> int:
    """Seed of the attribution stage ``key``, given again to the metrics that re-explain it.

    Inside :func:`harness.draws.explainer_seed` with this seed, a stochastic
    explainer draws what it drew for the attribution (common random numbers).
    """
    return key_seed(key)


def attribute(
    ctx: RunContext, trained: Trained, eset: ExplainSet, ekey: str
) -> tuple[str, Attribution]:
    """Explain every row of the explain set with one explainer, in batches.

    Batches of ``explain.batch_size`` rows; a batch that runs out of memory is
    halved and retried (:func:`harness.chunking.explain_chunks`).
    """
    explainer = ctx.plugins.explainers[ekey]
    key = stage_key("attributions", explainer, [trained.model_key, eset.key], ctx.spec.seed)
    ctx.progress.stage(f"explaining {trained.model.name} with {ekey}")
    size = ctx.spec.explain.batch_size

    def compute() -> Computed:
        rows = partial(ctx.progress.substep, unit="rows")
        parts, _ = explain_chunks(
            trained.model, explainer, eset.batch, eset.targets, size, progress=rows
        )
        out = _concat(parts) if parts else Attribution(pixels=torch.zeros(0))
        tensors = {
            k: v for k, v in (("pixels", out.pixels), ("tokens", out.tokens)) if v is not None
        }
        return tensors, {"sentences": list(out.sentences) if out.sentences is not None else None}

    tensors, data, _ = cached(
        ctx, key, f"attributions of {ekey}", compute, seed=attribution_seed(key)
    )
    sentences = data.get("sentences") if data else None
    attribution = Attribution(
        pixels=tensors.get("pixels"),
        tokens=tensors.get("tokens"),
        sentences=tuple(sentences) if sentences is not None else None,
    )
    _store_gallery(ctx, trained, eset, ekey, attribution)
    return key, attribution


def _store_gallery(
    ctx: RunContext, trained: Trained, eset: ExplainSet, ekey: str, attribution: Attribution
) -> None:
    """Keep thumbnails of the first explained rows for the HTML report (heat maps or token maps)."""
    from harness.reports.html import heatmap_png, token_heatmap

    batch, pixels, scores = eset.batch, attribution.pixels, attribution.tokens
    items = []
    for i in range(min(GALLERY_ROWS, len(batch))):
        if batch.images is not None and pixels is not None:
            img, overlay = heatmap_png(batch.images[i, 0].cpu().numpy(), pixels[i].cpu().numpy())
        elif batch.tokens is not None and scores is not None:
            words, values = _words(batch, i, scores[i].tolist())
            img, overlay = "", token_heatmap(words, values)
        else:
            return
        items.append((batch.ids[i], int(eset.targets[i]), img, overlay))
    ctx.store.write_gallery(ctx.run_id, (trained.dkey, trained.mkey, ekey), items)


def _words(batch: Batch, row: int, scores: list[float]) -> tuple[list[str], list[float]]:
    """Return the row's words with their token scores (at most ``GALLERY_TOKENS``).

    A row's text, split on whitespace, names its first tokens when the tokens
    after them are all one id (padding); otherwise tokens show as ``#id``.
    """
    assert batch.tokens is not None
    ids = batch.tokens[row].tolist()
    words = batch.texts[row].split() if batch.texts is not None else []
    if words and len(words) <= len(ids) and len(set(ids[len(words) :])) <= 1:
        return words[:GALLERY_TOKENS], scores[: min(len(words), GALLERY_TOKENS)]
    return [f"#{t}" for t in ids[:GALLERY_TOKENS]], scores[:GALLERY_TOKENS]


def _rows_for(metric: ExplanationMetric | GenerationMetric, eset: ExplainSet) -> Tensor:
    needs = metric.get_tags().needs
    keep = torch.ones(len(eset.batch), dtype=torch.bool)
    if Need.MASKS in needs and eset.batch.masks is not None:
        keep &= eset.batch.target_masks(eset.targets).flatten(1).any(1).cpu()
    if Need.RATIONALES in needs and eset.batch.rationales is not None:
        rationale = eset.batch.target_rationales(eset.targets).bool()
        pad = getattr(metric, "pad_token", None)
        if pad is not None and eset.batch.tokens is not None:  # a rationale on padding is none
            rationale &= eset.batch.tokens.to(rationale.device) != pad
        keep &= rationale.flatten(1).any(1).cpu()
    return keep.nonzero().flatten()


def _generation(
    metric: GenerationMetric, attribution: Attribution, batch: Batch, seed: int, ctx: RunContext
) -> Computed:
    if attribution.sentences is None or batch.references is None:
        raise ContractViolation(f"metric {metric.name!r} needs generated sentences and references")
    hyps, refs = attribution.sentences, batch.references

    def stat(idx: np.ndarray) -> float:
        return metric.compute([hyps[i] for i in idx], [refs[i] for i in idx])

    boot = ctx.spec.bootstrap
    s = bootstrap_statistic(
        len(hyps), stat, groups=batch.ids, n_boot=boot.n, confidence=boot.confidence, seed=seed
    )
    return None, {"value": s.value, "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n, "notes": {}}


def draws_seed(ctx: RunContext, trained: Trained, eset: ExplainSet) -> int:
    """Seed of the explanation metrics of one model and explain set, the same for every explainer.

    Stochastic metrics (ROAD noise, faithfulness correlation subsets,
    sensitivity noise) draw from it when their ``seed`` is None, so every
    explainer is scored on the same random perturbations (common random
    numbers: the paired tests then compare explainers, not draws); each metric
    salts its per-row seeds with its own name.
    """
    return key_seed(stage_key("draws", None, [trained.model_key, eset.key], ctx.spec.seed))


def score_explanation(
    ctx: RunContext,
    trained: Trained,
    eset: ExplainSet,
    attr_key: str,
    attribution: Attribution,
    cell: Cell,
) -> None:
    """Score one explanation (or generated-text) metric on the rows it applies to."""
    metric = ctx.plugins.metrics[cell.metric]
    explainer: Explainer = ctx.plugins.explainers[cell.explainer]
    if not isinstance(metric, (ExplanationMetric, GenerationMetric)):
        raise ContractViolation(
            f"metric {cell.metric!r} is neither an explanation nor a generation metric"
        )
    rows = _rows_for(metric, eset)
    if len(rows) == 0:
        skip_cell(ctx, cell, "no explained row has the ground truth this metric needs")
        return
    # a generation metric's cached summary holds its interval: the bootstrap settings (samples
    # resampled with all their rows) are in its key; an explanation metric's draws are common to
    # every explainer (see draws_seed)
    generation = isinstance(metric, GenerationMetric)
    resampling = {"bootstrap": asdict(ctx.spec.bootstrap), "resample": "samples"}
    extra = resampling if generation else {"draws": "common"}
    reexplains = Need.EXPLAINER in metric.get_tags().needs
    if reexplains:  # the explainer's own draws repeat the attribution's (explainer_seed)
        extra = {**extra, "explainer_draws": "attribution"}
    key = stage_key("score", metric, [attr_key, trained.model_key], ctx.spec.seed, extra)
    batch, targets, attr = eset.batch.index(rows), eset.targets[rows], attribution.index(rows)
    ctx.progress.stage(f"{cell.metric} of {cell.explainer}")
    if isinstance(metric, GenerationMetric):
        _, s, seconds = cached(
            ctx, key, cell.metric, lambda: _generation(metric, attr, batch, key_seed(key), ctx)
        )
        record(ctx, ok_row(ctx, cell, s, seconds=seconds, stage_key=key))
        return

    def compute() -> Computed:
        if Need.LABEL_RANDOMISED_MODEL in metric.get_tags().needs:
            attach_label_randomised(ctx, trained)
        with (
            reporting(partial(ctx.progress.substep, unit="inputs evaluated")),
            explainer_seed(attribution_seed(attr_key) if reexplains else None),
        ):
            scores = metric.evaluate(trained.model, batch, targets, attr, explainer=explainer)
        curves = {f"curve:{k}": v for k, v in scores.curves.items()}
        return {"values": scores.values, **curves}, {"notes": dict(scores.notes)}

    tensors, data, seconds = cached(
        ctx, key, cell.metric, compute, seed=draws_seed(ctx, trained, eset)
    )
    values = tensors["values"].double()
    boot = ctx.spec.bootstrap
    s = bootstrap_mean(
        values.numpy(),
        groups=batch.ids,
        n_boot=boot.n,
        confidence=boot.confidence,
        seed=key_seed(key),
    )
    samples = [(batch.ids[i], int(targets[i]), float(values[i])) for i in range(len(values))]
    curves = {
        k.removeprefix("curve:"): v.tolist() for k, v in tensors.items() if k.startswith("curve:")
    }
    row = ok_row(ctx, cell, asdict(s), seconds=seconds, stage_key=key, notes=data["notes"])
    record(ctx, row, samples, curves)
