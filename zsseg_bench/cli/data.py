"""`zsbench data check` and `zsbench data stats`: inspect a real dataset before training on it."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zsseg_bench.cli.app import CONTEXT, app, command, console, examples
from zsseg_bench.errors import ZsbenchError

data_app = typer.Typer(help="Check a dataset folder, or count its classes, before training on it.",
                       epilog=examples("zsbench data check voc12 --data-root ~/data/VOCdevkit",
                                       "zsbench data stats voc12 --data-root ~/data/VOCdevkit --split voc12-15-5"),
                       no_args_is_help=True, rich_markup_mode="rich", context_settings=CONTEXT)
app.add_typer(data_app, name="data")


def data_command(*args, **kwargs):
    """`command` for the `zsbench data` sub-app."""
    return command(*args, group=data_app, path=("data",), **kwargs)


def _options(split: str | None, overrides: list[str] | None):
    from zsseg_bench.catalog.cards import parse_override
    from zsseg_bench.catalog.splits import load_split

    cfg: dict = {}
    for text in overrides or []:
        keys, value = parse_override(text)
        if keys[0] == "dataset":
            keys = keys[1:]
        if len(keys) != 1:
            raise ZsbenchError(f"--set {text!r}: data commands take dataset options, e.g. --set layout=aug")
        cfg[keys[0]] = value
    return cfg, (load_split(split) if split else None)


class _Bars:
    """A progress bar per part (on stderr, so that the tables stay clean on stdout)."""

    def __init__(self):
        from rich.console import Console

        self.progress = Progress(TextColumn("[bold]{task.description:<12}"), BarColumn(bar_width=30),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                                 transient=True)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def __call__(self, part: str, total: int):
        task = self.progress.add_task(part, total=total)
        return lambda: self.progress.advance(task)


@data_command("check", epilog="Examples:\n\n  zsbench data check voc12 --data-root ~/data/VOCdevkit\n\n"
                              "  zsbench data check context --data-root ~/data/VOC2010 --split context59-zs3-u4\n\n"
                              "  zsbench data check cocostuff --data-root ~/data/cocostuff --limit 2000")
def check(
    dataset: str = typer.Argument(..., help="voc12, context, cocostuff, cocostuff10k, ade20k or coco."),
    data_root: str = typer.Option(..., "--data-root", help="The dataset's root folder."),
    split: str | None = typer.Option(None, "--split", "-s", help="Check labels against this split's class list."),
    part: str = typer.Option("all", "--part", help="train, test or all."),
    limit: int | None = typer.Option(None, "--limit", help="Only open the first N images of each part."),
    strict_counts: bool = typer.Option(False, "--strict-counts",
                                       help="An image count that differs from the full dataset's is an error."),
    workers: int | None = typer.Option(None, "--workers", help="Threads that decode files (default 2 x cores)."),
    overrides: list[str] = typer.Option(None, "--set", help="Dataset option key=value, e.g. layout=aug."),
):
    """Check layout, image counts, decoding, mask sizes and label values; exit 1 listing each problem."""
    from zsseg_bench.datasets import DATASETS
    from zsseg_bench.datasets.audit import check_dataset

    DATASETS.get(dataset)
    if limit is not None and limit < 1:
        raise ZsbenchError(f"--limit {limit}: must be >= 1 (leave it out to check every image)")
    if part not in ("train", "test", "all"):
        raise ZsbenchError(f"--part {part!r}: choose train, test or all")
    cfg, sp = _options(split, overrides)
    parts = ("train", "test") if part == "all" else (part,)
    with _Bars() as bars:
        reports = check_dataset(dataset, data_root, cfg, sp, parts, limit, workers, strict_counts, progress=bars)
    table = Table(title=f"{dataset} at {data_root}" + (f" (split {sp.name})" if sp else ""), header_style="bold")
    for col in ("part", "layout", "images", "expected", "checked", "problems", "warnings"):
        table.add_column(col, justify="right" if col not in ("part", "layout") else "left")
    for r in reports:
        table.add_row(r.part, r.layout, str(r.images), str(r.expected or "-"), str(r.checked),
                      f"[red]{len(r.problems)}" if r.problems else "[green]0", str(len(r.warnings)))
    console.print(table)
    for r in reports:
        for w in r.warnings:
            console.print(f"[yellow]warning[/] ({r.part}): {w}")
    problems = list(dict.fromkeys(" ".join(str(p).split()) for r in reports for p in r.problems))
    for p in problems:  # one line each, naming the file (a layout problem shared by both parts once)
        typer.echo("error: " + p, err=True)
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]ok[/]: {sum(r.checked for r in reports)} images checked, no problems")


@data_command("stats", epilog="Examples:\n\n  zsbench data stats voc12 --data-root ~/data/VOCdevkit\n\n"
                              "  zsbench data stats voc12 --data-root ~/data/VOCdevkit --split voc12-zs3-u4\n\n"
                              "  zsbench data stats synthetic --worlds 0,1,2,3 --images 400")
def stats(
    dataset: str = typer.Argument(..., help="voc12, context, cocostuff, cocostuff10k, ade20k, coco or synthetic "
                                            "(its knob statistics, versions 1 and 2 side by side)."),
    data_root: str | None = typer.Option(None, "--data-root", help="The dataset's root folder (not for synthetic)."),
    split: str | None = typer.Option(None, "--split", "-s", help="Mark seen/unseen classes; count images "
                                                                     "with unseen classes."),
    part: str = typer.Option("train", "--part", help="train or test."),
    workers: int | None = typer.Option(None, "--workers", help="Threads that decode files (default 2 x cores)."),
    overrides: list[str] = typer.Option(None, "--set", help="Dataset option key=value, e.g. layout=aug."),
    images: int = typer.Option(600, "--images", min=20, help="synthetic: images of the train part measured."),
    worlds: str = typer.Option("0", "--worlds", help="synthetic: comma-separated worlds; the table shows their mean."),
):
    """Per-class pixel and image counts; with --split, how many training images contain unseen classes.
    For synthetic: the statistics of the benchmark's knobs, for versions 1 and 2."""
    from zsseg_bench.datasets import DATASETS, dataset_info
    from zsseg_bench.datasets.audit import dataset_stats

    DATASETS.get(dataset)
    cfg, sp = _options(split, overrides)
    if dataset_info(dataset).synthetic:
        return _synthetic_stats(cfg, images, worlds)
    if data_root is None:
        raise ZsbenchError(f"zsbench data stats {dataset}: pass --data-root, the dataset's root folder")
    with _Bars() as bars:
        out = dataset_stats(dataset, data_root, cfg, sp, part, workers, progress=bars)
    table = Table(title=f"{dataset} {part}: {out['images']} images, class list {out['classes']}", header_style="bold")
    columns = list(out["rows"][0]) if out["rows"] else []
    for col in columns:
        table.add_column(col, justify="left" if col in ("class", "role") else "right")
    for row in out["rows"]:
        style = "red" if row.get("role") == "unseen" else "dim" if row.get("role") == "excluded" else None
        table.add_row(*[str(row[c]) for c in columns], style=style)
    console.print(table)
    console.print(f"ignored pixels: {out['ignored pixels']}")
    if sp is not None:
        console.print(f"split {sp.name}: {out['images with unseen classes']} of {out['images']} {part} images contain "
                      f"unseen classes; policy {out['train_policy']} trains on {out['images used for training']}")
    if out["outside"]:
        values = ", ".join(f"{v} ({n} px)" for v, n in list(out["outside"].items())[:5])
        raise ZsbenchError(f"{data_root}: {sum(out['outside'].values())} pixels have label values outside class list "
                           f"{out['classes']} and the ignore index: {values}; 'zsbench data check' names the files",
                           exit_code=1)


def _synthetic_stats(cfg: dict, images: int, worlds: str) -> None:
    """The knob statistics of both versions of the synthetic benchmark, one column each."""
    from zsseg_bench.datasets.synthetic.stats import mean_statistics

    try:
        seeds = [int(w) for w in worlds.split(",")]
    except ValueError:
        raise ZsbenchError(f"--worlds {worlds!r}: write comma-separated world numbers, e.g. 0,1,2") from None
    if set(cfg) - {"size"} or not isinstance(cfg.get("size", 64), int) or min(seeds) < 0:
        raise ZsbenchError("zsbench data stats synthetic: --set takes size=N only; worlds are --worlds 0,1,...")
    size = cfg.get("size", 64)
    out = {v: mean_statistics(v, seeds, images, size) for v in (1, 2)}
    shown = f"world {seeds[0]}" if len(seeds) == 1 else f"mean of worlds {worlds}"
    table = Table(title=f"synthetic benchmark, {shown}: knob statistics of the first {images} train images "
                        f"({size} px)", header_style="bold")
    for col in ("statistic", "v1", "v2", "measures"):
        table.add_column(col, justify="right" if col in ("v1", "v2") else "left")
    rows = [("leave-one-class-out R²", "loco_r2", "{:.3f}", "appearance predicted from the embedding"),
            ("scene share (eps²)", "scene_share", "{:.3f}", "within-class appearance variance the scene explains"),
            ("touching share", "touching_share", "{:.3f}", "object instances touching another"),
            ("neighbour information (bits)", "neighbour_bits", "{:.3f}", "I(class; touching class | scene)")]
    for label, key, fmt, what in rows:
        table.add_row(label, fmt.format(out[1][key]), fmt.format(out[2][key]), what)
    table.add_row("instances per image", *(f"{out[v]['instances'] / images:.2f}" for v in (1, 2)),
                  "described (>= 12 visible px)")
    console.print(table)
    for v in (1, 2):
        pairs = ", ".join(f"{p} {n}" for p, n in out[v]["top_pairs"])
        console.print(f"v{v} pairs touching most often: {pairs}")
