"""The real-data path end to end on generated trees: `zsbench run` on VOC, the training policy, the loaders."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.configs import card_config
from tests.helpers.datasets import make_voc_devkit
from zsseg_bench.catalog.splits import load_class_list, load_split
from zsseg_bench.cli import app
from zsseg_bench.datasets import build_dataset
from zsseg_bench.datasets.presence import class_presence
from zsseg_bench.engine.context import RunContext
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.runs.prepare import train_indices

SMALL = ["--set", "backbone.name=small-cnn", "--set", "train.iterations=3", "--set", "data.batch_size=2",
         "--set", "data.warp=null", "--set", "data.scale=[0.75,1.25]", "--set", "data.crop=32",
         "--set", "data.pad_to=null", "--set", "data.num_workers=0", "--set", "eval.warp=40"]


@pytest.fixture
def voc_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    make_voc_devkit(tmp_path / "voc", n_train=4, n_val=3, aug=3, size=(40, 56))
    table = np.random.default_rng(0).standard_normal((21, 16)).astype(np.float32)
    np.save(tmp_path / "emb.npy", table)
    (tmp_path / "names.txt").write_text("\n".join(load_class_list("voc12").names) + "\n")
    return tmp_path


@pytest.mark.slow
def test_zsbench_run_spnet_on_a_generated_voc_tree_writes_a_run_record(voc_tree, one_thread):
    out = voc_tree / "runs"
    result = CliRunner().invoke(app, ["run", "spnet", "--dataset", "voc12", "--data-root", str(voc_tree / "voc"),
                                      "--out", str(out), *SMALL, "--set", "embeddings.provider=file",
                                      "--set", f"embeddings.path={voc_tree / 'emb.npy'}",
                                      "--set", f"embeddings.names={voc_tree / 'names.txt'}"])
    assert result.exit_code == 0, result.output
    run_dir = next(out.glob("*/spnet__voc12-15-5__s0__*"))
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "ok" and run["dataset"]["n_train"] == 7 and run["dataset"]["n_test"] == 3
    assert run["dataset"]["options"]["classes"] == "voc12"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    confusion = np.load(run_dir / "confusion.npy")
    assert confusion.shape == (20, 20) and metrics["n_pixels"] == int(confusion.sum()) > 0
    # scored on the 40x40 warped test masks, without the void/background pixels
    assert confusion.sum() <= 3 * 40 * 40


def test_drop_images_with_unseen_uses_cached_presence(voc_tree):
    split = load_split("voc12-zs3-u4")
    ds = build_dataset("voc12", "train", str(voc_tree / "voc"), {"classes": "voc12"})
    unseen = [split.classes.id_of(c) for c in split.unseen]
    expected = [i for i in range(len(ds)) if not np.isin(ds.raw_label(i), unseen).any()]
    assert train_indices(split, ds).tolist() == expected
    cached = list((voc_tree / "cache" / "presence").glob("voc12-train-*.npz"))
    assert len(cached) == 1
    presence = class_presence(ds)
    assert presence.shape == (7, 256) and presence[:, 255].any()
    # the cache follows the files: a changed mask gives a new key
    path = ds.label_path(0)
    os.utime(path, ns=(1, 1))
    class_presence(ds)
    assert len(list((voc_tree / "cache" / "presence").glob("voc12-train-*.npz"))) == 2


def test_variable_size_images_need_a_crop_for_training_and_evaluate_one_by_one(voc_tree):
    root = voc_tree / "voc"
    split = load_split("voc12-15-5")
    train = build_dataset("voc12", "train", str(root), {})
    test = build_dataset("voc12", "test", str(root), {})
    ctx = RunContext(split=split, train_set=train, device=torch.device("cpu"), seed=0,
                     cfg=card_config("spnet", data={"batch_size": 2}))
    with pytest.raises(ZsbenchError, match="data.crop"):
        ctx.loader()
    assert ctx.loader(range(3), dataset=test, batch_size=8, shuffle=False).batch_size == 1
    ctx = RunContext(split=split, train_set=train, device=torch.device("cpu"), seed=0,
                     cfg=card_config("spnet", data={"batch_size": 2, "crop": 24}, eval={"warp": 33}))
    batch = next(iter(ctx.loader()))
    assert batch["image"].shape == (2, 3, 24, 24) and batch["label"].dtype == torch.int64
    evaluation = ctx.loader(range(3), dataset=test, batch_size=8, shuffle=False)
    assert evaluation.batch_size == 3 and next(iter(evaluation))["label"].shape == (3, 33, 33)


@pytest.mark.parametrize("extra, message", [
    ([], "needs fasttext.pkl"),  # the card's official embeddings are not under this data root
    (["--set", "embeddings.provider=file", "--set", "data.crop=null"], "embeddings.path=TABLE"),
    (["--set", "data.crop=null", "--set", "data.warp=null", "--set", "embeddings.provider=dataset"],
     "supplies no class embeddings"),
])
def test_bad_real_data_settings_fail_before_any_folder_exists(voc_tree, extra, message):
    out = voc_tree / "runs"
    result = CliRunner().invoke(app, ["run", "spnet", "--dataset", "voc12", "--data-root", str(voc_tree / "voc"),
                                      "--out", str(out), *extra])
    assert result.exit_code == 2 and message in result.stderr
    assert not out.exists()


def test_real_data_training_needs_a_crop_or_warp_before_the_run_starts(voc_tree):
    out = voc_tree / "runs"
    result = CliRunner().invoke(app, ["run", "spnet", "--dataset", "voc12", "--data-root", str(voc_tree / "voc"),
                                      "--out", str(out), "--set", "data.crop=null", "--set", "data.warp=null",
                                      "--set", "embeddings.provider=file",
                                      "--set", f"embeddings.path={voc_tree / 'emb.npy'}",
                                      "--set", f"embeddings.names={voc_tree / 'names.txt'}"])
    assert result.exit_code == 2 and "data.crop" in result.stderr and not out.exists()
