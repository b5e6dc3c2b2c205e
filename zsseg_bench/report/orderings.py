"""Which published orderings hold: for every pair of methods whose published numbers order them
(`a` below `b` on a metric of a published table), in how many of the runs' (world, seed) pairs
the runs order them the same way.

The published table is the runs' own dataset and split, or another one named by `against` (the
synthetic benchmark against the VOC rows the source papers report): an ordering is a claim about
which method is better, the one thing a smaller benchmark can be asked to reproduce; the
numbers themselves are not comparable. A pair counts only in the (data, world, seed) samples where
both methods have a run (`data`: the benchmark version and scored part); a tie counts as not holding.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from zsseg_bench.catalog.published import lookup
from zsseg_bench.report.tables import method_sort_key

__all__ = ["COLUMNS", "ordering_table"]

COLUMNS = ("lower", "higher", "published lower", "published higher", "runs lower", "runs higher", "holds", "of")


def ordering_table(runs: pd.DataFrame, dataset: str, split: str, metric: str = "hIoU") -> pd.DataFrame:
    """One row per published ordering (lower, higher) among the methods in `runs` (a runs_frame):
    the published values, the runs' means and in how many (world, seed) pairs the runs agree."""
    published = {m: lookup(m, dataset, split) for m in runs["method"].unique()}
    values = {m: float(row[metric]) for m, row in published.items() if row is not None and pd.notna(row[metric])}
    # one sample per (data, world, seed): `data` keeps benchmark versions and scored parts apart
    per_run = runs.pivot_table(index=["data", "world", "seed"], columns="method", values=metric, aggfunc="mean")
    rows = []
    for a, b in combinations(sorted(values, key=method_sort_key), 2):
        low, high = (a, b) if values[a] < values[b] else (b, a)
        if values[low] == values[high]:
            continue
        both = per_run[[low, high]].dropna()
        rows.append({"lower": low, "higher": high, "published lower": values[low], "published higher": values[high],
                     "runs lower": both[low].mean(), "runs higher": both[high].mean(),
                     "holds": int((both[high] > both[low]).sum()), "of": len(both)})
    return pd.DataFrame(rows, columns=COLUMNS)
