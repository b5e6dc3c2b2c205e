"""`zsbench table`: one table from run records, optionally beside the published numbers."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from zsseg_bench.cli.app import command, console, examples
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.metrics.scores import METRIC_NAMES


@command("table", epilog=examples("zsbench table results/runs/<batch>",
                                  "zsbench table results/runs/* --published --out results/tables/synthetic",
                                  "zsbench table results/runs/<batch> --published --against voc12",
                                  "zsbench table results/runs/<batch> --percent --decimals 1 --out paper/table1",
                                  "zsbench table results/runs/<batch> --published --anchors",
                                  "zsbench table results/runs/<batch> --json"))
def table(
    runs: List[Path] = typer.Argument(..., help="Run folders, or folders containing them."),
    published: bool = typer.Option(False, "--published", help="Add published values and deltas."),
    source: Optional[str] = typer.Option(None, "--source", help="Published source (default: by priority)."),
    against: Optional[str] = typer.Option(None, "--against", help="With --published: show the published rows of "
                                          "DATASET or DATASET/SPLIT instead of the runs' own (e.g. voc12 beside synthetic)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write OUT.md, .csv, .tex, .parquet."),
    metrics: str = typer.Option(",".join(METRIC_NAMES), "--metrics", help="Comma-separated metric columns."),
    latest: bool = typer.Option(False, "--latest", help="Several runs of one (method, split, seed, world): keep "
                                "the newest of each."),
    pool: bool = typer.Option(False, "--pool", help="Average repeated runs and runs of different commits "
                              "together (said in the output)."),
    percent: bool = typer.Option(False, "--percent", help="Show metrics as percentages (x 100) instead of fractions."),
    decimals: Optional[int] = typer.Option(None, "--decimals", help="Decimals shown (default 4 for fractions, 1 "
                                           "with --percent; 1 or 2 with --percent)."),
    anchors: bool = typer.Option(False, "--anchors", help="With --published: also show the modern anchors "
                                 "(results/published/anchors.csv) as a separate block; never compared."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON (unrounded numbers) instead."),
):
    """One table from run records: mean ± std over seeds, optionally beside the published numbers."""
    from zsseg_bench.report.selection import select_runs
    from zsseg_bench.report.tables import add_published, print_comparison, runs_frame, summarize, write_tables

    chosen = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METRIC_NAMES]
    if unknown:
        raise ZsbenchError(f"--metrics: unknown {unknown}; choose from {', '.join(METRIC_NAMES)}")
    frame = runs_frame(runs)
    for line in frame.attrs.get("died", []):
        console.print(f"[red]{line}", soft_wrap=True)
    frame, notes = select_runs(frame, latest=latest, pool=pool)
    for line in notes:
        console.print(f"[yellow]{line}", soft_wrap=True)
    summary = summarize(frame)
    if print_episodic(runs, published, out) and summary.empty:
        return
    if summary.empty:
        raise ZsbenchError("no finished (status ok) runs under the given folders")
    if against and not published:
        raise ZsbenchError("--against only makes sense with --published")
    if anchors and not published:
        raise ZsbenchError("--anchors only makes sense with --published")
    decimals = _decimals(decimals, percent)
    if published:
        summary = add_published(summary, source, published_against(against) if against else None)
    if as_json:
        typer.echo(summary.to_json(orient="records", indent=2))
    else:
        print_comparison(console, summary, chosen, decimals, percent)
        if anchors:
            from zsseg_bench.cli.published import print_anchors

            print_anchors(sorted(set(summary["dataset"]) | ({against.partition("/")[0]} if against else set())))
    if out:
        for p in write_tables(summary, out, chosen, decimals, percent):
            (typer.echo if not as_json else lambda t: typer.echo(t, err=True))(f"wrote {p}")


def _decimals(decimals: int | None, percent: bool) -> int:
    if decimals is None:
        return 1 if percent else 4
    if percent and decimals not in (1, 2):
        raise ZsbenchError(f"--decimals {decimals} with --percent: use 1 or 2 (percentages, as papers print them)")
    if not 0 <= decimals <= 6:
        raise ZsbenchError(f"--decimals {decimals}: use 0 to 6")
    return decimals


def print_episodic(runs, published: bool, out: Optional[Path]) -> bool:
    """The fss-zeroshot runs' own table (one row per method and fold, a mean row, the three fusion
    modes); False when there are none."""
    from zsseg_bench.report.episodic import PUBLISHED_COLUMN, episodic_frame, episodic_summary, format_episodic
    from zsseg_bench.report.tables import print_packed

    summary = episodic_summary(episodic_frame(runs), published)
    if summary.empty:
        return False
    shown = format_episodic(summary)
    keys = ["method", "split", "protocol"]
    groups = [[c] for c in shown.columns if c not in keys]
    print_packed(console, shown, keys, groups, title="protocol fss-zeroshot: foreground mIoU and FB-IoU per fold "
                 "(fractions, mean ± std over seeds); fusion none / self (leakage-free) / oracle")
    if published:
        console.print(f"{PUBLISHED_COLUMN}: the SAZS README's fold numbers, which come from the oracle fusion "
                      f"(ground-truth-informed); compare them with the oracle column only")
    if out:
        from zsseg_bench.report.episodic import write_episodic

        for p in write_episodic(summary, out.with_name(out.name + "-episodic")):
            console.print(f"wrote {p}")
    return True


def published_against(against: str) -> tuple[str, str]:
    """DATASET[/SPLIT] -> (dataset, split), the dataset's default split when none is named."""
    from zsseg_bench.datasets import default_split

    ds, _, sp = against.partition("/")
    sp = sp or default_split(ds)
    if not sp:
        raise ZsbenchError(f"--against {against!r}: name the split too, e.g. {ds}/<split>")
    console.print(f"[yellow]published rows of {ds}/{sp} shown for orientation: a different dataset, "
                  f"not comparable, not a check")
    return ds, sp
