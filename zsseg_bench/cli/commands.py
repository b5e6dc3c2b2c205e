"""The core commands: run, score, table, check, published, validate, ls."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.table import Table

from zsseg_bench.cli.app import command, console
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.paths import default_runs_dir


def _rich_table(frame, title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False, header_style="bold")
    for col in frame.columns:
        table.add_column(str(col), justify="right" if col not in ("method", "dataset", "split", "source", "flags",
                                                                   "run_id", "metric", "seeds") else "left")
    for _, row in frame.iterrows():
        table.add_row(*[str(v) for v in row.tolist()])
    return table


def print_packed(frame, keys: list[str], groups: list[list[str]], title: str | None = None) -> None:
    """Print `frame` as rich tables: `keys` columns on every table, the `groups` of columns packed
    greedily so each table fits the terminal (a group is never split)."""

    def width(cols):
        return sum(max(len(str(v)) for v in frame[c].tolist() + [c]) + 3 for c in cols) + 1

    tables, current = [], []
    for group in groups:
        if current and width(keys + current + group) > console.width:
            tables.append(current)
            current = []
        current += group
    tables.append(current)
    for i, cols in enumerate(tables):
        console.print(_rich_table(frame[keys + cols], title=title if i == 0 else None))


def print_comparison(summary, metrics=METRIC_NAMES) -> None:
    """The comparison table; a metric stays beside its published value and delta."""
    from zsseg_bench.report.tables import format_summary

    shown = format_summary(summary, metrics, decimals=4)
    keys = [c for c in ("method", "flags") if c in shown]
    title = ", ".join(f"{d} / {s}" for d, s in dict.fromkeys(zip(summary["dataset"], summary["split"])))
    title += f"  (seeds {'; '.join(dict.fromkeys(summary['seeds']))}; fractions, mean ± std over seeds)"
    groups = [[c for c in (m, f"{m} pub", f"Δ {m}") if c in shown] for m in metrics]
    print_packed(shown, keys, groups, title)
    if "source" in shown:
        console.print("published source per method: " + ", ".join(
            f"{m}: {s}" for m, s in zip(shown["method"], shown["source"])))


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ZsbenchError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None


@command("run", epilog="Examples:\n\n  zsbench run\n\n  zsbench run spnet spnet-c --seeds 0,1,2\n\n"
                        "  zsbench run spnet --set train.iterations=200 --out /tmp/runs\n\n"
                        "  zsbench run spnet --dataset voc12 --data-root ~/data/VOC2012 --device cuda "
                        "--init deeplabv2_resnet101_init.pth --set backbone.init_parts=body\n\n"
                        "  zsbench run spnet --dataset voc12 --device cuda --gpus 4\n\n"
                        "  zsbench run --resume results/runs/<batch>/<run>")
def run(
    methods: List[str] = typer.Argument(None, help="Method names (default: every method of the comparison)."),
    dataset: str = typer.Option("synthetic", "--dataset", "-d", help="synthetic, voc12, context, cocostuff, ..."),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split name or file (default: the dataset's)."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds, e.g. 0,1,2."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:N or auto (default cpu; "
                                         "with --resume, the interrupted run's)."),
    out: Path = typer.Option(None, "--out", "-o", help="Where run folders go (default ./results/runs)."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="Root folder of a real dataset."),
    overrides: List[str] = typer.Option(None, "--set", help="Config override key=value (repeatable); keys are "
                                        "checked against the card's schema, +key=value adds a new key."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write <batch>/report/ (zsbench report)."),
    init: Optional[str] = typer.Option(None, "--init", help="Backbone weights: an official DeepLab/SPNet/CaGNet "
                                       "file, a torchvision ResNet-101 or a zsseg-bench checkpoint."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted or failed run folder "
                                          "from its last checkpoint (into a new run folder)."),
    gpus: int = typer.Option(1, "--gpus", help="Train and evaluate in N processes (torchrun; DDP-style)."),
):
    """Train and evaluate methods; write one run record each and print the comparison table."""
    from zsseg_bench.cli.launch import distributed_session, recorded_command, relaunch_with_torchrun
    from zsseg_bench.cli.progress import RichReporter
    from zsseg_bench.engine.distributed import is_main, launched_world_size
    from zsseg_bench.engine.loop import Reporter
    from zsseg_bench.report.tables import runs_frame, summarize, write_tables
    from zsseg_bench.runs.train import default_methods, resume_request, run_comparison, run_one

    if gpus > 1 and launched_world_size() == 1:
        raise typer.Exit(relaunch_with_torchrun(gpus))
    if resume is not None and (methods or init):
        raise ZsbenchError("--resume continues one run as it was configured; drop the method names and --init")
    command = recorded_command()
    names = list(methods) if methods else default_methods()
    out = out or default_runs_dir()
    with distributed_session(device or "cpu") as dev:
        main = is_main()
        try:
            with (RichReporter(console) if main else contextlib.nullcontext(Reporter())) as reporter:
                if resume is not None:
                    req = resume_request(resume, dev if device else None, data_root, list(overrides or []), command)
                    run_one(req, reporter)
                    batch = resume.parent
                    paths = [batch]  # the table covers every finished run of the batch
                else:
                    batch, paths = run_comparison(names, dataset, split, _seeds(seeds), dev, data_root,
                                                  list(overrides or []), out, reporter, command, init=init)
        except KeyboardInterrupt:
            raise ZsbenchError("interrupted (Ctrl-C); the current run is marked 'interrupted' in its run.json; "
                               "continue it with zsbench run --resume RUN_DIR", exit_code=130) from None
    if not main:
        return
    summary = summarize(runs_frame(paths))
    written = write_tables(summary, batch / "comparison")
    print_comparison(summary)
    console.print(f"run records: [bold]{batch}[/]")
    console.print(f"table: {written[0]}")
    if report:
        from zsseg_bench.report.build import make_report

        made = make_report([batch], batch / "report", command=f"zsbench report {batch} -o {batch / 'report'}")
        console.print(f"report: [bold]{made}[/]")


@command("score", epilog="Examples:\n\n  zsbench score results/runs/<batch>/<run>/confusion.npy --split synthetic-9-3\n\n"
                          "  zsbench score conf.npy --split synthetic-bg-9-3 --absent zero --background excluded --json")
def score(
    confusion: Path = typer.Argument(..., help="A saved confusion matrix (.npy, rows = ground truth)."),
    split: str = typer.Option(..., "--split", "-s", help="The split the matrix was made under."),
    absent: str = typer.Option("nan", "--absent", help="nan (SPNet/CaGNet) or zero (ZS3Net) for absent classes."),
    background: str = typer.Option("split", "--background", help="split, seen (ZS3Net) or excluded (SPNet/CaGNet)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
):
    """Score a confusion matrix: every metric, per class, under a chosen convention."""
    from zsseg_bench.catalog.splits import load_split
    from zsseg_bench.metrics import Protocol, compute_scores

    sp = load_split(split)
    matrix = _load_matrix(confusion, sp.num_classes)
    if background != "split" and sp.background_index is None:
        raise ZsbenchError(f"--background {background}: split {sp.name} scores no background class "
                           f"(its background is {sp.background!r})")
    if absent not in ("nan", "zero") or background not in ("split", "seen", "excluded"):
        raise ZsbenchError("--absent must be nan|zero and --background split|seen|excluded")
    protocol = Protocol(absent=absent, background="seen" if background == "split" else background)
    scores = compute_scores(matrix, sp.seen_mask, sp.eval_names, protocol, sp.background_index)
    if as_json:
        per_class = json.loads(scores.per_class.to_json(orient="records"))
        typer.echo(json.dumps({"split": sp.name, "protocol": vars(protocol), "metrics": scores.metrics,
                               "per_class": per_class}, indent=2))
        return
    import pandas as pd

    console.print(_rich_table(pd.DataFrame([{m: f"{v:.4f}" for m, v in scores.metrics.items()}]),
                              title=f"{confusion} under {sp.name} (absent={absent}, background={protocol.background})"))
    console.print(_rich_table(scores.per_class.round(4)))


def _load_matrix(path: Path, k: int) -> np.ndarray:
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ZsbenchError(f"{path}: not a readable .npy file ({exc.__class__.__name__}); "
                           f"save it with numpy.save") from None
    if matrix.shape != (k, k):
        raise ZsbenchError(f"{path}: matrix has shape {matrix.shape}, the split has {k} evaluation classes "
                           f"(expected ({k}, {k})); pass the split the matrix was made under")
    if not np.issubdtype(matrix.dtype, np.number) or (matrix < 0).any():
        raise ZsbenchError(f"{path}: a confusion matrix holds non-negative counts")
    return matrix


@command("table", epilog="Examples:\n\n  zsbench table results/runs/<batch>\n\n"
                          "  zsbench table results/runs/* --published --out results/tables/synthetic\n\n"
                          "  zsbench table results/runs/<batch> --published --against voc12")
def table(
    runs: List[Path] = typer.Argument(..., help="Run folders, or folders containing them."),
    published: bool = typer.Option(False, "--published", help="Add published values and deltas."),
    source: Optional[str] = typer.Option(None, "--source", help="Published source (default: by priority)."),
    against: Optional[str] = typer.Option(None, "--against", help="With --published: show DATASET[/SPLIT]'s "
                                          "published rows instead of the runs' own (e.g. voc12 beside synthetic)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write OUT.md, .csv, .tex, .parquet."),
    metrics: str = typer.Option(",".join(METRIC_NAMES), "--metrics", help="Comma-separated metric columns."),
):
    """One table from run records: mean ± std over seeds, optionally beside the published numbers."""
    from zsseg_bench.report.tables import add_published, runs_frame, summarize, write_tables

    chosen = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METRIC_NAMES]
    if unknown:
        raise ZsbenchError(f"--metrics: unknown {unknown}; choose from {', '.join(METRIC_NAMES)}")
    summary = summarize(runs_frame(runs))
    if summary.empty:
        raise ZsbenchError("no finished (status ok) runs under the given folders")
    if against and not published:
        raise ZsbenchError("--against only makes sense with --published")
    if published:
        target = None
        if against:
            from zsseg_bench.runs.train import DEFAULT_SPLITS

            ds, _, sp = against.partition("/")
            sp = sp or DEFAULT_SPLITS.get(ds)
            if not sp:
                raise ZsbenchError(f"--against {against!r}: name the split too, e.g. {ds}/<split>")
            target = (ds, sp)
            console.print(f"[yellow]published rows of {ds}/{sp} shown for orientation: a different dataset, "
                          f"not comparable, not a check")
        summary = add_published(summary, source, target)
    print_comparison(summary, chosen)
    if out:
        for p in write_tables(summary, out, chosen):
            console.print(f"wrote {p}")


@command("check", epilog="Examples:\n\n  zsbench check results/runs/<batch>/<run>\n\n"
                          "  zsbench check results/runs/<batch> --source cagnetv2-readme --tolerance 0.02")
def check(
    runs: List[Path] = typer.Argument(..., help="Run folders, or folders containing them."),
    source: Optional[str] = typer.Option(None, "--source", help="Published source (default: by priority)."),
    tolerance: float = typer.Option(0.01, "--tolerance", help="Allowed |actual - expected| (fractions)."),
):
    """Compare runs with their published rows; exit 1 on any deviation beyond tolerance."""
    from zsseg_bench.report.check import check_runs

    frame = check_runs(runs, source, tolerance)
    shown = frame.assign(**{c: frame[c].map(lambda v: f"{v:.4f}") for c in ("expected", "actual", "tolerance")},
                         delta=frame["delta"].map(lambda v: f"{v:+.4f}"),
                         **{"pass": frame["pass"].map(lambda p: "[green]pass" if p else "[red]FAIL")})
    console.print(_rich_table(shown))
    failed = int((~frame["pass"]).sum())
    if failed:
        console.print(f"[red]{failed} of {len(frame)} metrics deviate beyond tolerance {tolerance}")
        raise typer.Exit(1)
    console.print(f"[green]all {len(frame)} metrics within tolerance {tolerance}")


@command("published", epilog="Examples:\n\n  zsbench published\n\n  zsbench published --dataset voc12 "
                              "--source cagnetv2-readme")
def published(
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
    source: Optional[str] = typer.Option(None, "--source"),
    method: Optional[str] = typer.Option(None, "--method", "-m"),
):
    """Show the published numbers transcribed from the seed documents (fractions)."""
    from zsseg_bench.catalog.published import published_frame

    frame = published_frame(dataset, source, method)
    metric_cols = [m for m in METRIC_NAMES if frame[m].notna().any()]
    shown = frame[["source", "dataset", "split", "method", *metric_cols]].copy()
    for m in metric_cols:
        shown[m] = shown[m].map(lambda v: "–" if np.isnan(v) else f"{v:.4f}")
    print_packed(shown, ["source", "split", "method"], [[m] for m in metric_cols], f"published rows: {len(frame)}")


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


@command("ls", epilog="Examples:\n\n  zsbench ls methods\n\n  zsbench ls splits")
def ls(what: str = typer.Argument(..., help="methods | datasets | splits | metrics | backbones | embeddings")):
    """List what is registered."""
    import pandas as pd

    from zsseg_bench.catalog.cards import list_cards
    from zsseg_bench.catalog.splits import list_splits
    from zsseg_bench.datasets import DATASETS
    from zsseg_bench.embeddings.base import EMBEDDINGS
    from zsseg_bench.methods.common.backbones import BACKBONES

    if what == "methods":
        frame = pd.DataFrame([{"method": c.name, "impl": c.impl, "version": c.version, "title": c.title,
                               "default run": "yes" if c.in_default_run else ""} for c in list_cards()])
    elif what == "splits":
        frame = pd.DataFrame([s.describe() for s in list_splits()])
        frame = frame.rename(columns={"n_seen": "seen", "n_unseen": "unseen"})
    elif what == "metrics":
        frame = pd.DataFrame([{"metric": m, "higher is better": "yes"} for m in METRIC_NAMES])
    elif what in ("datasets", "backbones", "embeddings"):
        reg = {"datasets": DATASETS, "backbones": BACKBONES, "embeddings": EMBEDDINGS}[what]
        frame = pd.DataFrame({what[:-1]: reg.names()})
    else:
        raise ZsbenchError(f"zsbench ls {what!r}: choose methods, datasets, splits, metrics, backbones or embeddings")
    key = list(frame.columns[:1])
    print_packed(frame.astype(str), key, [[c] for c in frame.columns[1:]])
