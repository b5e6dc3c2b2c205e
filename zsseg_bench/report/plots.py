"""The report's charts, drawn with matplotlib (Agg) and written as PNG and SVG.

* per-class IoU as a methods x classes heatmap (mean over seeds), unseen classes boxed and
  their names in red;
* seen vs unseen mIoU of every run and every method's mean, with hIoU iso-curves, beside the
  published points: in the same axes when they are for the same dataset and split, in a
  separate "reference only" panel when they are not (the synthetic benchmark has no
  published numbers; VOC, Context and COCO-Stuff points are other data);
* where each unseen class's pixels go: for every unseen class and method, the share
  predicted correctly and the seen (or other unseen) classes that absorb the rest;
* training curves from train_log.jsonl: a row per method, a panel per stage, every logged loss.

matplotlib is imported when a chart is drawn, never at `zsbench` start-up. Files are written
without timestamps, so the same records give byte-identical SVGs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from zsseg_bench.report.tables import format_value, method_sort_key

__all__ = ["method_colours", "per_class_iou", "seen_unseen_scatter", "unseen_confusions", "training_series",
           "training_curves",
           "hiou_curve", "save_figure"]

UNSEEN_RED = "#c0392b"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "zsseg-bench", "figure.max_open_warning": 0, "font.size": 9})
    return plt


def save_figure(fig, stem: Path) -> list[Path]:
    """stem.png (120 dpi) and stem.svg, without creation dates."""
    plt = _pyplot()
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=120, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return paths


def method_colours(methods) -> dict[str, str]:
    """One fixed colour per method (the comparison's order, so a method keeps its colour)."""
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
               "#7f7f7f", "#d62728"]
    ordered = sorted(dict.fromkeys(methods), key=method_sort_key)
    return {m: palette[i % len(palette)] for i, m in enumerate(ordered)}


def hiou_curve(h: float, s: np.ndarray) -> np.ndarray:
    """U such that the harmonic mean of (S, U) is h; NaN where no U in [0, 1] reaches h."""
    with np.errstate(divide="ignore", invalid="ignore"):
        u = h * s / (2 * s - h)
    return np.where((2 * s > h) & (u >= 0) & (u <= 1), u, np.nan)


def per_class_iou(frame: pd.DataFrame, stem: Path, title: str = "") -> list[Path]:
    """Methods x classes heatmap of per-class IoU (mean over seeds, the value written in each cell when
    it fits); unseen classes' names in red and their columns boxed. `frame`: method, seed, class_name,
    subset (seen/unseen/excluded), iou."""
    plt = _pyplot()
    frame = frame[frame["subset"] != "excluded"]
    classes = list(dict.fromkeys(frame["class_name"]))
    unseen = [c for c, name in enumerate(classes) if name in set(frame.loc[frame["subset"] == "unseen", "class_name"])]
    methods = list(method_colours(frame["method"]))  # comparison order
    mean = frame.groupby(["method", "class_name"])["iou"].mean()
    grid = np.array([[mean.get((m, c), np.nan) for c in classes] for m in methods], dtype=float)
    seeds = frame.groupby("method")["seed"].nunique()
    cell = 0.42 if len(classes) <= 40 else 0.12
    fig, ax = plt.subplots(figsize=(max(6.0, cell * len(classes) + 3.2), 0.36 * len(methods) + 1.9))
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.8")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto",
                      interpolation="nearest")
    if len(classes) <= 40:  # the numbers, where a cell is wide enough to hold them
        for (r, c), v in np.ndenumerate(grid):
            ax.text(c, r, format_value(v, ".2f"), ha="center", va="center", fontsize=6.5,
                    color="black" if v == v and v > 0.6 else "white")
    for c in unseen:
        ax.add_patch(plt.Rectangle((c - 0.5, -0.5), 1, len(methods), fill=False, edgecolor=UNSEEN_RED, lw=1.6))
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=45 if len(classes) <= 40 else 90, ha="right" if len(classes) <= 40
                       else "center", fontsize=7 if len(classes) <= 40 else 4.5)
    for c in unseen:
        ax.get_xticklabels()[c].set_color(UNSEEN_RED)
        ax.get_xticklabels()[c].set_fontweight("bold")
    ax.set_yticks(range(len(methods)))
    ax.set_yticklabels([f"{m} ({int(seeds[m])} seed{'s' if seeds[m] > 1 else ''})" for m in methods], fontsize=7.5)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label="IoU (mean over seeds)")
    ax.set_title((title + "  " if title else "") + ("(unseen classes boxed, names in red; grey: no value)"
                                                    if unseen else ""), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, stem)


def _iso_curves(ax) -> None:
    s = np.linspace(0.0005, 1, 400)
    for h in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        u = hiou_curve(h, s)
        ax.plot(s, u, color="0.75", lw=0.7, ls="--", zorder=0)
        ok = np.flatnonzero(~np.isnan(u))
        if ok.size:  # label where the curve meets the top of the box or the right edge
            i = ok[-1] if u[ok[-1]] < 0.97 else ok[np.argmin(np.abs(u[ok] - 0.97))]
            ax.text(min(s[i], 0.98), min(u[i], 0.98), "h=" + format_value(h, ".1f"), color="0.55", fontsize=6.5,
                    ha="right", va="top")


def _square(ax, title: str) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("seen mIoU (S-mIoU)")
    ax.set_ylabel("unseen mIoU (U-mIoU)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.2)


def seen_unseen_scatter(ours: pd.DataFrame, published: pd.DataFrame, stem: Path, title: str = "",
                        comparable: bool = False) -> list[Path]:
    """`ours`: method, seed, S-mIoU, U-mIoU (one row per run). `published`: method, dataset, split,
    source, S-mIoU, U-mIoU. With `comparable`, published points share our axes (hollow markers,
    a line to our mean); otherwise they get their own panel, labelled as reference only."""
    plt = _pyplot()
    published = published.dropna(subset=["S-mIoU", "U-mIoU"]) if not published.empty else published
    two_panels = not comparable and not published.empty
    fig, axes = plt.subplots(1, 2 if two_panels else 1, figsize=(10.5 if two_panels else 5.6, 5.0), squeeze=False)
    ax = axes[0, 0]
    colours = method_colours(list(ours["method"]) + list(published["method"] if comparable else []))
    _iso_curves(ax)
    means = ours.groupby("method", sort=False)[["S-mIoU", "U-mIoU"]].mean()
    for m, row in means.iterrows():
        runs = ours[ours["method"] == m]
        if len(runs) > 1:
            ax.scatter(runs["S-mIoU"], runs["U-mIoU"], s=14, color=colours[m], alpha=0.45, lw=0)
        ax.scatter([row["S-mIoU"]], [row["U-mIoU"]], s=60, color=colours[m], edgecolor="black", lw=0.6, zorder=3,
                   label=f"{m} (ours{', mean of ' + str(len(runs)) + ' seeds' if len(runs) > 1 else ''})")
    if comparable:
        for _, row in published.iterrows():
            c = colours.get(row["method"], "0.4")
            ax.scatter([row["S-mIoU"]], [row["U-mIoU"]], s=60, facecolor="none", edgecolor=c, lw=1.4, zorder=3,
                       label=f"{row['method']} (published, {row['source']})")
            if row["method"] in means.index:
                ax.plot([row["S-mIoU"], means.loc[row["method"], "S-mIoU"]],
                        [row["U-mIoU"], means.loc[row["method"], "U-mIoU"]], color=c, lw=0.8, ls=":")
    _square(ax, title or "seen vs unseen mIoU (dashed: equal hIoU)")
    ax.legend(fontsize=7, loc="upper left")
    if two_panels:
        ref = axes[0, 1]
        _iso_curves(ref)
        from matplotlib.lines import Line2D

        from zsseg_bench.datasets import dataset_info

        ref_colours = method_colours(published["method"])
        for _, row in published.iterrows():
            ref.scatter([row["S-mIoU"]], [row["U-mIoU"]], s=36, marker=dataset_info(row["dataset"]).marker,
                        color=ref_colours[row["method"]], edgecolor="black", lw=0.4)
        handles = [Line2D([], [], ls="", marker="o", color=c, markeredgecolor="black", markeredgewidth=0.4, label=m)
                   for m, c in ref_colours.items()]
        handles += [Line2D([], [], ls="", marker=dataset_info(ds).marker, markerfacecolor="white",
                           markeredgecolor="black", label=ds) for ds in dict.fromkeys(published["dataset"])]
        ref.legend(handles=handles, fontsize=6.5, loc="upper left", ncol=2)
        _square(ref, "published (reference only: other datasets,\nnot comparable with the runs on the left)")
    return save_figure(fig, stem)


def unseen_confusions(confusions: dict[str, np.ndarray], names, seen_mask, colours: np.ndarray, stem: Path,
                      top: int = 3, title: str = "") -> tuple[list[Path], pd.DataFrame]:
    """Where each unseen class's ground-truth pixels go, per method.

    `confusions`: method -> [K, K] counts (rows = ground truth; seeds summed). `colours`: [K, 3]
    RGB 0..255 of each class (the dataset palette). Returns the files and one row per (unseen
    class, method): correct share and the `top` classes that absorb most of the rest."""
    plt = _pyplot()
    names = list(names)
    seen_mask = np.asarray(seen_mask, dtype=bool)
    unseen_idx = [k for k in range(len(names)) if not seen_mask[k]]
    methods = list(confusions)
    rows = []
    fig, axes = plt.subplots(len(unseen_idx), 1, figsize=(9.5, 0.9 + 0.42 * len(methods) * len(unseen_idx)),
                             squeeze=False, sharex=True)
    for a, u in enumerate(unseen_idx):
        ax = axes[a, 0]
        for r, m in enumerate(methods):
            row = np.asarray(confusions[m][u], dtype=np.float64)
            total = row.sum()
            share = row / total if total > 0 else np.zeros_like(row)
            others = [k for k in np.argsort(-share, kind="stable") if k != u and share[k] > 0][:top]
            segments = [(u, share[u])] + [(k, share[k]) for k in others]
            rest = max(0.0, 1.0 - sum(s for _, s in segments)) if total > 0 else 0.0
            left = 0.0
            for k, s in segments:
                rgb = colours[k] / 255.0
                ax.barh(r, s, left=left, color=rgb, edgecolor="white", lw=0.5, hatch=None if k != u else "//")
                if s >= 0.07:
                    from zsseg_bench.report.palette import text_colour

                    label = ("✓ " if k == u else "") + f"{names[k]} {format_value(s, '.0%')}"
                    ax.text(left + s / 2, r, label, ha="center", va="center", fontsize=6.5,
                            color=text_colour(colours[k]))
                left += s
            if rest > 0:
                ax.barh(r, rest, left=left, color="0.85", edgecolor="white", lw=0.5)
                if rest >= 0.07:
                    ax.text(left + rest / 2, r, "other " + format_value(rest, ".0%"), ha="center", va="center",
                            fontsize=6.5)
            record = {"unseen class": names[u], "method": m, "gt_pixels": int(total),
                      "correct": share[u] if total > 0 else np.nan}
            for i in range(top):
                k = others[i] if i < len(others) else None
                record[f"absorber {i + 1}"] = "" if k is None else \
                    f"{names[k]} ({'seen' if seen_mask[k] else 'unseen'}) {format_value(share[k], '.1%')}"
            rows.append(record)
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_ylabel(names[u], rotation=0, ha="right", va="center", color=UNSEEN_RED, fontweight="bold")
    axes[-1, 0].set_xlabel("share of the unseen class's ground-truth pixels, by predicted class "
                           "(hatched ✓ = correct)")
    fig.suptitle(title or "where unseen pixels go", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, stem), pd.DataFrame(rows)


def training_series(logs: list[tuple[str, int, list[dict]]]) -> dict[tuple[str, str], dict[tuple[str, int], list]]:
    """What the training figure draws: (method, stage label) -> (loss, seed) -> [(iteration, value)], every
    loss of every logged entry."""
    panels: dict[tuple[str, str], dict[tuple[str, int], list]] = {}
    for method, seed, entries in logs:
        for e in entries:
            label = e.get("label") or e.get("stage", "")
            for loss, value in (e.get("losses") or {}).items():
                panels.setdefault((method, label), {}).setdefault((loss, seed), []).append(
                    (int(e.get("iteration", 0)), float(value)))
    return panels


def training_curves(logs: list[tuple[str, int, list[dict]]], stem: Path, title: str = "") -> list[Path] | None:
    """`logs`: (method, seed, train_log entries). One row of panels per method, one panel per stage, every
    loss of that stage in it (a colour per loss, a line style per seed); None if nothing was logged."""
    plt = _pyplot()
    panels = training_series(logs)
    if not panels:
        return None
    methods = sorted(dict.fromkeys(m for m, _ in panels), key=method_sort_key)
    rows = {m: [label for mm, label in panels if mm == m] for m in methods}
    cols = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(methods), cols, figsize=(5.2 * cols, 2.5 * len(methods)), squeeze=False)
    seeds = sorted({s for _, s, _ in logs})
    cycle = [*plt.get_cmap("tab10").colors, *plt.get_cmap("Dark2").colors]  # 18 colours: CaGNet logs 12 losses
    for r, m in enumerate(methods):
        for c in range(cols):
            ax = axes[r, c]
            if c >= len(rows[m]):
                ax.axis("off")
                continue
            _loss_panel(ax, panels[(m, rows[m][c])], seeds, cycle)
            ax.set_title(f"{m}: {rows[m][c]}", fontsize=8.5)
    if title:
        fig.suptitle(title + " (log scale; " + (f"line styles: seeds {', '.join(map(str, seeds))}" if len(seeds) > 1
                                                else f"seed {seeds[0]}") + ")", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, stem)


def _loss_panel(ax, series: dict[tuple[str, int], list], seeds: list[int], cycle: list[str]) -> None:
    """Every (loss, seed) series of one stage: a colour per loss, a line style per seed, a log scale
    (symlog where a loss is not positive) so that losses of different sizes all show; legend outside."""
    from matplotlib.lines import Line2D

    styles = ["-", "--", ":", "-."]
    losses = list(dict.fromkeys(loss for loss, _ in series))
    for (loss, seed), points in series.items():
        points = sorted(points)
        ax.plot([p[0] for p in points], [p[1] for p in points], color=cycle[losses.index(loss) % len(cycle)],
                ls=styles[seeds.index(seed) % len(styles)], marker="o" if len(points) < 6 else None, ms=2.5, lw=1.0)
    values = [v for points in series.values() for _, v in points]
    if min(values) > 0:
        ax.set_yscale("log")
    else:
        ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_xlabel("iteration", fontsize=7.5)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=cycle[i % len(cycle)], lw=1.4, label=loss) for i, loss in enumerate(losses)]
    ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              borderaxespad=0)
