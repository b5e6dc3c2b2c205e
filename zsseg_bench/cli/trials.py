"""`zsbench trials`: run a trials file on the val part and write the trials table."""

from __future__ import annotations

from pathlib import Path

import typer

from zsseg_bench.cli.app import command, console


@command("trials", epilog="Examples:\n\n  zsbench trials results/trials/v2-world0.yaml --out results/trials/v2-world0")
def trials(
    file: Path = typer.Argument(..., help="Trials file: world, seeds, and per method a list of --set lists."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the trial runs and trials.md / trials.csv."),
):
    """Run every method's trials scored on val only (same number per method); print and write the table."""
    from zsseg_bench.cli.launch import recorded_command
    from zsseg_bench.cli.progress import RichReporter
    from zsseg_bench.runs.trials import load_trials, run_trials

    plan = load_trials(file)  # a bad file is one line, before any run
    with RichReporter(console) as reporter:
        table = run_trials(plan, out, reporter, recorded_command())
    console.print(table.read_text())
    console.print(f"trials table: {table}")
