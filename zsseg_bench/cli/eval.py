"""`zsbench eval`: evaluate a released CaGNet checkpoint into a run record (no training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from zsseg_bench.cli.app import command, console


@command("eval", epilog="Examples:\n\n  zsbench eval --checkpoint voc12_ourbest.pth --method cagnet-pi --dataset voc12 "
                         "--data-root ~/data/CaGNet/voc12 --device cuda\n\n"
                         "  zsbench check results/runs/cagnet-pi__voc12-15-5__s0__<stamp>")
def eval_checkpoint(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Official CaGNet file ({'iteration', 'state_dict'}), "
                                    "e.g. voc12_ourbest.pth."),
    method: str = typer.Option("cagnet-pi", "--method", "-m", help="A CaGNet card: cagnet-pi, cagnet-pa, ..."),
    dataset: str = typer.Option("voc12", "--dataset", "-d", help="voc12, context or cocostuff."),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split name (default: the dataset's)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto (cuda when present)."),
    out: Path = typer.Option(None, "--out", "-o", help="Where the run folder goes (default ./results/runs)."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="Root folder of the dataset."),
    overrides: List[str] = typer.Option(None, "--set", help="Config override key=value (repeatable)."),
):
    """Evaluate released CaGNet weights under a card's evaluation settings; write a run record."""
    from zsseg_bench.cli.launch import recorded_command
    from zsseg_bench.cli.progress import console_reporter
    from zsseg_bench.paths import default_runs_dir
    from zsseg_bench.report.tables import MAIN_METRICS, format_value
    from zsseg_bench.runs.evaluate import EvalRequest, evaluate_checkpoint

    req = EvalRequest(checkpoint=str(checkpoint), method=method, dataset=dataset, split=split, device=device,
                      data_root=data_root, overrides=list(overrides or []), out=out or default_runs_dir(),
                      command=recorded_command())
    with console_reporter(console, log=False) as reporter:
        path = evaluate_checkpoint(req, reporter)
    metrics = json.loads((path / "metrics.json").read_text())
    shown = ", ".join(f"{k} {format_value(metrics[k])}" for k in MAIN_METRICS if k in metrics)
    console.print(shown)
    console.print(f"run record: [bold]{path}[/]")
    console.print(f"compare with the published row: zsbench check {path}")

