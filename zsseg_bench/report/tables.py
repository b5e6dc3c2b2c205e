"""The only renderer: run records -> pandas DataFrame -> Markdown / CSV / LaTeX / Parquet, and
the rich tables the commands print.

Numbers stay fractions in [0, 1] (as in the source papers' tables) and become text only here:
`format_value` is the one place a number is formatted, for tables, reports, figures' labels and
printouts alike. Several seeds of the same (method, dataset, split) become mean and std columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table
from tabulate import tabulate

from zsseg_bench.catalog.published import lookup
from zsseg_bench.metrics.protocols import flag_label, metric_label
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.runs.records import find_records, load_record

__all__ = ["METHOD_ORDER", "MAIN_METRICS", "MISSING", "FRACTION", "DELTA", "method_sort_key", "is_missing",
           "format_value", "format_cell", "runs_frame", "summarize", "add_published", "format_summary", "write_tables",
           "rich_table", "print_packed", "print_comparison"]

# The source papers' row order; other methods follow alphabetically.
METHOD_ORDER = ("spnet", "spnet-c", "zs3net", "zs3net+st", "cagnet-pi", "cagnet-pa", "cagnet-pi+st", "cagnet-pa+st")
KEYS = ["method", "dataset", "split"]
MAIN_METRICS = ("hIoU", "mIoU", "S-mIoU", "U-mIoU")  # the ones a short summary shows

MISSING = "–"  # a missing number (None, NaN) in every table and printout
DECIMALS = 4  # metric fractions, as the source papers' tables print them
FRACTION = f".{DECIMALS}f"
DELTA = f"+.{DECIMALS}f"  # ours - published, always signed
_LEFT_ALIGNED = ("method", "dataset", "split", "source", "flags", "run_id", "metric", "seeds")


def method_sort_key(name: str) -> tuple:
    """Sort key that puts methods in the comparison's order (METHOD_ORDER), others after it by name."""
    return (METHOD_ORDER.index(name), "") if name in METHOD_ORDER else (len(METHOD_ORDER), name)


def is_missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and bool(np.isnan(value)))


def format_value(value, spec: str = FRACTION) -> str:
    """A number as text: `spec` is a format spec (FRACTION for metrics, DELTA for differences, '.1%'
    for shares, '.3g' for timings); None and NaN read as MISSING."""
    return MISSING if is_missing(value) else format(value, spec)


def format_cell(value) -> str:
    """A table cell of any kind (numbers already formatted, or shown as they are); missing as MISSING."""
    return MISSING if is_missing(value) else str(value)


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
               "transductive": rec.get("protocol_flags", {}).get("transductive", False),
               "protocol": rec["split"].get("protocol", "gzs3")}
        row.update({m: rec["metrics"].get(m, np.nan) for m in METRIC_NAMES})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*KEYS, "seed", "run_id", "path", "uses_unseen_labels", "transductive",
                                        "protocol", *METRIC_NAMES])
    return frame


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (ddof=1; 0 for one seed) over seeds: columns <metric> and <metric> std."""
    if runs.empty:
        return pd.DataFrame(columns=[*KEYS, "seeds", *METRIC_NAMES])
    grouped = runs.groupby(KEYS, sort=False)
    mean = grouped[list(METRIC_NAMES)].mean()
    std = grouped[list(METRIC_NAMES)].std(ddof=1).fillna(0.0).add_suffix(" std")
    flags = grouped[["uses_unseen_labels", "transductive"]].any()
    protocol = grouped["protocol"].first()
    seeds = grouped["seed"].agg(lambda s: ",".join(str(x) for x in sorted(s))).rename("seeds")
    out = pd.concat([seeds, flags, protocol, mean, std], axis=1).reset_index()
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


def format_summary(summary: pd.DataFrame, metrics=METRIC_NAMES, decimals: int = DECIMALS) -> pd.DataFrame:
    """Strings for display: 'mean ± std' when several seeds, published values and deltas."""
    def fmt(x, signed=False):
        return format_value(x, f"{'+' if signed else ''}.{decimals}f")

    cols = {"method": summary["method"], "dataset": summary["dataset"], "split": summary["split"],
            "seeds": summary["seeds"]}
    flags = []
    label = _metric_labels(summary)
    for _, row in summary.iterrows():
        f = []
        if row.get("uses_unseen_labels"):
            f.append(flag_label(row.get("protocol"), "unseen-labels"))
        if row.get("transductive"):
            f.append("transductive")
        flags.append(",".join(f))
    if any(flags):
        cols["flags"] = flags
    multi = summary["seeds"].str.contains(",")
    for m in metrics:
        cols[label(m)] = [fmt(v) + (f" ± {fmt(s)}" if many else "") for v, s, many in
                          zip(summary[m], summary[f"{m} std"], multi)]
        if f"{m} pub" in summary:
            cols[f"{m} pub"] = [fmt(v) for v in summary[f"{m} pub"]]
            cols[f"Δ {m}"] = [fmt(v, signed=True) for v in summary[f"Δ {m}"]]
    if "source" in summary:
        cols["source"] = summary["source"].replace("", MISSING)
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


def print_comparison(console, summary: pd.DataFrame, metrics=METRIC_NAMES) -> None:
    """The comparison table; a metric stays beside its published value and delta."""
    shown = format_summary(summary, metrics)
    keys = [c for c in ("method", "flags") if c in shown]
    title = ", ".join(f"{d} / {s}" for d, s in dict.fromkeys(zip(summary["dataset"], summary["split"])))
    title += f"  (seeds {'; '.join(dict.fromkeys(summary['seeds']))}; fractions, mean ± std over seeds)"
    label = _metric_labels(summary)
    groups = [[c for c in (label(m), f"{m} pub", f"Δ {m}") if c in shown] for m in metrics]
    print_packed(console, shown, keys, groups, title)
    if "source" in shown:
        console.print("published source per method: " + ", ".join(
            f"{m}: {s}" for m, s in zip(shown["method"], shown["source"])))
