"""``harness.score``: metrics on plain arrays, checked against Quantus on the same arrays."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from _toys_a import blob_batch, single_thread, tiny_model

import harness
from harness.contracts import Modality, Task
from harness.errors import CapabilityError, DataError, PluginError
from harness.metrics import _engine
from harness.testing._select import fixture_batch, fixture_dataset, fixture_model, fixture_targets
from harness.testing._toy_attribution import ToyInputXGradient, ToyTokenOcclusion

quantus = pytest.importorskip("quantus")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from single_thread()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    _engine.cache_clear()


def input_x_gradient(module: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor):
    """An explain function as a notebook would write it: (N, 1, H, W) numpy maps."""
    x = images.detach().clone().requires_grad_(True)
    picked = module(x).gather(1, targets.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(picked, x)
    return (grad * x).sum(dim=1, keepdim=True).detach().cpu().numpy()


def quantus_explain(model: torch.nn.Module, inputs: np.ndarray, targets: np.ndarray, **_):
    return input_x_gradient(model, torch.as_tensor(inputs), torch.as_tensor(targets).long())


@pytest.fixture(scope="module")
def arrays():
    """A module and numpy arrays as a Quantus user holds them (no harness objects)."""
    module = tiny_model(classes=3, seed=1).module
    batch, _ = blob_batch(n=8, size=16, classes=3, seed=3)
    x = batch.images.numpy()
    with torch.no_grad():
        y = module(batch.images).argmax(1).numpy()
    a = input_x_gradient(module, batch.images, torch.as_tensor(y))
    s = batch.target_masks(torch.as_tensor(y)).unsqueeze(1).numpy().astype(np.float32)
    return module, x, y, a, s


def _quantus(metric: object, module, x, y, a, **kwargs: object) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric(model=module, x_batch=x, y_batch=y, a_batch=a.copy(), device="cpu", **kwargs)
    if isinstance(out, dict):
        return np.stack([np.asarray(v, float) for k, v in out.items() if k != "original"], 1)
    return np.asarray(out, dtype=float)


def test_faithfulness_and_localisation_match_quantus_on_the_same_arrays(arrays) -> None:
    module, x, y, a, s = arrays
    q = quantus.PixelFlipping(features_in_step=4, normalise=False, disable_warnings=True)
    ours = harness.score("faithfulness.pixel_flipping", module, x, y, a, pixels_per_step=4)
    np.testing.assert_allclose(
        ours.curves["probability"].numpy(), _quantus(q, module, x, y, a), atol=1e-6
    )
    q = quantus.RelevanceMassAccuracy(abs=False, normalise=False, disable_warnings=True)
    for maps in (a, a[:, 0]):  # (N, 1, H, W) as Quantus takes them, or (N, H, W)
        ours = harness.score(
            "localisation.relevance_mass", module, x, y, maps, s_batch=s, positive_only=False
        )
        np.testing.assert_allclose(
            ours.values.numpy(), _quantus(q, module, x, y, a, s_batch=s), atol=1e-6
        )


def test_an_explain_function_re_explains_as_in_quantus(arrays) -> None:
    """Cascading randomisation with a plain function: the Spearman curves of Quantus's MPRT."""
    module, x, y, a, _ = arrays
    q = quantus.MPRT(
        similarity_func=quantus.similarity_func.correlation_spearman,
        layer_order="top_down",
        seed=42,
        abs=True,
        normalise=False,
        disable_warnings=True,
    )
    theirs = _quantus(
        q, copy.deepcopy(module), x, y, a, explain_func=quantus_explain, channel_first=True
    )
    before = {k: v.clone() for k, v in module.state_dict().items()}
    ours = harness.score(
        "sanity.cascading_randomisation", module, x, y, a, explain_func=input_x_gradient
    )
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    np.testing.assert_allclose(ours.curves["spearman"].numpy(), theirs, atol=1e-6)
    by_name = harness.score(
        "sanity.cascading_randomisation", module, x, y, a, explain_func="captum.input_x_gradient"
    )
    np.testing.assert_allclose(by_name.values.numpy(), ours.values.numpy(), atol=1e-6)


def test_array_scores_equal_the_plugin_path_and_key_draws_by_id(arrays) -> None:
    """Same values as a leaderboard cell on the same inputs (ids key the random draws)."""
    module, x, y, a, _ = arrays
    model = tiny_model(classes=3, seed=1)
    batch, _ = blob_batch(n=8, size=16, classes=3, seed=3)
    targets = torch.as_tensor(y)
    pixels = torch.as_tensor(a[:, 0])
    metric = harness.get_metric("faithfulness.correlation", runs=20, subset_size=16, seed=5)
    cell = metric.evaluate(model, batch, targets, harness.Attribution(pixels=pixels))
    ours = harness.score(metric, module, x, y, a, ids=batch.ids)
    # float32 forwards: the engine may run an earlier test's frozen graph of these weights
    np.testing.assert_allclose(ours.values.numpy(), cell.values.numpy(), atol=1e-4)
    other_ids = harness.score(metric, module, x, y, a, ids=[f"t{i}" for i in range(8)])
    assert np.abs(other_ids.values.numpy() - cell.values.numpy()).max() > 1e-2


def test_a_multi_label_task_scores_sigmoid_probabilities(arrays) -> None:
    module, x, y, a, _ = arrays
    with pytest.raises(DataError, match="multi-label task needs the \\(N, K\\) label states"):
        harness.score("faithfulness.pixel_flipping", module, x, y, a, task="multilabel")
    labels = np.zeros((8, 3), dtype=np.int64)
    labels[np.arange(8), y] = 1
    with torch.no_grad():
        logits = module(torch.as_tensor(x))
    expected = {
        "multiclass": torch.softmax(logits, 1)[np.arange(8), y],
        "multilabel": torch.sigmoid(logits)[np.arange(8), y],
    }
    for task, probs in expected.items():
        # one step flips the whole image: AOPC = (p_clean - p_flipped) / 2
        out = harness.score(
            "faithfulness.pixel_flipping", module, x, y, a, task=task, labels=labels if
            task == "multilabel" else None, pixels_per_step=256,
        )  # fmt: skip
        clean = 2 * out.values + out.curves["probability"][:, 0].double()
        np.testing.assert_allclose(clean.numpy(), probs.double().numpy(), atol=1e-6)


def _poison(values: np.ndarray, row: int, bad: float = np.nan) -> np.ndarray:
    out = values.copy()
    out[row, ..., 3] = bad
    return out


def test_bad_arrays_and_missing_arguments_are_named(arrays) -> None:
    module, x, y, a, s = arrays
    pf = "faithfulness.pixel_flipping"
    cases = [
        (dict(x_batch=x[0, 0]), DataError, "x_batch: expected images \\(N, C, H, W\\)"),
        (dict(y_batch=y[:5]), DataError, "y_batch: expected 8 integer class indices"),
        (dict(y_batch=y + 0.5), DataError, "y_batch: expected 8 integer"),
        (dict(y_batch=np.full(8, 3)), DataError, "row 0 has target 3, outside the model's 3"),
        (dict(a_batch=np.repeat(a, 3, axis=1)), DataError, "sum the channels first"),
        (dict(a_batch=a[:, :, :8]), DataError, "a_batch: expected shape \\(8, 16, 16\\)"),
        (dict(ids=["a"] * 8), DataError, "ids: expected 8 distinct sample ids"),
        (dict(task="regression"), DataError, "task: expected 'multiclass' or 'multilabel'"),
        (dict(a_batch=_poison(a, 5)), DataError, "a_batch: row 5 has non-finite values"),
        (dict(x_batch=_poison(x, 2, np.inf)), DataError, "x_batch: row 2 has non-finite"),
    ]
    for changes, error, message in cases:
        kwargs = dict(x_batch=x, y_batch=y, a_batch=a) | changes
        with pytest.raises(error, match=message):
            harness.score(pf, module, **kwargs)
    with pytest.raises(CapabilityError, match="needs s_batch"):
        harness.score("localisation.relevance_mass", module, x, y, a)
    with pytest.raises(DataError, match="s_batch: expected shape"):
        harness.score("localisation.relevance_mass", module, x, y, a, s_batch=s[:4])
    with pytest.raises(CapabilityError, match="needs explain_func"):
        harness.score("robustness.max_sensitivity", module, x, y, a)
    with pytest.raises(CapabilityError, match="needs label_randomised_model"):
        harness.score("sanity.data_randomisation", module, x, y, a, explain_func=input_x_gradient)
    with pytest.raises(PluginError, match="given with a metric instance"):
        harness.score(harness.get_metric(pf), module, x, y, a, pixels_per_step=4)
    with pytest.raises(PluginError, match="does not score explanations"):
        harness.score("classification.accuracy", module, x, y, a)
    with pytest.raises(PluginError, match="explain_func: expected"):
        harness.score("robustness.max_sensitivity", module, x, y, a, explain_func=3)
    with pytest.raises(CapabilityError, match="pass cam_layer"):
        harness.score("sanity.random_logit", module, x, y, a, explain_func="captum.grad_cam")
    bad_fn = lambda m, images, t: np.zeros((8, 3, 16, 16))  # noqa: E731
    with pytest.raises(DataError, match="explain_func's result: expected shape"):
        harness.score("robustness.max_sensitivity", module, x, y, a, explain_func=bad_fn)


def test_images_take_the_model_dtype_and_maps_must_fit_float32(arrays) -> None:
    module, x, y, a, s = arrays
    pf = "faithfulness.pixel_flipping"
    expected = harness.score(pf, module, x, y, a).values
    for images in (x.astype(np.float64), torch.as_tensor(x).half()):  # NumPy's default dtype
        got = harness.score(pf, module, images, y, a).values
        torch.testing.assert_close(got, expected, atol=2e-3, rtol=0)  # half: rounded pixels
    double = copy.deepcopy(module).double()
    torch.testing.assert_close(harness.score(pf, double, x, y, a).values, expected)
    wide = a.astype(np.float64)
    for scale, side in ((1e-40, "below"), (1e45, "above")):
        tuned = wide.copy()
        tuned[3] *= scale
        with pytest.raises(DataError, match=f"a_batch: row 3 has values {side} float32's range"):
            harness.score("complexity.sparseness", module, x, y, tuned)


def test_data_randomisation_uses_the_given_twin(arrays) -> None:
    module, x, y, a, _ = arrays
    twin = tiny_model(classes=3, seed=9).module
    same = harness.score(
        "sanity.data_randomisation", module, x, y, a, explain_func=input_x_gradient,
        label_randomised_model=module,
    )  # fmt: skip
    other = harness.score(
        "sanity.data_randomisation", module, x, y, a, explain_func=input_x_gradient,
        label_randomised_model=twin,
    )  # fmt: skip
    # the twin's maps are the model's own maps when the twin is the model: maximal similarity
    assert float(same.values.min()) > float(other.values.max())


def test_token_ids_score_as_the_plugin_path_does() -> None:
    """Integer (N, L) inputs are token ids: ERASER metrics, rationales, token explain functions."""
    model = fixture_model(Modality.TEXT, Task.MULTICLASS)
    batch = fixture_batch(fixture_dataset(Modality.TEXT, Task.MULTICLASS), rows=6)
    targets = fixture_targets(batch, Task.MULTICLASS)
    explainer = ToyTokenOcclusion()
    attribution = explainer.explain(model, batch, targets)
    tokens, scores = batch.tokens.numpy(), attribution.tokens.numpy()
    rationale = batch.target_rationales(targets).numpy()
    for name, params in (
        ("faithfulness.comprehensiveness", {}),
        ("faithfulness.sufficiency", {"removal": "replace"}),
        ("complexity.entropy", {"over": "tokens"}),
    ):
        cell = harness.get_metric(name, **params).score(model, batch, targets, attribution)
        ours = harness.score(name, model.module, tokens, targets.numpy(), scores, **params)
        np.testing.assert_allclose(ours.values.numpy(), cell.numpy(), atol=1e-6)
    cell = harness.get_metric("localisation.rationale_auprc").score(
        model, batch, targets, attribution
    )
    ours = harness.score(
        "localisation.rationale_auprc", model.module, tokens, targets.numpy(), scores,
        s_batch=rationale,
    )  # fmt: skip
    np.testing.assert_allclose(ours.values.numpy(), cell.numpy(), atol=1e-12)

    def occlusion(module, ids, t):  # a plain function over token ids, as a notebook has
        wrapped = harness.arrays.TokenModuleModel(net=module)
        wrapped.build(fixture_dataset(Modality.TEXT, Task.MULTICLASS).info())
        sub = harness.Batch(ids=tuple(map(str, range(len(ids)))), labels=t, tokens=ids)
        return explainer.explain(wrapped, sub, t).tokens

    params = {"over": "tokens", "similarity": "spearman"}
    cell = harness.get_metric("sanity.random_logit", **params).score(
        model, batch, targets, attribution, explainer=explainer
    )
    ours = harness.score(
        "sanity.random_logit", model.module, tokens, targets.numpy(), scores,
        explain_func=occlusion, ids=batch.ids, **params,
    )  # fmt: skip
    np.testing.assert_allclose(ours.values.numpy(), cell.numpy(), atol=1e-9)
    with pytest.raises(CapabilityError, match="needs s_batch"):
        harness.score("localisation.rationale_auprc", model.module, tokens, targets, scores)
    with pytest.raises(DataError, match="a_batch: expected shape \\(6, 625\\)"):
        harness.score("faithfulness.sufficiency", model.module, tokens, targets, scores[:, :50])


def test_image_text_models_score_pixels_and_tokens_as_the_plugin_path_does() -> None:
    """``tokens=`` pairs token ids with the images; maps and ground truth are told apart by shape."""
    model = fixture_model(Modality.IMAGE_TEXT, Task.MULTILABEL)
    batch = fixture_batch(fixture_dataset(Modality.IMAGE_TEXT, Task.MULTILABEL), rows=10)
    keep = batch.target_masks(fixture_targets(batch, Task.MULTILABEL)).flatten(1).any(1)
    batch = batch.index(keep.nonzero().flatten()[:6])  # rows whose finding has a mask
    targets = fixture_targets(batch, Task.MULTILABEL)
    pixels = ToyInputXGradient().explain(model, batch, targets)
    tokens = ToyTokenOcclusion().explain(model, batch, targets)
    arrays = dict(
        tokens=batch.tokens.numpy(), task="multilabel", labels=batch.labels.numpy(), ids=batch.ids
    )
    x, y = batch.images.numpy(), targets.numpy()
    cases = [
        ("faithfulness.pixel_flipping", pixels, {}, None),
        ("localisation.relevance_mass", pixels, {}, batch.target_masks(targets)),
        ("faithfulness.comprehensiveness", tokens, {}, None),
        ("localisation.rationale_auprc", tokens, {}, batch.target_rationales(targets)),
        ("complexity.entropy", tokens, {"over": "tokens"}, None),
    ]
    for name, attribution, params, truth in cases:
        cell = harness.get_metric(name, **params).score(model, batch, targets, attribution)
        maps = attribution.pixels if attribution.pixels is not None else attribution.tokens
        ours = harness.score(
            name, model.module, x, y, maps.numpy(), s_batch=truth, **arrays, **params
        )
        np.testing.assert_allclose(ours.values.numpy(), cell.numpy(), atol=1e-6, err_msg=name)

    seen = []

    def explain(module, inputs, t):  # a notebook's explain function for an image+text model
        images, ids = inputs
        seen.append((images.shape, ids.shape))
        wrapped = harness.arrays.ImageTextModuleModel(net=module)
        wrapped.build(fixture_dataset(Modality.IMAGE_TEXT, Task.MULTILABEL).info())
        n = len(images)  # any subset of the rows (random logit re-explains the rows it redraws)
        labels = torch.zeros((n, batch.labels.shape[1]), dtype=batch.labels.dtype)
        sub = harness.Batch(ids=tuple(map(str, range(n))), labels=labels, images=images, tokens=ids)
        return ToyInputXGradient().explain(wrapped, sub, t).pixels

    metric = harness.get_metric("sanity.random_logit", similarity="spearman")
    cell = metric.score(model, batch, targets, pixels, explainer=ToyInputXGradient())
    ours = harness.score(metric, model.module, x, y, pixels.pixels, explain_func=explain, **arrays)
    np.testing.assert_allclose(ours.values.numpy(), cell.numpy(), atol=1e-9)
    assert seen and seen[0] == (batch.images.shape, batch.tokens.shape)
    with pytest.raises(DataError, match="tokens: expected integer token ids \\(6, L\\)"):
        harness.score("faithfulness.pixel_flipping", model.module, x, y, pixels.pixels,
                      **(arrays | {"tokens": batch.tokens[:3]}))  # fmt: skip
    with pytest.raises(DataError, match="expected images in x_batch"):
        harness.score("faithfulness.comprehensiveness", model.module, batch.tokens, y,
                      tokens.tokens, **arrays)  # fmt: skip
