"""`zsbench orderings`: which published orderings of methods the runs reproduce."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from zsseg_bench.cli.app import command, console, examples
from zsseg_bench.errors import ZsbenchError


@command("orderings", epilog=examples("zsbench orderings results/runs/<batch> --against voc12",
                                      "zsbench orderings results/runs/<batch-w0> results/runs/<batch-w1> --against voc12",
                                      "zsbench orderings results/runs/<batch> --metric U-mIoU --json"))
def orderings(
    runs: List[Path] = typer.Argument(..., help="Run folders, or folders containing them."),
    against: Optional[str] = typer.Option(None, "--against", help="DATASET or DATASET/SPLIT whose published rows "
                                          "give the orderings (default: the runs' own)."),
    metric: str = typer.Option("hIoU", "--metric", help="The metric that orders the methods."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON instead."),
):
    """Every pair of methods the published table orders: in how many (world, seed) pairs the runs agree."""
    import json

    from tabulate import tabulate

    from zsseg_bench.metrics.scores import METRIC_NAMES
    from zsseg_bench.report.orderings import ordering_table
    from zsseg_bench.report.selection import select_runs
    from zsseg_bench.report.tables import runs_frame

    if metric not in METRIC_NAMES:
        raise ZsbenchError(f"--metric {metric!r}: choose from {', '.join(METRIC_NAMES)}")
    # batches of several worlds may come from different commits; each (world, seed) is one sample
    frame, notes = select_runs(runs_frame(runs), latest=False, pool=True)
    for line in notes:
        console.print(f"[yellow]{line}", soft_wrap=True)
    if frame.empty:
        raise ZsbenchError("no finished (status ok) runs under the given folders")
    dataset, split = _published_table(frame, against)
    table = ordering_table(frame, dataset, split, metric)
    if table.empty:
        raise ZsbenchError(f"no two of these methods have published {metric} on {dataset}/{split}")
    if as_json:
        print(json.dumps(table.to_dict(orient="records")))
        return
    console.print(f"published orderings on {dataset}/{split} by {metric}; 'holds': (data, world, seed) samples where the "
                  f"runs order the two methods the same way", soft_wrap=True)
    console.print(tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".4f"))


def _published_table(frame, against: Optional[str]) -> tuple[str, str]:
    """(dataset, split) of the published rows: --against, or the runs' own (one dataset and split)."""
    if against:
        from zsseg_bench.cli.table import published_against
        return published_against(against)
    pairs = set(zip(frame["dataset"], frame["split"]))
    if len(pairs) != 1:
        raise ZsbenchError("the runs cover several datasets/splits; name the published table with --against")
    return pairs.pop()
