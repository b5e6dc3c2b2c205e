"""The one evaluation loop: a method's confusion matrix over a data set.

Batches come from the run context (context.py): moved to the device, normalised, their raw
labels mapped through the split's evaluation table. With several processes each scores its
share of the images and the matrices are summed (distributed.py).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from zsseg_bench.engine.distributed import shard
from zsseg_bench.engine.options import autocast
from zsseg_bench.engine.transforms import label_maps_at
from zsseg_bench.methods.base import Method
from zsseg_bench.metrics import ConfusionMeter

__all__ = ["evaluate_confusion"]


@torch.no_grad()
def evaluate_confusion(method: Method, ctx, dataset, lut: torch.Tensor, num_classes: int, indices=None,
                       score_fn: Callable | None = None) -> np.ndarray:
    """One confusion matrix over a whole data set, accumulated on the device.

    eval.mode "full": scores are computed at (upsampled to) the label's resolution.
    eval.mode "feature": the label is nearest-downsampled to the score map (CaGNet's official
    evaluation at 65x65 for 513x513 inputs).
    """
    eval_cfg = ctx.cfg["eval"]
    mode = eval_cfg["mode"]  # one of the two: EvalOptions checked it
    method.eval()
    meter = ConfusionMeter(num_classes, ctx.split.ignore_index, ctx.device)
    indices = np.arange(len(dataset)) if indices is None else np.asarray(indices)
    # Several processes: each scores every world-th image; the matrices are summed below.
    mine = shard(indices)
    loader = ctx.loader(mine, eval_cfg["batch_size"], shuffle=False, dataset=dataset) if len(mine) else []
    ctx.reporter.stage_start("evaluate", len(loader))
    for batch in loader:
        b = ctx.to_device(batch, lut)
        size = b["label"].shape[-2:] if mode == "full" else None
        with autocast(ctx.device, ctx.options.precision):
            scores = score_fn(b["image"], size) if score_fn else method.predict(b["image"], size)
        label = b["label"]
        if scores.shape[-2:] != label.shape[-2:]:
            if mode == "full":
                scores = F.interpolate(scores.float(), size=label.shape[-2:], mode="bilinear", align_corners=False)
            else:
                label = label_maps_at(label, scores.shape[-2:])
        meter.update(scores.argmax(1), label)
        ctx.reporter.advance(1)
    ctx.reporter.stage_end()
    meter.all_reduce()
    return meter.numpy()
