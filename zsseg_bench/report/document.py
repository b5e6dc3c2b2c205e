"""What a report says and how it reads: the content that build.py gathers from the run folders,
written as one Document and rendered to Markdown (report.md) and to a self-contained HTML page
(report.html, figures embedded).

The prose lives here and only here; the numbers in it are formatted by tables.format_value.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from zsseg_bench.report.diagnostics import write_diagnostics
from zsseg_bench.report.tables import format_cell, format_value

if TYPE_CHECKING:
    from zsseg_bench.catalog.splits import Split

__all__ = ["Document", "Grid", "Section", "ReportContent", "report_document"]


# ---- a tiny document model rendered to Markdown and to HTML ---------------------------------------
def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text; missing numbers as an en dash."""
    return frame.apply(lambda col: col.map(format_cell))


class Document:
    """Headings, paragraphs (with `code` and **bold**), tables, images and bullet lists."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def heading(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def para(self, text: str):
        self.blocks.append(("p", text))

    def bullets(self, items):
        self.blocks.append(("ul", list(items)))

    def table(self, frame: pd.DataFrame):
        self.blocks.append(("table", frame))

    def image(self, relpath: str, alt: str):
        self.blocks.append(("img", relpath, alt))

    def markdown(self) -> str:
        from tabulate import tabulate

        out = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append("#" * block[1] + " " + block[2])
            elif kind == "p":
                out.append(block[1])
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in block[1]))
            elif kind == "table":
                frame = _cells(block[1])
                out.append(tabulate(frame, headers="keys", tablefmt="github", showindex=False, disable_numparse=True))
            elif kind == "img":
                out.append(f"![{block[2]}]({block[1]})")
        return "\n\n".join(out) + "\n"

    @staticmethod
    def _inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
        return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)

    def html(self, base: Path, title: str) -> str:
        """One HTML page; images are read from `base` and embedded."""
        body = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                body.append(f"<h{block[1]}>{self._inline(block[2])}</h{block[1]}>")
            elif kind == "p":
                body.append(f"<p>{self._inline(block[1])}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{self._inline(i)}</li>" for i in block[1]) + "</ul>")
            elif kind == "table":
                frame = _cells(block[1])
                head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
                rows = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
                               for row in frame.itertuples(index=False))
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif kind == "img":
                data = base64.b64encode((base / block[1]).read_bytes()).decode()
                body.append(f'<figure><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{html.escape(block[2])}</figcaption></figure>")
        style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
                 "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
                 "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}"
                 "img{max-width:100%}figure{margin:1em 0}figcaption{font-size:12px;color:#555}"
                 "code{background:#f3f3f3;padding:0 3px}")
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
                f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# ---- the content of a report ------------------------------------------------------------------------
@dataclass
class Grid:
    """One qualitative grid: its PNG (relative to the report folder), the seed and notes on what is missing."""
    image: str
    seed: int
    notes: list[str]


@dataclass
class Section:
    """One (dataset, split): the figures drawn (kind -> PNG relative to the report folder) and their tables."""
    dataset: str
    split_name: str
    split: Split | None  # None when the split file cannot be read
    figures: dict[str, str]
    comparable: bool  # published points exist for this dataset and split
    any_published: bool  # published points of any dataset (a reference panel)
    confusions: pd.DataFrame | None  # where unseen pixels go (plots.unseen_confusions)
    reused: list[str]  # runs that reused trained stages, "method (seed s)"
    grids: list[Grid]
    diagnostics: pd.DataFrame | None = None  # mechanism diagnostics, one row per run (report/diagnostics.py)


@dataclass
class ReportContent:
    made: str  # UTC time stamp
    command: str
    n_runs: int
    n_ok: int
    methods: list[str]
    groups: list[tuple[str, str]]  # (dataset, split) in report order
    seeds: list[int]
    source: str | None
    mask_unscored: bool
    comparison: pd.DataFrame  # the main metrics, formatted, with published values and deltas
    all_metrics: pd.DataFrame  # every metric, formatted
    unmatched: list[str]  # "dataset/split" without published numbers
    sections: list[Section]
    protocol: pd.DataFrame
    environment: pd.DataFrame
    unfinished: list[tuple[str, str, str | None]]  # run folder name, status, error
    folders: list[str]
    table_name: str = "comparison"  # the stem of the written table files


# ---- the report's text ------------------------------------------------------------------------------
def report_document(content: ReportContent) -> Document:
    doc = Document()
    _introduction(doc, content)
    _comparison(doc, content)
    for section in content.sections:
        _section(doc, section, content.mask_unscored)
    _protocol_and_runs(doc, content)
    return doc


def _introduction(doc: Document, c: ReportContent) -> None:
    doc.heading(1, "zsseg-bench report")
    doc.para(f"Made {c.made} by `{c.command or 'zsbench report'}` from {c.n_runs} run record(s): "
             f"{c.n_ok} finished" + (f", {c.n_runs - c.n_ok} not finished (listed at the end)"
                                     if c.n_runs > c.n_ok else "") + ". Methods: "
             + ", ".join(f"`{m}`" for m in c.methods) + "; "
             + "; ".join(f"dataset `{d}`, split `{s}`" for d, s in c.groups) + "; seeds "
             + ", ".join(str(s) for s in c.seeds) + ".")
    doc.para("Numbers are fractions in [0, 1] (mean ± std over seeds, std with ddof=1). Every figure and table "
             "below is computed from the run folders alone; nothing was re-run.")


def _comparison(doc: Document, c: ReportContent) -> None:
    doc.heading(2, "Comparison")
    doc.para("Ours beside the published numbers (`pub`) and the difference (`Δ` = ours − published), for the "
             "rows that have a published counterpart (same method, dataset and split; source by priority"
             + (f", here `{c.source}`" if c.source else "") + ").")
    doc.table(c.comparison)
    if c.unmatched:
        doc.para("No published numbers exist for " + ", ".join(f"`{u}`" for u in c.unmatched) + " (the synthetic "
                 "benchmark is this project's own): the published columns are empty there (left out when no row has "
                 "one), and the scatter plot "
                 "shows published points only as a separate reference panel.")
    n = c.table_name
    doc.para(f"All metrics: `{n}.md`, `{n}.csv` (numbers), `{n}.tex` (LaTeX for a paper), `{n}.parquet`.")
    doc.table(c.all_metrics)


def _section(doc: Document, s: Section, mask_unscored: bool) -> None:
    doc.heading(2, f"{s.dataset} / {s.split_name}")
    if s.split is not None:
        sp = s.split
        doc.para(f"Seen classes ({int(sp.seen_mask.sum())}): " + ", ".join(sp.seen_names) + ". "
                 f"**Unseen classes ({len(sp.unseen)}): " + ", ".join(sp.unseen) + ".** "
                 f"Excluded: {', '.join(sp.excluded) or 'none'}.")
    doc.heading(3, "Seen vs unseen")
    doc.image(s.figures["scatter"], "seen vs unseen mIoU with hIoU iso-curves")
    doc.para("Each run is a small dot, each method's mean over seeds a large one; dashed curves join points of "
             "equal hIoU. " + ("Hollow markers are the published numbers for the same dataset and split, "
                               "joined to our mean by a dotted line." if s.comparable else
                               "The right panel shows published points of real datasets (marker = dataset) for "
                               "reference only: they are not comparable with runs on this benchmark."
                               if s.any_published else "No published points to show."))
    if "per_class_iou" in s.figures:
        doc.heading(3, "Per-class IoU")
        doc.image(s.figures["per_class_iou"], "per-class IoU, unseen classes shaded")
    if s.confusions is not None:
        doc.heading(3, "Where unseen pixels go")
        doc.image(s.figures["unseen_confusions"], "share of each unseen class's pixels by predicted class")
        doc.para("For each unseen class: the share of its ground-truth pixels predicted correctly and the classes "
                 "that absorb most of the rest (confusion matrices summed over seeds).")
        doc.table(s.confusions.assign(correct=s.confusions["correct"].map(lambda v: format_value(v, ".1%"))))
    if "training" in s.figures:
        doc.heading(3, "Training curves")
        doc.image(s.figures["training"], "training losses from train_log.jsonl")
        if s.reused:
            doc.para("Runs that reused another run's trained stages log only the stages they ran: "
                     + ", ".join(s.reused) + ".")
    write_diagnostics(doc, s.figures.get("val_trajectory"), s.diagnostics)
    _qualitative(doc, s.grids, mask_unscored)


def _qualitative(doc: Document, grids: list[Grid], mask_unscored: bool) -> None:
    doc.heading(3, "Qualitative results")
    for grid in grids:
        doc.image(grid.image, f"image | ground truth | each method, seed {grid.seed}")
        for note in grid.notes:
            doc.para("Note: " + note + ".")
    if grids:
        doc.para("The images are the runs' stored predictions (`predictions/` in each run folder): the same test "
                 "images for every method of a seed, chosen from the dataset, split and seed, preferring images "
                 "that contain unseen classes. Unseen classes are outlined in white and marked in the legend. "
                 + ("Prediction columns show the prediction where the evaluation scores it; elsewhere "
                    "(excluded classes, void) they repeat the ground truth." if mask_unscored else
                    "Prediction columns show every predicted pixel, including those the evaluation ignores."))
    else:
        doc.para("No stored predictions in these runs (made with eval.keep_predictions=0 or before predictions "
                 "were stored), so no qualitative grid.")


def _protocol_and_runs(doc: Document, c: ReportContent) -> None:
    doc.heading(2, "Protocol of every run")
    doc.para("Split (version and sha256 prefix), the training policy for unseen classes, how background counts, the "
             "evaluation resolution (`full`: scores upsampled to the label; `feature`: labels downsampled, CaGNet's "
             "official mode), the rule for absent classes, whether a method saw unseen labels or test images during "
             "training (transductive), calibration and reused stages.")
    doc.table(c.protocol)
    doc.heading(2, "Environment")
    doc.table(c.environment)
    if c.unfinished:
        doc.heading(2, "Runs not finished")
        doc.bullets(f"`{name}`: status {status}" + (f", {' '.join(str(error).split())}" if error else "")
                    for name, status, error in c.unfinished)
    doc.heading(2, "Run folders")
    doc.bullets(f"`{folder}`" for folder in c.folders)
