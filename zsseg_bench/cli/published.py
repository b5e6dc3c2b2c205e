"""`zsbench published`: the published numbers transcribed from the source documents, and the modern anchors."""

from __future__ import annotations

from typing import Optional

import typer

from zsseg_bench.cli.app import command, console, examples
from zsseg_bench.metrics.scores import METRIC_NAMES


@command("published", epilog=examples("zsbench published", "zsbench published --dataset voc12 --source cagnetv2-readme",
                                      "zsbench published --dataset voc12 --anchors", "zsbench published --json"))
def published(
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
    source: Optional[str] = typer.Option(None, "--source"),
    method: Optional[str] = typer.Option(None, "--method", "-m"),
    anchors: bool = typer.Option(False, "--anchors", help="Also show the modern anchors (results/published/"
                                 "anchors.csv): other splits and settings, for orientation only, never compared."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (rows, and anchors with --anchors) instead."),
):
    """Show the published numbers transcribed from the source documents (fractions), one table per protocol."""
    import json

    from zsseg_bench.catalog.anchors import anchors_frame
    from zsseg_bench.catalog.published import published_frame

    frame = published_frame(dataset, source, method)
    if as_json:
        out = {"published": json.loads(frame.drop(columns=["file"]).to_json(orient="records"))}
        if anchors:
            out["anchors"] = json.loads(anchors_frame(dataset).to_json(orient="records"))
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    for protocol, part in frame.groupby("protocol", sort=False):
        _print_protocol(protocol, part)
    if anchors:
        print_anchors([dataset] if dataset else None)


def _print_protocol(protocol: str, part) -> None:
    """One protocol's rows: a metric column never holds numbers of two protocols."""
    from zsseg_bench.report.tables import format_value, print_packed

    metric_cols = [m for m in METRIC_NAMES if part[m].notna().any()]
    shown = part[["source", "split", "method", *metric_cols]].copy()
    for m in metric_cols:
        shown[m] = shown[m].map(format_value)
    print_packed(console, shown, ["source", "split", "method"], [[m] for m in metric_cols],
                 f"published rows, protocol {protocol}: {len(part)}")
    notes = {n for n in part["note"] if n}
    for note in sorted(notes):
        console.print(f"note ({protocol}): {note}", markup=False, highlight=False)


def print_anchors(datasets: list[str] | None) -> None:
    """The modern anchors of `datasets` (all when None) as a separate, labelled table."""
    import pandas as pd

    from zsseg_bench.catalog.anchors import anchors_frame
    from zsseg_bench.report.tables import metric_text, rich_table

    frame = anchors_frame()
    if datasets is not None:
        frame = frame[frame["dataset"].isin(datasets)]
    if frame.empty:
        console.print("modern anchors: none for " + ", ".join(datasets or []))
        return
    shown = pd.DataFrame({
        "method": frame["method_label"] + frame["venue"].map(lambda v: f" ({v})" if v else ""),
        "split": frame["split_id"], "classes": frame.apply(lambda r: f"{r.n_classes} ({r.n_seen}/{r.n_unseen})",
                                                           axis=1),
        "setting": frame["setting"], "runs": frame["runs"],
        **{m: frame[m].map(lambda v: metric_text(v, 1, percent=True)) for m in ("S-mIoU", "U-mIoU", "hIoU")},
        "hIoU from": frame["hIoU_from"].replace("recomputed from S-mIoU and U-mIoU", "recomputed"),
    })
    console.print(rich_table(shown, title="modern anchors, percent as printed (other splits and settings: "
                                          "orientation only, not comparable with the rows above, never used by "
                                          "zsbench check)"))
    for _, row in frame[frame["note"] != ""].iterrows():
        console.print(f"note ({row['method_label']}, {row['split_id']}, {row['setting']}): {row['note']}",
                      markup=False, highlight=False)
    console.print(f"source: {', '.join(sorted(set(frame['source'])))}", markup=False)
