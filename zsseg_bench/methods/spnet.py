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

import torch
import torch.nn.functional as F

from zsseg_bench.engine.transforms import label_maps_at
from zsseg_bench.methods.base import IMPLEMENTATIONS, ClassSpace, Method, Stage
from zsseg_bench.methods.common.backbones import build_backbone
from zsseg_bench.methods.common.calibration import calibrate, choose_gamma_heldout
from zsseg_bench.methods.common.optim import sgd_poly

__all__ = ["SPNet", "projection_logits", "dense_cross_entropy"]


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
    inference_only_keys = ("calibration",)

    def __init__(self, cfg: dict, classes: ClassSpace):
        super().__init__(cfg, classes)
        self.backbone = build_backbone(cfg.get("backbone", {}), classes.embeddings.shape[1])
        # Fixed embeddings are not parameters and not saved: the same weights serve any class set.
        self.register_buffer("embeddings", classes.embeddings.clone().float(), persistent=False)
        self.register_buffer("seen", classes.seen.clone(), persistent=False)
        self.register_buffer("seen_lut", classes.seen_lut(), persistent=False)
        gamma = cfg.get("calibration", {}).get("gamma", 0.0)
        self.register_buffer("gamma", torch.tensor(float(gamma) if gamma != "heldout" else 0.0))

    def stages(self) -> list[Stage]:
        t = self.cfg["train"]
        return [Stage("train", int(t["iterations"]), batch_size=t.get("batch_size"))]

    def configure_optimizers(self, stage: Stage):
        # The backbone names its groups (DeepLab: ResNet convs / ASPP weights / ASPP biases,
        # frozen BN in none); SPNet's multipliers are 1x, 10x and 20x with no weight decay.
        t = self.cfg["train"]
        groups = self.backbone.lr_groups()
        mult = t.get("head_lr_mult", 10.0)
        param_groups = [
            {"params": groups["body"], "lr_mult": 1.0},
            {"params": groups["head_weight"], "lr_mult": mult},
            {"params": groups["head_bias"], "lr_mult": 2 * mult, "weight_decay": 0.0},
        ]
        opt, sched = sgd_poly(param_groups, t["lr"], stage.iterations, t.get("momentum", 0.9),
                              t.get("weight_decay", 5e-4), t.get("poly_power", 0.9), t.get("lr_decay_every", 1))
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
        at = self.cfg.get("loss_at", "label")
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
        cal = self.cfg.get("calibration", {})
        if cal.get("gamma") != "heldout":
            return {"calibration": {"gamma": float(self.gamma), "chosen_by": "config"}}

        def build_proxy(classes: ClassSpace) -> "SPNet":
            cfg = copy.deepcopy(self.cfg)
            cfg["calibration"] = {"gamma": 0.0}
            if cal.get("proxy_iterations"):
                cfg["train"]["iterations"] = int(cal["proxy_iterations"])
            return type(self)(cfg, classes)

        result = choose_gamma_heldout(self, ctx, build_proxy, cal)
        self.gamma.fill_(result["gamma"])
        return {"calibration": {**result, "chosen_by": "heldout"}}
