"""The MaskFormer set losses and SimFormer's complementary loss, on one decoder layer's outputs.

* Class loss: cross-entropy over K classes + no-object for every query, matched queries towards
  their target's class, the rest towards no-object (weight `no_object_weight`, 0.1 officially).
* Mask loss: sigmoid focal (MaskFormer's "mask" term, weight 20) and dice (weight 1) between the
  matched queries' mask logits, upsampled to the target resolution, and their binary targets,
  summed over the matched slots **that have a mask** and divided by their number in the batch.
  With SimFormer's proposal-pixel transfer the slots of novel classes (image-level labels only)
  have none: their queries learn masks only through the embedding shared with base queries.
* Complementary loss (SimFormer's `CompSupNovel`): per image with novel slots, the pixel-wise max
  over the novel queries' mask logits and one fixed "ignore" logit is pushed, with the same focal
  x 20 + dice x 1, towards the complement of the union of the image's base masks (pixels outside
  the image, `valid` False, count as base); the mean over those images.
* Image-level loss (the weak-shot baseline's MIL term): p_c = max over queries of the softmax
  probability of class c, binary cross-entropy against the image-level labels of the novel classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zsseg_bench.methods.maskformer.matching import Assignment, Targets

__all__ = ["sigmoid_focal_loss", "dice_loss", "class_loss", "mask_losses", "complementary_loss", "image_level_loss"]


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):
    """[N, P] -> [N]: focal loss per mask, mean over pixels (MaskFormer's `sigmoid_focal_loss` before /num_masks)."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean(1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[N, P] -> [N]: 1 - (2 |p t| + 1) / (|p| + |t| + 1) per mask."""
    prob = logits.sigmoid()
    return 1 - (2 * (prob * targets).sum(-1) + 1) / (prob.sum(-1) + targets.sum(-1) + 1)


def class_loss(class_logits: torch.Tensor, targets: Targets, match: Assignment, no_object_weight: float):
    """Weighted cross-entropy over all queries (matched: their class; others: no-object)."""
    b, q, k1 = class_logits.shape
    goal = torch.full((b, q), k1 - 1, dtype=torch.long, device=class_logits.device)
    goal[match.batch, match.query] = targets.classes[match.batch, match.slot]
    weight = torch.ones(k1, device=class_logits.device)
    weight[-1] = no_object_weight
    return F.cross_entropy(class_logits.float().transpose(1, 2), goal, weight)


def _matched_masks(mask_logits: torch.Tensor, targets: Targets, match: Assignment):
    """(matched mask logits upsampled to the targets, their targets), each [M, P]."""
    pred = mask_logits[match.batch, match.query][:, None].float()
    pred = F.interpolate(pred, size=targets.masks.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return pred.flatten(1), targets.masks[match.batch, match.slot].flatten(1).to(pred.dtype)


def mask_losses(mask_logits: torch.Tensor, targets: Targets, match: Assignment, num_masks: float):
    """(focal, dice) summed over matched slots with a mask, each divided by `num_masks`."""
    pred, goal = _matched_masks(mask_logits, targets, match)
    keep = targets.has_mask[match.batch, match.slot]
    if not bool(keep.any()):
        zero = mask_logits.sum() * 0.0
        return zero, zero
    return (sigmoid_focal_loss(pred[keep], goal[keep]).sum() / num_masks,
            dice_loss(pred[keep], goal[keep]).sum() / num_masks)


def complementary_loss(mask_logits: torch.Tensor, targets: Targets, match: Assignment, ignore_logit: float,
                       focal_weight: float, dice_weight: float, valid: torch.Tensor | None = None):
    """SimFormer's complementary loss (module docstring); `valid` bool [B, H, W] marks image pixels."""
    pred, goal = _matched_masks(mask_logits, targets, match)
    novel = ~targets.has_mask[match.batch, match.slot]
    b = mask_logits.shape[0]
    n_pixels = pred.shape[1]
    # Per image: the max over its novel queries (and the fixed ignore logit), as one scatter_reduce.
    floor = torch.full((b, n_pixels), float(ignore_logit), device=pred.device, dtype=pred.dtype)
    rows = match.batch[novel][:, None].expand(-1, n_pixels)
    not_base_pred = floor.scatter_reduce(0, rows, pred[novel], reduce="amax", include_self=True)
    base_union = (targets.masks.flatten(2) * targets.has_mask[:, :, None]).amax(1) if targets.masks.shape[1] \
        else torch.zeros(b, n_pixels, device=pred.device)
    not_base = 1 - base_union.to(pred.dtype)
    if valid is not None:
        not_base = not_base * valid.flatten(1).to(pred.dtype)
    has_novel = torch.zeros(b, dtype=torch.bool, device=pred.device)
    has_novel[match.batch[novel]] = True
    if not bool(has_novel.any()):
        return mask_logits.sum() * 0.0
    per_image = (focal_weight * sigmoid_focal_loss(not_base_pred[has_novel], not_base[has_novel])
                 + dice_weight * dice_loss(not_base_pred[has_novel], not_base[has_novel]))
    return per_image.sum() / int(has_novel.sum())


def image_level_loss(class_logits: torch.Tensor, present: torch.Tensor, classes: torch.Tensor):
    """BCE between max-over-queries softmax probabilities of `classes` [U] and labels `present` [B, U]."""
    prob = class_logits.float().softmax(-1)[:, :, classes].amax(1).clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(prob, present.to(prob.dtype))
