"""zsseg-bench: the reference harness for zero-shot semantic segmentation.

Public API:
    load_split, list_splits      splits (splits/<dataset>/<name>.yaml)
    load_card, list_cards        method cards (methods/<family>/<name>.yaml)
    compute_scores, ScoringRule  metrics from one confusion matrix
    run_one, run_comparison      train + evaluate + write run records
"""

__version__ = "0.1.0"

from zsseg_bench.catalog.cards import list_cards, load_card  # noqa: E402
from zsseg_bench.catalog.splits import list_splits, load_split  # noqa: E402
from zsseg_bench.metrics import ScoringRule, compute_scores, confusion_matrix  # noqa: E402

__all__ = ["__version__", "load_split", "list_splits", "load_card", "list_cards", "compute_scores", "ScoringRule",
           "confusion_matrix", "run_one", "run_comparison"]


def __getattr__(name):  # the runner imports torch models; load it only when asked for
    if name in ("run_one", "run_comparison"):
        from zsseg_bench.runs import train as runner

        return getattr(runner, name)
    raise AttributeError(name)
