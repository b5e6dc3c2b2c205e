"""The only renderer: run records -> pandas DataFrame -> Markdown / CSV / LaTeX / Parquet.

Numbers stay fractions in [0, 1] (as in the source papers' tables) and are rounded only here, when
formatted. Several seeds of the same (method, dataset, split) become mean and std columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from zsseg_bench.catalog.published import lookup
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.runs.records import find_records, load_record

__all__ = ["METHOD_ORDER", "runs_frame", "summarize", "add_published", "format_summary", "write_tables"]

# The source papers' row order; other methods follow alphabetically.
METHOD_ORDER = ("spnet", "spnet-c", "zs3net", "zs3net+st", "cagnet-pi", "cagnet-pa", "cagnet-pi+st", "cagnet-pa+st")
KEYS = ["method", "dataset", "split"]


def _method_rank(name: str) -> tuple:
    return (METHOD_ORDER.index(name), "") if name in METHOD_ORDER else (len(METHOD_ORDER), name)


def runs_frame(paths) -> pd.DataFrame:
    """One row per finished run (status ok) under `paths`."""
    rows = []
    for path in find_records(paths):
        rec = load_record(path)
        if rec.get("status") != "ok" or not rec.get("metrics"):
            continue
        row = {"method": rec["method"], "dataset": rec["dataset"]["name"], "split": rec["split"]["name"],
               "seed": rec["seed"], "run_id": rec["run_id"], "path": str(path),
               "uses_unseen_labels": rec.get("protocol_flags", {}).get("uses_unseen_labels", False),
               "transductive": rec.get("protocol_flags", {}).get("transductive", False)}
        row.update({m: rec["metrics"].get(m, np.nan) for m in METRIC_NAMES})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*KEYS, "seed", "run_id", "path", "uses_unseen_labels", "transductive",
                                        *METRIC_NAMES])
    return frame


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (ddof=1; 0 for one seed) over seeds: columns <metric> and <metric> std."""
    if runs.empty:
        return pd.DataFrame(columns=[*KEYS, "seeds", *METRIC_NAMES])
    grouped = runs.groupby(KEYS, sort=False)
    mean = grouped[list(METRIC_NAMES)].mean()
    std = grouped[list(METRIC_NAMES)].std(ddof=1).fillna(0.0).add_suffix(" std")
    flags = grouped[["uses_unseen_labels", "transductive"]].any()
    seeds = grouped["seed"].agg(lambda s: ",".join(str(x) for x in sorted(s))).rename("seeds")
    out = pd.concat([seeds, flags, mean, std], axis=1).reset_index()
    out = out.sort_values(by=["dataset", "split", "method"], key=lambda col: col.map(_method_rank)
                          if col.name == "method" else col, kind="stable")
    return out.reset_index(drop=True)


def add_published(summary: pd.DataFrame, source: str | None = None, against: tuple[str, str] | None = None
                  ) -> pd.DataFrame:
    """Add <metric> pub and Δ <metric> (ours - published) for rows with a published match.

    `against=(dataset, split)` puts that dataset's published rows beside every run instead of
    the run's own dataset (e.g. synthetic runs beside the VOC rows): for orientation only,
    the numbers are not comparable and no check uses them.
    """
    out = summary.copy()
    sources = []
    for metric in METRIC_NAMES:
        out[f"{metric} pub"] = np.nan
    for i, row in out.iterrows():
        dataset, split = against if against else (row["dataset"], row["split"])
        pub = lookup(row["method"], dataset, split, source)
        sources.append(f"{pub['source']} ({dataset}/{split})" if pub is not None else "")
        if pub is not None:
            for metric in METRIC_NAMES:
                out.at[i, f"{metric} pub"] = pub[metric]
    out["source"] = sources
    for metric in METRIC_NAMES:
        out[f"Δ {metric}"] = out[metric] - out[f"{metric} pub"]
    return out


def format_summary(summary: pd.DataFrame, metrics=METRIC_NAMES, decimals: int = 4) -> pd.DataFrame:
    """Strings for display: 'mean ± std' when several seeds, published values and deltas."""
    def fmt(x, signed=False):
        if x is None or (isinstance(x, float) and np.isnan(x)):
            return "–"
        return f"{x:+.{decimals}f}" if signed else f"{x:.{decimals}f}"

    cols = {"method": summary["method"], "dataset": summary["dataset"], "split": summary["split"],
            "seeds": summary["seeds"]}
    flags = []
    for _, row in summary.iterrows():
        f = []
        if row.get("uses_unseen_labels"):
            f.append("unseen-labels")
        if row.get("transductive"):
            f.append("transductive")
        flags.append(",".join(f))
    if any(flags):
        cols["flags"] = flags
    multi = summary["seeds"].str.contains(",")
    for m in metrics:
        cols[m] = [fmt(v) + (f" ± {fmt(s)}" if many else "") for v, s, many in
                   zip(summary[m], summary[f"{m} std"], multi)]
        if f"{m} pub" in summary:
            cols[f"{m} pub"] = [fmt(v) for v in summary[f"{m} pub"]]
            cols[f"Δ {m}"] = [fmt(v, signed=True) for v in summary[f"Δ {m}"]]
    if "source" in summary:
        cols["source"] = summary["source"].replace("", "–")
    return pd.DataFrame(cols)


def write_tables(summary: pd.DataFrame, stem: Path, metrics=METRIC_NAMES) -> list[Path]:
    """stem.md (tabulate), stem.tex (booktabs), stem.csv and stem.parquet (numbers)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    shown = format_summary(summary, metrics)
    paths = [stem.with_suffix(".md"), stem.with_suffix(".tex"), stem.with_suffix(".csv"), stem.with_suffix(".parquet")]
    paths[0].write_text(tabulate(shown, headers="keys", tablefmt="github", showindex=False) + "\n")
    paths[1].write_text(tabulate(shown, headers="keys", tablefmt="latex_booktabs", showindex=False) + "\n")
    summary.to_csv(paths[2], index=False)
    summary.to_parquet(paths[3], index=False)
    return paths
