"""zsseg-bench: the reference harness for zero-shot semantic segmentation.

Public API (each name is loaded on first use, so `import zsseg_bench` stays cheap and the
package root depends on nothing below it):
    load_split, list_splits      splits (splits/<dataset>/<name>.yaml)
    load_card, list_cards        method cards (methods/<family>/<name>.yaml)
    compute_scores, ScoringRule  metrics from one confusion matrix
    run_one, run_comparison      train + evaluate + write run records
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "load_split": "zsseg_bench.catalog.splits", "list_splits": "zsseg_bench.catalog.splits",
    "load_card": "zsseg_bench.catalog.cards", "list_cards": "zsseg_bench.catalog.cards",
    "compute_scores": "zsseg_bench.metrics", "ScoringRule": "zsseg_bench.metrics",
    "confusion_matrix": "zsseg_bench.metrics",
    "run_one": "zsseg_bench.runs.train", "run_comparison": "zsseg_bench.runs.train",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'zsseg_bench' has no attribute {name!r}")
