"""Image reading shared by the file-based datasets: bit depths, hidden files, bad roots."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from harness_builtins.datasets import _fixtures
from harness_builtins.datasets._files import read_image, visible_images
from harness_builtins.datasets._synthetic_common import standardise
from PIL import Image

from harness.errors import PluginError
from harness.spec import validate_spec


def _ramp(width=40, height=30):
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, width)[None, :] + np.linspace(0, 40, height)[:, None]
    return np.clip(ramp + rng.normal(0, 10, (height, width)), 0, 255).astype(np.uint8)


def _corr(a, b):
    return float(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1])


def test_eight_bit_reading_unchanged(tmp_path):
    # the pre-existing 8-bit path: Pillow "L", bilinear resize, / 255, standardise
    path = _fixtures.write_image(tmp_path / "a.png", 40, 30, seed=3, mode="RGB")
    with Image.open(path) as img:
        gray = np.asarray(img.convert("L").resize((16, 16), Image.Resampling.BILINEAR))
    reference = standardise(torch.from_numpy(gray.copy()).float().reshape(1, 16, 16) / 255.0)
    assert torch.equal(read_image(path, 16, "test")[0], reference)


def test_sixteen_bit_png_keeps_its_content(tmp_path):
    eight = _ramp()
    Image.fromarray(eight).save(tmp_path / "8.png")
    Image.fromarray(eight.astype(np.uint16) * 257).save(tmp_path / "16.png")
    with Image.open(tmp_path / "16.png") as img:
        assert img.mode.startswith("I;16")
    low = read_image(tmp_path / "8.png", 16, "test")[0]
    high = read_image(tmp_path / "16.png", 16, "test")[0]
    assert high.std() > 0.5
    assert _corr(low, high) > 0.999
    # 12-bit content in a 16-bit file (values < 4096) is not clipped either
    Image.fromarray(eight.astype(np.uint16) * 16).save(tmp_path / "12.png")
    assert _corr(low, read_image(tmp_path / "12.png", 16, "test")[0]) > 0.999


def test_float_and_int32_images_scaled_by_their_range(tmp_path):
    eight = _ramp()
    low = read_image(_save(tmp_path / "8.png", eight), 16, "test")[0]
    floats = _save(tmp_path / "f.tiff", eight.astype(np.float32) * 1e3 - 5e4)
    ints = _save(tmp_path / "i.tiff", eight.astype(np.int32) * 70_000)
    for path, mode in ((floats, "F"), (ints, "I")):
        with Image.open(path) as img:
            assert img.mode == mode
        assert _corr(low, read_image(path, 16, "test")[0]) > 0.999
    flat = _save(tmp_path / "flat.tiff", np.full((8, 8), 7.0, np.float32))
    assert torch.equal(read_image(flat, 4, "test")[0], torch.zeros(1, 4, 4))


def _save(path, array):
    Image.fromarray(array).save(path)
    return path


def test_visible_images_skips_hidden_and_other_files(tmp_path):
    for name in ("b.jpeg", "a.PNG", ".DS_Store", "._a.PNG", ".hidden.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "dir.png").mkdir()
    assert [p.name for p in visible_images(tmp_path)] == ["a.PNG", "b.jpeg"]


@pytest.mark.parametrize(
    "name", ["xray.kermany_pneumonia", "xray.chexpert", "xray.nih_chestxray14"]
)
def test_check_params_names_a_missing_root(tmp_path, name):
    import harness

    (tmp_path / "file").write_text("x")
    harness.get_dataset(name, root=str(tmp_path)).check_params()
    for root, why in ((tmp_path / "absent", "no such folder"), (tmp_path / "file", "a file")):
        with pytest.raises(PluginError, match=rf"{name}'?: parameter root - expected .*{why}"):
            harness.get_dataset(name, root=str(root)).check_params()


def test_validate_reports_a_missing_root(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "benchmark: bad_root\nversion: 1\nseed: 0\n"
        "dataset: {name: xray.kermany_pneumonia, params: {root: /nonexistent/chest_xray}}\n"
        "models: [{name: torchvision.resnet18, params: {epochs: 1}}]\n"
        "explainers: [control.random]\nmetrics: [classification.accuracy]\n"
    )
    result, problems = validate_spec(spec)
    assert result is None
    assert any("parameter root" in str(p) and "/nonexistent/chest_xray" in str(p) for p in problems)
