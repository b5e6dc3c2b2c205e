"""ConfusionMeter: the only evaluation state, a count vector merged by summing.

It keeps the extended counts of `confusion.extended_bincount` (on the GPU for CUDA inputs, in
NumPy for CPU inputs), so no batch needs a host sync; the [K, K] matrix is cut out and checked
once, when it is read.
"""

from __future__ import annotations

import numpy as np
import torch

from zsseg_bench.metrics.confusion import extended_bincount, extended_to_matrix

__all__ = ["ConfusionMeter"]


class ConfusionMeter:
    def __init__(self, num_classes: int, ignore_index: int = 255, device: str | torch.device = "cpu"):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.device = torch.device(device)
        self.counts = None

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        counts = extended_bincount(pred, target, self.num_classes, self.ignore_index)
        self.counts = counts if self.counts is None else self.counts + counts

    def all_reduce(self) -> None:
        """Sum the counts of all distributed ranks (no-op when not distributed)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        counts = self.counts if self.counts is not None else np.zeros(self.num_classes ** 2, dtype=np.int64)
        tensor = counts if isinstance(counts, torch.Tensor) else torch.from_numpy(np.asarray(counts))
        # Ranks may have used different bin layouts only if some saw no batch: cut to K*K first.
        tensor = torch.from_numpy(extended_to_matrix(tensor, self.num_classes, self.ignore_index).ravel().copy())
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        self.counts = tensor.cpu().numpy()

    def numpy(self) -> np.ndarray:
        if self.counts is None:
            return np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        return extended_to_matrix(self.counts, self.num_classes, self.ignore_index)
