"""Tables of `fss-zeroshot` runs: one row per (method, fold) plus a mean row per method and dataset.

The episodic fold metric (mean foreground IoU over the fold's classes, 1,000 binary episodes) is
not the generalized zero-shot mIoU, so these runs never enter the GZS3 tables (`runs_frame`
leaves them out) and every table here carries a `protocol` column. Each row shows the three
fusion modes side by side; the oracle columns are labelled `uses-test-labels` (the official
test-time selection reads the ground truth), and a row whose own settings read test labels
(fusion.mode oracle, or the epoch chosen on the test fold) is flagged in `flags`.

Published SAZS fold numbers (results/published/sazs-readme.csv) come from the oracle fusion:
`--published` puts them beside the oracle column only, under a header that says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from zsseg_bench.catalog.published import lookup
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.metrics.episodic import PROTOCOL, is_episodic_record
from zsseg_bench.report.tables import format_value
from zsseg_bench.runs.verify import load_verified

__all__ = ["MODES", "ORACLE_LABEL", "episodic_frame", "episodic_summary",
           "format_episodic", "write_episodic", "PUBLISHED_COLUMN", "episodic_check_row"]

MODES = ("none", "self", "oracle")
ORACLE_LABEL = "oracle (uses-test-labels)"
PUBLISHED_COLUMN = "FG-mIoU published (fusion=oracle)"
MEAN_SPLIT = "mean"


def _column(metric: str, mode: str) -> str:
    return f"{metric} {ORACLE_LABEL if mode == 'oracle' else mode}"


VALUE_COLUMNS = tuple(_column(m, mode) for m in ("FG-mIoU", "FB-IoU") for mode in MODES)


def episodic_frame(paths) -> pd.DataFrame:
    """One row per finished, verified fss-zeroshot run: keys, flags and every fusion mode's FG-mIoU and FB-IoU."""
    rows = []
    for rec in load_verified(paths):
        path = rec["path"]
        if rec.get("status") != "ok" or not is_episodic_record(rec):
            continue
        m = rec["metrics"]
        flags = rec.get("protocol_flags", {})
        row = {"method": rec["method"], "dataset": rec["dataset"]["name"], "split": rec["split"]["name"],
               "seed": rec["seed"], "protocol": PROTOCOL, "fusion": m.get("fusion"),
               "uses_test_labels": bool(flags.get("uses_test_labels")), "path": str(path)}
        for mode in MODES:
            scores = (m.get("by_fusion") or {}).get(mode, {})
            for metric in ("FG-mIoU", "FB-IoU"):
                row[_column(metric, mode)] = scores.get(metric, np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", "dataset", "split", "seed", "protocol", "fusion", "uses_test_labels",
                                       "path", *VALUE_COLUMNS])


def _fold_rows(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["method", "dataset", "split"]
    grouped = frame.groupby(keys, sort=False)
    mean = grouped[list(VALUE_COLUMNS)].mean()
    std = grouped[list(VALUE_COLUMNS)].std(ddof=1).fillna(0.0).add_suffix(" std")
    extra = grouped.agg(seeds=("seed", lambda s: ",".join(str(x) for x in sorted(s))),
                        fusion=("fusion", lambda s: ",".join(sorted(set(s)))),
                        uses_test_labels=("uses_test_labels", "any"))
    return pd.concat([extra, mean, std], axis=1).reset_index()


def _mean_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (method, dataset): the mean over folds of each seed, then mean and std over seeds."""
    per_seed = frame.groupby(["method", "dataset", "seed"], sort=False).agg(
        folds=("split", "nunique"), **{c: (c, "mean") for c in VALUE_COLUMNS}).reset_index()
    grouped = per_seed.groupby(["method", "dataset"], sort=False)
    mean = grouped[list(VALUE_COLUMNS)].mean()
    std = grouped[list(VALUE_COLUMNS)].std(ddof=1).fillna(0.0).add_suffix(" std")
    extra = grouped.agg(seeds=("seed", lambda s: ",".join(str(x) for x in sorted(s))),
                        folds=("folds", "min"))
    flags = frame.groupby(["method", "dataset"], sort=False).agg(
        fusion=("fusion", lambda s: ",".join(sorted(set(s)))), uses_test_labels=("uses_test_labels", "any"))
    out = pd.concat([extra, flags, mean, std], axis=1).reset_index()
    out["split"] = [f"{MEAN_SPLIT} ({n} folds)" for n in out.pop("folds")]
    return out


def episodic_summary(frame: pd.DataFrame, published: bool = False) -> pd.DataFrame:
    """Fold rows then a mean row per (method, dataset); with `published`, the oracle-fusion published
    fold value beside them (methods by their card's `published_as`)."""
    if frame.empty:
        return frame
    out = pd.concat([_fold_rows(frame), _mean_rows(frame)], ignore_index=True)
    is_mean = out["split"].str.startswith(MEAN_SPLIT)
    out = out.assign(_mean=is_mean).sort_values(["dataset", "method", "_mean", "split"], kind="stable")
    out = out.drop(columns="_mean").reset_index(drop=True)
    out.insert(3, "protocol", PROTOCOL)
    if published:
        out[PUBLISHED_COLUMN] = [_published(m, d, s) for m, d, s in zip(out["method"], out["dataset"], out["split"])]
    return out


def _published_row(method: str, dataset: str, split: str, source: str | None = None):
    """The published fss-zeroshot row of `method`'s card (`published_as`) on the fold, or None."""
    from zsseg_bench.catalog.cards import load_card

    try:
        key = load_card(method).published_key
    except ZsbenchError:
        key = method
    row = lookup(key, dataset, split, source)
    return row if row is not None and row.get("protocol") == PROTOCOL else None


def _published(method: str, dataset: str, split: str) -> float:
    row = _published_row(method, dataset, split)
    return float(row["mIoU"]) if row is not None else np.nan


def episodic_check_row(rec: dict, source: str | None, tolerance: float) -> dict:
    """`zsbench check` of one episodic run: its oracle-fusion fold FG-mIoU against the published fold
    value (which the official test computes with the oracle fusion); the row says so."""
    method, dataset, split = rec["method"], rec["dataset"]["name"], rec["split"]["name"]
    pub = _published_row(method, dataset, split, source)
    if pub is None:
        raise ZsbenchError(f"{rec['path']}: no published fss-zeroshot row for method {method!r} on {dataset}/{split}; "
                           f"see 'zsbench published --source sazs-readme'")
    oracle = ((rec["metrics"].get("by_fusion") or {}).get("oracle") or {}).get("FG-mIoU")
    if oracle is None:
        raise ZsbenchError(f"{rec['path']}: the run has no oracle-fusion score (no eigen-masks); the published SAZS "
                           f"folds are oracle-fused, so there is nothing comparable to check")
    expected, actual = float(pub["mIoU"]), float(oracle)
    return {"run_id": rec["run_id"], "method": method, "metric": "FG-mIoU (fusion=oracle, uses-test-labels)",
            "expected": expected, "actual": actual, "delta": actual - expected, "tolerance": tolerance,
            "pass": bool(np.isfinite(actual) and abs(actual - expected) <= tolerance + 1e-12),
            "source": f"{pub['source']} (oracle fusion)"}


def format_episodic(summary: pd.DataFrame) -> pd.DataFrame:
    """Strings: 'mean ± std' over seeds for each value column, flags spelled out."""
    cols = {k: summary[k] for k in ("method", "dataset", "split", "protocol", "seeds", "fusion")}
    cols["flags"] = ["uses-test-labels" if f else "" for f in summary["uses_test_labels"]]
    multi = summary["seeds"].str.contains(",")
    for c in VALUE_COLUMNS:
        cols[c] = [format_value(v) + (f" ± {format_value(s)}" if many else "")
                   for v, s, many in zip(summary[c], summary[f"{c} std"], multi)]
        if c == _column("FG-mIoU", "oracle") and PUBLISHED_COLUMN in summary:
            cols[PUBLISHED_COLUMN] = [format_value(v) for v in summary[PUBLISHED_COLUMN]]
    return pd.DataFrame(cols)


def write_episodic(summary: pd.DataFrame, stem: Path) -> list[Path]:
    """stem.md (Markdown), stem.csv (numbers)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, csv = stem.with_suffix(".md"), stem.with_suffix(".csv")
    md.write_text(tabulate(format_episodic(summary), headers="keys", tablefmt="github", showindex=False) + "\n")
    summary.to_csv(csv, index=False)
    return [md, csv]
