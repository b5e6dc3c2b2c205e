"""`zsbench published`: the published numbers transcribed from the source documents."""

from __future__ import annotations

from typing import Optional

import typer

from zsseg_bench.cli.app import command, console
from zsseg_bench.metrics.scores import METRIC_NAMES


@command("published", epilog="Examples:\n\n  zsbench published\n\n  zsbench published --dataset voc12 "
                              "--source cagnetv2-readme")
def published(
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
    source: Optional[str] = typer.Option(None, "--source"),
    method: Optional[str] = typer.Option(None, "--method", "-m"),
):
    """Show the published numbers transcribed from the source documents (fractions)."""
    from zsseg_bench.catalog.published import published_frame
    from zsseg_bench.report.tables import format_value, print_packed

    frame = published_frame(dataset, source, method)
    metric_cols = [m for m in METRIC_NAMES if frame[m].notna().any()]
    shown = frame[["source", "dataset", "split", "method", *metric_cols]].copy()
    for m in metric_cols:
        shown[m] = shown[m].map(format_value)
    print_packed(console, shown, ["source", "split", "method"], [[m] for m in metric_cols],
                 f"published rows: {len(frame)}")
