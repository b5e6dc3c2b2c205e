"""The config schema of the MaskFormer family (`maskformer-ws`, `maskformer-full`, `simformer`).

Every key the cards state has no default here; the defaults are SimFormer's official values where
the cards leave a key out (prop_former/config.py, the `_1Prop_Cfgs` files).
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from zsseg_bench.catalog.schema import Dropout, Fraction, NonNegativeFloat, NonNegativeInt, PositiveInt, Section
from zsseg_bench.methods.base import MethodConfig

__all__ = ["MaskFormerConfig", "ModelOptions", "LossOptions", "TransferOptions", "ScheduleOptions"]


class ModelOptions(Section):
    """Segmenter sizes. Official (R-50): 100 queries, 6 layers, hidden 256, 8 heads, FFN 2048, mask and
    conv dim 256, GN(32), dropout 0.1."""

    backbone_channels: PositiveInt  # a single-level backbone's output width (the ResNet pyramid keeps its own)
    conv_dim: PositiveInt
    mask_dim: PositiveInt
    hidden_dim: PositiveInt
    heads: PositiveInt
    ffn_dim: PositiveInt
    decoder_layers: PositiveInt
    queries: PositiveInt
    dropout: Dropout = 0.1
    gn_groups: PositiveInt = 32
    # The transformer reads the coarsest level average-pooled by this factor. Officially 1: it reads
    # res5 (1/32) while masks come from the 1/4 level. A single-level backbone gives one map for both,
    # so a synthetic card pools it to keep the transformer's input the coarse one (and cheap).
    memory_pool: PositiveInt = 1

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.hidden_dim % self.heads:
            raise ValueError(f"model.hidden_dim {self.hidden_dim} must be a multiple of model.heads {self.heads}")
        return self


class LossOptions(Section):
    """MaskFormer's set loss (SimFormer: AssignCls 1, AssignMaskMASK 20, AssignMaskDICE 1, no-object 0.1);
    the matching cost uses the same weights (ASM: class 1, mask 1 for slots with masks, 0 without)."""

    classification: NonNegativeFloat = 1.0
    focal: NonNegativeFloat = 20.0
    dice: NonNegativeFloat = 1.0
    no_object: NonNegativeFloat = 0.1
    deep_supervision: bool = True


class TransferOptions(Section):
    """SimFormer's components; each is switched off by one --set (novel_classes=image-level, complementary=0,
    distill=0)."""

    # matched: SimFormer's proposal-pixel transfer (novel classes are mask-less slots of the matching, class
    # loss only); image-level: the weak-shot baseline (not matched; max-over-queries BCE on image labels).
    novel_classes: Literal["matched", "image-level"]
    complementary: NonNegativeFloat  # CompSupNovel: 0.15 COCO-Stuff-10K S1, 0.2 ADE20K S1
    ignore_logit: float = -2.9444  # the fixed pseudo-proposal of the complementary max (IgnoreInit)
    simnet: NonNegativeFloat  # BASE_LOSS: SimNet's loss in the crosim stage
    distill: NonNegativeFloat  # DISTILL_LOSS: ADE 0.5, COCO S2-S4 0.1, COCO S1 0
    distill_func: Literal["ce", "cce"]
    points: PositiveInt = 100  # BASE_POINT_NUM and NOVEL_POINT_NUM
    simnet_hidden: PositiveInt = 256
    pair_min_prob: Fraction = 0.01  # PAIR_TYPE Deconf0.01


class StageSchedule(Section):
    iterations: NonNegativeInt  # 0: the stage is skipped
    lr: NonNegativeFloat
    batch_size: PositiveInt


class ScheduleOptions(Section):
    """Stages seg -> crosim -> pseudo_label -> retraining. AdamW, backbone at lr x backbone_lr_mult,
    poly (power 0.9, no warm-up), gradient clipping of the full model's norm (0.01 officially)."""

    seg: StageSchedule
    crosim: StageSchedule  # batch_size counts images: pairs of two
    retraining: StageSchedule  # 0 iterations: no pseudo_label / retraining stages
    weight_decay: NonNegativeFloat = 1e-4
    backbone_lr_mult: NonNegativeFloat = 0.1
    poly_power: NonNegativeFloat = 0.9
    clip_norm: NonNegativeFloat = 0.01  # 0: no clipping

    @model_validator(mode="after")
    def _pairs(self):
        if self.crosim.iterations and self.crosim.batch_size % 2:
            raise ValueError(f"schedule.crosim.batch_size {self.crosim.batch_size} must be even (image pairs)")
        return self


class MaskFormerConfig(MethodConfig):
    supervision: Literal["weak", "full"]  # full: novel masks too (the upper bound; flagged)
    model: ModelOptions
    loss: LossOptions = LossOptions()
    transfer: TransferOptions
    schedule: ScheduleOptions
