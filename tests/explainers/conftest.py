"""Fixtures of the explainer tests; the toy models live in ``_explainer_toys``."""

from __future__ import annotations

import pytest
import torch
from _explainer_toys import ResNet18, TinyCNN, ToyMultimodal, info_for, make_batch

from harness.contracts import Batch, Modality, Task

torch.set_num_threads(1)


@pytest.fixture
def tiny_cnn() -> TinyCNN:
    model = TinyCNN()
    model.build(info_for(3))
    return model


@pytest.fixture
def tiny_multilabel() -> TinyCNN:
    model = TinyCNN(seed=1)
    model.build(info_for(4, task=Task.MULTILABEL))
    return model


@pytest.fixture(scope="session")
def resnet18() -> ResNet18:
    model = ResNet18()
    model.build(info_for(2))
    return model


@pytest.fixture
def multimodal() -> ToyMultimodal:
    model = ToyMultimodal()
    model.build(info_for(3, modality=Modality.IMAGE_TEXT))
    return model


@pytest.fixture
def batch() -> Batch:
    return make_batch(4, 16)


@pytest.fixture
def mm_batch() -> Batch:
    return make_batch(4, 16, tokens=True, seed=3)
