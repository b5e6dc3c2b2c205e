"""Label sampling shared by the generative methods (ZS3Net's GMMN, CaGNet's generator and content MMD)."""

from __future__ import annotations

import torch

__all__ = ["class_prior", "sample_groups"]


def class_prior(seen: torch.Tensor, gen_unseen_rate: float) -> torch.Tensor:
    """CaGNet's step-2 label prior: weight 1 per seen class, 1 + rate per unseen class, normalised."""
    weights = 1.0 + float(gen_unseen_rate) * (~seen).float()
    return weights / weights.sum()


def sample_groups(label: torch.Tensor, num_classes: int, ignore: int, n: int, per_image: bool = True,
                  keep_image: torch.Tensor | None = None):
    """Pixel indices for the GMMN: `n` draws with replacement from each (image, class) group.

    label [B, h, w] -> (index [G, n] into the flattened pixels, class of each group [G]).
    With per_image=False the groups are classes over the whole batch. `keep_image` [B] bool
    drops images (the official code skips images that contain unseen pixels)."""
    flat = label.flatten()
    valid = flat != ignore
    if keep_image is not None:
        valid &= keep_image.view(-1, 1).expand_as(label.flatten(1)).flatten()
    if not bool(valid.any()):
        return None, None
    group = flat.clamp(max=num_classes - 1)
    if per_image:
        image = torch.arange(label.shape[0], device=label.device).repeat_interleave(label[0].numel())
        group = image * num_classes + group
    ids = torch.unique(group[valid])
    member = (group.unsqueeze(0) == ids.unsqueeze(1)) & valid.unsqueeze(0)  # [G, P]
    index = torch.multinomial(member.float(), n, replacement=True)
    return index, ids % num_classes
