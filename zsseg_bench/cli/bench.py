"""`zsbench bench`: images/s and FLOPs of a method's training step and evaluation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from zsseg_bench.cli.app import command, console, invoked_command
from zsseg_bench.errors import ZsbenchError


@command("bench", epilog="Examples:\n\n  zsbench bench spnet --crop 64 --batch 16 --eval-size 64\n\n"
                          "  zsbench bench spnet --dataset voc12 --crop 368 --batch 8 --eval-size 513 --device cuda "
                          "--variants fp32,bf16,bf16+cl,bf16+cl+compile")
def bench(
    method: str = typer.Argument("spnet", help="Method name (its card gives the backbone and losses)."),
    dataset: str = typer.Option("synthetic", "--dataset", "-d", help="Whose card settings and class list to use "
                                "(no data is read)."),
    split: str | None = typer.Option(None, "--split", "-s", help="Split (default: the dataset's)."),
    backbone: str | None = typer.Option(None, "--backbone", help="Override the card's backbone, e.g. "
                                           "deeplabv2-resnet101 or small-cnn."),
    crop: int = typer.Option(321, "--crop", help="Training crop (square, px)."),
    batch: int = typer.Option(8, "--batch", help="Training batch size."),
    eval_size: int = typer.Option(513, "--eval-size", help="Evaluation image size (square, px)."),
    eval_batch: int | None = typer.Option(None, "--eval-batch", help="Evaluation batch (default: --batch)."),
    variants: str = typer.Option("fp32", "--variants", help="Comma list of precision[+cl][+compile]: fp32, tf32, "
                                 "bf16, bf16+cl, bf16+cl+compile, ..."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto (cuda when present)."),
    warmup: int = typer.Option(2, "--warmup", help="Untimed runs first (compilation, autotuning)."),
    repeats: int = typer.Option(5, "--repeats", help="Timed runs; the median is reported."),
    embed_dim: int | None = typer.Option(None, "--embed-dim", help="Feature/embedding size (default 600; 32 on "
                                            "synthetic)."),
    overrides: list[str] = typer.Option(None, "--set", help="Config override key=value (repeatable)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's)."),
    train: bool = typer.Option(True, "--train/--no-train", help="Time the training step."),
    evaluate: bool = typer.Option(True, "--eval/--no-eval", help="Time evaluation."),
    out: Path | None = typer.Option(None, "--out", "-o", help="JSON file to write (default "
                                       "results/bench/<stamp>__<method>.json)."),
):
    """Measure training and evaluation throughput (images/s), FLOPs and the fraction of peak."""
    from zsseg_bench.runs.bench import BenchSpec, parse_variants, run_bench

    if min(crop, batch, eval_size, repeats) < 1 or warmup < 0 or (eval_batch is not None and eval_batch < 1):
        raise ZsbenchError("--crop, --batch, --eval-size, --eval-batch and --repeats must be positive, --warmup >= 0")
    if not (train or evaluate):
        raise ZsbenchError("--no-train and --no-eval together leave nothing to measure")
    if threads is not None:
        _set_threads(threads)
    spec = BenchSpec(method=method, dataset=dataset, split=split, backbone=backbone, crop=crop, batch=batch,
                     eval_size=eval_size, eval_batch=eval_batch, variants=parse_variants(variants), device=device,
                     warmup=warmup, repeats=repeats, embed_dim=embed_dim, overrides=list(overrides or []),
                     train=train, evaluate=evaluate)
    with console.status("benchmarking ..."):
        result = run_bench(spec)
    result["command"] = invoked_command()
    _print_result(result, spec)
    if out is None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        out = Path("results/bench") / f"{stamp}__{method}__{spec.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    console.print(f"wrote {out}")


def _set_threads(threads: int) -> None:
    if threads < 1:
        raise ZsbenchError("--threads must be positive")
    import torch

    torch.set_num_threads(threads)


def _print_result(result: dict, spec) -> None:
    """One table per measured kind (training step, evaluation), then how the numbers were taken."""
    from zsseg_bench.report.tables import format_value

    title = (f"{spec.method} on {result['device_name']} ({result['device']}, {result['threads']} threads, "
             f"torch {result['torch']})")
    eval_batch = spec.eval_batch or spec.batch
    for kind, label in (("train", f"training step: crop {spec.crop}, batch {spec.batch}"),
                        ("eval", f"evaluation: {spec.eval_size} px, batch {eval_batch}")):
        rows = [r for r in result["results"] if f"{kind}_images_per_s" in r]
        if not rows:
            continue
        console.print(_variants_table(f"{title}\n{label}", kind, rows))
        if kind == "train":
            for row in rows:
                if row.get("train_features_s") is not None:
                    share = row["train_features_share"]
                    rest = max(0.0, row["train_step_s"] - row["train_features_s"])
                    console.print(f"{row['variant']}: time split of a training step: feature extraction (forward + "
                                  f"backward) {format_value(row['train_features_s'], '.3g')} s "
                                  f"({format_value(100 * share, '.0f')} %), losses and the rest "
                                  f"{format_value(rest, '.3g')} s ({format_value(100 * (1 - share), '.0f')} %)")
    console.print(f"crop {spec.crop}, batch {spec.batch}; eval {spec.eval_size}px, batch {eval_batch}; median of "
                  f"{spec.repeats} after {spec.warmup} warm-up; % peak: dense datasheet peak of the precision, '–' "
                  f"where unknown")
    if result["device"] == "cpu" and result.get("load_average_1_5_15"):
        import os

        console.print(f"CPU load average {format_value(result['load_average_1_5_15'][0], '.1f')} on "
                      f"{os.cpu_count()} cores (other processes slow CPU timings down)")


def _variants_table(title: str, kind: str, rows: list[dict]) -> Table:
    from zsseg_bench.report.tables import format_value

    table = Table(title=title, header_style="bold")
    for col in ("variant", "img/s", "s/step", "GFLOP/step", "TFLOP/s", "% of peak"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for row in rows:
        frac = row.get(f"{kind}_peak_fraction")
        table.add_row(row["variant"], format_value(row[f"{kind}_images_per_s"], ".3g"),
                      format_value(row[f"{kind}_step_s"], ".3g"), format_value(row[f"{kind}_gflop_per_step"], ".4g"),
                      format_value(row[f"{kind}_tflops_achieved"], ".3g"),
                      format_value(None if frac is None else 100 * frac, ".1f"))
    return table
