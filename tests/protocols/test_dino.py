"""DINO eigen-mask features: a tiny random-init ViT checkpoint with DINO's (timm's) keys, loaded into
the plain-torch ViT; `zsbench sazs eigs --features dino` on a generated PASCAL-5i tree; bad files."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.bad_inputs import Payload
from tests.helpers.datasets import make_voc_devkit
from zsseg_bench.cli import app
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.common.vit import ViT
from zsseg_bench.protocols.dino import DinoKeys, load_dino
from zsseg_bench.protocols.eigsource import load_masks

TINY = dict(patch=8, dim=32, depth=2, heads=2, grid=4)


def _checkpoint(path, wrap=None, **arch):
    torch.manual_seed(0)
    source = ViT(**{**TINY, **arch}, norm=True)  # DINO's files hold the final norm too (unused here)
    state = source.state_dict()
    if wrap == "teacher":  # a DINO training checkpoint
        state = {"teacher": {f"module.backbone.{k}": v for k, v in state.items()}, "epoch": 100}
    torch.save(state, path)
    return source


@pytest.mark.parametrize("wrap", [None, "teacher"])
def test_a_dino_checkpoint_loads_with_its_architecture_read_from_the_file(tmp_path, wrap):
    source = _checkpoint(tmp_path / "dino.pth", wrap)
    model = load_dino(str(tmp_path / "dino.pth"), heads=2)
    assert model.arch == TINY
    assert torch.equal(model.blocks[1].attn.qkv.weight, source.blocks[1].attn.qkv.weight)
    assert load_dino(str(tmp_path / "dino.pth")).arch["heads"] == 1  # width / 64, at least 1


def test_features_are_the_last_layers_keys(tmp_path):
    _checkpoint(tmp_path / "dino.pth")
    model = load_dino(str(tmp_path / "dino.pth"), heads=2)
    images = torch.randint(0, 256, (2, 3, 44, 60), dtype=torch.uint8)
    feats, grid = DinoKeys(model).keys(images)
    assert grid == (5, 7) and feats.shape == (2, 35, 32)  # resized down to multiples of the patch
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(2, 35))
    affinity, _ = DinoKeys(model)(images)
    assert affinity.min() >= 0 and torch.allclose(affinity.diagonal(dim1=1, dim2=2), torch.ones(2, 35))
    last = model.blocks[-1]
    with torch.no_grad():
        last.mlp.fc2.weight.add_(1.0)  # after the keys: no effect
        last.attn.qkv.weight[64:].add_(1.0)  # the values: no effect
    torch.testing.assert_close(DinoKeys(model).keys(images)[0], feats)
    with torch.no_grad():
        last.attn.qkv.weight[32:64].add_(0.5)  # the keys
    assert not torch.allclose(DinoKeys(model).keys(images)[0], feats)


def test_zsbench_sazs_eigs_with_dino_on_a_generated_pascal5i_tree(tmp_path):
    make_voc_devkit(tmp_path / "voc", n_train=2, n_val=3, size=(40, 56))
    _checkpoint(tmp_path / "dino.pth")
    out = tmp_path / "eigs.npz"
    result = CliRunner().invoke(app, ["sazs", "eigs", "--dataset", "voc12", "--data-root", str(tmp_path / "voc"),
                                      "--features", "dino", "--weights", str(tmp_path / "dino.pth"), "--heads", "2",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    names, masks = load_masks(out)
    assert names == ["2008_000000", "2008_000001", "2008_000002"]
    assert all(m.shape == (5, 40, 56) and 0 < m.mean() <= 0.5 for m in masks)  # the smaller side is foreground


@pytest.mark.parametrize("state, says", [
    ({"token_embedding.weight": torch.zeros(3, 4)}, "not a DINO ViT checkpoint (timm-style keys): key 'cls_token'"),
    ("wrong-shape", "not a timm ViT of this size (shape of blocks.1.attn.qkv.weight differs)"),
    ("not-square", "do not fit a ViT of width 32 on a square grid"),
])
def test_a_wrong_checkpoint_is_one_line(tmp_path, state, says):
    if state == "wrong-shape":
        state = ViT(**TINY).state_dict()
        state["blocks.1.attn.qkv.weight"] = torch.zeros(10, 32)
    elif state == "not-square":
        state = {**ViT(**TINY).state_dict(), "pos_embed": torch.zeros(1, 1 + 15, 32)}
    torch.save(state, tmp_path / "bad.pth")
    make_voc_devkit(tmp_path / "voc", n_train=1, n_val=1)
    out = tmp_path / "eigs.npz"
    result = CliRunner().invoke(app, ["sazs", "eigs", "--dataset", "voc12", "--data-root", str(tmp_path / "voc"),
                                      "--features", "dino", "--weights", str(tmp_path / "bad.pth"), "--out", str(out)])
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_dino_needs_weights_and_missing_files_are_named(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["sazs", "eigs", "--features", "dino", "--out", str(tmp_path / "e.npz")])
    assert result.exit_code == 2 and "--features dino needs --weights PATH" in result.output
    with pytest.raises(ZsbenchError, match="absent.pth: no such file"):
        load_dino(str(tmp_path / "absent.pth"))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    torch.save({"cls_token": Payload(tmp_path / "marker")}, tmp_path / "evil.pth")
    with pytest.raises(ZsbenchError, match="evil.pth: refused: loading this --weights file would run Python code"):
        load_dino(str(tmp_path / "evil.pth"))
    assert not (tmp_path / "marker").exists()
