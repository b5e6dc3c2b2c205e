"""Self-training: the pseudo-labelling rules, the '<method>+st' cards and the wrapper."""

import json

import pytest
import torch

from tests.helpers.configs import card_config
from zsseg_bench.catalog.cards import card_paths, load_card, resolve_config
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods import IMPLEMENTATIONS, ClassSpace
from zsseg_bench.methods.self_training import (
    ConfidenceHistogram,
    confidence_key,
    confident_pseudo_labels,
    topk_pseudo_labels,
    wrap,
)

IGNORE = 255
K = 7
UNSEEN = torch.tensor([False, True, False, False, True, False, True])


def _batch(seed=0, b=3, h=9, w=11):
    g = torch.Generator().manual_seed(seed)
    seen_ids = torch.nonzero(~UNSEEN).flatten()
    label = seen_ids[torch.randint(len(seen_ids), (b, h, w), generator=g)]
    label[torch.rand(b, h, w, generator=g) < 0.5] = IGNORE
    scores = torch.randn(b, K, h, w, generator=g) * 3
    return label, scores


@pytest.mark.parametrize("k", [1, 2, 3, K])
def test_topk_never_relabels_labelled_pixels_and_never_emits_seen(k):
    for seed in range(5):
        label, scores = _batch(seed)
        new = topk_pseudo_labels(label, scores, UNSEEN, k, IGNORE)
        labelled = label != IGNORE
        assert torch.equal(new[labelled], label[labelled])
        changed = new != label
        assert bool(UNSEEN[new[changed]].all())  # only unseen classes are ever added
        ranked = scores.topk(k, dim=1).indices
        has_unseen = UNSEEN[ranked].any(1)
        assert torch.equal(changed, ~labelled & has_unseen)
        # the chosen class is the best-ranked unseen class of the pixel
        masked = torch.where(UNSEEN.view(1, K, 1, 1), scores, torch.full_like(scores, -1e9))
        assert torch.equal(new[changed], masked.argmax(1)[changed])


def test_top1_labels_exactly_the_pixels_whose_argmax_is_unseen():
    label, scores = _batch(3)
    new = topk_pseudo_labels(label, scores, UNSEEN, 1, IGNORE)
    expect = (label == IGNORE) & UNSEEN[scores.argmax(1)]
    assert torch.equal(new != label, expect)


def test_confident_rule_never_relabels_labelled_pixels_and_never_emits_seen():
    label, scores = _batch(4)
    everything = torch.full((K,), -float("inf"))  # even with no threshold at all
    new = confident_pseudo_labels(label, scores, UNSEEN, everything, IGNORE)
    labelled = label != IGNORE
    assert torch.equal(new[labelled], label[labelled])
    changed = new != label
    assert changed.any() and bool(UNSEEN[new[changed]].all())
    assert torch.equal(changed, ~labelled & UNSEEN[scores.argmax(1)])
    nothing = torch.full((K,), float("inf"))
    assert torch.equal(confident_pseudo_labels(label, scores, UNSEEN, nothing, IGNORE), label)


def test_histogram_threshold_keeps_the_top_percent():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(20000, K, generator=g) * 6  # confident, like a trained network
    key, pred = confidence_key(scores)
    conf = scores.double().softmax(1).max(1).values
    assert torch.allclose(key.double(), -torch.log1p(-conf), atol=1e-3, rtol=1e-3)
    assert torch.equal(pred, scores.argmax(1))
    hist = ConfidenceHistogram(K, 4096, "cpu")
    hist.update(pred, key, torch.ones_like(pred, dtype=torch.bool))
    thr = hist.thresholds(25.0)
    for c in range(K):
        kept = float((key[pred == c] >= thr[c]).float().mean())
        assert 0.25 <= kept < 0.26, (c, kept)
    empty = ConfidenceHistogram(K, 16, "cpu")
    assert torch.isinf(empty.thresholds(25.0)).all()


# ---- cards ------------------------------------------------------------------------------------
def test_plus_st_resolves_for_any_card():
    card = load_card("spnet+st")  # no card file: synthesised
    assert card.wraps == "spnet" and card.impl == "spnet+st" and not card.in_default_run
    cfg = resolve_config(card, "synthetic")
    base = resolve_config(load_card("spnet"), "synthetic")
    assert {k: v for k, v in cfg.items() if k != "self_training"} == base
    assert cfg["self_training"]["style"] == "online"
    assert resolve_config(card, "context")["self_training"]["top_k"] == 16  # per-dataset default
    # a base-inheriting card works too, and its own settings survive
    cfg_c = resolve_config(load_card("spnet-c+st"), "voc12")
    assert cfg_c["calibration"]["gamma"] == 0.6
    assert IMPLEMENTATIONS.get("spnet+st") is wrap(IMPLEMENTATIONS.get("spnet"))
    assert "zs3net+st" in IMPLEMENTATIONS and "nothing+st" not in IMPLEMENTATIONS


def test_plus_st_card_file_takes_precedence():
    card = load_card("zs3net+st")
    assert card.path.name == "zs3net+st.yaml"
    cfg = resolve_config(card, "synthetic")
    assert cfg["self_training"]["style"] == "offline" and cfg["self_training"]["rounds"] == 1  # default kept
    with pytest.raises(ZsbenchError, match="unknown method 'nope\\+st'"):
        load_card("nope+st")


def test_wrapper_card_errors(tmp_path):
    (tmp_path / "fam").mkdir()
    (tmp_path / "self_training").mkdir()
    (tmp_path / "self_training" / "_defaults.yaml").write_text(
        "version: 1\nconfig: {self_training: {style: online, top_k: 1}}\n")
    (tmp_path / "fam" / "a.yaml").write_text("name: a\nversion: 1\nimpl: spnet\ntitle: A\npaper: P\nconfig: {x: 1}\n")
    (tmp_path / "fam" / "a+st.yaml").write_text(
        "name: a+st\nversion: 1\nimpl: zs3net+st\nwraps: a\ntitle: A\npaper: P\nconfig: {}\n")
    with pytest.raises(ZsbenchError, match="must have impl 'spnet\\+st'"):
        resolve_config(load_card("a+st", tmp_path), "synthetic", (), tmp_path)
    (tmp_path / "fam" / "b+st.yaml").write_text(
        "name: b+st\nversion: 1\nimpl: spnet+st\nwraps: a\nbase: a\ntitle: A\npaper: P\nconfig: {}\n")
    with pytest.raises(ZsbenchError, match="remove 'base'"):
        load_card("b+st", tmp_path)
    assert [p.name for p in card_paths(tmp_path)] == ["a+st.yaml", "a.yaml", "b+st.yaml"]  # not _defaults.yaml


# ---- the wrapper --------------------------------------------------------------------------------
def _classes():
    names = tuple(f"c{i}" for i in range(K))
    return ClassSpace(names, ~UNSEEN, torch.nn.functional.normalize(torch.randn(K, 8), dim=1), IGNORE)


def _cfgs(name):
    card = load_card(name)
    no_init = ["backbone.init=null"]  # the wrapper's stages are the point, not the shared initialisation
    cfg = resolve_config(card, "synthetic", no_init)
    base = resolve_config(load_card(card.wraps), "synthetic", no_init)
    return IMPLEMENTATIONS.get(card.impl), cfg, IMPLEMENTATIONS.get(load_card(card.wraps).impl), base


@pytest.mark.parametrize("name", ["zs3net+st", "spnet+st", "spnet-c+st"])
def test_wrapper_shares_the_base_stage_signatures(name):
    st_cls, cfg, base_cls, base_cfg = _cfgs(name)
    classes = _classes()
    wrapped, base = st_cls(cfg, classes), base_cls(base_cfg, classes)
    n = len(base.stages())
    names = [s.name for s in wrapped.stages()]
    assert names[:n] == [s.name for s in base.stages()]
    assert names[n:] == [f"st-{s.name}" for s in base.stages()]
    for k in range(n):
        assert wrapped.stage_signature(k) == base.stage_signature(k)
    assert wrapped.stage_signature(n) != base.stage_signature(n - 1)
    assert set(wrapped.state_dict()) == set(base.state_dict())  # weights are the base's
    assert wrapped.protocol_flags()["transductive"] and not base.protocol_flags()["transductive"]
    # without a self_training section the class is its base (calibration proxies rely on it)
    plain = st_cls(base_cfg, classes)
    assert [s.name for s in plain.stages()] == [s.name for s in base.stages()]
    assert not plain.protocol_flags()["transductive"]


def test_wrapper_feeds_pseudo_labels_only_in_st_stages():
    st_cls, cfg, _, _ = _cfgs("spnet+st")
    cfg["self_training"].update(style="online", top_k=K)
    method = st_cls(cfg, _classes())
    seen_labels = []
    base_step = type(method).__mro__[2].training_step

    def spy(self, batch, stage, it):
        seen_labels.append((stage.name, batch["label"].clone()))
        return base_step(self, batch, stage, it)

    type(method).__mro__[2].training_step, saved = spy, base_step
    try:
        label, _ = _batch(0, b=2, h=16, w=16)
        batch = {"image": torch.randn(2, 3, 16, 16), "label": label}
        stages = method.stages()
        method.training_step(batch, stages[0], 0)
        method.training_step(batch, stages[1], 0)
    finally:
        type(method).__mro__[2].training_step = saved
    (name0, l0), (name1, l1) = seen_labels
    assert name0 == "train" and torch.equal(l0, label)  # base stage: labels untouched
    assert name1 == "train"  # the inner method sees its own stage
    labelled = label != IGNORE
    assert torch.equal(l1[labelled], label[labelled])
    assert bool((l1 != IGNORE).all())  # top_k = K: every ignored pixel gets an unseen class
    assert bool(UNSEEN[l1[~labelled]].all())
    assert torch.equal(batch["label"], label)  # the engine's batch is not modified in place


def test_unknown_self_training_key_is_refused():
    st_cls, cfg, _, _ = _cfgs("spnet+st")
    cfg["self_training"]["topk"] = 3
    with pytest.raises(ZsbenchError, match="self_training.topk: unknown key"):
        st_cls(cfg, _classes())
    json.dumps(cfg)  # cards stay plain data


def test_stage_train_images_all_readmits_images_dropped_by_the_split(tmp_path):
    """Under a drop_images_with_unseen split, a stage with train_images='all' (what self-training
    uses) draws from every training image; the others from the split's kept images only."""
    from zsseg_bench.catalog.splits import load_split
    from zsseg_bench.datasets import build_dataset
    from zsseg_bench.engine.context import RunContext
    from zsseg_bench.methods.base import Method, Stage
    from zsseg_bench.runs.prepare import train_indices

    split = load_split("synthetic-bg-9-3")
    data = build_dataset("synthetic", "train", None, {"n_train": 30, "size": 16})
    kept = train_indices(split, data)
    assert 0 < len(kept) < 30

    class Recorder(Method):
        def __init__(self):
            super().__init__({}, None)
            self.seen_indices = {}

        def stages(self):
            return [Stage("split", 6, batch_size=5), Stage("all", 6, batch_size=5, train_images="all")]

        def configure_optimizers(self, stage):
            return {}

        def training_step(self, batch, stage, it):
            self.seen_indices.setdefault(stage.name, set()).update(batch["index"].tolist())
            return {}

    ctx = RunContext(split=split, train_set=data, device=torch.device("cpu"), seed=0, cfg=card_config("spnet"),
                     train_indices=kept)
    rec = Recorder()
    ctx.fit(rec)
    assert rec.seen_indices["split"] <= set(kept.tolist())
    assert rec.seen_indices["all"] == set(range(30))
