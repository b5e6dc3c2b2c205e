"""The only renderer: run records -> pandas DataFrame -> Markdown / CSV / LaTeX / Parquet, and
the rich tables the commands print.

Numbers stay fractions in [0, 1] (as in the source papers' tables) and become text only through
numbers.py (`format_value`, `metric_text`, re-exported here), the one place a number is formatted,
for tables, reports, figures' labels and printouts alike; LaTeX is latex.py's. Several seeds of
the same (method, dataset, split) become mean and std columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table
from tabulate import tabulate

from zsseg_bench.catalog.published import lookup
from zsseg_bench.datasets import record_data_label
from zsseg_bench.metrics.episodic import is_episodic_record
from zsseg_bench.metrics.protocols import flag_label, metric_label
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.report.numbers import (
    DECIMALS,
    DELTA,
    FRACTION,
    KEY_METRICS,
    MAIN_METRICS,
    MISSING,
    format_cell,
    format_value,
    is_missing,
    metric_text,
)
from zsseg_bench.report.selection import world_of
from zsseg_bench.runs.diagnostics import dead_mechanisms
from zsseg_bench.runs.verify import load_verified

__all__ = ["METHOD_ORDER", "MAIN_METRICS", "KEY_METRICS", "MISSING", "FRACTION", "DELTA", "method_sort_key",
           "is_missing", "format_value", "format_cell", "metric_text", "runs_frame", "summarize", "add_published",
           "format_summary", "write_tables", "rich_table", "print_packed", "print_comparison"]

# The source papers' row order; other methods follow alphabetically.
METHOD_ORDER = ("spnet", "spnet-c", "zs3net", "zs3net+st", "cagnet-pi", "cagnet-pa", "cagnet-pi+st", "cagnet-pa+st")
KEYS = ["method", "dataset", "data", "split"]  # data: which version/world of a dataset (record_data_label)
_LEFT_ALIGNED = ("method", "dataset", "data", "split", "source", "flags", "run_id", "metric", "seeds", "setting",
                 "runs", "hIoU from")


def method_sort_key(name: str) -> tuple:
    """Sort key that puts methods in the comparison's order (METHOD_ORDER), others after it by name."""
    return (METHOD_ORDER.index(name), "") if name in METHOD_ORDER else (len(METHOD_ORDER), name)


def runs_frame(paths) -> pd.DataFrame:
    """One row per finished GZS3 run (status ok; episodic runs: report/episodic.py) under `paths`, each verified (runs/verify.py); the
    `running` records whose process died are listed in `frame.attrs["died"]`."""
    rows, died = [], []
    for rec in load_verified(paths):
        path = rec["path"]
        if rec.get("status") == "died":
            died.append(f"{path}: died: {rec['error']}")
        if rec.get("status") != "ok" or not rec.get("metrics") or is_episodic_record(rec):
            continue  # episodic (fss-zeroshot) runs have their own tables: report/episodic.py
        row = {"method": rec["method"], "dataset": rec["dataset"]["name"], "data": record_data_label(rec["dataset"]),
               "split": rec["split"]["name"],
               "seed": rec["seed"], "world": world_of(rec), "run_id": rec["run_id"], "path": str(path),
               "commit": ((rec.get("environment") or {}).get("git") or {}).get("commit"), "start": rec.get("start"),
               "uses_unseen_labels": rec.get("protocol_flags", {}).get("uses_unseen_labels", False),
               "transductive": rec.get("protocol_flags", {}).get("transductive", False),
               "dead": bool(dead_mechanisms(rec.get("method_facts"))),
               "protocol": rec["split"].get("protocol", "gzs3")}
        row.update({m: rec["metrics"].get(m, np.nan) for m in METRIC_NAMES})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*KEYS, "seed", "world", "run_id", "path", "commit", "start",
                                        "uses_unseen_labels", "transductive", "dead", "protocol", *METRIC_NAMES])
    frame.attrs["died"] = died
    return frame


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (ddof=1; 0 for one seed) over seeds: columns <metric> and <metric> std."""
    if runs.empty:
        return pd.DataFrame(columns=[*KEYS, "seeds", *METRIC_NAMES])
    grouped = runs.groupby(KEYS, sort=False)
    mean = grouped[list(METRIC_NAMES)].mean()
    std = grouped[list(METRIC_NAMES)].std(ddof=1).fillna(0.0).add_suffix(" std")
    flags = grouped[["uses_unseen_labels", "transductive"]].any()
    dead = grouped["dead"].sum().astype(int).rename("dead_seeds")  # runs with a dead-mechanism warning
    protocol = grouped["protocol"].first()
    seeds = grouped["seed"].agg(lambda s: ",".join(str(x) for x in sorted(s))).rename("seeds")
    out = pd.concat([seeds, flags, dead, protocol, mean, std], axis=1).reset_index()
    out = out.sort_values(by=["dataset", "split", "method"], key=lambda col: col.map(method_sort_key)
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


def _metric_labels(summary: pd.DataFrame):
    """Metric -> column title: the protocol's names when every row has the same protocol (weak-shot:
    all / base / novel mIoU, hIoU derived; metrics/protocols.py), else the metric names."""
    protocols = set(summary["protocol"]) if "protocol" in summary and len(summary) else set()
    protocol = protocols.pop() if len(protocols) == 1 else None
    return lambda metric: metric_label(protocol, metric)


def format_summary(summary: pd.DataFrame, metrics=METRIC_NAMES, decimals: int = DECIMALS, percent: bool = False
                   ) -> pd.DataFrame:
    """Strings for display: 'mean ± std' when several seeds, published values and deltas, every
    number with `decimals` fixed decimals (x 100 with `percent`). Published and delta columns of a
    metric no row has a published value for are left out."""
    def fmt(x, signed=False):
        return metric_text(x, decimals, percent, signed)

    shown_keys = [k for k in KEYS if k != "data" or (k in summary and summary[k].astype(bool).any())]
    cols = {**{k: summary[k] for k in shown_keys}, "seeds": summary["seeds"]}
    flags = []
    label = _metric_labels(summary)
    for _, row in summary.iterrows():
        f = []
        if row.get("uses_unseen_labels"):
            f.append(flag_label(row.get("protocol"), "unseen-labels"))
        if row.get("transductive"):
            f.append("transductive")
        if row.get("dead_seeds"):  # runs/diagnostics.py: the mechanism the method is named for did not work
            f.append(f"dead-mechanism {row['dead_seeds']}/{len(str(row['seeds']).split(','))}")
        flags.append(",".join(f))
    if any(flags):
        cols["flags"] = flags
    multi = summary["seeds"].str.contains(",")
    for m in metrics:
        cols[label(m)] = [fmt(v) + (f" ± {fmt(s)}" if many else "") for v, s, many in
                          zip(summary[m], summary[f"{m} std"], multi)]
        if f"{m} pub" in summary and summary[f"{m} pub"].notna().any():
            cols[f"{m} pub"] = [fmt(v) for v in summary[f"{m} pub"]]
            cols[f"Δ {m}"] = [fmt(v, signed=True) for v in summary[f"Δ {m}"]]
    if "source" in summary:
        cols["source"] = summary["source"].replace("", MISSING)
    return pd.DataFrame(cols)


def write_tables(summary: pd.DataFrame, stem: Path, metrics=METRIC_NAMES, decimals: int = DECIMALS,
                 percent: bool = False) -> list[Path]:
    """stem.md (every cell as formatted: fixed decimals), stem.tex (report/latex.py: booktabs floats
    that compile and fit a page), stem.csv and stem.parquet (the unrounded numbers)."""
    from zsseg_bench.report.latex import comparison_latex

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    shown = format_summary(summary, metrics, decimals, percent)
    paths = [stem.with_suffix(".md"), stem.with_suffix(".tex"), stem.with_suffix(".csv"), stem.with_suffix(".parquet")]
    paths[0].write_text(tabulate(shown, headers="keys", tablefmt="github", showindex=False, disable_numparse=True,
                                 colalign=["left" if c in _LEFT_ALIGNED else "right" for c in shown.columns]) + "\n")
    paths[1].write_text(comparison_latex(summary, metrics, decimals, percent, name=stem.name))
    summary.to_csv(paths[2], index=False)
    summary.to_parquet(paths[3], index=False)
    return paths


# ---- printed by the commands (rich) ------------------------------------------------------------------
def rich_table(frame: pd.DataFrame, title: str | None = None) -> Table:
    """`frame` as a rich table: names left-aligned, numbers right-aligned."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for col in frame.columns:
        table.add_column(str(col), justify="left" if col in _LEFT_ALIGNED else "right")
    for _, row in frame.iterrows():
        table.add_row(*[format_cell(v) for v in row.tolist()])
    return table


def print_packed(console, frame: pd.DataFrame, keys: list[str], groups: list[list[str]], title: str | None = None
                 ) -> None:
    """Print `frame` as rich tables: `keys` columns on every table, the `groups` of columns packed
    greedily so each table fits the terminal (a group is never split)."""

    def width(cols):
        return sum(max(len(str(v)) for v in frame[c].tolist() + [c]) + 3 for c in cols) + 1

    tables, current = [], []
    for group in groups:
        if current and width(keys + current + group) > console.width:
            tables.append(current)
            current = []
        current += group
    tables.append(current)
    for i, cols in enumerate(tables):
        console.print(rich_table(frame[keys + cols], title=title if i == 0 else None))


def print_comparison(console, summary: pd.DataFrame, metrics=METRIC_NAMES, decimals: int = DECIMALS,
                     percent: bool = False) -> None:
    """The comparison: the key metrics (KEY_METRICS) in one table, the other metrics in a second
    one titled so; a metric stays beside its published value and delta."""
    shown = format_summary(summary, metrics, decimals, percent)
    keys = [c for c in ("method", "flags") if c in shown]
    labels = summary["data"] if "data" in summary else [""] * len(summary)
    title = ", ".join(f"{d}{f' ({x})' if x else ''} / {s}"
                      for d, x, s in dict.fromkeys(zip(summary["dataset"], labels, summary["split"])))
    title += (f"  (seeds {'; '.join(dict.fromkeys(summary['seeds']))}; {'percent' if percent else 'fractions'}, "
              f"mean ± std over seeds)")

    label = _metric_labels(summary)

    def columns(names):
        return [c for m in names for c in (label(m), f"{m} pub", f"Δ {m}") if c in shown]

    key = [m for m in KEY_METRICS if m in metrics]
    rest = [m for m in metrics if m not in KEY_METRICS]
    if key and not any(c.endswith(" pub") for c in shown):  # one table: rich narrows cells on a narrow terminal
        console.print(rich_table(shown[keys + columns(key)], title=title))
    elif key:  # beside published values and deltas: as many tables as the width needs
        print_packed(console, shown, keys, [columns([m]) for m in key], title)
    if rest:
        print_packed(console, shown, keys, [columns([m]) for m in rest],
                     f"other metrics ({', '.join(rest)})" if key else title)
    if "source" in shown:
        console.print("published source per method: " + ", ".join(
            f"{m}: {s}" for m, s in zip(shown["method"], shown["source"])))
