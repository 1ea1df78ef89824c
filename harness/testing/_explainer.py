"""Explainer checks on toy models matching the explainer's tags (see ``fixtures``)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from harness.contracts import (
    Attribution,
    Batch,
    Explainer,
    Modality,
    Output,
    Task,
)
from harness.errors import CapabilityError, ContractViolation
from harness.testing._common import Check, close, fail
from harness.testing._setups import ExplainerSetup, explainer_setup
from harness.testing._state import same_state, seeded, snapshot

_ORDER = (Modality.IMAGE, Modality.TEXT, Modality.IMAGE_TEXT)


def modalities(explainer: Explainer) -> list[Modality]:
    """Return the explainer's modalities, image first."""
    return [m for m in _ORDER if m in explainer.get_tags().modalities]


def _setup(explainer: Explainer, modality: Modality | None = None) -> ExplainerSetup:
    return explainer_setup(explainer, modality or modalities(explainer)[0])


def _run(
    explainer: Explainer,
    setup: ExplainerSetup,
    *,
    seed: int = 0,
    batch: Batch | None = None,
    targets: Tensor | None = None,
) -> Attribution:
    with seeded(seed):
        return explainer.explain(
            setup.model,
            setup.batch if batch is None else batch,
            setup.targets if targets is None else targets,
        )


def _differences(
    a: Attribution, b: Attribution, *, rtol: float = 1e-5, atol: float = 1e-6
) -> list[str]:
    out = []
    for field in ("pixels", "tokens"):
        x, y = getattr(a, field), getattr(b, field)
        if (x is None) != (y is None) or (
            x is not None and y is not None and not close(x, y, rtol=rtol, atol=atol)
        ):
            out.append(field)
    if a.sentences != b.sentences:
        out.append("sentences")
    return out


def check_explainer_output(explainer: Explainer) -> None:
    """Check declared outputs only, one finite row per row, on the model's device, per modality."""
    name = "check_explainer_output"
    declared = explainer.get_tags().output
    runs: list[tuple[ExplainerSetup, str]] = [
        (_setup(explainer, m), f"on {m.value} data") for m in modalities(explainer)
    ]
    if Modality.IMAGE in modalities(explainer):  # the RGB fixture's maps, and a 1-channel one's
        gray = explainer_setup(explainer, Modality.IMAGE, task=Task.MULTILABEL)
        runs.append((gray, "on 1-channel image data"))
    for setup, where in runs:
        try:
            out = _run(explainer.clone(), setup)
        except ContractViolation as exc:
            fail(explainer, name, f"outputs {where}", "maps of the input's shape", exc)
        except CapabilityError:
            if setup.task is Task.MULTILABEL:
                continue  # an explainer that declines multi-label models: no 1-channel check
            raise
        returned = {
            Output.PIXEL: out.pixels,
            Output.TOKEN: out.tokens,
            Output.SENTENCE: out.sentences,
        }
        extra = sorted(k.value for k, v in returned.items() if v is not None and k not in declared)
        if extra:
            fail(
                explainer,
                name,
                f"outputs {where}",
                f"only tags.output {sorted(o.value for o in declared)}",
                extra,
            )
        if Output.SENTENCE in declared and (
            out.sentences is None or not all(isinstance(s, str) and s for s in out.sentences)
        ):
            fail(
                explainer,
                name,
                f"sentences {where}",
                f"{len(setup.batch)} non-empty strings",
                out.sentences,
            )
        for field in ("pixels", "tokens"):
            value = getattr(out, field)
            if value is not None and value.device != setup.model.device:
                fail(explainer, name, f"{field} device {where}", setup.model.device, value.device)


def _check_seeds(
    explainer: Explainer, check: str, seeds: tuple[int, int], what: str, expected: str
) -> None:
    """Fail ``check`` unless two runs under ``seeds`` give identical outputs."""
    setup = _setup(explainer)
    a, b = (_run(explainer.clone(), setup, seed=seed) for seed in seeds)
    diff = _differences(a, b)
    if diff:
        fail(explainer, check, what, expected, f"different {', '.join(diff)}")


def check_explainer_deterministic(explainer: Explainer) -> None:
    """Check that an explainer tagged deterministic ignores the RNG state."""
    _check_seeds(
        explainer,
        "check_explainer_deterministic",
        (1, 2),
        "outputs under two different seeds",
        "identical outputs (tags.deterministic is True)",
    )


def check_explainer_reproducible(explainer: Explainer) -> None:
    """Under the same global seed (as the runner sets it), two runs give identical outputs."""
    _check_seeds(
        explainer,
        "check_explainer_reproducible",
        (7, 7),
        "outputs of two runs after the same seed",
        "identical outputs (use torch's global RNG or a seed parameter)",
    )


def check_explainer_batch_independence(explainer: Explainer) -> None:
    """Check that a row explained alone gets the same output as within its batch.

    Both runs start from the same global seed, so a stochastic explainer passes
    only when each row's draws depend on its sample id, not on the rows before it
    (the runner's chunking and the re-explaining metrics rely on it).
    """
    setup = _setup(explainer)
    together = _run(explainer.clone(), setup, seed=7)
    stochastic = not explainer.get_tags().deterministic
    expected = "the same output as within the batch (normalise per row, not per batch" + (
        "; draw each row's random numbers from its sample id, e.g. harness.draws.row_seeds)"
        if stochastic
        else ")"
    )
    for i in range(len(setup.batch)):
        alone = _run(
            explainer.clone(),
            setup,
            seed=7,
            batch=setup.batch.index([i]),
            targets=setup.targets[i : i + 1],
        )
        diff = _differences(together.index([i]), alone, rtol=1e-4, atol=1e-5)
        if diff:
            fail(
                explainer,
                "check_explainer_batch_independence",
                f"row {i} explained alone",
                expected,
                f"different {', '.join(diff)}",
            )


def check_explainer_target_sensitivity(explainer: Explainer) -> None:
    """Explaining another target gives another output."""
    setup = _setup(explainer)
    with torch.no_grad():
        k = setup.model.logits(setup.batch).shape[1]
    other = (setup.targets + 1) % k
    a, b = (
        _run(explainer.clone(), setup, seed=3),
        _run(explainer.clone(), setup, seed=3, targets=other),
    )
    if not _differences(a, b, rtol=1e-4, atol=1e-6):
        fail(
            explainer,
            "check_explainer_target_sensitivity",
            "outputs for two different targets",
            "different outputs",
            "the same output for every target",
        )


def check_explainer_does_not_mutate(explainer: Explainer) -> None:
    """Explaining leaves the model (weights, modes, hooks, logits) and the batch unchanged."""
    for modality in modalities(explainer):
        setup = _setup(explainer, modality)
        before = snapshot(setup.model, setup.batch)
        _run(explainer.clone(), setup)
        after = snapshot(setup.model, setup.batch)
        changed = [k for k in before if not same_state(before[k], after[k])]
        if changed:
            fail(
                explainer,
                "check_explainer_does_not_mutate",
                f"model and batch on {modality.value} data",
                "unchanged (restore modes, remove hooks, never write into inputs)",
                f"changed {', '.join(changed)}",
            )


def target_blind(explainer: Explainer) -> bool:
    """Return True for explainers whose tags say they ignore the target by design (controls)."""
    return not explainer.get_tags().target_sensitive


def checks(explainer: Explainer) -> Iterator[tuple[str, Check]]:
    """Yield the explainer checks that apply to ``explainer``'s tags."""
    selected = [
        check_explainer_output,
        check_explainer_reproducible,
        check_explainer_batch_independence,
    ]
    if explainer.get_tags().deterministic:
        selected.append(check_explainer_deterministic)
    if not target_blind(explainer):
        selected.append(check_explainer_target_sensitivity)
    selected.append(check_explainer_does_not_mutate)
    for check in selected:
        yield check.__name__, check  # type: ignore[misc]
