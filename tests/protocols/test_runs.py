"""The fss-zeroshot protocol in runs: leakage-free fusion reads no labels, the oracle is flagged, the
real-data path on generated PASCAL-5i and COCO-20i trees, tables and checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

import zsseg_bench.protocols.fss_zeroshot as fss
from tests.helpers.datasets import make_coco_hsnet, make_voc_devkit
from tests.helpers.settings import tiny
from zsseg_bench.catalog.cards import load_card, resolve_config
from zsseg_bench.catalog.splits import load_split
from zsseg_bench.cli import app
from zsseg_bench.datasets import build_dataset
from zsseg_bench.protocols.eigsource import EigenSource
from zsseg_bench.runs.prepare import RunRequest, prepare_run


def _synthetic_run(overrides=()):
    return prepare_run(RunRequest(method="sazs", split="synthetic-5i-f1", overrides=[*tiny("sazs"), *overrides]))


@pytest.mark.slow  # builds a run and scores 60 episodes twice (a few seconds)
def test_leakage_free_fusion_reads_no_ground_truth(monkeypatch):
    run = _synthetic_run()
    ctx = run.context()
    episodes = fss.test_episodes(run.split, run.data.test)
    episodes = type(episodes)(episodes.images[:60], episodes.classes[:60], episodes.class_names, episodes.n_pairs,
                              episodes.rule)
    seen: list[torch.Tensor] = []
    real = fss.binary_counts
    monkeypatch.setattr(fss, "binary_counts", lambda mask, truth, ignore: (seen.append(mask.clone()),
                                                                            real(mask, truth, ignore))[1])
    fss.run_episodes(run.method, ctx, run.data.test, episodes, EigenSource(None), thresholds=(0.5,))
    clean, seen[:] = list(seen), []
    # poison the ground truth: every raw label maps to another class
    lut = ctx.eval_lut.clone()
    k = run.split.num_classes
    lut[: k] = (lut[: k] + 1) % k
    ctx.eval_lut = lut
    fss.run_episodes(run.method, ctx, run.data.test, episodes, EigenSource(None), thresholds=(0.5,))
    poisoned = seen
    assert len(clean) == len(poisoned) == 3 * len(episodes)  # none, self@0.5, oracle per episode
    for mode, offset in (("none", 0), ("self", 1)):
        assert all(torch.equal(a, b) for a, b in zip(clean[offset::3], poisoned[offset::3])), mode
    assert not all(torch.equal(a, b) for a, b in zip(clean[2::3], poisoned[2::3]))  # the oracle does read it


@pytest.mark.parametrize("card", ["sazs", "lseg-zs"])
def test_oracle_and_test_fold_selection_are_never_defaults(card):
    c = load_card(card)
    for dataset in ["synthetic", *c.datasets]:
        cfg = resolve_config(c, dataset, [])
        assert cfg.get("fusion", {}).get("mode", "none") != "oracle"
        assert cfg.get("selection", {}).get("mode", "heldout") != "test-fold"
    assert c.in_default_run is False
    assert _synthetic_run().method.protocol_flags()["uses_test_labels"] is False
    flags = _synthetic_run(["fusion.mode=oracle"]).method.protocol_flags()
    assert flags["uses_test_labels"] is True


@pytest.mark.slow
def test_run_table_report_and_check_of_synthetic_folds(tmp_path, one_thread):
    out = tmp_path / "runs"
    for split, extra in (("synthetic-5i-f0", []), ("synthetic-5i-f2", ["--set", "fusion.mode=oracle"])):
        result = CliRunner().invoke(app, ["run", "sazs", "--split", split, "--out", str(out), "--no-report",
                                          *sum((["--set", s] for s in tiny("sazs")), []), *extra])
        assert result.exit_code == 0, result.output
    metrics = [json.loads(p.read_text()) for p in sorted(out.glob("*/*/metrics.json"))]
    assert {m["fusion"] for m in metrics} == {"none", "oracle"}
    for m in metrics:
        assert set(m["by_fusion"]) == {"none", "self", "oracle"} and m["episodes"]["count"] == 1000
        assert m["by_fusion"]["oracle"]["FG-mIoU"] >= m["by_fusion"]["none"]["FG-mIoU"]
        assert m["FG-mIoU"] == m["by_fusion"][m["fusion"]]["FG-mIoU"]
    result = CliRunner().invoke(app, ["table", str(out), "--out", str(tmp_path / "t")], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    table = (tmp_path / "t-episodic.md").read_text()
    assert "FG-mIoU oracle (uses-test-labels)" in table and "mean (2 folds)" in table
    oracle_row = next(line for line in table.splitlines() if "synthetic-5i-f2" in line)
    assert "uses-test-labels" in oracle_row.split("|")[7]  # the flags column of the oracle-fused run
    result = CliRunner().invoke(app, ["report", str(out), "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert "Episodic zero-shot protocol" in (tmp_path / "report" / "report.md").read_text()
    result = CliRunner().invoke(app, ["check", str(out)])
    assert result.exit_code == 2 and "no published fss-zeroshot row" in result.output


@pytest.fixture
def voc_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    make_voc_devkit(tmp_path / "voc", n_train=4, n_val=8, aug=3, size=(40, 56))
    return tmp_path


def test_pascal5i_episodes_on_a_generated_voc_tree_follow_the_counting_rule(voc_tree):
    split = load_split("pascal5i-f0")
    test = build_dataset("voc12", "test", str(voc_tree / "voc"), {"classes": "voc12"})
    pairs = [(i, c) for i in range(len(test)) for c in split.unseen
             if (np.asarray(test.raw_label(i)) == split.classes.id_of(c)).any()]
    episodes = fss.test_episodes(split, test)
    assert episodes.n_pairs == len(pairs) > 0 and len(episodes) == 1000
    got = [(int(i), split.eval_names[int(c)]) for i, c in zip(episodes.images, episodes.classes)]
    assert got == [pairs[e % len(pairs)] for e in range(1000)]
    result = CliRunner().invoke(app, ["data", "check", "voc12", "--data-root", str(voc_tree / "voc"),
                                      "--split", "pascal5i-f0"])
    assert result.exit_code == 0, result.output


def test_coco20i_episodes_on_a_generated_hsnet_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    make_coco_hsnet(tmp_path / "coco", n_train=3, n_val=12)
    split = load_split("coco20i-f0")
    test = build_dataset("coco", "test", str(tmp_path / "coco"), {"classes": "coco80"})
    episodes = fss.test_episodes(split, test)
    assert len(episodes) == 1000 and set(episodes.class_names) == set(split.unseen)
    raw = [split.classes.id_of(split.eval_names[int(k)]) for k in episodes.classes]
    assert all((np.asarray(test.raw_label(int(i))) == r).any() for i, r in zip(episodes.images, raw))
    result = CliRunner().invoke(app, ["data", "check", "coco", "--data-root", str(tmp_path / "coco"),
                                      "--split", "coco20i-f0"])
    assert result.exit_code == 0, result.output


TINY_VIT = ["backbone.name=dpt-vit", "backbone.dim=32", "backbone.depth=2", "backbone.heads=2", "backbone.grid=4",
            "backbone.hook=1", "backbone.features=16"]  # the plain-torch ViT (no timm needed), random init


@pytest.mark.slow
@pytest.mark.parametrize("dataset, split, make, heldout", [
    ("voc12", "pascal5i-f0", lambda root: make_voc_devkit(root, n_train=4, n_val=8, aug=3, size=(40, 56)), 2),
    ("coco", "coco20i-f0", lambda root: make_coco_hsnet(root, n_train=6, n_val=8, size=(40, 56)), 2),
])
def test_zsbench_data_check_and_run_sazs_with_a_tiny_vit_on_generated_trees(tmp_path, monkeypatch, one_thread,
                                                                           dataset, split, make, heldout):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    make(tmp_path / "data")
    runner = CliRunner()
    result = runner.invoke(app, ["data", "check", dataset, "--data-root", str(tmp_path / "data"), "--split", split])
    assert result.exit_code == 0, result.output
    names = load_split(split).classes.names
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).standard_normal((len(names), 16)).astype(np.float32))
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    small = [*TINY_VIT, "train.epochs=2", "train.iterations_per_epoch=2", "data.batch_size=2", "data.crop=32",
             "data.scale=[0.75,1.25]", "data.num_workers=0", "eval.warp=48", "selection.episodes=10",
             "selection.heldout_fraction=0.3", "embeddings.provider=file", f"embeddings.path={tmp_path / 'emb.npy'}",
             f"embeddings.names={tmp_path / 'names.txt'}"]
    out = tmp_path / "runs"
    result = runner.invoke(app, ["run", "sazs", "--dataset", dataset, "--split", split, "--data-root",
                                 str(tmp_path / "data"), "--out", str(out), "--no-report",
                                 *sum((["--set", s] for s in small), [])])
    assert result.exit_code == 0, result.output
    run_dir = next(out.glob(f"*/sazs__{split}__s0__*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["protocol"] == "fss-zeroshot" and metrics["episodes"]["rule"] == ("cycle" if dataset == "voc12"
                                                                                    else "random")
    assert set(metrics["by_fusion"]) == {"none", "self", "oracle"}
    run = json.loads((run_dir / "run.json").read_text())
    assert run["scoring"]["heldout_images"] == heldout and run["method_facts"]["selection"]["mode"] == "heldout"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["config"]["backbone"]["name"] == "dpt-vit"


@pytest.mark.parametrize("method, split, says", [
    ("sazs", "synthetic-9-3", "answers a split with protocol fss-zeroshot"),
    ("spnet", "synthetic-5i-f0", "answers a gzs3 split"),
])
def test_a_method_and_a_split_of_different_protocols_are_refused(tmp_path, method, split, says):
    result = CliRunner().invoke(app, ["run", method, "--split", split, "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def _episodic_metrics(none: float, oracle: float, fusion: str = "none") -> dict:
    by = {"none": {"FG-mIoU": none, "FB-IoU": 0.5}, "self": {"FG-mIoU": none, "FB-IoU": 0.5},
          "oracle": {"FG-mIoU": oracle, "FB-IoU": 0.6}}
    return {"protocol": "fss-zeroshot", "fusion": fusion, "FG-mIoU": by[fusion]["FG-mIoU"], "FB-IoU": 0.5,
            "by_fusion": by}


def _write_episodic(root, name: str, seed: int, none: float, oracle: float):
    """A pascal5i-f0 record whose per_class.csv (one class, 1000 px union) gives its FG-mIoU values."""
    import pandas as pd

    from tests.helpers.records import write_record
    from zsseg_bench.runs.records import RunRecord

    path = write_record(root, name, "sazs", "voc12", "pascal5i-f0", seed, _episodic_metrics(none, oracle))
    rec = RunRecord(path)
    rec.update_run(split={"name": "pascal5i-f0", "sha256": load_split("pascal5i-f0").sha256})
    rec.write_csv("per_class.csv", pd.DataFrame(
        {"fusion": ["none", "self", "oracle"], "class_name": "aeroplane",
         "fg_intersection": [none * 1000, none * 1000, oracle * 1000], "fg_union": 1000}))


def test_published_sazs_folds_are_compared_with_the_oracle_column_only(tmp_path):
    from zsseg_bench.report.check import check_runs
    from zsseg_bench.report.episodic import PUBLISHED_COLUMN, episodic_frame, episodic_summary
    from zsseg_bench.report.tables import runs_frame

    _write_episodic(tmp_path, "a", 0, 0.30, 0.62)
    _write_episodic(tmp_path, "b", 1, 0.32, 0.64)
    assert runs_frame([tmp_path]).empty  # never in a GZS3 table
    summary = episodic_summary(episodic_frame([tmp_path]), published=True)
    fold = summary[summary["split"] == "pascal5i-f0"].iloc[0]
    assert fold[PUBLISHED_COLUMN] == pytest.approx(0.627)  # the SAZS README, PASCAL fold 0
    assert fold["FG-mIoU oracle (uses-test-labels)"] == pytest.approx(0.63)
    assert fold["FG-mIoU none"] == pytest.approx(0.31)
    checked = check_runs([tmp_path], tolerance=0.02)
    assert checked["actual"].tolist() == [0.62, 0.64] and checked["pass"].all()
    assert set(checked["metric"]) == {"FG-mIoU (fusion=oracle, uses-test-labels)"}
    assert set(checked["source"]) == {"sazs-readme (oracle fusion)"}
    assert CliRunner().invoke(app, ["check", str(tmp_path), "--tolerance", "0.02"]).exit_code == 0
    _write_episodic(tmp_path, "c", 2, 0.30, 0.50)
    result = CliRunner().invoke(app, ["check", str(tmp_path), "--tolerance", "0.02"])
    assert result.exit_code == 1  # 0.50 against 0.627


def test_an_edited_episodic_metrics_file_is_refused(tmp_path):
    from zsseg_bench.errors import ZsbenchError
    from zsseg_bench.report.episodic import episodic_frame

    _write_episodic(tmp_path, "a", 0, 0.30, 0.62)
    assert len(episodic_frame([tmp_path])) == 1
    metrics_file = next(tmp_path.glob("a*/metrics.json"))
    metrics = json.loads(metrics_file.read_text())
    metrics["by_fusion"]["oracle"]["FG-mIoU"] = 0.70
    metrics_file.write_text(json.dumps(metrics))
    with pytest.raises(ZsbenchError, match="FG-mIoU of fusion oracle is 0.7, per_class.csv gives 0.620000"):
        episodic_frame([tmp_path])
