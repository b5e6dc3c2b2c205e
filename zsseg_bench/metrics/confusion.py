"""The confusion matrix: rows are ground truth, columns are predictions.

Pixels whose ground truth equals `ignore_index` are dropped. The matrix is int64 [K, K];
accumulating over a data set is a sum, so it merges across batches, workers and ranks.

How it is counted (this is the hot loop of every evaluation):

* No boolean masking. With the ignore index at or above K (255 for every split here), the
  index `target * K + pred` of an ignored pixel falls past the K*K matrix bins, so one
  `bincount` over the whole batch with (ignore + 1) * K bins counts everything, and the
  matrix is the first K*K bins. Masking first costs a gather and, on a GPU, a host sync.
* Labels outside the classes land in the bins between K*K and the ignore row; `extended_to_matrix`
  checks those once, when the matrix is read, instead of once per batch.
* CPU tensors are counted with NumPy (zero-copy): its bincount is several times faster than
  torch's on CPU. CUDA tensors stay on the GPU.
"""

from __future__ import annotations

import numpy as np
import torch

from zsseg_bench.errors import ZsbenchError

__all__ = ["confusion_matrix", "extended_bincount", "extended_to_matrix", "uses_extended_bins"]

_MAX_EXTENDED_BINS = 1 << 22


def uses_extended_bins(num_classes: int, ignore_index: int) -> bool:
    return 0 <= num_classes <= ignore_index and (ignore_index + 1) * num_classes <= _MAX_EXTENDED_BINS


def _label_error(value: int, k: int, ignore: int) -> ZsbenchError:
    return ZsbenchError(f"label value {value} is outside the {k} evaluation classes and is not the ignore index "
                        f"{ignore}; check the dataset's labels against the split")


def extended_bincount(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255):
    """Counts over (ignore_index + 1) * K bins (see module docstring), on the inputs' device.

    Returns a NumPy array for CPU inputs and a torch tensor for CUDA inputs. Falls back to a
    masked count (exactly K*K bins) when the ignore index is below K or very large.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != label shape {tuple(target.shape)}")
    k = num_classes
    if target.device.type == "cpu":
        t = target.reshape(-1).numpy().astype(np.int64, copy=False)
        p = pred.reshape(-1).numpy().astype(np.int64, copy=False)
        if uses_extended_bins(k, ignore_index):
            try:
                return np.bincount(t * k + p, minlength=(ignore_index + 1) * k)
            except ValueError:  # negative label
                raise _label_error(int(t.min()), k, ignore_index) from None
        keep = t != ignore_index
        t, p = t[keep], p[keep]
        if t.size and (t.min() < 0 or t.max() >= k):
            raise _label_error(int(t.min() if t.min() < 0 else t.max()), k, ignore_index)
        return np.bincount(t * k + p, minlength=k * k)
    t = target.reshape(-1).long()
    p = pred.reshape(-1).long()
    if uses_extended_bins(k, ignore_index):
        if bool((t < 0).any()):
            raise _label_error(int(t.min()), k, ignore_index)
        return torch.bincount(t * k + p, minlength=(ignore_index + 1) * k)
    keep = t != ignore_index
    t, p = t[keep], p[keep]
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= k):
        raise _label_error(int(t.min()) if int(t.min()) < 0 else int(t.max()), k, ignore_index)
    return torch.bincount(t * k + p, minlength=k * k)


def extended_to_matrix(counts, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """The [K, K] int64 matrix from (extended) counts; raises if any label was out of range."""
    counts = counts.cpu().numpy() if isinstance(counts, torch.Tensor) else np.asarray(counts)
    k = num_classes
    if counts.size > k * k:
        bins = np.nonzero(counts[k * k:])[0] + k * k
        bins = bins[(bins < ignore_index * k) | (bins >= (ignore_index + 1) * k)]
        if bins.size:
            raise _label_error(int(bins[0] // k), k, ignore_index)
    return counts[: k * k].reshape(k, k).astype(np.int64, copy=False)


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255,
                     validate: bool = True) -> torch.Tensor:
    """Count (ground truth, prediction) pairs over all non-ignored pixels of a batch: [K, K] int64.

    `pred` and `target` are integer tensors of the same shape (e.g. [B, H, W]); predictions
    must lie in [0, K) (argmax output does). One bincount, no per-image Python loop.
    """
    if validate and pred.numel():
        lo, hi = int(pred.min()), int(pred.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"prediction {lo if lo < 0 else hi} outside [0, {num_classes})")
    counts = extended_bincount(pred, target, num_classes, ignore_index)
    matrix = extended_to_matrix(counts, num_classes, ignore_index)
    return torch.from_numpy(matrix).to(pred.device)
