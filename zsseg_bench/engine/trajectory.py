"""The val trajectory: seen and unseen mIoU (and hIoU) on the first `VAL_IMAGES` images of the
benchmark's `val` part, scored like the test set, at the block boundaries of a stage with
`Stage.probe_every` (before its first iteration, every `probe_every` iterations and after the
last: run_stage in loop.py). The points are kept in `RunContext.val_trajectory` and end up in
run.json (`method_facts.diagnostics.val_trajectory`); the probe leaves weights and generators as
they were (probe.py)."""

from __future__ import annotations

import numpy as np

from zsseg_bench.engine.evaluate import evaluate_confusion
from zsseg_bench.engine.probe import VAL_IMAGES, quiet_probe
from zsseg_bench.metrics import compute_scores

__all__ = ["val_point"]


def val_point(method, ctx) -> dict | None:
    """{"seen_miou", "unseen_miou", "hiou"} of `method` on the val images; None without a val part."""
    if getattr(ctx, "val_set", None) is None:
        return None
    was_training = method.training
    n = min(VAL_IMAGES, len(ctx.val_set))
    with quiet_probe(ctx):
        confusion = evaluate_confusion(method, ctx, ctx.val_set, ctx.eval_lut, ctx.split.num_classes, np.arange(n))
    method.train(was_training)
    scores = compute_scores(confusion, ctx.split.seen_mask, ctx.split.eval_names,
                            background_index=ctx.split.background_index).metrics
    return {"seen_miou": _plain(scores["S-mIoU"]), "unseen_miou": _plain(scores["U-mIoU"]),
            "hiou": _plain(scores["hIoU"])}


def _plain(value) -> float | None:
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None
