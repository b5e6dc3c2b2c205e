"""The official optimizers of SPNet, ZS3Net and CaGNet on the real datasets: one table, read by
tests/methods/test_optimizer_parity.py, which compares every card's resolved real-data
configuration with it.

Every value was read from the official trainers and configs (the source of each block is named
next to it); nothing here is derived from this harness's cards. The table is keyed by the
harness's stage and optimizer names (what `Method.stages()` and `configure_optimizers` return)
and names parameter groups by patterns on the harness's parameter names, because the same
official group (e.g. "ASPP biases at 20x") has to be found in the harness's model.

    OFFICIAL[(card, dataset)] -> {stage name: Stage}

A schedule factor multiplies a group's lr at a 0-based iteration t (the lr the t-th optimizer
step uses); all three codes compute the lr before that step from the number of steps done.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OFFICIAL", "REAL_DATASETS", "SGD", "Adam", "Constant", "Group", "Poly", "Stage", "StepDecay"]

REAL_DATASETS = ("voc12", "context", "cocostuff")


# ---- the vocabulary -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Group:
    what: str
    pattern: str  # regular expression, matched in full against the harness's parameter names
    lr: float
    weight_decay: float


@dataclass(frozen=True)
class Poly:
    """lr factor (1 - floor(t / every) * every / horizon) ** power; horizon None: the stage's length."""

    power: float
    every: int
    horizon: int | None = None

    def factor(self, t: int, length: int) -> float:
        horizon = self.horizon or length
        return (1.0 - (t // self.every) * self.every / horizon) ** self.power


@dataclass(frozen=True)
class StepDecay:
    """CaGNet's "lambda" policy: 1 before `start`, then gamma ** ((t - start) // step + 1)."""

    start: int
    step: int
    gamma: float

    def factor(self, t: int, length: int) -> float:
        return 1.0 if t < self.start else self.gamma ** ((t - self.start) // self.step + 1)


@dataclass(frozen=True)
class Constant:
    def factor(self, t: int, length: int) -> float:
        return 1.0


@dataclass(frozen=True)
class SGD:
    groups: tuple[Group, ...]
    schedule: Poly | StepDecay | Constant
    momentum: float = 0.9
    nesterov: bool = False


@dataclass(frozen=True)
class Adam:
    groups: tuple[Group, ...]
    schedule: Poly | StepDecay | Constant
    betas: tuple[float, float] = (0.9, 0.999)  # torch's default: none of the codes sets them


@dataclass(frozen=True)
class Stage:
    """One training stage. `optimizers` None: the official code has no such stage (`source` says why).
    `iterations` None: the official length is counted in epochs, so it has no fixed value."""

    source: str
    optimizers: dict | None
    iterations: int | None = None


# ---- parameter names in the harness ---------------------------------------------------------------
DEEPLAB_BODY = r"backbone\.scale\.layer[1-5]\..*\.conv\.weight"  # ResNet convs; frozen BN in no group
ASPP_WEIGHTS = r"backbone\.scale\.aspp\.stages\.c[0-3]\.weight"
ASPP_BIASES = r"backbone\.scale\.aspp\.stages\.c[0-3]\.bias"
CONTEXTUAL = r"context\.(contextual[123]|contextualpool|contextuallocalmu|contextuallocalsigma)\.conv\.weight"
DISCRIMINATOR = r"discriminator\..*"
GENERATOR = r"generator\..*"
PIXELCNN = r"pixelcnn\..*"
# ZS3Net's network is DeepLabv3+, whose 1x group is the whole ResNet (BatchNorm trainable, in the group)
# and whose 10x group is ASPP + decoder. The harness's real-data ZS3Net runs on the DeepLabv2 of the
# published rows (CaGNet's re-runs; the zs3net card says so): its ResNet convs are the 1x group, its frozen
# BatchNorm is in no group, and its ASPP is the 10x head.
ZS3_BACKBONE = DEEPLAB_BODY
ZS3_HEAD = r"backbone\.scale\.aspp\..*"
ZS3_PRED_CONV = r"classifier\.(weight|bias)"


# ---- SPNet ------------------------------------------------------------------------------------------
# subhc/SPNet 292ff5a train.py (get_params: 1x "layer" convs, 10x ASPP weights, 20x ASPP biases with
# weight decay 0; SGD; poly_lr_scheduler before every step) and config/<ds>/ZLSS.yaml: LR 2.5e-4,
# MOMENTUM 0.9, WEIGHT_DECAY 5e-4, POLY_POWER 0.9, LR_DECAY 10, ITER_MAX 20000 (VOC) / 100000
# (COCO-Stuff, whose run_coco.sh evaluates checkpoint_20000: 20k steps on a 100k-step poly).
# SPNet has no Pascal-Context config; the VOC one stands in (CaGNet's SPNet re-runs, not published).
def _spnet(horizon: int, source: str) -> dict:
    lr, wd = 2.5e-4, 5e-4
    main = SGD((Group("ResNet convs (1x)", DEEPLAB_BODY, lr, wd),
                Group("ASPP weights (10x)", ASPP_WEIGHTS, 10 * lr, wd),
                Group("ASPP biases (20x, no weight decay)", ASPP_BIASES, 20 * lr, 0.0)), Poly(0.9, 10, horizon))
    return {"train": Stage(source, {"main": main}, 20000)}


_SPNET = {"voc12": _spnet(20000, "SPNet config/voc12/ZLSS.yaml, train.py"),
          "context": _spnet(20000, "SPNet config/voc12/ZLSS.yaml (no Context config), train.py"),
          "cocostuff": _spnet(100000, "SPNet config/cocostuff/ZLSS.yaml, run_coco.sh (checkpoint_20000), train.py")}


# ---- ZS3Net -------------------------------------------------------------------------------------------
# valeoai/ZS3 6031f4a zs3/parsing.py (--lr 0.007, --momentum 0.9, --weight-decay 5e-4, --nesterov off,
# --lr-scheduler poly), zs3/utils/lr_scheduler.py (poly 0.9 every iteration over epochs x iterations;
# group 0 at lr, every other group at 10 lr), zs3/modeling/deeplab.py (get_1x_lr_params: the ResNet,
# BN included; get_10x_lr_params: ASPP + decoder, pred_conv weight and bias included; one weight decay
# for all), train_pascal.py / train_context.py (stage 1), train_pascal_GMMN.py / train_context_GMMN.py
# (GMMN: Adam --lr_generator 2e-4, no weight decay, no schedule; the classifier retrained with the
# stage-1 SGD recipe, pred_conv in the 10x group; the official code trains both in one loop, the
# harness in two stages). ZS3 has no COCO-Stuff trainer: its dataset-independent defaults stand in.
# Stage lengths are in epochs (200 / 30 VOC, 200 / 20 Context), so no fixed iteration count.
def _zs3net(source: str) -> dict:
    lr, wd = 0.007, 5e-4
    segmentation = SGD((Group("ResNet (1x)", ZS3_BACKBONE, lr, wd),
                        Group("ASPP + decoder (10x)", ZS3_HEAD, 10 * lr, wd),
                        Group("pred_conv (10x)", ZS3_PRED_CONV, 10 * lr, wd)), Poly(0.9, 1))
    generator = Adam((Group("GMMN", GENERATOR, 2e-4, 0.0),), Constant())
    classifier = SGD((Group("pred_conv (10x)", ZS3_PRED_CONV, 10 * lr, wd),), Poly(0.9, 1))
    return {"segmentation": Stage(source, {"main": segmentation}),
            "generator": Stage(source, {"generator": generator}),
            "classifier": Stage(source, {"classifier": classifier})}


_ZS3NET = {"voc12": _zs3net("ZS3 parsing.py, train_pascal.py, train_pascal_GMMN.py"),
           "context": _zs3net("ZS3 parsing.py, train_context.py, train_context_GMMN.py"),
           "cocostuff": _zs3net("ZS3 parsing.py defaults (no COCO-Stuff trainer)")}
_ZS3_NO_ST = "ZS3 releases no self-training code (the loaders only read precomputed pseudo-label maps)"


# ---- CaGNet ---------------------------------------------------------------------------------------------
# bcmi/CaGNet-Zero-Shot-Semantic-Segmentation 249305b trainer.py: backbone SGD with four groups from
# get_params ("layer" convs 1x, "contextual" convs 5x (fc_1 matches none), ASPP weights 10x, ASPP biases
# 20x with weight decay 0), momentum MOMENTUM, weight decay WEIGHT_DECAY; D and G Adam with torch's
# default betas; poly_lr_scheduler (recomputed every lr_decay_iter steps, over ITER_MAX*) and the
# "lambda" policy for D and G. update_back f (finetunes): the backbone is not updated, which the
# harness does with no backbone optimizer. CaGNetv2 0040e4e trainer.py is the same file.
def _cagnet_sgd(lr: float, every: int, horizon: int) -> SGD:
    wd = 5e-4
    return SGD((Group("ResNet convs (1x)", DEEPLAB_BODY, lr, wd),
                Group("contextual convs (5x)", CONTEXTUAL, 5 * lr, wd),
                Group("ASPP weights (10x)", ASPP_WEIGHTS, 10 * lr, wd),
                Group("ASPP biases (20x, no weight decay)", ASPP_BIASES, 20 * lr, 0.0)), Poly(0.9, every, horizon))


def _cagnet_d(lr: float, decay: tuple) -> Adam:
    return Adam((Group("discriminator + classifier", DISCRIMINATOR, lr, 5e-4),), StepDecay(*decay))


def _cagnet_g(lr: float, decay: tuple) -> Adam:
    return Adam((Group("generator", GENERATOR, lr, 0.0),), StepDecay(*decay))


def _cagnet_step1(source, iterations, back_lr, every, d_lr, d_decay, g_lr, g_decay) -> Stage:
    return Stage(source, {"backbone": _cagnet_sgd(back_lr, every, iterations),
                          "discriminator": _cagnet_d(d_lr, d_decay), "generator": _cagnet_g(g_lr, g_decay)}, iterations)


def _cagnet_finetune(source, iterations, lr, decay) -> Stage:
    return Stage(source, {"discriminator": _cagnet_d(lr, decay), "generator": _cagnet_g(lr, decay)}, iterations)


# configs/<ds>.yaml (step1) and configs/<ds>_finetune.yaml (mixed); CaGNetv2 configs/<ds>_pi.yaml and
# <ds>_finetune_pi.yaml hold the same optimizer values (voc12_pa3.yaml too).
_CAGNET = {
    "voc12": {"step1": _cagnet_step1("CaGNet configs/voc12.yaml", 40000, 2.5e-4, 10, 2.5e-4, (10000, 5000, 0.71),
                                     2e-4, (10000, 5000, 0.71)),
              "mixed": _cagnet_finetune("CaGNet configs/voc12_finetune.yaml", 6000, 5e-5, (3000, 1000, 0.1))},
    "context": {"step1": _cagnet_step1("CaGNet configs/context.yaml", 40000, 2.5e-4, 10, 2.5e-4, (10000, 10000, 0.3),
                                       2e-4, (10000, 10000, 0.3)),
                "mixed": _cagnet_finetune("CaGNet configs/context_finetune.yaml", 10000, 5e-5, (5000, 1000, 0.3))},
    "cocostuff": {"step1": _cagnet_step1("CaGNet configs/cocostuff.yaml", 40000, 2.5e-4, 100, 5e-4,
                                         (10000, 10000, 0.3), 2e-4, (10000, 5000, 0.3)),
                  "mixed": _cagnet_finetune("CaGNet configs/cocostuff_finetune.yaml", 6000, 1e-5, (3000, 2000, 0.3))},
}
# configs/configs_st_<ds>.yaml (schedule st: lr_st, ITER_MAX_ST 10000) and configs_st_transfer_<ds>.yaml
# (schedule st_mixed: lr_st_transfer, ITER_MAX_ST_TRANSFER 10000, update_back f). Note the COCO ST
# finetune decays by 0.5 (gamma: 0.5 in configs_st_transfer_coco.yaml), like VOC and Context.
_CAGNET_ST = {
    "voc12": {"st-step1": _cagnet_step1("CaGNet configs/configs_st_voc.yaml", 10000, 5e-5, 10, 1e-4,
                                        (5000, 1000, 0.3), 5e-5, (5000, 1000, 0.3)),
              "st-mixed": _cagnet_finetune("CaGNet configs/configs_st_transfer_voc.yaml", 10000, 1e-4,
                                           (5000, 2500, 0.5))},
    "context": {"st-step1": _cagnet_step1("CaGNet configs/configs_st_context.yaml", 10000, 2.5e-4, 10, 2.5e-4,
                                          (5000, 1000, 0.3), 2e-4, (5000, 1000, 0.3)),
                "st-mixed": _cagnet_finetune("CaGNet configs/configs_st_transfer_context.yaml", 10000, 1e-4,
                                             (5000, 2500, 0.5))},
    "cocostuff": {"st-step1": _cagnet_step1("CaGNet configs/configs_st_coco.yaml", 10000, 5e-5, 100, 5e-5,
                                            (5000, 1000, 0.3), 5e-5, (5000, 1000, 0.3)),
                  "st-mixed": _cagnet_finetune("CaGNet configs/configs_st_transfer_coco.yaml", 10000, 5e-5,
                                               (3000, 1000, 0.5))},
}
# CaGNetv2 pixelcnn_newnew.py: Adam(net.parameters(), lr=1e-6), no weight decay, no schedule, 10 epochs
# (best_pixelcnn_model.txt picks an epoch), so no fixed iteration count. The patch-wise finetune config
# is not released; the pixel-wise one stands in (as the cagnet-pa card says).
_PIXELCNN = Stage("CaGNetv2 pixelcnn_newnew.py", {"pixelcnn": Adam((Group("PixelCNN", PIXELCNN, 1e-6, 0.0),),
                                                                    Constant())})


def _patch(stages: dict) -> dict:
    """CaGNet(pa)'s stages: step1, the label-patch PixelCNN, then the finetune."""
    return {"step1": stages["step1"], "pixelcnn": _PIXELCNN, "mixed": stages["mixed"]}


def _table() -> dict:
    table = {}
    for ds in REAL_DATASETS:
        table[("spnet", ds)] = table[("spnet-c", ds)] = _SPNET[ds]
        table[("zs3net", ds)] = table[("zs3net-gt", ds)] = _ZS3NET[ds]
        table[("zs3net+st", ds)] = {**_ZS3NET[ds], **{f"st-{name}": Stage(_ZS3_NO_ST, None) for name in _ZS3NET[ds]}}
        table[("cagnet-pi", ds)] = _CAGNET[ds]
        table[("cagnet-pa", ds)] = _patch(_CAGNET[ds])
        # CaGNetv2 has no self-training code: the (pa)+ST card runs v1's ST configs after the patch stages.
        table[("cagnet-pi+st", ds)] = {**_CAGNET[ds], **_CAGNET_ST[ds]}
        table[("cagnet-pa+st", ds)] = {**_patch(_CAGNET[ds]), **_CAGNET_ST[ds]}
    return table


OFFICIAL: dict[tuple[str, str], dict[str, Stage]] = _table()
