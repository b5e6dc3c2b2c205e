"""Eigen-mask sources (cache file, released PNGs, `zsbench sazs eigs`) and the InverseForm plug-in."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from zsseg_bench.cli import app
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.sazs.inverseform import build_inverseform
from zsseg_bench.protocols.eigsource import EigenSource, load_masks, save_masks


def test_cache_round_trip_keeps_each_images_size(tmp_path):
    rng = np.random.default_rng(0)
    masks = [rng.random((5, 6, 7)) > 0.5, rng.random((5, 3, 4)) > 0.5]
    save_masks(tmp_path / "m.npz", ["a/x", "b/y"], masks, {"k": 5})
    names, back = load_masks(tmp_path / "m.npz")
    assert names == ["a/x", "b/y"] and all(np.array_equal(a, b) for a, b in zip(masks, back))
    src = EigenSource(str(tmp_path / "m.npz"))
    got = src.masks(torch.zeros(1, 3, 6, 7), ["a/x"], (6, 7))
    assert torch.equal(got[0], torch.from_numpy(masks[0]))
    with pytest.raises(ZsbenchError, match="no eigen-masks for image 'c'"):
        src.masks(torch.zeros(1, 3, 6, 7), ["c"], (6, 7))


def test_released_pngs_are_read_by_image_stem(tmp_path):
    for j in range(5):
        mask = np.zeros((4, 6), dtype=np.uint8)
        mask[:, j] = 255
        Image.fromarray(mask).save(tmp_path / f"2008_000001_k{j}.png")
    src = EigenSource(str(tmp_path))
    got = src.masks(torch.zeros(1, 3, 8, 12), ["VOC2012/JPEGImages/2008_000001.jpg"], (8, 12))
    assert got.shape == (1, 5, 8, 12) and bool(got[0, 2, :, 4:6].all()) and not bool(got[0, 2, :, :4].any())
    with pytest.raises(ZsbenchError, match="2008_000002_k0.png"):
        src.masks(torch.zeros(1, 3, 4, 6), ["2008_000002"], (4, 6))
    with pytest.raises(ZsbenchError, match="no such file or folder"):
        EigenSource(str(tmp_path / "absent"))


@pytest.mark.slow  # generates the 500 synthetic test images
def test_zsbench_sazs_eigs_writes_a_cache_a_run_can_read(tmp_path):
    out = tmp_path / "eigs.npz"
    result = CliRunner().invoke(app, ["sazs", "eigs", "--dataset", "synthetic", "--out", str(out), "--limit", "6"])
    assert result.exit_code == 0, result.output
    names, masks = load_masks(out)
    assert names[0] == "synthetic/test/00000" and masks[0].shape == (5, 64, 64) and len(names) == 6
    result = CliRunner().invoke(app, ["sazs", "eigs", "--dataset", "synthetic", "--out", str(tmp_path / "x.png")])
    assert result.exit_code != 0 and "the cache is an .npz file" in result.output


class TinyInverseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 6)

    def forward(self, predicted, truth):
        return self.fc(torch.stack([predicted.mean((1, 2, 3)), truth.mean((1, 2, 3))], 1))


def make_tiny():
    return TinyInverseNet()


def test_inverseform_is_off_by_default_and_loads_user_weights(tmp_path):
    assert build_inverseform({"weight": 0.3, "path": None, "factory": None}) is None
    torch.save(TinyInverseNet().state_dict(), tmp_path / "inv.pth")
    term = build_inverseform({"weight": 0.3, "path": str(tmp_path / "inv.pth"),
                              "factory": f"{__name__}:make_tiny"})
    loss = term(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8))
    assert loss.ndim == 0 and not any(p.requires_grad for p in term.parameters())
    with pytest.raises(ZsbenchError, match="inverseform.factory"):
        build_inverseform({"weight": 0.3, "path": str(tmp_path / "inv.pth"), "factory": None})
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ZsbenchError, match="bad.pth: not a readable inverseform.path file"):
        build_inverseform({"weight": 0.3, "path": str(tmp_path / "bad.pth"), "factory": f"{__name__}:make_tiny"})
    torch.save({"state_dict": TinyInverseNet().state_dict()}, tmp_path / "wrapped.pth")  # a training checkpoint
    assert build_inverseform({"weight": 0.3, "path": str(tmp_path / "wrapped.pth"),
                              "factory": f"{__name__}:make_tiny"}) is not None
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ZsbenchError, match="tensor.pth: holds a Tensor, not weights for"):
        build_inverseform({"weight": 0.3, "path": str(tmp_path / "tensor.pth"), "factory": f"{__name__}:make_tiny"})
