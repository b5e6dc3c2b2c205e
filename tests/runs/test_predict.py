"""`zsbench predict`: a trained synthetic run segments arbitrary image files.

One tiny SPNet run (a few iterations) is trained once for the module; the model's quality is
not the point, the files and the error handling are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from zsseg_bench.cli import app
from zsseg_bench.report.palette import decode_palette_png, encode_palette_png, palette_for, voc_palette
from zsseg_bench.runs.train import RunRequest, run_one

TINY = ["train.iterations=3", "dataset.n_train=16", "dataset.n_test=8", "data.batch_size=8",
        "eval.keep_predictions=2"]
SYNTHETIC_IDS = set(range(1, 13))  # synthetic-9-3 scores the 12 object classes (background excluded)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return run_one(RunRequest(method="spnet", overrides=TINY, out=tmp_path_factory.mktemp("runs")))


@pytest.fixture
def images(tmp_path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (123, 457, 3), dtype=np.uint8)
    paths = {"rgb": tmp_path / "photo.jpg", "gray": tmp_path / "gray.png", "rgba": tmp_path / "rgba.png",
             "gray16": tmp_path / "gray16.png", "tiny": tmp_path / "tiny.bmp"}
    Image.fromarray(rgb).save(paths["rgb"], quality=90)
    Image.fromarray(rgb[:, :, 0]).resize((61, 300)).save(paths["gray"])
    rgba = np.dstack([rgb[:90, :70], rng.integers(0, 256, (90, 70), dtype=np.uint8)])
    Image.fromarray(rgba, "RGBA").save(paths["rgba"])
    Image.fromarray((rng.integers(0, 65535, (40, 50))).astype(np.uint16)).save(paths["gray16"])
    Image.fromarray(rgb[:5, :7]).save(paths["tiny"])
    return paths


def test_palette_png_of_a_known_mask_has_the_voc_colours(tmp_path):
    mask = np.array([[0, 1, 2], [3, 15, 255]], dtype=np.uint8)
    path = tmp_path / "mask.png"
    path.write_bytes(encode_palette_png(mask, voc_palette()))
    with Image.open(path) as image:
        assert image.mode == "P"
        rgb = np.asarray(image.convert("RGB"))
    expected = np.array([[[0, 0, 0], [128, 0, 0], [0, 128, 0]], [[128, 128, 0], [192, 128, 128], [224, 224, 192]]])
    assert (rgb == expected).all()
    assert (decode_palette_png(path) == mask).all()
    # the synthetic benchmark takes VOC's colours by class name: its cat (1), sheep (4) and boat (8)
    # get VOC's cat (8), sheep (17) and boat (4) colours; background and void stay black and cream
    synthetic = palette_for("synthetic")
    assert synthetic[[0, 1, 4, 8, 255]].tolist() == [[0, 0, 0], [64, 0, 0], [128, 64, 0], [0, 0, 128],
                                                      [224, 224, 192]]
    assert len({tuple(c) for c in synthetic[:13]}) == 13


def test_predict_writes_pngs_for_rgb_gray_rgba_any_size(run_dir, images, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(run_dir), *map(str, images.values()), "-o", str(out)])
    assert result.exit_code == 0, result.output
    for name, path in images.items():
        with Image.open(path) as original:
            size = original.size
        pred, overlay = out / f"{path.stem}_pred.png", out / f"{path.stem}_overlay.png"
        with Image.open(pred) as image:
            assert image.mode == "P" and image.size == size, name  # label map at the input's size
            rgb = np.asarray(image.convert("RGB"))
        ids = decode_palette_png(pred)
        assert set(np.unique(ids)) <= SYNTHETIC_IDS, name
        assert (rgb == palette_for("synthetic")[ids]).all()
        with Image.open(overlay) as image:
            assert image.mode == "RGB"
            assert image.width > size[0] and image.height >= size[1], name  # the legend is beside the image
            assert len(image.getcolors(maxcolors=1 << 24)) > 1
        assert str(path) in "".join(result.stdout.split()) or path.name in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "trained on the synthetic benchmark" in warnings[0]  # one line, once


def test_predict_native_size_matches_default_for_a_64px_synthetic_image(run_dir, tmp_path):
    from zsseg_bench.datasets import build_dataset
    from zsseg_bench.runs.predict import load_trained

    item = build_dataset("synthetic", "test", None, {"n_test": 8})[0]
    image = item["image"].numpy().transpose(1, 2, 0)
    trained = load_trained(run_dir)
    assert trained.default_input_size() == 64
    assert (trained.segment(image) == trained.segment(image, input_size=0)).all()  # 64 px: nothing to resize
    # the stored prediction of a test image equals what `predict` makes of the same pixels
    stored = run_dir / "predictions"
    index = json.loads((stored / "index.json").read_text())
    entry = index["images"][0]
    ds_item = build_dataset("synthetic", "test", None, {"n_test": 8})[entry["index"]]
    again = trained.segment(ds_item["image"].numpy().transpose(1, 2, 0))
    assert (decode_palette_png(stored / entry["file"]) == again).all()


@pytest.mark.parametrize("kind", ["missing", "garbage", "truncated", "folder"])
def test_bad_image_is_one_line_error_nonzero_exit_and_writes_nothing(run_dir, tmp_path, kind):
    bad = tmp_path / "bad.png"
    if kind == "garbage":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    elif kind == "truncated":
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(bad)
        bad.write_bytes(bad.read_bytes()[:300])
    elif kind == "folder":
        bad.mkdir()
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(good)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(run_dir), str(good), str(bad), "-o", str(out)])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: ") and "bad.png" in line and "Traceback" not in line
    assert not out.exists()  # every image is read before anything is written


def test_run_without_weights_or_not_a_run_is_one_line_error(run_dir, tmp_path, images):
    copy = tmp_path / "copied-run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("ckpt"))
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(copy), str(images["rgb"]), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no trained weights" in result.stderr and result.stderr.count("\n") == 1
    result = runner.invoke(app, ["predict", str(tmp_path), str(images["rgb"]), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not a run folder" in result.stderr


def _autocast_during_predict(monkeypatch) -> list:
    """What autocast state the method's `predict` runs under (recorded per call)."""
    import torch

    from zsseg_bench.methods import IMPLEMENTATIONS

    states = []
    impl = IMPLEMENTATIONS.get("spnet")
    real = impl.predict

    def spy(self, images, size=None):
        states.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return real(self, images, size)

    monkeypatch.setattr(impl, "predict", spy)
    return states


def test_predict_honours_engine_precision(run_dir, tmp_path, images, monkeypatch):
    import torch

    bf16_run = run_one(RunRequest(method="spnet", overrides=[*TINY, "engine.precision=bf16"], out=tmp_path / "runs"))
    states = _autocast_during_predict(monkeypatch)
    runner = CliRunner()
    for run, out in ((bf16_run, "bf16"), (run_dir, "fp32")):
        result = runner.invoke(app, ["predict", str(run), str(images["tiny"]), "-o", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    assert states == [torch.bfloat16, None]  # engine.precision: bf16 autocast; the fp32 run: none
