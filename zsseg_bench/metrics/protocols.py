"""How each task protocol names the numbers of one confusion matrix.

Every protocol is scored from the same generalized matrix with the same functions (scores.py); only
the names differ. SimFormer's evaluator (`WeakShotSemSegEvaluator`) reports mIoU over all classes,
BaseIoU and NovelIoU, which are mIoU, S-mIoU and U-mIoU here; it computes no harmonic mean, so in
weak-shot records and tables hIoU is marked as derived by the harness. Per-class subsets are called
base and novel instead of seen and unseen. Records keep the protocol-neutral names (metrics.json,
per_class.csv) and the split's protocol (run.json `split.protocol`); these names are for display.
"""

from __future__ import annotations

__all__ = ["metric_label", "subset_label", "derived_metrics", "flag_label"]

_LABELS = {
    "weak-shot": {"mIoU": "mIoU (all)", "S-mIoU": "base mIoU", "U-mIoU": "novel mIoU", "hIoU": "hIoU (derived)",
                  "S-PA": "base PA", "U-PA": "novel PA", "S-MA": "base MA", "U-MA": "novel MA"},
}
_SUBSETS = {"weak-shot": {"seen": "base", "unseen": "novel"}}
_DERIVED = {"weak-shot": ("hIoU",)}
# The table flag of a run that used unseen labels, as the protocol calls it.
_FLAGS = {"weak-shot": {"unseen-labels": "uses-novel-masks"}}


def metric_label(protocol: str | None, metric: str) -> str:
    return _LABELS.get(protocol or "gzs3", {}).get(metric, metric)


def subset_label(protocol: str | None, subset: str) -> str:
    return _SUBSETS.get(protocol or "gzs3", {}).get(subset, subset)


def derived_metrics(protocol: str | None) -> tuple[str, ...]:
    """Metrics the protocol's official evaluator does not compute (the harness derives them)."""
    return _DERIVED.get(protocol or "gzs3", ())


def flag_label(protocol: str | None, flag: str) -> str:
    return _FLAGS.get(protocol or "gzs3", {}).get(flag, flag)

