"""SPNet and SPNet-c: semantic projection networks.

Paper: Xian, Choudhury, He, Schiele, Akata, "Semantic Projection Network for Zero- and
Few-Label Semantic Segmentation", CVPR 2019. Code read: github.com/subhc/SPNet (292ff5a).

The backbone's head outputs a D-dim map f (D = embedding size, 600 for fastText+word2vec);
the score of class c at a pixel is <f, e_c> with e_c the fixed, L2-normalised class embedding
(no bias, no temperature, f not normalised). Training is cross-entropy over the seen classes
only; at test time the same map is scored against every class, seen and unseen. SPNet-c
subtracts a constant gamma from the seen classes' softmax probabilities (calibration.py).

What we do differently, each configurable:
* `loss_at: label` (default) upsamples logits to the label for the loss; `feature` downsamples
  the label to each output instead, as the official code does with its multi-scale outputs.
* gamma can be fixed (the official run scripts: 0.6 VOC, 0.4 COCO) or chosen on held-out
  training images with pseudo-unseen seen classes (`calibration.gamma: heldout`).
"""

from __future__ import annotations

import copy
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PlainValidator, model_validator

from zsseg_bench.catalog.schema import Fraction, NonNegativeFloat, PositiveInt, Section
from zsseg_bench.engine.transforms import label_maps_at
from zsseg_bench.methods.base import IMPLEMENTATIONS, ClassSpace, Method, MethodConfig, Stage
from zsseg_bench.methods.common.backbones import build_backbone
from zsseg_bench.methods.common.calibration import calibrate, choose_gamma_heldout
from zsseg_bench.methods.common.optim import SGDOptions, sgd_poly

__all__ = ["SPNet", "SPNetConfig", "projection_logits", "dense_cross_entropy"]


class SPNetTrain(SGDOptions):
    iterations: PositiveInt
    head_lr_mult: NonNegativeFloat  # head weights at lr x mult, head biases at 2 x mult (no weight decay)
    poly_power: NonNegativeFloat
    lr_decay_every: PositiveInt = 1  # the poly factor is recomputed every N iterations (official: 10)
    # The poly schedule's horizon (None: the stage's length). SPNet's COCO-Stuff config decays over
    # ITER_MAX 100000 while its run script evaluates the 20000-iteration checkpoint.
    poly_iterations: PositiveInt | None = None
    batch_size: PositiveInt | None = None  # None: data.batch_size


def _gamma(value):
    if value == "heldout" or (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1):
        return value
    raise ValueError(f"{value!r} is not a calibration constant; use a number in [0, 1] or heldout")


class Calibration(Section):
    """SPNet-c: gamma fixed, or chosen on held-out training images (`heldout`, which then needs the
    held-out share and the grid of candidates [low, high, step])."""

    gamma: Annotated[float | str, PlainValidator(_gamma)]
    heldout_fraction: Fraction | None = None
    grid: Annotated[list[NonNegativeFloat], Field(min_length=3, max_length=3)] | None = None
    proxy_iterations: PositiveInt | None = None  # the proxy's training length (None: train.iterations)

    @model_validator(mode="after")
    def _heldout_needs_its_settings(self):
        if self.gamma == "heldout":
            missing = [k for k in ("heldout_fraction", "grid") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"calibration.gamma heldout needs calibration.{missing[0]}")
            lo, hi, step = self.grid
            if not (lo <= hi and step > 0):
                raise ValueError(f"calibration.grid {self.grid}: use [low, high, step] with low <= high, step > 0")
        return self


class SPNetConfig(MethodConfig):
    train: SPNetTrain
    loss_at: Literal["label", "feature"]  # the resolution of the loss: upsampled logits, or downsampled labels
    calibration: Calibration


def projection_logits(features: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """[B, D, h, w] x [K, D] -> [B, K, h, w]: dot product with every class embedding."""
    return torch.einsum("bdhw,kd->bkhw", features, embeddings.to(features.dtype))


def dense_cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, at: str = "label"):
    """Cross-entropy between a logit map and a label map of another resolution."""
    if logits.shape[-2:] != target.shape[-2:]:
        if at == "label":
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        else:
            target = label_maps_at(target, logits.shape[-2:])
    return F.cross_entropy(logits.float(), target, ignore_index=ignore_index)


@IMPLEMENTATIONS.register("spnet")
class SPNet(Method):
    Config = SPNetConfig
    inference_only_keys = ("calibration",)

    def __init__(self, cfg: dict, classes: ClassSpace):
        super().__init__(cfg, classes)
        cfg = self.cfg
        self.backbone = build_backbone(cfg["backbone"], classes.embeddings.shape[1])
        # Fixed embeddings are not parameters and not saved: the same weights serve any class set.
        self.register_buffer("embeddings", classes.embeddings.clone().float(), persistent=False)
        self.register_buffer("seen", classes.seen.clone(), persistent=False)
        self.register_buffer("seen_lut", classes.seen_lut(), persistent=False)
        gamma = cfg["calibration"]["gamma"]
        self.register_buffer("gamma", torch.tensor(float(gamma) if gamma != "heldout" else 0.0))

    def stages(self) -> list[Stage]:
        t = self.cfg["train"]
        return [Stage("train", t["iterations"], batch_size=t["batch_size"])]

    def configure_optimizers(self, stage: Stage):
        # The backbone names its groups (DeepLab: ResNet convs / ASPP weights / ASPP biases,
        # frozen BN in none); SPNet's multipliers are 1x, 10x and 20x with no weight decay.
        t = self.cfg["train"]
        groups = self.backbone.lr_groups()
        mult = t["head_lr_mult"]
        param_groups = [
            {"params": groups["body"], "lr_mult": 1.0},
            {"params": groups["head_weight"], "lr_mult": mult},
            {"params": groups["head_bias"], "lr_mult": 2 * mult, "weight_decay": 0.0},
        ]
        opt, sched = sgd_poly(param_groups, t["lr"], t["poly_iterations"] or stage.iterations, t["momentum"],
                              t["weight_decay"], t["poly_power"], t["lr_decay_every"])
        return {"main": (opt, sched)}

    def features(self, images: torch.Tensor):
        return self.backbone(images)

    def training_step(self, batch: dict, stage: Stage, iteration: int) -> dict:
        seen_emb = self.embeddings[self.seen]
        # The projection is the backbone's head: with the multi-scale wrapper the max is taken
        # over class logits, as in the official code.
        outputs = self.backbone(batch["image"], head=lambda f: projection_logits(f, seen_emb))
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        ignore = self.classes.ignore_index
        label = batch["label"]
        target = torch.where(label == ignore, label, self.seen_lut[label.clamp(max=len(self.seen_lut) - 1)])
        at = self.cfg["loss_at"]
        # SPNet sums the loss over its multi-scale outputs.
        loss = sum(dense_cross_entropy(logits, target, ignore, at) for logits in outputs)
        return {"loss": loss}

    def logits(self, images: torch.Tensor, size=None) -> torch.Tensor:
        logits = self.backbone(images, head=lambda f: projection_logits(f, self.embeddings))
        if isinstance(logits, (list, tuple)):
            logits = logits[-1]
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)
        return logits

    def predict(self, images: torch.Tensor, size=None) -> torch.Tensor:
        return calibrate(self.logits(images, size), self.seen, float(self.gamma))

    def after_training(self, ctx) -> dict:
        cal = self.cfg["calibration"]
        if cal["gamma"] != "heldout":
            return {"calibration": {"gamma": float(self.gamma), "chosen_by": "config"}}

        def build_proxy(classes: ClassSpace) -> "SPNet":
            cfg = copy.deepcopy(self.cfg)
            cfg["calibration"] = {"gamma": 0.0}
            if cal["proxy_iterations"]:
                cfg["train"]["iterations"] = cal["proxy_iterations"]
            return type(self)(cfg, classes)

        result = choose_gamma_heldout(self, ctx, build_proxy, cal)
        self.gamma.fill_(result["gamma"])
        return {"calibration": {**result, "chosen_by": "heldout"}}
