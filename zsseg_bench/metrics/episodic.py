"""Fold-level scoring of binary episodes (the `fss-zeroshot` protocol; HSNet's AverageMeter scheme).

Every episode adds, for its class c, the intersection and union of the predicted and true
foreground, and likewise of the predicted and true background (pixels with the ignore value
are left out). Counts are summed over all episodes of a class (an episode scored twice counts
twice), never averaged per episode.

* IoU_c = I_fg[c] / U_fg[c] (0 when U is 0: a class whose episodes have neither truth nor
  prediction scores 0, as HSNet's max(union, 1) denominator gives)
* FG-mIoU = mean of IoU_c over the fold's classes (the number SAZS and LSeg report)
* FB-IoU = mean of (sum_c I_bg / sum_c U_bg, sum_c I_fg / sum_c U_fg)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

__all__ = ["EpisodeMeter", "PROTOCOL", "binary_counts", "is_episodic_record", "episodic_mismatch"]

PROTOCOL = "fss-zeroshot"  # the split files' `protocol` value, and metrics.json's of the runs scored here


def is_episodic_record(rec: dict) -> bool:
    """Whether a loaded run record (runs.records.load_record) was scored with binary episodes."""
    return (rec.get("metrics") or {}).get("protocol") == PROTOCOL


def binary_counts(pred: torch.Tensor, truth: torch.Tensor, ignore_index: int) -> np.ndarray:
    """[2 (bg, fg), 2 (intersection, union)] pixel counts of one binary prediction; `truth` holds 0, 1
    or the ignore value."""
    valid = truth != ignore_index
    p = pred.bool() & valid
    t = (truth == 1) & valid
    inter_fg = int((p & t).sum())
    union_fg = int((p | t).sum())
    np_, nt = valid & ~p, valid & ~t
    inter_bg = int((np_ & nt).sum())
    union_bg = int((np_ | nt).sum())
    return np.array([[inter_bg, union_bg], [inter_fg, union_fg]], dtype=np.int64)


class EpisodeMeter:
    """Intersection and union per (bg/fg, class), summed over episodes."""

    def __init__(self, class_names: tuple[str, ...]):
        self.class_names = tuple(class_names)
        self.inter = np.zeros((2, len(class_names)), dtype=np.int64)
        self.union = np.zeros((2, len(class_names)), dtype=np.int64)
        self.episodes = np.zeros(len(class_names), dtype=np.int64)

    def add(self, position: int, counts: np.ndarray) -> None:
        """Add one episode's `binary_counts` to the class at `position` in `class_names`."""
        self.inter[:, position] += counts[:, 0]
        self.union[:, position] += counts[:, 1]
        self.episodes[position] += 1

    def per_class(self) -> pd.DataFrame:
        iou = self.inter[1] / np.maximum(self.union[1], 1)
        return pd.DataFrame({"class_name": self.class_names, "episodes": self.episodes, "fg_iou": iou,
                             "fg_intersection": self.inter[1], "fg_union": self.union[1]})

    def scores(self) -> dict:
        iou = self.inter[1] / np.maximum(self.union[1], 1)
        totals = self.inter.sum(1) / np.maximum(self.union.sum(1), 1)
        return {"FG-mIoU": float(iou.mean()), "FB-IoU": float(totals.mean()), "n_episodes": int(self.episodes.sum())}


def episodic_mismatch(metrics: dict, per_class: pd.DataFrame | None) -> str:
    """'' when each fusion mode's FG-mIoU in metrics.json follows from per_class.csv's summed
    intersections and unions (and the headline is its mode's), else what differs. FB-IoU needs the
    background counts, which per_class.csv does not keep, so it is not re-derived."""
    if per_class is None or not {"fusion", "fg_intersection", "fg_union"} <= set(per_class.columns):
        return "per_class.csv with fusion, fg_intersection and fg_union is missing"
    by = metrics.get("by_fusion") or {}
    for mode, rows in per_class.groupby("fusion"):
        value = float((rows["fg_intersection"] / rows["fg_union"].clip(lower=1)).mean())
        stored = (by.get(mode) or {}).get("FG-mIoU")
        if not isinstance(stored, (int, float)) or abs(stored - value) > 1e-9:
            return f"FG-mIoU of fusion {mode} is {stored!r}, per_class.csv gives {value:.6f}"
    head = by.get(metrics.get("fusion")) or {}
    if head.get("FG-mIoU") != metrics.get("FG-mIoU"):
        return f"the headline FG-mIoU is not fusion {metrics.get('fusion')!r}'s"
    return ""
