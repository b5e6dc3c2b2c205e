"""Metrics: one confusion matrix per evaluation, and registered pure functions of it."""

from zsseg_bench.metrics.confusion import confusion_matrix
from zsseg_bench.metrics.meter import ConfusionMeter
from zsseg_bench.metrics.scores import METRIC_NAMES, METRICS, Scores, ScoringRule, compute_scores

__all__ = ["confusion_matrix", "ConfusionMeter", "METRIC_NAMES", "METRICS", "ScoringRule", "Scores", "compute_scores"]
