"""Black-box toy models: a scikit-learn token-count Naive Bayes and an opaque image CNN."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from harness.contracts import Batch, DatasetInfo, FitContext, Modality, Model, ModelTags, Task
from harness.contracts.tags import ALL_TASKS
from harness.errors import CapabilityError, ContractViolation
from harness.testing._toy_models import ToyCNN

if TYPE_CHECKING:
    from harness.contracts import Dataset

_CITATION = "harness.testing conformance fixture (black-box model)"
_STATE_KEYS = ("class_log_prior", "feature_log_prob")


class ToyNaiveBayes(Model):
    """Multinomial Naive Bayes on token counts (scikit-learn), a black-box text classifier.

    Its logits are the joint log-likelihoods; its state is two float64
    tensors, so it checkpoints like any torch model. Before ``fit`` it holds
    uniform priors.

    Parameters
    ----------
    alpha : float
        Additive (Laplace) smoothing of the token counts.
    """

    name: ClassVar[str] = "toy.naive_bayes"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _CITATION
    tags: ClassVar[ModelTags] = ModelTags(
        modalities=frozenset({Modality.TEXT}),
        tasks=frozenset({Task.MULTICLASS}),
        differentiable=False,
        randomisable=False,
    )

    def __init__(self, *, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def build(self, info: DatasetInfo) -> None:
        """Create uniform priors for ``info``'s classes and vocabulary."""
        if info.vocab_size is None or info.task is not Task.MULTICLASS:
            raise CapabilityError(
                f"model {self.name!r}: needs multi-class token data - got task "
                f"{info.task.value}, vocab_size {info.vocab_size}.",
                plugin=self.name,
            )
        self.task = info.task
        self._device = torch.device("cpu")
        k, v = info.num_outputs, info.vocab_size
        self._restore(
            {
                "class_log_prior": torch.full((k,), -math.log(k), dtype=torch.float64),
                "feature_log_prob": torch.full((k, v), -math.log(v), dtype=torch.float64),
            }
        )

    def _restore(self, state: dict[str, Tensor]) -> None:
        from sklearn.naive_bayes import MultinomialNB

        nb = MultinomialNB(alpha=self.alpha)
        prior, log_prob = (state[k].detach().cpu().double().numpy() for k in _STATE_KEYS)
        nb.classes_ = torch.arange(len(prior)).numpy()
        nb.class_log_prior_ = prior
        nb.feature_log_prob_ = log_prob
        nb.n_features_in_ = log_prob.shape[1]
        self._nb: Any = nb

    def _counts(self, tokens: Tensor) -> Any:
        tokens = tokens.detach().cpu()
        counts = torch.zeros(tokens.shape[0], self._nb.n_features_in_, dtype=torch.float64)
        counts.scatter_add_(1, tokens, torch.ones_like(tokens, dtype=torch.float64))
        counts[:, 0] = 0.0
        return counts.numpy()

    def fit(self, dataset: Dataset, ids: Sequence[str], context: FitContext) -> None:
        """Count tokens per class over ``ids`` in batches of 256."""
        from sklearn.naive_bayes import MultinomialNB

        nb = MultinomialNB(alpha=self.alpha)
        classes = self._nb.classes_
        for batch in dataset.iter_batches(ids, 256):
            if batch.tokens is None:
                raise CapabilityError(f"model {self.name!r} needs token ids", plugin=self.name)
            nb.partial_fit(self._counts(batch.tokens), batch.labels.numpy(), classes=classes)
        self._nb = nb

    def state_dict(self) -> dict[str, Tensor]:
        """Return the log prior (K,) and the token log-probabilities (K, V)."""
        return {
            "class_log_prior": torch.from_numpy(self._nb.class_log_prior_.copy()),
            "feature_log_prob": torch.from_numpy(self._nb.feature_log_prob_.copy()),
        }

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore a state returned by :meth:`state_dict`."""
        if sorted(state) != sorted(_STATE_KEYS):
            raise ContractViolation(
                f"model {self.name!r}: state keys {sorted(state)} - expected {list(_STATE_KEYS)}.",
                plugin=self.name,
            )
        self._restore(state)

    def to(self, device: torch.device | str) -> ToyNaiveBayes:
        """Return logits on ``device`` from now on (the computation stays in NumPy)."""
        self._device = torch.device(device)
        return self

    @property
    def device(self) -> torch.device:
        """The device logits are returned on."""
        return self._device

    def _logits(self, batch: Batch) -> Tensor:
        if batch.tokens is None:
            raise CapabilityError(f"model {self.name!r} needs token ids", plugin=self.name)
        joint = self._nb.predict_joint_log_proba(self._counts(batch.tokens))
        return torch.from_numpy(joint).float().to(self._device)


class ToyBlackBoxCNN(Model):
    """A :class:`ToyCNN` behind an opaque interface: no module, no gradients, no layers.

    Model-agnostic explainers are checked on it, so one that reaches for
    gradients or a torch module fails here.

    Parameters
    ----------
    width, epochs, lr, batch_size : int, int, float, int
        Passed to the hidden :class:`ToyCNN`.
    """

    name: ClassVar[str] = "toy.black_box_cnn"
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = _CITATION
    tags: ClassVar[ModelTags] = ModelTags(
        tasks=ALL_TASKS, differentiable=False, randomisable=False, target_layer=None
    )

    def __init__(
        self, *, width: int = 8, epochs: int = 30, lr: float = 0.01, batch_size: int = 8
    ) -> None:
        self.width = width
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size

    def build(self, info: DatasetInfo) -> None:
        """Build the hidden CNN for ``info``."""
        self._inner = ToyCNN(
            width=self.width, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size
        )
        self._inner.build(info)
        self.task = info.task

    def fit(self, dataset: Dataset, ids: Sequence[str], context: FitContext) -> None:
        """Train the hidden CNN."""
        self._inner.fit(dataset, ids, context)

    def state_dict(self) -> dict[str, Tensor]:
        """Return the hidden CNN's state."""
        return self._inner.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore the hidden CNN's state."""
        self._inner.load_state_dict(state)

    def to(self, device: torch.device | str) -> ToyBlackBoxCNN:
        """Move the hidden CNN to ``device``."""
        self._inner.to(device)
        return self

    @property
    def device(self) -> torch.device:
        """The hidden CNN's device."""
        return self._inner.device

    def _logits(self, batch: Batch) -> Tensor:
        with torch.no_grad():
            return self._inner.logits(batch).detach()
