"""`zsbench check`: compare runs with their published rows; exit 1 beyond tolerance."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from zsseg_bench.cli.app import command, console, examples


@command("check", epilog=examples("zsbench check results/runs/<batch>/<run>",
                                  "zsbench check results/runs/<batch> --source cagnetv2-readme --tolerance 0.02",
                                  "zsbench check results/runs/<batch> --json"))
def check(
    runs: List[Path] = typer.Argument(..., help="Run folders, or folders containing them."),
    source: Optional[str] = typer.Option(None, "--source", help="Published source (default: by priority)."),
    tolerance: float = typer.Option(0.01, "--tolerance", help="Allowed |actual - expected| (fractions)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per compared metric instead "
                                 "(same exit status)."),
):
    """Compare runs with their published rows (synthetic runs: their expected rows); exit 1 on any
    deviation beyond tolerance."""
    from zsseg_bench.report.check import check_runs
    from zsseg_bench.report.tables import DELTA, format_value, rich_table

    frame = check_runs(runs, source, tolerance)
    failed = int((~frame["pass"]).sum())
    if as_json:
        typer.echo(frame.to_json(orient="records", indent=2))
        if failed:
            raise typer.Exit(1)
        return
    shown = frame.assign(**{c: frame[c].map(format_value) for c in ("expected", "actual", "tolerance")},
                         delta=frame["delta"].map(lambda v: format_value(v, DELTA)),
                         **{"pass": frame["pass"].map(lambda p: "[green]pass" if p else "[red]FAIL")})
    console.print(rich_table(shown))
    # Expected rows of the synthetic benchmark carry their own tolerances (the table shows each).
    within = f"tolerance {tolerance}" if (frame["tolerance"] == tolerance).all() else "their tolerances"
    if failed:
        console.print(f"[red]{failed} of {len(frame)} metrics deviate beyond {within}")
        raise typer.Exit(1)
    console.print(f"[green]all {len(frame)} metrics within {within}")
