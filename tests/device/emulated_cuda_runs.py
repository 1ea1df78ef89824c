"""Scenarios for tests/device/test_emulated_cuda.py, run in a subprocess.

``python emulated_cuda_runs.py SCENARIO DEVICE`` runs one scenario on ``cuda``
(the emulated device of :mod:`fake_cuda`, installed first) or ``cpu`` and
prints one JSON object: ``values`` (name -> list of floats), ``devices`` (name
-> the device a result came back on), ``errors`` (name -> message) and
``violations`` (what a real GPU would have refused; see :mod:`fake_cuda`) and
``cuda_ops`` (ops computed on emulated CUDA tensors, by name).
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import fake_cuda

SCENARIO, DEVICE = sys.argv[1], sys.argv[2]
if DEVICE == "cuda":
    fake_cuda.install()

import numpy as np  # noqa: E402 - after the emulator: torch.Generator is patched
import torch  # noqa: E402
from torch import nn  # noqa: E402

from harness.api import get_explainer, get_metric, list_plugins  # noqa: E402
from harness.arrays import ModuleModel, score  # noqa: E402
from harness.contracts import Batch, DatasetInfo, ExplanationMetric, Modality, Task  # noqa: E402

warnings.filterwarnings("ignore")
RESULT: dict[str, Any] = {"values": {}, "devices": {}, "errors": {}}

# Small settings so that every metric runs in about a second; defaults otherwise.
IMAGE_METRIC_PARAMS: dict[str, dict[str, Any]] = {
    "faithfulness.pixel_flipping": {"baseline": "uniform"},
    "faithfulness.region_perturbation": {"patch_size": 4, "regions": 8},
    "faithfulness.correlation": {"runs": 16, "subset_size": 32},
    "faithfulness.road": {"percentages": (10, 50, 90)},
    "faithfulness.monotonicity": {"steps": 8},
    "localisation.pointing_game": {"tolerance": 1},
    "localisation.top_k_intersection": {"k": 20},
    "localisation.hit_rate": {"criterion": "iou"},
    "sanity.cascading_randomisation": {"similarity": "ssim"},
    "robustness.max_sensitivity": {"n_samples": 4},
    "robustness.avg_sensitivity": {"n_samples": 4},
}
EXPLAINER_PARAMS: dict[str, dict[str, Any]] = {
    "captum.lime": {"n_samples": 8, "segmentation": "slic", "n_segments": 6},
    "captum.kernel_shap": {"n_samples": 8, "segmentation": "grid", "grid_size": 4},
    "captum.occlusion": {"window": 8, "stride": 8},
    "captum.smoothgrad": {"nt_samples": 3, "nt_samples_batch_size": 2},
    "captum.integrated_gradients": {"n_steps": 3},
}
TOKEN_METRICS: dict[str, dict[str, Any]] = {
    "faithfulness.comprehensiveness": {},
    "faithfulness.sufficiency": {"removal": "replace"},
    "localisation.rationale_auprc": {},
    "complexity.sparseness": {"over": "tokens"},
    "complexity.entropy": {"over": "tokens"},
    "sanity.random_logit": {"over": "tokens", "similarity": "spearman"},
    "sanity.cascading_randomisation": {"over": "tokens"},
}


def keep(name: str, out: torch.Tensor) -> None:
    RESULT["devices"][name] = str(out.device)
    RESULT["values"][name] = torch.as_tensor(out).detach().cpu().double().flatten().tolist()


def attempt(name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    """Keep ``fn(*args, **kwargs)`` under ``name``, or its error."""
    try:
        keep(name, fn(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001 - reported, the scenario goes on
        RESULT["errors"][name] = f"{type(exc).__name__}: {exc}"


def score_values(*args: Any, **kwargs: Any) -> torch.Tensor:
    return score(*args, **kwargs).values


class SmallNet(nn.Module):
    """Convolution, batch norm, strided convolution, pooling, linear: 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.c2(torch.relu(self.b1(self.c1(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


def image_metrics() -> None:
    """Every registered image explanation metric through ``harness.score`` (device as given)."""
    torch.manual_seed(0)
    net, twin = SmallNet().eval(), SmallNet().eval()
    n, h = 6, 16
    x, a = torch.rand(n, 1, h, h), torch.rand(n, h, h)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    s = torch.zeros(n, h, h)
    s[:, 4:9, 4:9] = 1
    for name in list_plugins("metrics"):
        metric = get_metric(name)
        if (
            not isinstance(metric, ExplanationMetric)
            or Modality.IMAGE not in metric.tags.modalities
        ):
            continue
        attempt(name, score_values, name, net, x, y, a, s_batch=s,
                explain_func="captum.input_x_gradient", label_randomised_model=twin,
                cam_layer="c2", device=DEVICE, **IMAGE_METRIC_PARAMS.get(name, {}))  # fmt: skip


def explainers() -> None:
    """Every registered explainer on a ResNet18 moved to the device."""
    import torchvision

    torch.manual_seed(0)
    n, h = 3, 32
    module = torchvision.models.resnet18(num_classes=3)
    module.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    info = DatasetInfo(
        Modality.IMAGE, Task.MULTICLASS, ("a", "b", "c"), channels=1, image_size=(h, h)
    )
    model = ModuleModel(net=module.eval(), cam_layer="layer3")
    model.build(info)
    model.to(torch.device(DEVICE))
    masks = torch.zeros(n, 3, h, h, dtype=torch.bool)
    masks[:, :, 8:20, 8:20] = True
    images = torch.rand(n, 1, h, h)
    batch = Batch(ids=("0", "1", "2"), labels=torch.tensor([0, 1, 2]), images=images, masks=masks)
    targets = torch.tensor([0, 1, 2])
    for name in list_plugins("explainers"):
        explainer = get_explainer(name, **EXPLAINER_PARAMS.get(name, {}))
        attempt(name, lambda e: e.explain(model, batch, targets).pixels, explainer)


class TokenNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.fc = nn.Embedding(30, 8), nn.Linear(8, 3)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.fc(self.emb(t).mean(1))


class ImageTokenNet(TokenNet):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.fc(self.emb(t).mean(1) + self.conv(x).mean((2, 3)))


def token_metrics() -> None:
    """The token metrics on a text model and an image+text model."""
    torch.manual_seed(0)
    tokens = torch.randint(1, 30, (6, 12))
    tokens[:, -3:] = 0
    y, a = torch.tensor([0, 1, 2, 0, 1, 2]), torch.rand(6, 12)
    rationales = torch.zeros(6, 12)
    rationales[:, 2:5] = 1

    def explain(module: nn.Module, inputs: Any, targets: Any) -> torch.Tensor:
        t = inputs if isinstance(inputs, torch.Tensor) else inputs[1]
        g = torch.Generator(device=t.device).manual_seed(int(t.sum()))
        return torch.rand(t.shape, device=t.device, generator=g)

    images = torch.rand(6, 1, 8, 8)
    for net, x, extra in ((TokenNet(), tokens, {}), (ImageTokenNet(), images, {"tokens": tokens})):
        for name, params in TOKEN_METRICS.items():
            key = f"{type(net).__name__}/{name}"
            attempt(key, score_values, name, net.eval(), x, y, a, s_batch=rationales,
                    explain_func=explain, device=DEVICE, **extra, **params)  # fmt: skip


def classification() -> None:
    """Every classification metric's value and bootstrap statistic on tensors on the device."""
    torch.manual_seed(0)
    multiclass = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    multilabel = (torch.rand(8, 3) > 0.5).float()
    multilabel[0, 1] = multilabel[3, 2] = -2  # missing
    multilabel[:2, 0], multilabel[2:4, 0] = 0, 1  # both classes in every column
    multilabel[:2, 1:], multilabel[4:6, 1:] = 0, 1
    probs = torch.softmax(torch.randn(8, 3), 1)
    rows = np.array([0, 1, 2, 3, 4, 5, 6, 7, 0, 1])
    for task, labels in ((Task.MULTICLASS, multiclass), (Task.MULTILABEL, multilabel)):
        on_device = labels.to(DEVICE), probs.to(DEVICE)
        for name in list_plugins("metrics"):
            metric = get_metric(name)
            if not name.startswith("classification.") or task not in metric.tags.tasks:
                continue
            key = f"{task.value}/{name}"
            attempt(key, lambda m, d, t: torch.tensor([m.compute(*d, t)]), metric, on_device, task)
            stat = metric.resample_statistic(*on_device, task)
            attempt(f"{key}/resampled", lambda f: torch.tensor([f(rows)]), stat)


def pipeline(task: str) -> None:
    """A small benchmark run of ``emulated_cuda_{task}.yaml``: training, explaining, scoring."""
    from harness.runner import RunOptions, run_benchmark

    spec = Path(__file__).with_name(f"emulated_cuda_{task}.yaml")
    with tempfile.TemporaryDirectory() as out:
        summary = run_benchmark(
            RunOptions(spec_path=spec, output=Path(out), device=DEVICE, progress=False)
        )
        RESULT["values"]["cells"] = [summary.ok, summary.skipped, summary.failed]
        table = json.loads((Path(out) / "results.json").read_text())
    for row in table:
        key = f"{row['model']}/{row['explainer']}/{row['metric']}"
        if row["status"] != "ok":
            RESULT["errors"][key] = f"{row['status']}: {row['error'] or row['reason']}"
        else:
            RESULT["values"][key] = [row["value"]]


def selftest() -> None:
    """Defects planted on purpose: the emulator must record each one."""
    x = torch.randn(3, 4).to("cuda")
    keep("moved", x)
    _ = x + torch.ones(4)  # mixed devices
    x.index_select(0, torch.tensor([0]))  # a CPU index for index_select
    x.numpy()  # .numpy() on CUDA
    torch.rand(3, generator=torch.Generator(), device=x.device)  # a CPU generator for CUDA
    _ = x + torch.tensor(2.0)  # fine: 0-dim
    _ = x[torch.tensor([0, 1])]  # fine: a CPU index for indexing
    torch.rand(3, generator=torch.Generator(device=x.device), device=x.device)  # fine


SCENARIOS = {
    "image_metrics": image_metrics,
    "explainers": explainers,
    "token_metrics": token_metrics,
    "classification": classification,
    "pipeline_multiclass": lambda: pipeline("multiclass"),
    "pipeline_multilabel": lambda: pipeline("multilabel"),
    "selftest": selftest,
}

if __name__ == "__main__":
    SCENARIOS[SCENARIO]()
    RESULT["violations"] = fake_cuda.violations()
    RESULT["cuda_ops"] = dict(fake_cuda.CUDA_OPS)
    print(json.dumps(RESULT))
