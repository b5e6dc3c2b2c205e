"""Per-image set targets from dense labels and image-level labels, padded over the batch (matching.Targets).

Weak-shot training hands a method two things (engine/context.py): label maps in which novel pixels
are ignored, and `novel_present` [B, U], the image-level labels of the U novel classes. Base classes
present in a label map become slots with masks; novel classes present in the image become slots
without a mask (SimFormer's proposal-pixel transfer). Nothing here looks at pixels of novel classes:
there are none in the maps it receives (except the upper bound's full maps and pseudo-labels, which
are passed explicitly).
"""

from __future__ import annotations

import torch

from zsseg_bench.methods.maskformer.matching import Targets

__all__ = ["mask_targets", "with_imagelevel", "present_classes"]


def present_classes(label: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """bool [B, K]: classes with at least one pixel in each label map (one bincount for the batch)."""
    b = label.shape[0]
    valid = label != ignore_index
    flat = (torch.arange(b, device=label.device)[:, None, None] * num_classes + label.clamp(0, num_classes - 1))[valid]
    return torch.bincount(flat, minlength=b * num_classes).view(b, num_classes) > 0


def mask_targets(label: torch.Tensor, num_classes: int, ignore_index: int) -> Targets:
    """One slot with a binary mask per class present in each label map."""
    present = present_classes(label, num_classes, ignore_index)
    width = max(int(present.sum(1).max()) if present.numel() else 0, 1)
    order = present.to(torch.int8).argsort(dim=1, descending=True, stable=True)[:, :width]
    classes = torch.where(present.gather(1, order), order, torch.full_like(order, -1))
    masks = (label[:, None] == classes[:, :, None, None]).float()
    return Targets(classes=classes, masks=masks, has_mask=classes >= 0)


def with_imagelevel(targets: Targets, present: torch.Tensor, class_ids: torch.Tensor) -> Targets:
    """Append mask-less slots for the classes `class_ids` [U] marked in `present` [B, U]."""
    extra = torch.where(present, class_ids[None].expand_as(present), torch.full_like(present, -1, dtype=torch.long))
    b, u = extra.shape
    masks = targets.masks.new_zeros(b, u, *targets.masks.shape[-2:])
    return Targets(classes=torch.cat([targets.classes, extra], 1), masks=torch.cat([targets.masks, masks], 1),
                   has_mask=torch.cat([targets.has_mask, torch.zeros_like(present)], 1))
