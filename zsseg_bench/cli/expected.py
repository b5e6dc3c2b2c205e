"""`zsbench expected`: write the synthetic benchmark's expected rows from a batch of runs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from zsseg_bench.cli.app import command, console


@command("expected", epilog="Examples:\n\n  zsbench run --seeds 0,1,2\n\n"
                             "  zsbench expected results/runs/<batch>\n\n"
                             "  zsbench check results/runs/<other batch>")
def expected(
    runs: List[Path] = typer.Argument(..., help="A batch folder of finished runs (at least 3 seeds per method)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="File to write (default: "
                                       "results/expected/<dataset>-v<version>-w<world>__<split>.yaml)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
):
    """Write the expected rows (each method's mean and tolerance over seeds; results/expected/README.md
    states the rule) that zsbench check compares synthetic runs with."""
    from zsseg_bench.catalog.expected import write_expected
    from zsseg_bench.runs.records import find_records, load_record

    records = [load_record(p) for p in find_records(runs)]
    path = write_expected(records, out, force)
    console.print(f"expected rows: [bold]{path}[/] ({len(records)} runs)")
