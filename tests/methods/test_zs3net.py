"""ZS3Net: its pieces, its two protocols, and ZS3Net+ST reusing ZS3Net's stages in one run."""

import json

import pytest
import torch

from tests.helpers.configs import card_config
from zsseg_bench.engine.loop import StageCache
from zsseg_bench.methods import ClassSpace
from zsseg_bench.methods.common.sampling import class_prior, sample_groups
from zsseg_bench.methods.zs3net import ZS3Net
from zsseg_bench.report.tables import format_summary, runs_frame, summarize
from zsseg_bench.runs.train import RunRequest, run_one

IGNORE = 255
TINY = ["dataset.n_train=24", "dataset.n_test=8", "dataset.size=32", "train.iterations=3",
        "generator.iterations=3", "classifier_stage.iterations=3", "eval.batch_size=8", "data.batch_size=4"]


def test_class_prior_weights():
    seen = torch.tensor([True, True, False, True, False])
    prior = class_prior(seen, 9)
    assert torch.allclose(prior, torch.tensor([1, 1, 10, 1, 10]) / 23.0)
    assert torch.allclose(class_prior(seen, 0), torch.full((5,), 0.2))


def test_sample_groups_draws_from_each_image_and_class():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(4, (3, 6, 5), generator=g)
    label[torch.rand(3, 6, 5, generator=g) < 0.3] = IGNORE
    index, cls = sample_groups(label, 4, IGNORE, 50)
    flat = label.flatten()
    image = torch.arange(3).repeat_interleave(30)
    pairs = {(int(i), int(c)) for i, c in zip(image[flat != IGNORE], flat[flat != IGNORE])}
    assert len(cls) == len(pairs) and index.shape == (len(pairs), 50)
    got = set()
    for row, c in zip(index, cls):
        assert bool((flat[row] == c).all())  # every draw has the group's class ...
        imgs = image[row].unique()
        assert len(imgs) == 1  # ... and comes from one image
        got.add((int(imgs[0]), int(c)))
    assert got == pairs
    keep = torch.tensor([True, False, True])
    index, _ = sample_groups(label, 4, IGNORE, 10, keep_image=keep)
    assert not bool((image[index.flatten()] == 1).any())
    index, cls = sample_groups(label, 4, IGNORE, 10, per_image=False)
    assert sorted(cls.tolist()) == sorted(set(flat[flat != IGNORE].tolist()))


class NoUnseenLabels(dict):
    def __getitem__(self, key):
        assert key != "label_all", "the prior protocol read the unseen labels"
        return super().__getitem__(key)

    def __contains__(self, key):
        assert key != "label_all", "the prior protocol looked for the unseen labels"
        return super().__contains__(key)


def _tiny_method(protocol="prior"):
    k = 6
    classes = ClassSpace(tuple(f"c{i}" for i in range(k)), torch.tensor([True, True, False, True, False, True]),
                         torch.nn.functional.normalize(torch.randn(k, 8), dim=1), IGNORE)
    cfg = card_config("zs3net", protocol=protocol, feature_dim=12, backbone={"width": 8},
                      train={"iterations": 1, "lr": 0.01}, generator={"iterations": 1, "hidden": 16, "samples": 8},
                      classifier_stage={"iterations": 1, "lr": 0.1})
    return ZS3Net(cfg, classes), classes


def test_prior_protocol_never_reads_unseen_labels():
    torch.manual_seed(0)
    method, _ = _tiny_method()
    assert method.protocol_flags() == {"uses_unseen_labels": False, "transductive": False}
    label = torch.randint(2, (2, 16, 16)) * 3  # classes 0 and 3 (seen)
    label[:, :4] = IGNORE
    batch = NoUnseenLabels(image=torch.randn(2, 3, 16, 16), label=label)
    for stage in method.stages():
        method.on_stage_start(stage, None)
        losses = method.training_step(batch, stage, 0)
        assert all(torch.isfinite(v) for v in losses.values())
        method.on_stage_end(stage, None)
    assert method.predict(batch["image"], (16, 16)).shape == (2, 6, 16, 16)


def test_official_gt_protocol_is_flagged_and_needs_the_unseen_labels():
    torch.manual_seed(0)
    method, _ = _tiny_method("official-gt")
    assert method.protocol_flags()["uses_unseen_labels"] is True
    label_all = torch.zeros(2, 16, 16, dtype=torch.long)
    label_all[0, :5] = 2  # image 0 has an unseen pixel
    label = torch.where(label_all == 2, torch.full_like(label_all, IGNORE), label_all)
    stage = method.stages()[2]
    method.on_stage_start(stage, None)
    with pytest.raises(Exception, match="label_all"):
        method.training_step({"image": torch.randn(2, 3, 16, 16), "label": label}, stage, 0)
    losses = method.training_step({"image": torch.randn(2, 3, 16, 16), "label": label, "label_all": label_all},
                                  stage, 0)
    assert torch.isfinite(losses["loss"])


def _run(method, out, cache, extra=()):
    req = RunRequest(method=method, overrides=[*TINY, *extra], out=out)
    return run_one(req, cache=cache)


@pytest.mark.slow
def test_zs3net_st_reuses_zs3net_and_flags_the_runs(tmp_path):
    cache = StageCache()
    base = _run("zs3net", tmp_path, cache)
    st = _run("zs3net+st", tmp_path, cache, ["self_training.retrain.train.iterations=2",
                                             "self_training.retrain.generator.iterations=2",
                                             "self_training.retrain.classifier_stage.iterations=2"])
    gt = _run("zs3net-gt", tmp_path, cache)
    rec = {p: json.loads((p / "run.json").read_text()) for p in (base, st, gt)}
    assert rec[base]["status"] == rec[st]["status"] == rec[gt]["status"] == "ok"
    assert rec[st]["reused_stages"] == {s: base.name for s in ("segmentation", "generator", "classifier")}
    assert rec[base]["protocol_flags"] == {"uses_unseen_labels": False, "transductive": False}
    assert rec[st]["protocol_flags"] == {"uses_unseen_labels": False, "transductive": True}
    assert rec[gt]["protocol_flags"] == {"uses_unseen_labels": True, "transductive": False}
    assert set(rec[st]["method_facts"]["self_training"]["pseudo_labelled_pixels"]) == {"sheep", "train", "sofa"}
    stages_run = {json.loads(line)["stage"] for line in (st / "train_log.jsonl").read_text().splitlines()}
    assert stages_run == {"st-segmentation", "st-generator", "st-classifier"}
    shown = format_summary(summarize(runs_frame([tmp_path])))
    # the protocol flags; tiny runs may also be flagged dead-mechanism (tests/runs/test_diagnostics.py)
    flags = {m: ",".join(f for f in str(v).split(",") if f and not f.startswith("dead-mechanism"))
             for m, v in zip(shown["method"], shown["flags"])}
    assert flags == {"zs3net": "", "zs3net+st": "transductive", "zs3net-gt": "unseen-labels"}
