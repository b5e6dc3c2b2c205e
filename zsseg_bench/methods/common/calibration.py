"""Calibrated stacking (SPNet-c): subtract a constant from the seen classes' probabilities.

Paper eq. 5: prediction = argmax_c p(c | x) - gamma * 1[c is seen]. SPNet's run scripts use
gamma = 0.6 on Pascal-VOC and 0.4 on COCO-Stuff; the paper says gamma was tuned on held-out
data, but the released code has no tuning script, and CaGNet does not say how it chose the
gamma behind its SPNet-c rows.

`choose_gamma_heldout` is the documented way to pick gamma without touching the test set or
any unseen label: hold out part of the training images, train a proxy of the same method on
the rest with some seen classes (the split's `calibration_val`, SPNet's val classes) removed,
and take the gamma that maximises hIoU between the remaining seen classes and those
pseudo-unseen classes on the held-out images.
"""

from __future__ import annotations

import numpy as np
import torch

from zsseg_bench.metrics import ConfusionMeter, compute_scores

__all__ = ["calibrate", "gamma_grid", "choose_gamma_heldout", "pseudo_unseen_classes"]


def calibrate(logits: torch.Tensor, seen: torch.Tensor, gamma: float) -> torch.Tensor:
    """Softmax over classes (dim 1), minus gamma on seen classes. gamma = 0 returns logits."""
    if gamma == 0:
        return logits
    probs = logits.float().softmax(1)
    return probs - gamma * seen.to(probs.dtype).view(1, -1, *([1] * (probs.dim() - 2)))


def gamma_grid(cfg: dict) -> np.ndarray:
    lo, hi, step = cfg["grid"]
    return np.round(np.arange(lo, hi + step / 2, step), 6)


def pseudo_unseen_classes(seen_names: list[str], calibration_val: tuple[str, ...]) -> list[str]:
    """The split's calibration classes, or every fourth seen class when it names none."""
    if calibration_val:
        return list(calibration_val)
    return seen_names[1::4] or seen_names[:1]


def choose_gamma_heldout(method, ctx, build_proxy, cfg: dict) -> dict:
    """Fit gamma on held-out training images with pseudo-unseen seen classes.

    `build_proxy(classes)` returns a fresh, untrained method of the same kind over a class
    space, exposing `logits(images, size)`. Returns {"gamma", "pseudo_unseen", "n_heldout", "curve": {gamma: hIoU}}.
    """
    classes = method.classes
    seen_names = [n for n, s in zip(classes.names, classes.seen.tolist()) if s]
    pseudo = pseudo_unseen_classes(seen_names, classes.calibration_val)
    proxy_space = classes.restrict(seen_names, [n for n in seen_names if n not in pseudo])
    rng = np.random.default_rng([ctx.seed, 7])
    indices = rng.permutation(ctx.train_indices)
    n_hold = max(1, int(round(len(indices) * cfg["heldout_fraction"])))
    held, fit = np.sort(indices[:n_hold]), np.sort(indices[n_hold:])

    # raw -> proxy index. Fit labels: pseudo-unseen -> ignore; held-out labels keep them.
    ignore = ctx.split.ignore_index
    names = list(classes.names)
    remap_fit = torch.full((ctx.train_lut.numel(),), ignore, dtype=torch.long, device=ctx.device)
    remap_eval = remap_fit.clone()
    for j, name in enumerate(seen_names):
        k = names.index(name)
        raw_hits = ctx.train_lut == k
        remap_eval[raw_hits] = j
        if name not in pseudo:
            remap_fit[raw_hits] = j
    remap_fit[ctx.train_lut < 0] = -1
    remap_eval[ctx.train_lut < 0] = -1

    proxy = build_proxy(proxy_space).to(ctx.device)
    ctx.fit(proxy, indices=fit, lut=remap_fit, label_prefix="calibration proxy: ")
    grid = gamma_grid(cfg)
    confs = _confusions_over_gammas(proxy, ctx, remap_eval, len(seen_names), held, proxy_space.seen, grid)
    seen_mask = proxy_space.seen.cpu().numpy()
    curve = {float(g): compute_scores(c, seen_mask).metrics["hIoU"] for g, c in zip(grid, confs)}
    best = max(curve, key=lambda g: (np.nan_to_num(curve[g], nan=-1.0), -g))
    return {"gamma": best, "pseudo_unseen": pseudo, "n_heldout": int(n_hold), "curve": curve}


@torch.no_grad()
def _confusions_over_gammas(proxy, ctx, lut, num_classes, indices, seen, grid) -> list[np.ndarray]:
    """One forward pass per batch; one confusion matrix per gamma."""
    proxy.eval()
    meters = [ConfusionMeter(num_classes, ctx.split.ignore_index, ctx.device) for _ in grid]
    loader = ctx.loader(indices, ctx.cfg["eval"]["batch_size"], shuffle=False)
    for batch in loader:
        b = ctx.to_device(batch, lut)
        probs = proxy.logits(b["image"], b["label"].shape[-2:]).float().softmax(1)
        offset = seen.to(probs.dtype).view(1, -1, 1, 1)
        for meter, gamma in zip(meters, grid):
            meter.update((probs - float(gamma) * offset).argmax(1), b["label"])
    return [m.numpy() for m in meters]
