"""Metrics: one confusion matrix per evaluation, and pure functions of it."""

from zsseg_bench.metrics.confusion import confusion_matrix
from zsseg_bench.metrics.meter import ConfusionMeter
from zsseg_bench.metrics.scores import METRIC_NAMES, Protocol, Scores, compute_scores

__all__ = ["confusion_matrix", "ConfusionMeter", "METRIC_NAMES", "Protocol", "Scores", "compute_scores"]
