"""Mechanism diagnostics the generative methods compute on themselves (runs/diagnostics.py reads them).

* `generated_feature_check`: do generated features land on their own class? Real features of the
  first `VAL_IMAGES` images of the benchmark's val part (the training images where a dataset has
  no val part), labelled with every evaluation class (unseen included: a diagnostic, never
  trained on), give one mean per class. `PER_CLASS` features are generated for each class present
  there, as the classifier stage generates them, and each is assigned to the nearest real class
  mean (Euclidean). The own-class share of a class is the fraction assigned to that class; chance
  is 1 / (classes present). A ZS3Net or CaGNet whose generated unseen features sit nearer other
  classes than chance teaches its classifier the unseen classes through the label prior alone.
* `pseudo_label_check` (self-training): where do pseudo-labels fall? The first `VAL_IMAGES`
  training images are pseudo-labelled by the final labeller, and each pseudo-labelled pixel is
  compared with the ground truth (read for this count only): on background or other unlabelled
  pixels, on an unseen object of its own class, or on another class's object.
* `WindowMean`: the mean of scalar statistics over the last N training iterations (a log window),
  for CaGNet's contextual-module summary.

Both run inside `quiet_probe` (engine/probe.py): weights, generators and progress bars unchanged.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

import numpy as np
import torch

from zsseg_bench.engine.probe import VAL_IMAGES, quiet_probe
from zsseg_bench.engine.transforms import label_maps_at

__all__ = ["PER_CLASS", "generated_feature_check", "nearest_mean_shares", "WindowMean", "diagnostic_images",
           "pseudo_label_check"]

PER_CLASS = 256  # generated features per class: a share to about +-3 points


def diagnostic_images(ctx) -> tuple[object, np.ndarray, str] | None:
    """(dataset, indices, part name) of the images a diagnostic reads; None where there are none."""
    if ctx is None:
        return None
    if getattr(ctx, "val_set", None) is not None:
        return ctx.val_set, np.arange(min(VAL_IMAGES, len(ctx.val_set))), "val"
    if getattr(ctx, "train_set", None) is not None and len(ctx.train_indices):
        return ctx.train_set, np.asarray(ctx.train_indices[:VAL_IMAGES]), "train"
    return None


@torch.no_grad()
def _real_class_means(ctx, features: Callable, dataset, indices, num_classes: int):
    """(means [K, D], pixel counts [K]) of real features by evaluation class at feature resolution."""
    sums, counts = None, torch.zeros(num_classes, device=ctx.device)
    loader = ctx.loader(indices, ctx.cfg["eval"]["batch_size"], shuffle=False, dataset=dataset, train=False)
    for batch in loader:
        b = ctx.to_device(batch, ctx.eval_lut)
        feats = features(b["image"]).float()
        label = label_maps_at(b["label"], feats.shape[-2:]).flatten()
        flat = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])
        keep = label < num_classes
        if sums is None:
            sums = torch.zeros(num_classes, flat.shape[1], device=ctx.device)
        sums.index_add_(0, label[keep], flat[keep])
        counts += torch.bincount(label[keep], minlength=num_classes).float()
    return sums / counts.clamp(min=1).unsqueeze(1), counts


def nearest_mean_shares(means: torch.Tensor, present: torch.Tensor, fake: torch.Tensor,
                        fake_label: torch.Tensor) -> torch.Tensor:
    """[K] share of each class's generated features whose nearest real class mean (among the
    `present` classes) is their own class; NaN for a class without generated features."""
    candidates = torch.nonzero(present, as_tuple=False).flatten()
    nearest = candidates[torch.cdist(fake.float(), means[candidates].float()).argmin(1)]
    own = (nearest == fake_label).float()
    k = means.shape[0]
    hits = torch.zeros(k, device=fake.device).index_add_(0, fake_label, own)
    total = torch.bincount(fake_label, minlength=k).float()
    return torch.where(total > 0, hits / total.clamp(min=1), torch.full_like(total, float("nan")))


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if np.isfinite(v)]
    return round(float(np.mean(values)), 4) if values else None


def generated_feature_check(method, ctx, features: Callable, generate: Callable, after: str) -> dict | None:
    """The own-class shares (module docstring). `features(images) -> [B, D, h, w]` real features;
    `generate(labels [n]) -> [n, D]` generated ones, made as the classifier stage makes them (it sets
    the generator's own train/eval mode; the rest of the method is in eval mode)."""
    source = diagnostic_images(ctx)
    if source is None:
        return None
    dataset, indices, part = source
    classes = method.classes
    was_training = method.training
    with quiet_probe(ctx), torch.no_grad():
        method.eval()
        means, counts = _real_class_means(ctx, features, dataset, indices, classes.num_classes)
        present = counts > 0
        labels = torch.nonzero(present, as_tuple=False).flatten().repeat_interleave(PER_CLASS)
        shares = nearest_mean_shares(means, present, generate(labels), labels).cpu()
    method.train(was_training)
    seen = classes.seen.cpu().tolist()
    per_class = {name: round(float(s), 4) for name, s in zip(classes.names, shares.tolist()) if np.isfinite(s)}
    return {"after": after, "part": part, "images": int(len(indices)), "per_class_generated": PER_CLASS,
            "own_class_share": per_class,
            "seen_mean": _mean([s for s, is_seen in zip(shares.tolist(), seen) if is_seen]),
            "unseen_mean": _mean([s for s, is_seen in zip(shares.tolist(), seen) if not is_seen]),
            "chance": round(1.0 / max(1, int(present.sum())), 4)}


class WindowMean:
    """Means of named scalars over the last `size` recorded iterations."""

    def __init__(self, size: int):
        self.values: deque = deque(maxlen=max(1, int(size)))

    def add(self, **scalars: torch.Tensor) -> None:
        self.values.append({k: v.detach().float() for k, v in scalars.items()})

    def means(self) -> dict[str, float]:
        if not self.values:
            return {}
        keys = self.values[0].keys()
        return {k: float(torch.stack([v[k] for v in self.values]).mean()) for k in keys}


@torch.no_grad()
def pseudo_label_check(ctx, labeller: Callable, num_classes: int, names) -> dict | None:
    """Counts of pseudo-labels on the first training images (module docstring); `labeller(images,
    label) -> label` is the method's pseudo-labelling rule with its final state."""
    if ctx is None or getattr(ctx, "train_set", None) is None or not len(ctx.train_indices):
        return None
    indices = np.asarray(ctx.train_indices[:VAL_IMAGES])
    ignore = ctx.split.ignore_index
    where = {"background": 0, "own_class": 0, "other_class": 0}
    per_class = torch.zeros(num_classes, dtype=torch.long)
    with quiet_probe(ctx):
        loader = ctx.loader(indices, ctx.cfg["eval"]["batch_size"], shuffle=False, train=False)
        for batch in loader:
            b = ctx.to_device(batch, ctx.train_lut, with_eval_labels=True)
            new = labeller(b["image"], b["label"])
            pseudo = new != b["label"]
            truth, cls = b["label_all"][pseudo], new[pseudo]
            where["background"] += int((truth == ignore).sum())
            where["own_class"] += int((truth == cls).sum())
            where["other_class"] += int(((truth != cls) & (truth != ignore)).sum())
            per_class += torch.bincount(cls, minlength=num_classes).cpu()
    total = sum(where.values())
    return {"images": int(len(indices)), "pixels": total, **where,
            "background_share": round(where["background"] / total, 4) if total else None,
            "per_class": {names[i]: int(n) for i, n in enumerate(per_class.tolist()) if n}}
