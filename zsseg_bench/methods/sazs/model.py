"""SAZS (shape-aware zero-shot segmentation) and its plain baseline, under the episodic protocol.

Paper: Liu et al., "Delving into Shape-aware Zero-shot Semantic Segmentation", CVPR 2023. Code
read: github.com/Liuxinyv/SAZS. An episode is an image and one class name; the backbone's
pixel features live in the text-embedding space and are scored against two prompt embeddings,
[others, class], by a plain dot product (no temperature, no normalisation of the features, as
the official code), then a 2-way log-softmax. An edge head (1x1 conv on the same features)
predicts the target's boundaries; the joint loss is in losses.py. With both edge weights 0 the
method is the LSeg-style baseline `lseg-zs` (same backbone and text head, no shape terms).

Training draws one episode per image: a training-fold class present in it (uniformly; images
with none are skipped), target 1 on its pixels, 0 on every other labelled pixel (background
and the other training classes), the held-out fold's pixels ignored (the split's policy).

Epochs are stages (the official schedule validates and keeps the best weights once per epoch);
one SGD optimizer lives across them, its lr set per epoch to lr x (1 - epoch/epochs)^power. The
weights kept are chosen by `selection.mode` with the scorer the protocol gives (fss_zeroshot.py).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.methods.base import IMPLEMENTATIONS, ClassSpace, Method, Stage
from zsseg_bench.methods.common.backbones import build_backbone
from zsseg_bench.methods.sazs.config import SAZSConfig
from zsseg_bench.methods.sazs.inverseform import build_inverseform
from zsseg_bench.methods.sazs.losses import balanced_edge_bce, edge_attention_nll, edge_truth

__all__ = ["SAZS"]


@IMPLEMENTATIONS.register("sazs")
class SAZS(Method):
    Config = SAZSConfig
    inference_only_keys = ("fusion",)
    task_protocols = ("fss-zeroshot",)

    def __init__(self, cfg: dict, classes: ClassSpace):
        super().__init__(cfg, classes)
        cfg = self.cfg
        dim = classes.embeddings.shape[1]
        self.backbone = build_backbone(cfg["backbone"], dim)
        self.edge_head = nn.Conv2d(dim, 1, 1)
        self.register_buffer("embeddings", classes.embeddings.clone().float(), persistent=False)
        others = cfg["others_class"]
        if others not in classes.names:
            raise ValueError(f"others_class {others!r} is not a class of the split ({', '.join(classes.names)})")
        self.others = classes.names.index(others)
        targets = classes.seen.clone()
        targets[self.others] = False  # training episodes are drawn over the training folds' object classes
        self.register_buffer("targets", targets, persistent=False)
        self.inverseform = build_inverseform(cfg["inverseform"])
        self._optimizer = None
        self._best = None  # (score, epoch, state_dict) of the selected epoch
        self.selection_log: list[dict] = []

    # ---- schedule -------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        t = self.cfg["train"]
        return [Stage(f"epoch{e + 1}", t["iterations_per_epoch"], batch_size=t["batch_size"])
                for e in range(t["epochs"])]

    def configure_optimizers(self, stage: Stage):
        t = self.cfg["train"]
        if self._optimizer is None:
            groups = self.backbone.lr_groups()
            head = list(self.edge_head.parameters())
            params = [{"params": groups["body"], "mult": 1.0},
                      {"params": groups["head_weight"] + groups["head_bias"] + head, "mult": t["head_lr_mult"]}]
            params = [{**g, "lr": t["lr"] * g["mult"]} for g in params if g["params"]]
            self._optimizer = torch.optim.SGD(params, lr=t["lr"], momentum=t["momentum"],
                                              weight_decay=t["weight_decay"])
        epoch = int(stage.name.removeprefix("epoch")) - 1
        factor = (1 - epoch / t["epochs"]) ** t["poly_power"]
        for group in self._optimizer.param_groups:
            group["lr"] = t["lr"] * group["mult"] * factor
        return {"main": (self._optimizer, None)}

    # ---- the model --------------------------------------------------------------------------------
    def features(self, images: torch.Tensor) -> torch.Tensor:
        out = self.backbone(images)
        return out[-1] if isinstance(out, (list, tuple)) else out

    def binary_logits(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """[B, 2, h, w]: pixel features scored against the prompt pair (others, classes[b])."""
        prompts = torch.stack([self.embeddings[self.others].expand(len(classes), -1), self.embeddings[classes]], 1)
        return torch.einsum("bdhw,bkd->bkhw", features, prompts.to(features.dtype))

    def episode_logits(self, images: torch.Tensor, classes: torch.Tensor, size=None) -> torch.Tensor:
        logits = self.binary_logits(self.features(images), classes)
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)
        return logits

    def predict(self, images: torch.Tensor, size=None) -> torch.Tensor:
        """Scores over every class of the split (for `zsbench predict`); episodes use `episode_logits`."""
        logits = torch.einsum("bdhw,kd->bkhw", self.features(images), self.embeddings.to(images.dtype))
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)
        return logits

    # ---- training ---------------------------------------------------------------------------------
    def _draw_classes(self, label: torch.Tensor) -> torch.Tensor:
        """[B] one training-fold class present in each image (-1 where none is)."""
        k = self.classes.num_classes
        flat = label.flatten(1)
        present = torch.zeros(label.shape[0], k + 1, dtype=torch.bool, device=label.device)
        present.scatter_(1, flat.clamp(max=k), True)
        present = present[:, :k] & self.targets
        weights = present.float()
        has = weights.sum(1) > 0
        weights[~has] = 1.0
        drawn = torch.multinomial(weights.cpu(), 1).flatten().to(label.device)
        return torch.where(has, drawn, torch.full_like(drawn, -1))

    def training_step(self, batch: dict, stage: Stage, iteration: int) -> dict:
        label, ignore = batch["label"], self.classes.ignore_index
        classes = self._draw_classes(label)
        keep = classes >= 0
        if not bool(keep.any()):
            return {}
        images, label, classes = batch["image"][keep], label[keep], classes[keep]
        target = torch.where(label == ignore, label, (label == classes.view(-1, 1, 1)).long())
        features = self.features(images)
        size = target.shape[-2:]
        logits = F.interpolate(self.binary_logits(features, classes).float(), size=size, mode="bilinear",
                               align_corners=False)
        log_probs = F.log_softmax(logits, 1)
        seg = F.nll_loss(log_probs, target, ignore_index=ignore)
        losses = {"seg": seg}
        e = self.cfg["edge"]
        if e["bce_weight"] or e["attention_weight"] or self.inverseform is not None:
            edge_logits = F.interpolate(self.edge_head(features).float(), size=size, mode="bilinear",
                                        align_corners=False)
            edges = edge_truth(target, ignore, e["radius"])
            losses["edge_bce"] = balanced_edge_bce(edge_logits, edges, target != ignore)
            losses["edge_att"] = edge_attention_nll(log_probs, target, edge_logits, ignore, e["attention_threshold"])
            if self.inverseform is not None:
                losses["inverseform"] = self.inverseform(torch.sigmoid(edge_logits), edges)
        total = seg + e["bce_weight"] * losses.get("edge_bce", 0.0) + e["attention_weight"] * losses.get("edge_att", 0.0)
        if "inverseform" in losses:
            total = total + self.cfg["inverseform"]["weight"] * losses["inverseform"]
        return {"loss": total, **losses}

    # ---- checkpoint selection ---------------------------------------------------------------------
    def on_stage_end(self, stage: Stage, ctx) -> None:
        scorer = getattr(ctx, "selection_scorer", None)
        if self.cfg["selection"]["mode"] == "last" or scorer is None:
            return
        score = scorer(self)
        epoch = int(stage.name.removeprefix("epoch"))
        self.selection_log.append({"epoch": epoch, "FG-mIoU": score})
        if self._best is None or score > self._best[0]:
            self._best = (score, epoch, copy.deepcopy({k: v.detach().cpu() for k, v in self.state_dict().items()}))

    def after_training(self, ctx) -> dict:
        sel = self.cfg["selection"]
        if self._best is None:
            return {"selection": {"mode": sel["mode"], "epoch": len(self.stages())}}
        score, epoch, state = self._best
        self.load_state_dict(state)
        return {"selection": {"mode": sel["mode"], "epoch": epoch, "score": score, "log": self.selection_log}}

    def protocol_flags(self) -> dict:
        flags = super().protocol_flags()
        flags["uses_test_labels"] = self.cfg["fusion"]["mode"] == "oracle" or self.cfg["selection"]["mode"] == "test-fold"
        return flags
