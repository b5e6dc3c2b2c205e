"""Metrics: one confusion matrix per evaluation, and registered pure functions of it.

Names are loaded on first use, so that `zsbench --help` (which needs only the metric names)
does not import torch through confusion.py."""

import importlib

_PUBLIC = {
    "confusion_matrix": "zsseg_bench.metrics.confusion", "ConfusionMeter": "zsseg_bench.metrics.meter",
    "METRIC_NAMES": "zsseg_bench.metrics.scores", "METRICS": "zsseg_bench.metrics.scores",
    "Scores": "zsseg_bench.metrics.scores", "ScoringRule": "zsseg_bench.metrics.scores",
    "compute_scores": "zsseg_bench.metrics.scores",
}

__all__ = ["confusion_matrix", "ConfusionMeter", "METRIC_NAMES", "METRICS", "ScoringRule", "Scores", "compute_scores"]


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'zsseg_bench.metrics' has no attribute {name!r}")
