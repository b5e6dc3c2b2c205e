"""MaskFormer for weak-shot segmentation: the `maskformer-ws` baseline, the `maskformer-full` upper bound
and SimFormer (Chen, Niu, Zhou, Si, Qian, Zhang, "Weak-shot Semantic Segmentation via Dual Similarity
Transfer", NeurIPS 2022; code read: github.com/bcmi/SimFormer-Weak-Shot-Semantic-Segmentation 9e32a80).

One implementation, `maskformer`; the cards choose the supervision and SimFormer's components:

* `supervision: weak` trains on label maps whose novel pixels are ignored plus the image-level
  labels of novel classes (`novel_present`), the weak-shot data path; `full` on complete maps (the
  upper bound, flagged uses_unseen_labels, shown as uses-novel-masks in weak-shot tables).
* `transfer.novel_classes`: `matched` (proposal-pixel transfer) or `image-level` (baseline).
* `transfer.complementary`, `transfer.distill`: the complementary loss and the pixel-pixel distillation.
* Stages: `seg`; `crosim` (image pairs, SimNet + distillation, continuing from `seg`);
  `pseudo_label` (the trained segmenter becomes a frozen teacher); `retraining` (the segmenter is
  re-initialised and trained on base masks plus the teacher's novel pseudo-labels, with masks).

Pseudo-labels follow the official rule (pseudo_labeling.py): a pixel without a base label takes the
teacher's predicted class when that class is a novel class present in the image; base labels stay.
The official code writes them once, on whole training images; here the teacher labels each training
batch as it is drawn (the same rule, applied to the augmented image), which needs no label files and
resumes exactly. Modules: model.py (network), matching.py, targets.py, losses.py, similarity.py,
pairs.py, optim.py.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from zsseg_bench.engine.transforms import label_maps_at
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.base import IMPLEMENTATIONS, ClassSpace, Method, Stage
from zsseg_bench.methods.maskformer import losses as L
from zsseg_bench.methods.maskformer.config import MaskFormerConfig
from zsseg_bench.methods.maskformer.matching import Assignment, hungarian, matching_cost
from zsseg_bench.methods.maskformer.model import MaskFormerSegmenter, semantic_scores
from zsseg_bench.methods.maskformer.optim import adamw_poly
from zsseg_bench.methods.maskformer.pairs import PairRule
from zsseg_bench.methods.maskformer.similarity import BalanceCounts, SimNet, distill_loss, partner_index, simnet_loss
from zsseg_bench.methods.maskformer.targets import mask_targets, with_imagelevel

__all__ = ["MaskFormerMethod"]


@IMPLEMENTATIONS.register("maskformer")
class MaskFormerMethod(Method):
    Config = MaskFormerConfig
    task_protocols = ("weak-shot",)

    def __init__(self, cfg: dict, classes: ClassSpace):
        super().__init__(cfg, classes)
        k = classes.num_classes
        self.segmenter = MaskFormerSegmenter(self.cfg, k)
        sched, t = self.cfg["schedule"], self.cfg["transfer"]
        self.simnet = SimNet(2 * self.cfg["model"]["mask_dim"], t["simnet_hidden"]) if sched["crosim"]["iterations"] \
            else None
        self.balance = BalanceCounts()
        self.teacher = None
        if sched["retraining"]["iterations"]:
            self.teacher = MaskFormerSegmenter(self.cfg, k).requires_grad_(False)
        self.register_buffer("novel_idx", classes.unseen_idx.clone(), persistent=False)
        self.register_buffer("seen", classes.seen.clone(), persistent=False)
        self._ctx, self._pairs = None, None

    def protocol_flags(self) -> dict:
        return {"uses_unseen_labels": self.cfg["supervision"] == "full", "transductive": False}

    # ---- stages -----------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        s = self.cfg["schedule"]
        out = [self._stage("seg", s["seg"]["iterations"], s["seg"]["batch_size"])]
        if s["crosim"]["iterations"]:
            out.append(self._stage("crosim", s["crosim"]["iterations"], s["crosim"]["batch_size"] // 2))
        if s["retraining"]["iterations"]:
            out += [Stage("pseudo_label", 0),
                    self._stage("retraining", s["retraining"]["iterations"], s["retraining"]["batch_size"])]
        return out

    def _stage(self, name: str, iterations: int, batch_size: int) -> Stage:
        # Val trajectory (engine/trajectory.py) at each quarter of the stage: the end of seg/crosim is
        # the teacher SimFormer's pseudo-labels come from, so the record says in which stage novel
        # classes are gained or lost. Probes never change the trained weights.
        probe = max(iterations // 4, 1) if self.cfg["diagnostics"] else None
        return Stage(name, iterations, batch_size=batch_size, probe_every=probe)

    def configure_optimizers(self, stage: Stage):
        s = self.cfg["schedule"]
        lr = s[stage.name]["lr"] if stage.name in ("seg", "crosim", "retraining") else 0.0
        extra = [self.simnet] if self.simnet is not None else []
        return {"main": adamw_poly(self.segmenter, extra, lr, max(stage.iterations, 1), s)}

    def on_stage_start(self, stage: Stage, ctx) -> None:
        self._ctx = ctx
        if stage.name == "crosim":
            labels = getattr(ctx, "image_labels", None)
            if labels is None:
                raise ZsbenchError("simformer's crosim stage needs image-level labels: run it on a weak-shot split")
            self._pairs = PairRule(labels, ~self.seen.cpu().numpy(), self.cfg["transfer"]["pair_min_prob"])
        elif stage.name == "pseudo_label":
            self.teacher.load_state_dict(self.segmenter.state_dict())
        elif stage.name == "retraining":
            # Re-initialised as at the start (backbone.init included): the official retraining starts
            # from the ImageNet weights, not from the teacher.
            self.segmenter.load_state_dict(MaskFormerSegmenter(self.cfg, self.classes.num_classes).state_dict())

    # ---- training ---------------------------------------------------------------------------------
    def training_step(self, batch: dict, stage: Stage, iteration: int) -> dict:
        if stage.name == "crosim":
            batch = self._paired(batch, iteration)
        out = self.segmenter(batch["image"])
        targets, label, weak = self._targets(batch, stage)
        parts = self._set_losses(out, targets, batch, weak)
        if stage.name == "crosim":
            parts.update(self._similarity_losses(out, batch, label))
        loss = sum(parts.values())
        return {"loss": loss, **{k: v.detach() for k, v in parts.items()}}

    def _targets(self, batch: dict, stage: Stage):
        """(targets, the label map they come from, whether novel classes are weakly labelled)."""
        k, ignore = self.classes.num_classes, self.classes.ignore_index
        if stage.name == "retraining":
            label = self._pseudo_labels(batch)
            return mask_targets(label, k, ignore), label, False
        if self.cfg["supervision"] == "full":
            return mask_targets(batch["label_all"], k, ignore), batch["label_all"], False
        if "novel_present" not in batch:
            raise ZsbenchError("weak-shot training needs image-level labels (novel_present); use a weak-shot split")
        label = batch["label"]
        targets = mask_targets(label, k, ignore)
        if self.cfg["transfer"]["novel_classes"] == "matched":
            targets = with_imagelevel(targets, batch["novel_present"], self.novel_idx)
        return targets, label, True

    def _set_losses(self, out: dict, targets, batch: dict, weak: bool) -> dict:
        lw, t = self.cfg["loss"], self.cfg["transfer"]
        layers = range(out["class_logits"].shape[0]) if lw["deep_supervision"] else [out["class_logits"].shape[0] - 1]
        num_masks = max(float(targets.has_mask.sum()), 1.0)
        parts: dict[str, torch.Tensor] = {}

        def add(name, value):
            parts[name] = parts[name] + value if name in parts else value

        for layer in layers:
            cls, masks = out["class_logits"][layer], out["mask_logits"][layer]
            match = hungarian(matching_cost(cls, masks, targets, class_weight=lw["classification"],
                                            focal_weight=lw["focal"], dice_weight=lw["dice"]), targets.valid)
            add("class", lw["classification"] * L.class_loss(cls, targets, match, lw["no_object"]))
            focal, dice = L.mask_losses(masks, targets, match, num_masks)
            add("mask", lw["focal"] * focal + lw["dice"] * dice)
            if not weak:
                continue
            if t["novel_classes"] == "image-level":
                add("image_level", lw["classification"] * L.image_level_loss(cls, batch["novel_present"],
                                                                            self.novel_idx))
            if t["complementary"]:
                comp_targets, comp_match = self._novel_proposals(cls, targets, match, batch["novel_present"])
                add("complementary", t["complementary"] * L.complementary_loss(
                    masks, comp_targets, comp_match, t["ignore_logit"], lw["focal"], lw["dice"]))
        return parts

    def _novel_proposals(self, cls, targets, match: Assignment, present: torch.Tensor):
        """Targets and matches whose mask-less slots are the novel proposals. Matched novel classes have
        their queries; with `image-level` novel classes, each present one takes its most probable query."""
        if self.cfg["transfer"]["novel_classes"] == "matched":
            return targets, match
        extended = with_imagelevel(targets, present, self.novel_idx)
        b, u = torch.nonzero(present, as_tuple=True)
        best = cls.detach().float().softmax(-1)[b, :, self.novel_idx[u]].argmax(1)
        slots = targets.classes.shape[1] + u
        return extended, Assignment(torch.cat([match.batch, b]), torch.cat([match.query, best]),
                                    torch.cat([match.slot, slots]))

    def _similarity_losses(self, out: dict, batch: dict, label: torch.Tensor) -> dict:
        t = self.cfg["transfer"]
        feats = out["mask_features"]
        small = label_maps_at(label, feats.shape[-2:])
        ignore = self.classes.ignore_index
        parts = {"simnet": t["simnet"] * simnet_loss(self.simnet, self.balance, feats, small, ignore, self.seen,
                                                     t["points"])}
        if t["distill"]:
            present = batch["novel_present"]
            shares = (present & present[partner_index(present.shape[0], present.device)]).any(1)
            scores = semantic_scores(out["class_logits"][-1], out["mask_logits"][-1], self.novel_idx)
            parts["distill"] = t["distill"] * distill_loss(scores, feats, self.simnet, small, ignore, shares,
                                                           t["points"], t["distill_func"])
        return parts

    def _paired(self, batch: dict, iteration: int) -> dict:
        """The stage's images followed each by its partner (rows 2i, 2i + 1), partners by the official rule,
        drawn from (seed, iteration) so that a resumed run draws the same."""
        rng = np.random.default_rng([self._ctx.seed, 7, iteration])
        partners = [self._pairs.partner(int(i), rng) for i in batch["index"]]
        other = self._ctx.train_items(partners)
        out = {}
        for key in ("image", "label", "novel_present", "index"):
            a, b = batch[key], other[key].to(batch[key].device)
            out[key] = torch.stack([a, b], 1).flatten(0, 1)
        out["name"] = [n for pair in zip(batch["name"], other["name"]) for n in pair]
        return out

    @torch.no_grad()
    def _pseudo_labels(self, batch: dict) -> torch.Tensor:
        self.teacher.eval()
        label = batch["label"]
        pred = self._scores(self.teacher, batch["image"], label.shape[-2:]).argmax(1)
        allowed = torch.zeros(label.shape[0], self.classes.num_classes, dtype=torch.bool, device=label.device)
        allowed[:, self.novel_idx] = batch["novel_present"]
        take = (label == self.classes.ignore_index) & allowed.gather(1, pred.flatten(1)).view_as(pred)
        return torch.where(take, pred, label)

    # ---- inference ----------------------------------------------------------------------------------
    @staticmethod
    def _scores(segmenter, images: torch.Tensor, size=None) -> torch.Tensor:
        out = segmenter(images)
        masks = out["mask_logits"][-1]
        if size is not None and tuple(masks.shape[-2:]) != tuple(size):
            masks = F.interpolate(masks.float(), size=tuple(size), mode="bilinear", align_corners=False)
        return semantic_scores(out["class_logits"][-1], masks)

    def predict(self, images: torch.Tensor, size=None) -> torch.Tensor:
        return self._scores(self.segmenter, images, size)

    def bench_features(self, images: torch.Tensor):
        return self.segmenter.levels(images)
