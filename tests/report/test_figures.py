"""The report's figures draw what was logged: every loss of every method, a methods x classes
heatmap, and grid colours that keep every class apart from the "not scored" colour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.helpers.settings import REPO
from zsseg_bench.report import plots
from zsseg_bench.report.build import load_runs
from zsseg_bench.report.palette import palette_for, voc_palette, with_not_scored

COMMITTED = REPO / "results" / "runs" / "20261121T191406__synthetic-9-3"  # the default run, 3 seeds


@pytest.fixture
def drawn(monkeypatch):
    """The figures plots.* would save, kept open instead."""
    figures = []

    def keep(fig, stem):
        figures.append(fig)
        return [stem]

    monkeypatch.setattr(plots, "save_figure", keep)
    return figures


def _logged(logs) -> set[tuple[str, str, str, int]]:
    return {(method, e.get("label") or e["stage"], loss, seed)
            for method, seed, entries in logs for e in entries for loss in e["losses"]}


def _panels(fig) -> dict[str, tuple[int, list[str]]]:
    """Panel title -> (lines drawn, legend entries)."""
    out = {}
    for ax in fig.axes:
        if ax.get_title():
            legend = ax.get_legend()
            out[ax.get_title()] = (len(ax.get_lines()), [t.get_text() for t in legend.get_texts()] if legend else [])
    return out


def test_training_figure_draws_every_logged_series_of_the_default_run(drawn):
    runs = [r for r in load_runs([COMMITTED]) if r.ok]
    logs = [(r.method, r.seed, r.log) for r in runs if r.log]
    assert plots.training_curves(logs, COMMITTED / "unused", "t") is not None
    panels = _panels(drawn[0])
    logged = _logged(logs)
    assert sum(n for n, _ in panels.values()) == len(logged)  # one line per (method, stage, loss, seed)
    for method, label, loss, _ in logged:
        assert loss in panels[f"{method}: {label}"][1], (method, label, loss)
    cagnet = {loss for m, _, loss, _ in logged if m == "cagnet-pi"}
    assert {"loss_D", "loss_G", "kld", "content", "cls_transfer"} <= cagnet  # what main's figure dropped
    assert any(title.startswith("cagnet-pi: ") for title in panels)


def test_training_figure_counts_on_hand_made_logs(drawn):
    def entries(label, losses, n=3):
        return [{"stage": label, "label": label, "iteration": 10 * (i + 1),
                 "losses": {k: 1.0 / (i + 1) + j for j, k in enumerate(losses)}} for i in range(n)]

    logs = [(m, s, entries("step1", [f"l{k}" for k in range(14)]) + entries("mixed", ["a", "b"]))
            for m in ("cagnet-pi", "cagnet-pa") for s in (0, 1)]
    logs += [("spnet", 0, entries("train", ["loss"]))]
    plots.training_curves(logs, REPO / "unused", "")
    panels = _panels(drawn[0])
    assert panels["cagnet-pi: step1"] == (28, [f"l{k}" for k in range(14)])  # 14 losses x 2 seeds, none dropped
    assert panels["cagnet-pa: mixed"][0] == 4 and panels["spnet: train"] == (1, ["loss"])
    assert sum(n for n, _ in panels.values()) == len(_logged(logs))


def test_per_class_figure_is_a_methods_by_classes_heatmap(drawn):
    rows = [{"method": m, "seed": s, "class_name": c, "subset": "unseen" if c == "sheep" else "seen",
             "iou": 0.1 * k + 0.01 * s} for m in ("spnet", "zs3net") for s in (0, 1)
            for k, c in enumerate(["cat", "dog", "sheep"])]
    rows.append({"method": "spnet", "seed": 0, "class_name": "background", "subset": "excluded", "iou": np.nan})
    plots.per_class_iou(pd.DataFrame(rows), REPO / "unused")
    ax = drawn[0].axes[0]
    (image,) = ax.get_images()
    assert image.get_array().shape == (2, 3)  # methods x classes; the excluded class is left out
    assert np.allclose(image.get_array()[1], [0.005, 0.105, 0.205])  # zs3net: mean over seeds
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "sheep"]


@pytest.mark.parametrize("dataset, split", [("synthetic", "synthetic-9-3"), ("voc12", "voc12-15-5")])
def test_grid_palette_keeps_every_class_apart_from_not_scored(dataset, split):
    from zsseg_bench.catalog.splits import load_split

    sp = load_split(split)
    ids = [sp.classes.id_of(n) for n in sp.eval_names]
    unscored = [sp.classes.id_of(n) for n in sp.excluded] + [sp.ignore_index]
    palette, colour = with_not_scored(palette_for(dataset), ids, unscored)
    distances = np.linalg.norm(palette[ids].astype(float) - np.asarray(colour, float), axis=1)
    assert distances.min() >= 100, dict(zip(sp.eval_names, distances.round()))
    assert all(tuple(palette[i]) == tuple(colour) for i in unscored)
    # main's grids drew the excluded background in VOC black, as close as this to cat, dog, boat, tvmonitor:
    black = np.linalg.norm(voc_palette()[[8, 12, 4, 20]].astype(float), axis=1)
    assert black.max() < 150
