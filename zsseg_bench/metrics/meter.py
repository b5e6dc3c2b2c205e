"""ConfusionMeter: the only evaluation state, a [K, K] int64 matrix merged by summing."""

from __future__ import annotations

import numpy as np
import torch

from .confusion import confusion_matrix

__all__ = ["ConfusionMeter"]


class ConfusionMeter:
    def __init__(self, num_classes: int, ignore_index: int = 255, device: str | torch.device = "cpu"):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def reset(self) -> None:
        self.matrix.zero_()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def all_reduce(self) -> None:
        """Sum the matrices of all distributed ranks (no-op when not distributed)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM)

    def numpy(self) -> np.ndarray:
        return self.matrix.cpu().numpy().astype(np.int64)
