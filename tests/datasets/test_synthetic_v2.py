"""Synthetic benchmark version 2 and the options shared by both versions: determinism, v1 pixels
unchanged, worlds, the eval part, run-record options, and the knob statistics (on hand-made
cases, and v2 against v1 in the intended direction)."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
from typer.testing import CliRunner

from zsseg_bench.cli import app
from zsseg_bench.datasets import build_dataset, record_data_label, record_options, recorded_options
from zsseg_bench.datasets.synthetic import SyntheticSegmentation
from zsseg_bench.datasets.synthetic.generate import render_set
from zsseg_bench.datasets.synthetic.stats import loco_r2, mean_statistics, neighbour_information, scene_share, touching
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.runs.prepare import stored_config

# sha256 of images + labels of v1 sets, computed with the code of main at de81ce4 (before v2).
V1_PIXELS = {("train", 5, 64, 0): "dc1b050accd3fa706ea088f92e823083766c160315a52c83610637500ba3790d",
             ("test", 3, 64, 0): "769a6ac0248085637c14b9bc8714891dd508288f51808062f49d283c525bdc1a",
             ("val", 3, 32, 1): "bceba48720e78ce408ac37fc7cdc9fbefae262389b37801f6c48faa28beaa083"}


@pytest.mark.parametrize("key", list(V1_PIXELS))
def test_version_1_pixels_are_unchanged(key):
    part, n, size, world = key
    images, labels = render_set(1, world, part, n, size)
    assert hashlib.sha256(images.numpy().tobytes() + labels.numpy().tobytes()).hexdigest() == V1_PIXELS[key]


def test_version_2_is_deterministic_prefix_stable_and_differs_by_world_part_and_version():
    data = SyntheticSegmentation("train", count=30, size=32, benchmark_version=2)
    render_set.cache_clear()
    again = SyntheticSegmentation("train", count=12, size=32, benchmark_version=2)
    assert (again.images == data.images[:12]).all() and (again.labels == data.labels[:12]).all()
    for other in (SyntheticSegmentation("train", count=12, size=32, seed=1, benchmark_version=2),
                  SyntheticSegmentation("val", count=12, size=32, benchmark_version=2),
                  SyntheticSegmentation("train", count=12, size=32, benchmark_version=1)):
        assert not (other.images == data.images[:12]).all()
    assert set(np.unique(data.labels.numpy())) <= set(range(13)) and data.version == "2"


def test_options_pick_version_world_and_eval_part():
    test = build_dataset("synthetic", "test", None, {"n_test": 4, "n_val": 6, "size": 32})
    val = build_dataset("synthetic", "test", None, {"n_test": 4, "n_val": 6, "size": 32, "eval_part": "val"})
    assert len(test) == 4 and len(val) == 6 and val.image_name(0) == "synthetic/val/00000" and test.version == "2"
    v1 = build_dataset("synthetic", "train", None, {"n_train": 3, "size": 32, "version": 1, "world": 2})
    assert v1.version == "1" and (v1.images == render_set(1, 2, "train", 3, 32)[0]).all()
    with pytest.raises(ZsbenchError, match="dataset.version"):
        build_dataset("synthetic", "train", None, {"version": 3})


def test_recorded_options_and_records_made_before_versions():
    assert recorded_options("synthetic", {"size": 32}) == {"size": 32, "version": 2, "world": 0, "eval_part": "test"}
    old = {"name": "synthetic", "version": "1", "options": {"classes": "synthetic"}}
    assert record_options(old)["version"] == 1 and record_data_label(old) == "v1 world 0"
    new = {"name": "synthetic", "version": "2", "options": {"version": 2, "world": 3, "eval_part": "val"}}
    assert record_data_label(new) == "v2 world 3, scored on val"
    # resuming or predicting from an old record rebuilds version 1 (its class embeddings too)
    assert stored_config({"seed": 0}, {"dataset": old})["dataset"] == {"version": 1, "classes": "synthetic"}
    assert stored_config({"dataset": {"size": 32, "version": 2}}, {"dataset": new})["dataset"]["world"] == 3


def test_loco_r2_on_hand_made_classes():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((12, 4))
    linear = emb @ rng.standard_normal((4, 3))
    assert loco_r2(emb, linear, alpha=1e-6) > 0.999
    assert loco_r2(emb, rng.standard_normal((12, 3)), alpha=1e-6) < 0.2


def test_scene_share_on_hand_made_instances():
    rng = np.random.default_rng(0)
    classes = np.repeat([1, 2], 200)
    scenes = np.tile(np.repeat([0, 1], 100), 2)
    noise = rng.standard_normal((400, 2)) * 0.1
    assert scene_share(scenes[:, None] + noise, classes, scenes) > 0.95
    assert abs(scene_share(noise, classes, scenes)) < 0.02
    assert np.isnan(scene_share(noise, classes, np.zeros(400, int)))  # one scene: nothing to explain


def test_touching_and_neighbour_information_on_hand_made_maps():
    instances = np.zeros((6, 8), np.uint8)
    instances[0:2, 0:2], instances[0:2, 2:4], instances[4:6, 6:8] = 1, 2, 3  # 1 and 2 touch; 3 alone
    label = np.where(instances == 1, 5, np.where(instances == 2, 7, np.where(instances == 3, 9, 0))).astype(np.uint8)
    visible, touched, pairs = touching(instances, label)
    assert (visible, touched, pairs) == (3, 2, Counter({(5, 7): 1}))
    assert neighbour_information({0: Counter({(1, 1): 50, (2, 2): 50})}) == pytest.approx(1.0)  # like with like
    assert neighbour_information({0: Counter({(1, 1): 25, (1, 2): 50, (2, 2): 25})}) == pytest.approx(0.0)


@pytest.mark.slow  # renders 800 images (a few seconds on 2 cores)
def test_version_2_statistics_move_in_the_intended_direction():
    v1, v2 = (mean_statistics(v, [0, 1], n_images=200, size=64) for v in (1, 2))
    assert v2["loco_r2"] < v1["loco_r2"]
    assert v2["scene_share"] > v1["scene_share"] + 0.2
    assert v2["neighbour_bits"] > v1["neighbour_bits"] + 0.1


def test_data_stats_synthetic_prints_both_versions():
    result = CliRunner().invoke(app, ["data", "stats", "synthetic", "--images", "40", "--worlds", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "world 1" in text and "v1" in text and "v2" in text and "leave-one-class-out R²" in text
    assert "neighbour information (bits)" in text
    bad = CliRunner().invoke(app, ["data", "stats", "synthetic", "--worlds", "a"])
    assert bad.exit_code != 0 and "--worlds" in bad.output
