"""CaGNet (pixel-wise): module shapes and key layout, loss terms against hand-computed values,
the vectorised run-wise MMD against a per-pixel loop, the mixed stage, and a short training run."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.helpers.cagnet_reference import content_mmd_loop
from tests.helpers.configs import card_config
from tests.helpers.official_layout import cagnet_extra
from zsseg_bench.methods import ClassSpace
from zsseg_bench.methods.cagnet.losses import (
    adversarial_d,
    adversarial_g,
    content_mmd_classes,
    content_mmd_runs,
    kl_term,
    label_runs,
)
from zsseg_bench.methods.cagnet.model import CaGNet, step_decay
from zsseg_bench.methods.cagnet.networks import ContextualModule, Discriminator, Generator
from zsseg_bench.methods.cagnet.official import official_name
from zsseg_bench.runs.train import RunRequest, run_one

IGNORE = 255


def _classes(k=6, dim=8, seen=None):
    seen = torch.tensor(seen if seen is not None else [i % 3 != 2 for i in range(k)])
    emb = torch.nn.functional.normalize(torch.randn(k, dim, generator=torch.Generator().manual_seed(1)), dim=1)
    return ClassSpace(tuple(f"c{i}" for i in range(k)), seen, emb, IGNORE)


def _tiny_cfg(**extra):
    return card_config("cagnet-pi", **{
        "feature_dim": 12, "backbone": {"width": 8}, "context": {"hidden": 6},
        "generator": {"hidden": [16, 16], "dropout": [0.1, 0.5]}, "discriminator": {"hidden": 16},
        "step1": {"iterations": 2, "lr": 0.01, "lr_D": 1e-3, "lr_G": 1e-3},
        "finetune": {"iterations": 4, "interval": 2, "lr_D": 1e-3, "lr_G": 1e-3, "gen_unseen_rate": 9}, **extra})


# ---- shapes and the official key layout --------------------------------------------------------
def test_module_shapes_at_reference_widths():
    torch.manual_seed(0)
    ctx = ContextualModule(600, 256)
    feat = torch.randn(2, 600, 7, 9)
    x, mu, logvar, z = ctx(feat, sample=True)
    assert x.shape == mu.shape == logvar.shape == z.shape == feat.shape
    assert bool((x > 0).all() and (x < 1).all()) and bool((logvar >= 0).all())  # sigmoid output, ReLU logvar
    x_eval, mu_eval, _, z_eval = ctx(feat, sample=False)
    assert torch.equal(z_eval, mu_eval)  # eval: Z = mu
    assert torch.allclose(x_eval, torch.sigmoid(feat + feat * torch.sigmoid(mu_eval)))
    gen = Generator(1200, 600)
    out = gen(torch.randn(2, 1200, 3, 4))
    assert out.shape == (2, 600, 3, 4) and bool((out > 0).all() and (out < 1).all())
    dis = Discriminator(600, 21, patch=True)
    h = dis.fc(torch.rand(2, 600, 6, 6))
    assert h.shape == (2, 1024, 6, 6) and dis.pred(h).shape == (2, 1, 6, 6) and dis.classify(h).shape == (2, 21, 6, 6)


# The official checkpoint's keys outside the DeepLab body and ASPP, for VOC (20 classes + dead logit).
OFFICIAL_NON_BACKBONE = {k: v for k, v in cagnet_extra(600, 20).items() if not k.startswith("Em_")}


def test_deeplab_model_has_the_official_key_layout_and_feature_sizes():
    torch.manual_seed(0)
    classes = _classes(20, 600, [i < 15 for i in range(20)])
    cfg = card_config("cagnet-pi", "voc12", backbone={"blocks": [1, 1, 1, 1]})  # the official widths
    model = CaGNet(cfg, classes)
    state = {official_name(k): tuple(v.shape) for k, v in model.state_dict().items()}
    non_backbone = {k: v for k, v in state.items() if not k.startswith("back.scale.layer")
                    and not k.startswith("back.scale.aspp")}
    assert non_backbone == OFFICIAL_NON_BACKBONE
    assert state["back.scale.aspp.stages.c0.weight"] == (600, 2048, 3, 3)
    assert model.classifier_rows()[-1] == "<dead logit>" and len(model.classifier_rows()) == 21
    images = torch.randn(1, 3, 65, 65)
    model.train()
    outs, (mu, logvar, z) = model.encode(images, sample=True)
    assert [tuple(o.shape[-2:]) for o in outs] == [(9, 9), (5, 5), (7, 7), (9, 9)]  # x1.0, x0.5, x0.75, max
    assert mu.shape == (1, 600, 9, 9)
    model.eval()
    with torch.no_grad():
        assert model.predict(images).shape == (1, 20, 9, 9)  # dead logit dropped
        assert model.predict(images, (65, 65)).shape == (1, 20, 65, 65)


# ---- loss terms on tiny tensors ------------------------------------------------------------------
def test_kl_term_matches_hand_computation():
    mu = torch.tensor([0.5, -1.0, 7.0, 7.0]).view(1, 2, 1, 2).permute(0, 1, 2, 3).contiguous()
    # channel 0 = (0.5, 7.0), channel 1 = (-1.0, 7.0): pixel 0 valid, pixel 1 (the 7s) ignored
    mu = torch.tensor([[[[0.5, 7.0]], [[-1.0, 7.0]]]])
    logvar = torch.tensor([[[[0.0, 3.0]], [[1.0, 3.0]]]])
    valid = torch.tensor([[[True, False]]])
    expected = -0.5 * ((1 + 0 - 0.25 - 1) + (1 + 1 - 1 - math.e)) / 2  # mean over 1 pixel x 2 channels
    assert kl_term(mu, logvar, valid).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.492070, abs=1e-6)


@pytest.mark.parametrize("kind, d_expected, g_expected", [
    ("l1", 0.75 + 0.5, 0.25),  # official: |sigmoid - target|
    ("ls", math.log(3) ** 2 + 1.0, (math.log(3) - 1.0) ** 2),
    ("bce", math.log(4) + math.log(2), -math.log(0.75)),
])
def test_adversarial_terms_match_hand_computation(kind, d_expected, g_expected):
    # pixel 0 valid: real raw score 0 (sigmoid 0.5), fake raw score ln 3 (sigmoid 0.75); pixel 1 ignored
    real = torch.tensor([[[[0.0, 5.0]]]])
    fake = torch.tensor([[[[math.log(3), -5.0]]]])
    valid = torch.tensor([[[True, False]]])
    assert adversarial_d(real, fake, valid, kind).item() == pytest.approx(d_expected, abs=1e-6)
    assert adversarial_g(fake, valid, kind).item() == pytest.approx(g_expected, abs=1e-6)


def test_label_runs():
    start, length = label_runs(torch.tensor([3, 3, 1, 1, 1, 3, 2, 2]))
    assert start.tolist() == [0, 2, 5, 6] and length.tolist() == [2, 3, 1, 2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_runwise_mmd_equals_the_official_loop(seed):
    g = torch.Generator().manual_seed(seed)
    b, d, h, w = 2, 5, 6, 7
    fake = torch.rand(b, d, h, w, generator=g, dtype=torch.float64)
    real = torch.rand(b, d, h, w, generator=g, dtype=torch.float64) * 2
    label = torch.randint(3, (b, h, w), generator=g)
    label[:, :, 2:4] = label[:, :, 2:3]  # some longer runs
    label[torch.rand(b, h, w, generator=g) < 0.3] = IGNORE
    valid = label != IGNORE
    expected = content_mmd_loop(fake, real, label, IGNORE)
    got = content_mmd_runs(fake, real, label, valid, eps=0.0)
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)
    # chunking (tiny max_entries) changes nothing; float32 agrees too
    assert content_mmd_runs(fake, real, label, valid, max_entries=8).item() == pytest.approx(expected.item(), abs=1e-5)
    assert content_mmd_runs(fake.float(), real.float(), label, valid).item() == pytest.approx(expected.item(), abs=1e-5)


def test_runwise_mmd_single_pixel_runs_and_per_class_mode():
    fake = torch.tensor([[[[0.0, 1.0]]]])
    real = torch.tensor([[[[1.0, 1.0]]]])
    label = torch.tensor([[[0, 1]]])
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    # run 1: one pixel at distance^2 1 -> sqrt(sum_bw (1 - exp(-1/(2 bw)))); run 2: identical -> 0
    sigmas = (2.0, 5.0, 10.0, 20.0, 40.0, 60.0)
    one = math.sqrt(sum(1 - math.exp(-1 / (2 * s)) for s in sigmas))
    assert content_mmd_runs(fake, real, label, valid).item() == pytest.approx(one / 2, abs=1e-4)
    same = content_mmd_classes(real, real, label, valid, num_classes=2, samples=4)
    assert same.item() == pytest.approx(0.0, abs=1e-3)
    assert content_mmd_classes(fake, real, label, valid, num_classes=2, samples=4).item() > 0.05


def test_step_decay_is_the_official_lambda_policy():
    f = step_decay(10, 5, 0.5)
    assert [f(i) for i in (0, 9, 10, 14, 15, 20)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]


# ---- stages ----------------------------------------------------------------------------------------
class NoBatch(dict):
    def __getitem__(self, key):
        raise AssertionError(f"a classifier-only iteration read the batch ({key})")


def test_mixed_stage_alternates_and_classifier_iterations_read_no_batch():
    torch.manual_seed(0)
    classes = _classes()
    model = CaGNet(_tiny_cfg(), classes)
    step1, mixed = model.stages()
    assert [u.optimizer for u in step1.updates] == ["discriminator", "backbone", "generator"]
    assert [mixed.uses_batch(i) for i in range(6)] == [True, True, False, False, True, True]
    label = torch.randint(6, (2, 16, 16))
    label[~classes.seen[label]] = IGNORE
    batch = {"image": torch.randn(2, 3, 16, 16), "label": label}
    model.on_stage_start(mixed, None)
    opts = model.configure_optimizers(mixed)
    assert set(opts) == {"discriminator", "generator"}
    assert not any(p.requires_grad for p in model.backbone.parameters())  # frozen in the finetune
    model.train()
    stats = {k: v.clone() for k, v in model.backbone.state_dict().items() if "running" in k}
    real = model.training_step(batch, mixed, 0)
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in stats.items())  # BN statistics kept
    assert {"loss_D", "loss_G", "content", "cls_fake"} <= set(real) and "loss_B" not in real
    fake = model.training_step(NoBatch(), mixed, 2)
    assert set(fake) == {"loss_D", "loss_G", "cls_transfer"} and fake["loss_G"].item() == 0.0
    # the prior: weight 1 per seen class, 1 + rate per unseen class
    labels = model._transfer_labels({"gen_unseen_rate": 9})
    share = (~classes.seen[labels]).float().mean().item()
    assert share == pytest.approx(2 * 10 / (4 + 2 * 10), abs=0.05)


def test_context_selector_is_untrained_by_default():
    model = CaGNet(_tiny_cfg(), _classes())
    step1 = model.stages()[0]
    model.on_stage_start(step1, None)
    opts = model.configure_optimizers(step1)
    in_opt = {id(p) for g in opts["backbone"][0].param_groups for p in g["params"]}
    assert id(model.context.fc_1.conv.weight) not in in_opt
    assert id(model.context.contextual1.conv.weight) in in_opt
    trained = CaGNet(_tiny_cfg(context={"hidden": 6, "train_selector": True}), _classes())
    trained.on_stage_start(step1, None)
    opts = trained.configure_optimizers(step1)
    assert id(trained.context.fc_1.conv.weight) in {id(p) for g in opts["backbone"][0].param_groups
                                                    for p in g["params"]}


def test_dead_logit_option():
    classes = _classes()
    kept = CaGNet(_tiny_cfg(), classes)
    dropped = CaGNet(_tiny_cfg(classifier={"dead_logit": False}), classes)
    assert kept.discriminator.cls.out_channels == 7 and dropped.discriminator.cls.out_channels == 6
    kept.eval()
    with torch.no_grad():
        assert kept.predict(torch.randn(1, 3, 16, 16)).shape == (1, 6, 8, 8)


def _log(path):
    return [json.loads(line) for line in (path / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_short_training_lowers_every_loss(tmp_path):
    over = ["dataset.n_train=32", "dataset.n_test=8", "dataset.size=32", "data.batch_size=8", "eval.batch_size=8",
            "step1.iterations=80", "finetune.iterations=40", "finetune.interval=10", "log_every=20",
            "discriminator.hidden=64", "context.hidden=8"]
    path = run_one(RunRequest(method="cagnet-pi", out=tmp_path, overrides=over))
    log = _log(path)
    s1 = [r["losses"] for r in log if r["stage"] == "step1"]
    for key in ("loss_D", "loss_B", "loss_G", "cls_real", "cls_fake", "content", "kld"):
        assert s1[-1][key] < s1[0][key], (key, s1[0][key], s1[-1][key])
    mixed = [r["losses"] for r in log if r["stage"] == "mixed"]
    transfer = [m["cls_transfer"] for m in mixed if "cls_transfer" in m]
    assert transfer[-1] < transfer[0]
    assert json.loads((path / "run.json").read_text())["status"] == "ok"


@pytest.mark.slow
def test_self_training_reuses_the_base_stages_and_pseudo_labels(tmp_path):
    from zsseg_bench.engine.loop import StageCache

    tiny = ["dataset.n_train=24", "dataset.n_test=8", "dataset.size=32", "data.batch_size=4", "eval.batch_size=8",
            "step1.iterations=3", "finetune.iterations=4", "finetune.interval=2"]
    patch = ["pixelcnn.iterations=2", "patch.bank_size=16", "patch.sample_batch=32", "patch.max_rounds=2"]
    st = ["self_training.retrain.step1.iterations=3", "self_training.retrain.finetune.iterations=2"]
    cache = StageCache()

    def settings(m):  # only the keys each card has
        return tiny + (patch if m.startswith("cagnet-pa") else []) + (st if m.endswith("+st") else [])

    runs = {m: run_one(RunRequest(method=m, out=tmp_path, overrides=settings(m)), cache=cache)
            for m in ("cagnet-pi", "cagnet-pi+st", "cagnet-pa", "cagnet-pa+st")}
    rec = {m: json.loads((p / "run.json").read_text()) for m, p in runs.items()}
    assert all(r["status"] == "ok" for r in rec.values())
    assert rec["cagnet-pi+st"]["reused_stages"] == {"step1": runs["cagnet-pi"].name, "mixed": runs["cagnet-pi"].name}
    assert rec["cagnet-pa+st"]["reused_stages"] == {s: runs["cagnet-pa"].name for s in ("step1", "pixelcnn", "mixed")}
    assert rec["cagnet-pa"]["reused_stages"] == {}  # its classifier has cls_3: nothing shared with cagnet-pi
    for m in ("cagnet-pi+st", "cagnet-pa+st"):
        assert rec[m]["protocol_flags"]["transductive"] is True
        stages = {json.loads(line)["stage"] for line in (runs[m] / "train_log.jsonl").read_text().splitlines()}
        assert stages == {"st-step1", "st-mixed"}
        assert set(rec[m]["method_facts"]["self_training"]["pseudo_labelled_pixels"]) == {"sheep", "train", "sofa"}
    assert rec["cagnet-pa"]["method_facts"]["patch_bank"]["single_class_patches"] > 0


def test_bench_reports_the_time_split(tmp_path):
    from typer.testing import CliRunner

    from zsseg_bench.cli import app

    out = tmp_path / "b.json"
    result = CliRunner().invoke(app, ["bench", "cagnet-pi", "--crop", "32", "--batch", "2", "--repeats", "1",
                                      "--warmup", "0", "--no-eval", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "time split of a training step: feature extraction" in result.output
    row = json.loads(out.read_text())["results"][0]
    assert 0 < row["train_features_s"] and 0 < row["train_features_share"] <= 1
