"""A weak-shot method refuses a split of another protocol with one line, before any folder exists; the
image-level label table exists for weak-shot splits only."""

from __future__ import annotations

from typer.testing import CliRunner

from zsseg_bench.catalog.splits import load_split
from zsseg_bench.cli.app import app
from zsseg_bench.datasets import build_dataset
from zsseg_bench.datasets.weak_shot import image_level_labels


def test_simformer_on_a_zero_shot_split_is_one_error_line(tmp_path):
    result = CliRunner().invoke(app, ["run", "simformer", "--split", "synthetic-9-3", "--out", str(tmp_path / "runs")])
    assert result.exit_code != 0
    assert "answers a split with protocol weak-shot; split 'synthetic-9-3' has protocol 'gzs3'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_image_level_labels_only_for_weak_shot_splits():
    data = build_dataset("synthetic", "train", None, {"n_train": 8, "size": 32})
    assert image_level_labels(load_split("synthetic-9-3"), data) is None
    split = load_split("synthetic-ws-10-3")
    table = image_level_labels(split, data)
    assert table.shape == (8, split.num_classes)
    for i in range(8):
        raw = set(data.raw_label(i).ravel().tolist())
        assert table[i].tolist() == [split.classes.id_of(n) in raw for n in split.eval_names]
