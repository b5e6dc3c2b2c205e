"""Every reported number is a pure function of one confusion matrix.

Conventions (also in the README; each one has a test in tests/test_metrics.py):

* The matrix is int64 [K, K], rows = ground truth, columns = prediction, summed over the
  whole evaluation set (never averaged per image). Ignored pixels were never counted.
* IoU_c = TP / (TP + FP + FN); Acc_c = TP / (TP + FN) (per-class recall).
* A class with no ground-truth pixels and no predictions is *absent*. Default (`absent="nan"`,
  SPNet / CaGNet `scores_gzsl`): its IoU and Acc are NaN and left out of every mean.
  `absent="zero"` (ZS3Net's `Evaluator`, which applies nan_to_num before the mean): every
  undefined per-class value counts as 0. A class that is predicted but has no ground truth
  has IoU 0 under both rules; its Acc is 0/0, so NaN by default and 0 under "zero".
* mIoU, S-mIoU, U-mIoU: means of IoU over all / seen / unseen classes of the same
  generalized matrix. MA, S-MA, U-MA: the same for Acc.
* PA = trace / total; S-PA (U-PA) = correct pixels in seen (unseen) rows / pixels in those rows.
* hIoU = 2 S U / (S + U) with S = S-mIoU, U = U-mIoU; 0 when both are 0; NaN if either is NaN.
* Background: when the split scores background as a class (`background: seen`, ZS3Net) it is
  an ordinary seen class. `background="excluded"` scores such a matrix the SPNet/CaGNet way:
  background ground-truth pixels are dropped (its row), and predicting background stays a
  miss for the true class (its column still counts as FN), but background gets no IoU/Acc.
* Values are fractions in [0, 1], unrounded; tables round them, nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["METRIC_NAMES", "Protocol", "Scores", "compute_scores", "harmonic"]

# Column names of the seeds' tables (CaGNet READMEs and thesis slides), in their order.
METRIC_NAMES = ("hIoU", "mIoU", "PA", "MA", "S-mIoU", "U-mIoU", "S-PA", "U-PA", "S-MA", "U-MA")
HIGHER_IS_BETTER = {name: True for name in METRIC_NAMES}


@dataclass(frozen=True)
class Protocol:
    """How a matrix is turned into numbers. The defaults are CaGNet's `scores_gzsl`."""

    absent: Literal["nan", "zero"] = "nan"
    background: Literal["seen", "excluded"] = "seen"

    def __post_init__(self):
        if self.absent not in ("nan", "zero"):
            raise ValueError(f"absent must be 'nan' or 'zero', not {self.absent!r}")
        if self.background not in ("seen", "excluded"):
            raise ValueError(f"background must be 'seen' or 'excluded', not {self.background!r}")


@dataclass
class Scores:
    metrics: dict[str, float]
    per_class: pd.DataFrame = field(repr=False)
    protocol: Protocol = Protocol()


def harmonic(s: float, u: float) -> float:
    if np.isnan(s) or np.isnan(u):
        return float("nan")
    return 0.0 if s + u == 0 else 2.0 * s * u / (s + u)


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def compute_scores(confmat: np.ndarray, seen_mask, class_names=None, protocol: Protocol = Protocol(),
                   background_index: int | None = None) -> Scores:
    """All metrics and the per-class table from one [K, K] matrix (rows = ground truth)."""
    conf = np.asarray(confmat, dtype=np.float64)
    k = conf.shape[0]
    if conf.ndim != 2 or conf.shape != (k, k):
        raise ValueError(f"confusion matrix must be square, got shape {conf.shape}")
    seen = np.asarray(seen_mask, dtype=bool)
    if seen.shape != (k,):
        raise ValueError(f"seen mask has {seen.shape[0]} entries for a {k}x{k} matrix")
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    scored = np.ones(k, dtype=bool)
    if protocol.background == "excluded" and background_index is not None:
        conf = conf.copy()
        conf[background_index, :] = 0  # background ground truth is not scored
        scored[background_index] = False

    tp = np.diag(conf)
    gt = conf.sum(axis=1)
    pred = conf.sum(axis=0)
    if protocol.background == "excluded" and background_index is not None:
        # Pixels predicted as background are misses of their true class, not false positives
        # of a class that is not scored.
        pred = pred.copy()
        pred[background_index] = 0
    union = gt + pred - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    if protocol.absent == "zero":
        iou = np.nan_to_num(iou, nan=0.0)
        acc = np.nan_to_num(acc, nan=0.0)
    iou[~scored] = np.nan
    acc[~scored] = np.nan
    s_mask, u_mask = seen & scored, ~seen & scored

    def pa(mask):
        total = gt[mask].sum()
        return float(tp[mask].sum() / total) if total > 0 else float("nan")

    s_miou, u_miou = _nanmean(iou[s_mask]), _nanmean(iou[u_mask])
    metrics = {
        "hIoU": harmonic(s_miou, u_miou),
        "mIoU": _nanmean(iou[scored]),
        "PA": pa(scored),
        "MA": _nanmean(acc[scored]),
        "S-mIoU": s_miou,
        "U-mIoU": u_miou,
        "S-PA": pa(s_mask),
        "U-PA": pa(u_mask),
        "S-MA": _nanmean(acc[s_mask]),
        "U-MA": _nanmean(acc[u_mask]),
    }
    subset = np.where(~scored, "excluded", np.where(seen, "seen", "unseen"))
    per_class = pd.DataFrame({
        "class_id": np.arange(k),
        "class_name": names,
        "subset": subset,
        "iou": iou,
        "acc": acc,
        "gt_pixels": gt.astype(np.int64),
        "pred_pixels": pred.astype(np.int64),
    })
    return Scores(metrics=metrics, per_class=per_class, protocol=protocol)
