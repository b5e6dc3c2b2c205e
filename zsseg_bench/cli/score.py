"""`zsbench score`: every metric of a saved confusion matrix, under a chosen convention."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from zsseg_bench.cli.app import command, console, examples
from zsseg_bench.errors import ZsbenchError


@command("score", epilog=examples("zsbench score results/runs/<batch>/<run>/confusion.npy --split synthetic-9-3",
                                  "zsbench score conf.npy --split synthetic-bg-9-3 --absent zero --background excluded "
                                  "--json"))
def score(
    confusion: Path = typer.Argument(..., help="A saved confusion matrix (.npy, rows = ground truth)."),
    split: str = typer.Option(..., "--split", "-s", help="The split the matrix was made under."),
    absent: str = typer.Option("nan", "--absent", help="nan (SPNet/CaGNet) or zero (ZS3Net) for absent classes."),
    background: str = typer.Option("split", "--background", help="split, seen (ZS3Net) or excluded (SPNet/CaGNet)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
):
    """Score a confusion matrix: every metric, per class, under a chosen convention."""
    import pandas as pd

    from zsseg_bench.catalog.splits import load_split
    from zsseg_bench.metrics import ScoringRule, compute_scores
    from zsseg_bench.report.tables import format_value, rich_table

    sp = load_split(split)
    matrix = _load_matrix(confusion, sp.num_classes)
    if background != "split" and sp.background_index is None:
        raise ZsbenchError(f"--background {background}: split {sp.name} scores no background class "
                           f"(its background is {sp.background!r})")
    if absent not in ("nan", "zero") or background not in ("split", "seen", "excluded"):
        raise ZsbenchError("--absent must be nan|zero and --background split|seen|excluded")
    rule = ScoringRule(absent=absent, background="seen" if background == "split" else background)
    scores = compute_scores(matrix, sp.seen_mask, sp.eval_names, rule, sp.background_index)
    # What background means here: the split's own rule (e.g. excluded: not among the scored classes),
    # or the one chosen with --background; never the ScoringRule default a split without background ignores.
    bg, bg_from = (sp.background, "split") if background == "split" else (background, "--background")
    if as_json:
        per_class = json.loads(scores.per_class.to_json(orient="records"))
        typer.echo(json.dumps({"split": sp.name, "scoring": {"absent": absent, "background": bg,
                                                             "background_from": bg_from},
                               "metrics": scores.metrics, "per_class": per_class}, indent=2))
        return
    console.print(f"{confusion} under {sp.name} (absent={absent}, background={bg}, from the {bg_from})",
                  markup=False, highlight=False)
    console.print(rich_table(pd.DataFrame([{m: format_value(v) for m, v in scores.metrics.items()}])))
    per_class = scores.per_class.copy()
    for col in ("iou", "acc"):
        per_class[col] = per_class[col].map(format_value)
    console.print(rich_table(per_class))


def _load_matrix(path: Path, k: int):
    import numpy as np

    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ZsbenchError(f"{path}: not a readable .npy file ({exc.__class__.__name__}); "
                           f"save it with numpy.save") from None
    if not isinstance(matrix, np.ndarray):
        raise ZsbenchError(f"{path}: a {type(matrix).__name__} (an .npz archive?), not one matrix; save the matrix "
                           f"alone with numpy.save (a run's confusion.npy)")
    if matrix.shape != (k, k):
        raise ZsbenchError(f"{path}: matrix has shape {matrix.shape}, the split has {k} evaluation classes "
                           f"(expected ({k}, {k})); pass the split the matrix was made under")
    # Counts are integers: a float matrix (NaN, inf, fractions: an averaged or normalised matrix) or
    # one whose counts overflow int64 would give numbers that mean nothing.
    if not (np.issubdtype(matrix.dtype, np.integer) or matrix.dtype == np.bool_):
        raise ZsbenchError(f"{path}: dtype {matrix.dtype}; a confusion matrix holds integer pixel counts "
                           f"(a run's confusion.npy is int64), not averaged or normalised values")
    if matrix.dtype == np.uint64 and (matrix > np.iinfo(np.int64).max).any():
        raise ZsbenchError(f"{path}: counts beyond the int64 range; a confusion matrix holds pixel counts")
    if (matrix < 0).any():
        raise ZsbenchError(f"{path}: a confusion matrix holds non-negative counts")
    return matrix.astype(np.int64)
