"""Every reported number is a pure function of one confusion matrix.

Conventions (also in the README; each one has a test in tests/metrics/test_metrics.py):

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

The absent and background conventions together are a `ScoringRule`. Each metric is one pure
function of the per-class statistics (`ClassStats`) of a matrix under a rule, registered in
`METRICS` with its name and direction; `METRIC_NAMES` is their registration order, which is the
column order of the source papers' tables (CaGNet READMEs and thesis slides).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from zsseg_bench.registry import Registry

if TYPE_CHECKING:  # pandas is imported when a table is made, not when the metric names are read
    import pandas as pd

__all__ = ["METRIC_NAMES", "METRICS", "Metric", "ClassStats", "ScoringRule", "Scores", "class_stats", "compute_scores",
           "harmonic"]


@dataclass(frozen=True)
class ScoringRule:
    """How a matrix is turned into numbers. The defaults are CaGNet's `scores_gzsl`."""

    absent: Literal["nan", "zero"] = "nan"
    background: Literal["seen", "excluded"] = "seen"

    def __post_init__(self):
        if self.absent not in ("nan", "zero"):
            raise ValueError(f"absent must be 'nan' or 'zero', not {self.absent!r}")
        if self.background not in ("seen", "excluded"):
            raise ValueError(f"background must be 'seen' or 'excluded', not {self.background!r}")


@dataclass(frozen=True)
class ClassStats:
    """Per-class counts and rates of one matrix under one rule: what every metric is a function of."""

    tp: np.ndarray  # [K] correct pixels
    gt: np.ndarray  # [K] ground-truth pixels (row sums)
    pred: np.ndarray  # [K] predicted pixels (column sums; 0 for an excluded background)
    iou: np.ndarray  # [K] NaN where undefined (absent="nan") or not scored
    acc: np.ndarray  # [K] per-class recall, NaN likewise
    scored: np.ndarray  # [K] bool: the class gets numbers (not an excluded background)
    seen: np.ndarray  # [K] bool: scored and seen
    unseen: np.ndarray  # [K] bool: scored and unseen


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[ClassStats], float]
    higher_is_better: bool = True


METRICS: Registry[Metric] = Registry("metric")


def _metric(name: str, higher_is_better: bool = True):
    """Register the decorated function of ClassStats as metric `name`."""

    def decorator(fn: Callable[[ClassStats], float]):
        METRICS.register(name)(Metric(name, fn, higher_is_better))
        return fn

    return decorator


def harmonic(s: float, u: float) -> float:
    if np.isnan(s) or np.isnan(u):
        return float("nan")
    return 0.0 if s + u == 0 else 2.0 * s * u / (s + u)


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def _pixel_accuracy(c: ClassStats, mask: np.ndarray) -> float:
    total = c.gt[mask].sum()
    return float(c.tp[mask].sum() / total) if total > 0 else float("nan")


# ---- the metrics, in the source tables' column order ---------------------------------------------
@_metric("hIoU")
def h_iou(c: ClassStats) -> float:
    return harmonic(s_miou(c), u_miou(c))


@_metric("mIoU")
def miou(c: ClassStats) -> float:
    return _nanmean(c.iou[c.scored])


@_metric("PA")
def pa(c: ClassStats) -> float:
    return _pixel_accuracy(c, c.scored)


@_metric("MA")
def ma(c: ClassStats) -> float:
    return _nanmean(c.acc[c.scored])


@_metric("S-mIoU")
def s_miou(c: ClassStats) -> float:
    return _nanmean(c.iou[c.seen])


@_metric("U-mIoU")
def u_miou(c: ClassStats) -> float:
    return _nanmean(c.iou[c.unseen])


@_metric("S-PA")
def s_pa(c: ClassStats) -> float:
    return _pixel_accuracy(c, c.seen)


@_metric("U-PA")
def u_pa(c: ClassStats) -> float:
    return _pixel_accuracy(c, c.unseen)


@_metric("S-MA")
def s_ma(c: ClassStats) -> float:
    return _nanmean(c.acc[c.seen])


@_metric("U-MA")
def u_ma(c: ClassStats) -> float:
    return _nanmean(c.acc[c.unseen])


METRIC_NAMES = tuple(name for name, _ in METRICS.items())


# ---- one matrix -> every metric and the per-class table ------------------------------------------
@dataclass
class Scores:
    metrics: dict[str, float]
    per_class: pd.DataFrame = field(repr=False)
    rule: ScoringRule = ScoringRule()


def class_stats(confmat: np.ndarray, seen_mask, rule: ScoringRule = ScoringRule(),
                background_index: int | None = None) -> ClassStats:
    """The per-class statistics of one [K, K] matrix (rows = ground truth) under `rule`."""
    conf = np.asarray(confmat, dtype=np.float64)
    k = conf.shape[0]
    if conf.ndim != 2 or conf.shape != (k, k):
        raise ValueError(f"confusion matrix must be square, got shape {conf.shape}")
    seen = np.asarray(seen_mask, dtype=bool)
    if seen.shape != (k,):
        raise ValueError(f"seen mask has {seen.shape[0]} entries for a {k}x{k} matrix")
    scored = np.ones(k, dtype=bool)
    excluded_background = rule.background == "excluded" and background_index is not None
    if excluded_background:
        conf = conf.copy()
        conf[background_index, :] = 0  # background ground truth is not scored
        scored[background_index] = False
    tp = np.diag(conf)
    gt = conf.sum(axis=1)
    pred = conf.sum(axis=0)
    if excluded_background:
        # Pixels predicted as background are misses of their true class, not false positives
        # of a class that is not scored.
        pred = pred.copy()
        pred[background_index] = 0
    union = gt + pred - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    if rule.absent == "zero":
        iou = np.nan_to_num(iou, nan=0.0)
        acc = np.nan_to_num(acc, nan=0.0)
    iou[~scored] = np.nan
    acc[~scored] = np.nan
    return ClassStats(tp=tp, gt=gt, pred=pred, iou=iou, acc=acc, scored=scored, seen=seen & scored,
                      unseen=~seen & scored)


def _per_class_table(c: ClassStats, class_names) -> pd.DataFrame:
    k = len(c.tp)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    import pandas as pd

    subset = np.where(~c.scored, "excluded", np.where(c.seen, "seen", "unseen"))
    return pd.DataFrame({
        "class_id": np.arange(k),
        "class_name": names,
        "subset": subset,
        "iou": c.iou,
        "acc": c.acc,
        "gt_pixels": c.gt.astype(np.int64),
        "pred_pixels": c.pred.astype(np.int64),
    })


def compute_scores(confmat: np.ndarray, seen_mask, class_names=None, rule: ScoringRule = ScoringRule(),
                   background_index: int | None = None) -> Scores:
    """All metrics and the per-class table from one [K, K] matrix (rows = ground truth)."""
    stats = class_stats(confmat, seen_mask, rule, background_index)
    metrics = {name: metric.fn(stats) for name, metric in METRICS.items()}
    return Scores(metrics=metrics, per_class=_per_class_table(stats, class_names), rule=rule)
