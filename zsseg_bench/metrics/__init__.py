"""Metrics: one confusion matrix per evaluation, and pure functions of it."""

from .confusion import confusion_matrix
from .meter import ConfusionMeter
from .scores import METRIC_NAMES, Protocol, Scores, compute_scores

__all__ = ["confusion_matrix", "ConfusionMeter", "METRIC_NAMES", "Protocol", "Scores", "compute_scores"]
