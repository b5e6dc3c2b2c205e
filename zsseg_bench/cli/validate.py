"""`zsbench validate`: check the split files, method cards and published tables."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from zsseg_bench.cli.app import command, console


@command("validate", epilog="Examples:\n\n  zsbench validate\n\n  zsbench validate splits/voc12/voc12-15-5.yaml")
def validate(files: List[Path] = typer.Argument(None, help="Files to check (default: all).")):
    """Check every split file, method card and published table (or the given files)."""
    from zsseg_bench.catalog.validate import validate_all, validate_paths

    if files:
        n, problems = len(files), validate_paths(files)
    else:
        n, problems = validate_all()
    for p in problems:
        typer.echo("error: " + " ".join(p.split()), err=True)
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]ok[/]: {n} files valid")
