"""Commands that turn runs into things to look at: report, predict."""

from __future__ import annotations

from pathlib import Path

import typer

from zsseg_bench.cli.app import command, console, examples, invoked_command


@command("report", epilog=examples("zsbench report results/runs/<batch> -o results/report",
                                   "zsbench report runs/a runs/b -o /tmp/report --source cagnetv2-readme"))
def report(
    runs: list[Path] = typer.Argument(..., help="Run folders, or folders containing them."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder (created; a previous report there is replaced)."),
    source: str | None = typer.Option(None, "--source", help="Published source (default: by priority)."),
    data_root: str | None = typer.Option(None, "--data-root",
                                            help="Dataset root for the grids' images (default: the runs')."),
    show_unscored: bool = typer.Option(False, "--show-unscored",
                                       help="Grids show predictions on pixels the evaluation ignores too."),
):
    """Markdown + HTML report: comparison with published numbers, plots, qualitative grids, protocol."""
    from zsseg_bench.report.build import make_report

    path = make_report(runs, out, source=source, data_root=data_root, mask_unscored=not show_unscored,
                       command=invoked_command())
    console.print(f"report: [bold]{path}[/]  (html: {path.with_suffix('.html')})")


@command("predict", epilog=examples("zsbench predict results/runs/<batch>/<run> photo.jpg -o /tmp/pred",
                                    "zsbench predict <run> a.png b.png -o out --input-size 0 --device cuda"))
def predict(
    run_dir: Path = typer.Argument(..., help="A run folder with trained weights (ckpt/final.pt)."),
    images: list[Path] = typer.Argument(..., help="Image files (any size; RGB, grayscale or RGBA)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for <name>_pred.png and <name>_overlay.png."),
    input_size: int | None = typer.Option(
        None, "--input-size", help="Shorter side the model sees, in px; 0 = native (default: 64 for synthetic "
                                   "runs, native otherwise)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto (cuda when present)."),
):
    """Segment images with a trained run over its split's classes, seen and unseen."""
    from zsseg_bench.report.tables import format_value
    from zsseg_bench.runs.predict import predict_files

    results = predict_files(run_dir, images, out, input_size=input_size, device=device)
    if results and results[0]["trained_on"].startswith("synthetic"):
        typer.echo(f"warning: {run_dir} was trained on the synthetic benchmark, whose class names only label "
                   f"generated shapes; its predictions on these images say nothing about real photos", err=True)
    for r in results:
        top = ", ".join(f"{name} {format_value(share, '.0%')}" for name, share in r["classes"][:4])
        console.print(f"{r['image']} ({r['width']}x{r['height']}): {top}"
                      + (f"  [red]unseen: {', '.join(r['unseen_found'])}[/]" if r["unseen_found"] else ""))
        console.print(f"  wrote {r['prediction']} and {r['overlay']}")
