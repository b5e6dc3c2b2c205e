"""The confusion matrix: rows are ground truth, columns are predictions.

Pixels whose ground truth equals `ignore_index` are dropped before counting. The matrix is a
plain int64 [K, K] tensor on the device the predictions live on; accumulating over a data set
is a sum, so it merges across batches, data-loader workers and distributed ranks.
"""

from __future__ import annotations

import torch

from ..errors import ZsbenchError

__all__ = ["confusion_matrix"]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255,
                     validate: bool = True) -> torch.Tensor:
    """Count (ground truth, prediction) pairs over all non-ignored pixels of a batch.

    `pred` and `target` are integer tensors of the same shape (any shape, e.g. [B, H, W]).
    One bincount over the whole batch: no per-image Python loop.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != label shape {tuple(target.shape)}")
    k = num_classes
    target = target.reshape(-1)
    pred = pred.reshape(-1)
    keep = target != ignore_index
    target = target[keep].long()
    pred = pred[keep].long()
    if validate and target.numel():
        lo, hi = int(target.min()), int(target.max())
        if lo < 0 or hi >= k:
            bad = lo if lo < 0 else hi
            raise ZsbenchError(f"label value {bad} is outside the {k} evaluation classes and is not the "
                               f"ignore index {ignore_index}; check the dataset's labels against the split")
        plo, phi = int(pred.min()), int(pred.max())
        if plo < 0 or phi >= k:
            raise ValueError(f"prediction {plo if plo < 0 else phi} outside [0, {k})")
    return torch.bincount(target * k + pred, minlength=k * k).reshape(k, k)
