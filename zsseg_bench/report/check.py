"""Regression check: compare run metrics with the published row for the same method, dataset
and split; a deviation beyond tolerance fails (the CLI exits 1), as detectron2's
`verify_results` does. A synthetic-benchmark run has no published row: it is compared with the
expected rows of its dataset version, world and split (catalog/expected.py), each within the
row's own tolerance."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from zsseg_bench.catalog.expected import expected_for
from zsseg_bench.catalog.published import lookup
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.runs.verify import load_verified

__all__ = ["Deviation", "check_runs", "DEFAULT_TOLERANCE"]

DEFAULT_TOLERANCE = 0.01  # fractions: one IoU point, the width of a careful retraining's noise


@dataclass
class Deviation:
    run_id: str
    method: str
    metric: str
    expected: float
    actual: float
    tolerance: float
    source: str

    @property
    def delta(self) -> float:
        return self.actual - self.expected

    @property
    def passed(self) -> bool:
        return math.isfinite(self.actual) and abs(self.delta) <= self.tolerance + 1e-12


def check_runs(paths, source: str | None = None, tolerance: float = DEFAULT_TOLERANCE,
               metrics=METRIC_NAMES) -> pd.DataFrame:
    """One row per (run, metric) compared; raises if a run has no published row."""
    if tolerance < 0:
        raise ZsbenchError("--tolerance must be >= 0")
    rows = []
    for rec in load_verified(paths):
        path = rec["path"]
        if rec.get("status") != "ok" or not rec.get("metrics"):
            raise ZsbenchError(f"{path}: run status is {rec.get('status')!r}, it has no metrics to check"
                               + (f" ({rec['error']})" if rec.get("status") == "died" else ""))
        method, dataset, split = rec["method"], rec["dataset"]["name"], rec["split"]["name"]
        pub = lookup(method, dataset, split, source)
        expected = expected_for(rec) if pub is None and source is None else None
        if expected is not None:  # the synthetic benchmark: its own expected rows (catalog/expected.py)
            rows += [_expected_row(rec, metric, row, expected[0]) for metric, row in expected[1].items()
                     if metric in metrics]
            continue
        if pub is None:
            raise ZsbenchError(f"{path}: no published row for method {method!r} on {dataset}/{split}"
                               + (f" in source {source!r}" if source else "") + " and no expected row (results/expected/); "
                               "see 'zsbench published'")
        for metric in metrics:
            expected = pub[metric]
            if pd.isna(expected):
                continue
            actual = rec["metrics"].get(metric, float("nan"))
            dev = Deviation(rec["run_id"], method, metric, float(expected), float(actual), tolerance, pub["source"])
            rows.append({"run_id": dev.run_id, "method": method, "metric": metric, "expected": dev.expected,
                         "actual": dev.actual, "delta": dev.delta, "tolerance": tolerance, "pass": dev.passed,
                         "source": dev.source})
    return pd.DataFrame(rows)


def _expected_row(rec: dict, metric: str, row: dict, file: str) -> dict:
    """A comparison with an expected row: its mean, within its own tolerance."""
    actual = float(rec["metrics"].get(metric, float("nan")))
    dev = Deviation(rec["run_id"], rec["method"], metric, float(row["mean"]), actual, float(row["tolerance"]),
                    f"expected:{file}")
    return {"run_id": dev.run_id, "method": dev.method, "metric": metric, "expected": dev.expected,
            "actual": dev.actual, "delta": dev.delta, "tolerance": dev.tolerance, "pass": dev.passed,
            "source": dev.source}
