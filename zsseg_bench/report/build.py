"""`zsbench report`: one Markdown report (and an HTML twin) from run records, without re-running models.

    <out>/report.md        the comparison table (ours beside published, with deltas), the
                           figures, qualitative grids, top confusions, the protocol of every
                           run and the environment; it references only files under <out>
    <out>/report.html      the same, one self-contained file (figures embedded)
    <out>/comparison.*     the table as Markdown, LaTeX, CSV and Parquet (tables.write_tables)
    <out>/figures/         <dataset>__<split>__<figure>.png and .svg, grids as PNG

Everything comes from the run folders: metrics.json and per_class.csv (tables, bars),
confusion.npy (top confusions), train_log.jsonl (curves) and predictions/ (grids). Images and
ground truth for the grids are re-read from the dataset (regenerated, for the synthetic
benchmark) and checked against the label sha256 each run recorded; when the dataset is not
at hand the grid shows the predictions alone and the report says so.

The folder is built next to <out> and renamed into place, so a reader never sees half a
report. An existing <out> is replaced only if it holds a previous report.
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.runs.records import (
    find_records,
    load_record,
    read_confusion,
    read_per_class,
    read_train_log,
    scoring_of,
    utcnow,
)

__all__ = ["RunData", "load_runs", "make_report", "Document"]

MARKER = ".zsbench-report"
MAIN_METRICS = ("hIoU", "mIoU", "S-mIoU", "U-mIoU")
_ABSENT = {"nan": "left out (NaN)", "zero": "counted as 0"}  # metrics/scores.py, ScoringRule.absent


# ---- the runs ------------------------------------------------------------------------------------
@dataclass
class RunData:
    path: Path
    record: dict
    per_class: pd.DataFrame | None
    confusion: np.ndarray | None
    log: list
    stored: dict | None

    @property
    def ok(self) -> bool:
        return self.record.get("status") == "ok" and bool(self.record.get("metrics"))

    @property
    def method(self) -> str:
        return self.record["method"]

    @property
    def seed(self) -> int:
        return int(self.record.get("seed", 0))

    @property
    def group(self) -> tuple[str, str]:
        return self.record["dataset"]["name"], self.record["split"]["name"]


def load_runs(paths) -> list[RunData]:
    from zsseg_bench.runs.predictions import load_stored

    runs = []
    for path in find_records(paths):
        rec = load_record(path)
        runs.append(RunData(path, rec, read_per_class(path), read_confusion(path), read_train_log(path),
                            load_stored(path)))
    return runs


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text; missing numbers as an en dash."""
    return frame.apply(lambda col: col.map(lambda v: "–" if v is None or (isinstance(v, float) and np.isnan(v))
                                           else str(v)))


# ---- a tiny document model rendered to Markdown and to HTML ---------------------------------------
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


# ---- pieces of the report ---------------------------------------------------------------------------
def _fmt(value, decimals: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.{decimals}f}"


def _published_points(dataset: str, split: str, source: str | None) -> tuple[pd.DataFrame, bool]:
    """Published (S-mIoU, U-mIoU) points: those of the same dataset and split when there are any
    (comparable), else every GZS3 row of every dataset (reference only). One row per
    (method, dataset, split), by source priority unless `source` is given."""
    from zsseg_bench.catalog.published import SOURCE_PRIORITY, published_frame

    frame = published_frame()
    frame = frame[(frame["protocol"] == "gzs3")].dropna(subset=["S-mIoU", "U-mIoU"])
    if source is not None:
        frame = frame[frame["source"] == source]
    same = frame[(frame["dataset"] == dataset) & (frame["split"] == split)]
    comparable = not same.empty
    chosen = same if comparable else frame
    rank = {s: i for i, s in enumerate(SOURCE_PRIORITY)}
    chosen = chosen.assign(_rank=chosen["source"].map(lambda s: rank.get(s, len(rank))))
    chosen = chosen.sort_values("_rank", kind="stable").drop_duplicates(["method", "dataset", "split"])
    return chosen.drop(columns="_rank").reset_index(drop=True), comparable


def _split_of(name: str):
    from zsseg_bench.catalog.splits import load_split

    try:
        return load_split(name)
    except ZsbenchError:
        return None


def _grid_rows(runs: list[RunData], data_root: str | None) -> tuple[list[dict], list[str], list[str]]:
    """Rows for one seed's grid: images and ground truth re-read from the dataset, plus every run's
    stored prediction of each image. Returns rows, column names and notes for the report."""
    from zsseg_bench.report.palette import decode_palette_png
    from zsseg_bench.runs.predictions import label_digest

    notes = []
    with_preds = [r for r in runs if r.stored and r.stored.get("images")]
    first = with_preds[0]
    entries = first.stored["images"]
    dataset = None
    try:
        from zsseg_bench.datasets import build_dataset

        info = first.record["dataset"]
        dataset = build_dataset(info["name"], "test", data_root or info.get("root"), dict(info.get("options") or {}))
    except (ZsbenchError, OSError, ValueError) as exc:
        notes.append(f"images and ground truth not shown: the dataset could not be opened ({exc}); pass "
                     f"--data-root")
    rows, mismatched = [], 0
    for entry in entries:
        row = {"name": entry["name"], "image": None, "gt": None, "preds": {}}
        if dataset is not None and entry["index"] < len(dataset):
            item = dataset[entry["index"]]
            label = item["label"].numpy()
            if item["name"] == entry["name"] and label_digest(label) == entry["label_sha256"]:
                row["image"] = item["image"].numpy().transpose(1, 2, 0)
                row["gt"] = label
            else:
                mismatched += 1
        for run in with_preds:
            match = next((e for e in run.stored["images"] if e["index"] == entry["index"]
                          and e["name"] == entry["name"]), None)
            row["preds"][run.method] = decode_palette_png(match["path"]) if match and Path(match["path"]).is_file() \
                else None
        rows.append(row)
    if mismatched:
        notes.append(f"{mismatched} of {len(entries)} images not shown: the dataset's ground truth differs from the "
                     f"one the runs were scored against (dataset version or options changed)")
    missing = [r.method for r in runs if r not in with_preds]
    if missing:
        notes.append(f"no stored predictions for {', '.join(missing)} (run with eval.keep_predictions=0 or made "
                     f"before predictions were stored)")
    return rows, [r.method for r in with_preds], notes


def _protocol_table(runs: list[RunData]) -> pd.DataFrame:
    rows = []
    for r in runs:
        rec = r.record
        sp = rec.get("split", {})
        flags = rec.get("protocol_flags", {})
        proto = scoring_of(rec)
        facts = rec.get("method_facts") or {}
        cal = facts.get("calibration") if isinstance(facts, dict) else None
        data = rec.get("dataset") or {}
        rows.append({
            "run": rec.get("run_id", r.path.name), "method": rec.get("method"), "seed": rec.get("seed"),
            "status": rec.get("status"),
            "split": f"{sp.get('name')} v{sp.get('version')} ({str(sp.get('sha256', ''))[:12]})",
            "train policy": sp.get("train_policy"), "background": sp.get("background"),
            "eval mode": proto.get("eval_mode", "–"),
            "absent classes": _ABSENT.get(proto.get("absent"), proto.get("absent", "–")),
            "unseen labels used": "yes" if flags.get("uses_unseen_labels") else "no",
            "transductive": "yes" if flags.get("transductive") else "no",
            "calibration": (f"γ={cal.get('gamma'):.3g} ({cal.get('chosen_by')})"
                            if isinstance(cal, dict) and isinstance(cal.get("gamma"), (int, float)) else "–"),
            "reused stages": ", ".join(f"{k} from {v}" for k, v in (rec.get("reused_stages") or {}).items()) or "–",
            "train images": f"{data.get('n_train_used', '–')}/{data.get('n_train', '–')}",
            "test images": data.get("n_test", "–"),
            "wall time (s)": rec.get("wall_time_s"),
        })
    return pd.DataFrame(rows)


def _environment_table(runs: list[RunData]) -> pd.DataFrame:
    envs: dict[str, dict] = {}
    for r in runs:
        env = r.record.get("environment") or {}
        git = env.get("git") or {}
        row = {"python": env.get("python"), "torch": env.get("torch"), "numpy": env.get("numpy"),
               "zsseg_bench": env.get("zsseg_bench"), "platform": env.get("platform"),
               "device": f"{env.get('device')} ({env.get('device_name')})", "torch threads": env.get("torch_threads"),
               "git commit": (str(git.get("commit"))[:12] + (" (dirty)" if git.get("dirty") else ""))
               if git.get("commit") else "–"}
        key = repr(sorted(row.items()))
        envs.setdefault(key, {**row, "runs": 0})["runs"] += 1
    return pd.DataFrame(list(envs.values()))


def _comparison(ok: list[RunData], source: str | None, out: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    from zsseg_bench.report.tables import add_published, format_summary, runs_frame, summarize, write_tables

    summary = add_published(summarize(runs_frame([r.path for r in ok])), source)
    files = write_tables(summary, out / "comparison")
    return format_summary(summary, MAIN_METRICS), format_summary(summary.drop(
        columns=[c for c in summary.columns if c.endswith(" pub") or c.startswith("Δ ")] + ["source"])), files


# ---- the report ---------------------------------------------------------------------------------------
def make_report(paths, out: Path, *, source: str | None = None, data_root: str | None = None,
                mask_unscored: bool = True, command: str = "") -> Path:
    """Write the report folder `out` for the run records at or below `paths`; returns report.md."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and ((out / MARKER).exists() or not any(out.iterdir()))):
        raise ZsbenchError(f"{out}: exists and is not a zsbench report folder; choose another --out (-o) or "
                           f"remove it")
    from zsseg_bench.report.tables import _method_rank

    runs = sorted(load_runs(paths), key=lambda r: (r.group, _method_rank(r.method), r.seed, r.path.name))
    ok = [r for r in runs if r.ok]
    if not ok:
        raise ZsbenchError(f"no finished (status ok) runs under {', '.join(map(str, paths))}; nothing to report")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "figures").mkdir(parents=True)
    try:
        doc = _build(runs, ok, tmp, source, data_root, mask_unscored, command)
        (tmp / "report.md").write_text(doc.markdown())
        (tmp / "report.html").write_text(doc.html(tmp, "zsseg-bench report"))
        (tmp / MARKER).write_text("made by zsbench report; this folder is replaced when the report is remade\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "report.md"


def _build(runs, ok, tmp: Path, source, data_root, mask_unscored, command) -> Document:
    from zsseg_bench.report import plots
    from zsseg_bench.report.grids import qualitative_grid
    from zsseg_bench.report.palette import palette_for
    from zsseg_bench.report.tables import runs_frame

    doc = Document()
    groups = list(dict.fromkeys(r.group for r in ok))
    doc.heading(1, "zsseg-bench report")
    doc.para(f"Made {utcnow()} by `{command or 'zsbench report'}` from {len(runs)} run record(s): "
             f"{len(ok)} finished" + (f", {len(runs) - len(ok)} not finished (listed at the end)"
                                      if len(runs) > len(ok) else "") + ". Methods: "
             + ", ".join(f"`{m}`" for m in dict.fromkeys(r.method for r in ok)) + "; "
             + "; ".join(f"dataset `{d}`, split `{s}`" for d, s in groups) + "; seeds "
             + ", ".join(str(s) for s in sorted({r.seed for r in ok})) + ".")
    doc.para("Numbers are fractions in [0, 1] (mean ± std over seeds, std with ddof=1). Every figure and table "
             "below is computed from the run folders alone; nothing was re-run.")

    main, full, _ = _comparison(ok, source, tmp)
    doc.heading(2, "Comparison")
    doc.para("Ours beside the published numbers (`pub`) and the difference (`Δ` = ours − published), for the "
             "rows that have a published counterpart (same method, dataset and split; source by priority"
             + (f", here `{source}`" if source else "") + ").")
    doc.table(main)
    unmatched = sorted({f"{d}/{s}" for d, s in groups if not ((main["dataset"] == d) & (main["split"] == s)
                                                             & (main["source"] != "–")).any()})
    if unmatched:
        doc.para("No published numbers exist for " + ", ".join(f"`{u}`" for u in unmatched) + " (the synthetic "
                 "benchmark is this project's own): the published columns are empty there, and the scatter plot "
                 "shows published points only as a separate reference panel.")
    doc.para("All metrics: `comparison.md`, `comparison.csv` (numbers), `comparison.tex`, `comparison.parquet`.")
    doc.table(full)

    frame = runs_frame([r.path for r in ok])
    for dataset, split_name in groups:
        group_runs = [r for r in ok if r.group == (dataset, split_name)]
        split = _split_of(split_name)
        stem = tmp / "figures" / f"{dataset}__{split_name}"
        rel = f"figures/{dataset}__{split_name}"
        doc.heading(2, f"{dataset} / {split_name}")
        if split is not None:
            doc.para(f"Seen classes ({int(split.seen_mask.sum())}): " + ", ".join(split.seen_names) + ". "
                     f"**Unseen classes ({len(split.unseen)}): " + ", ".join(split.unseen) + ".** "
                     f"Excluded: {', '.join(split.excluded) or 'none'}.")

        ours = frame[(frame["dataset"] == dataset) & (frame["split"] == split_name)]
        published, comparable = _published_points(dataset, split_name, source)
        plots.seen_unseen_scatter(ours, published, stem.with_name(stem.name + "__scatter"),
                                  f"{dataset} / {split_name}: seen vs unseen mIoU", comparable)
        doc.heading(3, "Seen vs unseen")
        doc.image(f"{rel}__scatter.png", "seen vs unseen mIoU with hIoU iso-curves")
        doc.para("Each run is a small dot, each method's mean over seeds a large one; dashed curves join points of "
                 "equal hIoU. " + ("Hollow markers are the published numbers for the same dataset and split, "
                                   "joined to our mean by a dotted line." if comparable else
                                   "The right panel shows published points of real datasets (marker = dataset) for "
                                   "reference only: they are not comparable with runs on this benchmark."
                                   if not published.empty else "No published points to show."))

        per_class = [r.per_class.assign(method=r.method, seed=r.seed) for r in group_runs if r.per_class is not None]
        if per_class:
            plots.per_class_iou(pd.concat(per_class, ignore_index=True), stem.with_name(stem.name + "__per_class_iou"),
                                f"{dataset} / {split_name}: per-class IoU")
            doc.heading(3, "Per-class IoU")
            doc.image(f"{rel}__per_class_iou.png", "per-class IoU, unseen classes shaded")

        confusions = {}
        for r in group_runs:
            if r.confusion is not None:
                confusions[r.method] = confusions.get(r.method, 0) + r.confusion.astype(np.int64)
        if confusions and split is not None and all(c.shape == (split.num_classes,) * 2 for c in confusions.values()):
            colours = palette_for(dataset)[list(split.eval_raw_ids)].astype(np.float64)
            _, top = plots.unseen_confusions(confusions, split.eval_names, split.seen_mask, colours,
                                             stem.with_name(stem.name + "__unseen_confusions"),
                                             title=f"{dataset} / {split_name}: where unseen pixels go "
                                                   f"(seeds summed)")
            doc.heading(3, "Where unseen pixels go")
            doc.image(f"{rel}__unseen_confusions.png", "share of each unseen class's pixels by predicted class")
            doc.para("For each unseen class: the share of its ground-truth pixels predicted correctly and the classes "
                     "that absorb most of the rest (confusion matrices summed over seeds).")
            doc.table(top.assign(correct=top["correct"].map(lambda v: f"{v:.1%}" if v == v else "–")))

        logs = [(r.method, r.seed, r.log) for r in group_runs if r.log]
        if logs and plots.training_curves(logs, stem.with_name(stem.name + "__training"),
                                          f"{dataset} / {split_name}: training losses") is not None:
            doc.heading(3, "Training curves")
            doc.image(f"{rel}__training.png", "training losses from train_log.jsonl")
            reused = sorted({f"{r.method} (seed {r.seed})" for r in group_runs if r.record.get("reused_stages")})
            if reused:
                doc.para("Runs that reused another run's trained stages log only the stages they ran: "
                         + ", ".join(reused) + ".")

        doc.heading(3, "Qualitative results")
        shown = False
        for seed in sorted({r.seed for r in group_runs}):
            seed_runs = [r for r in group_runs if r.seed == seed]
            if split is None or not any(r.stored and r.stored.get("images") for r in seed_runs):
                continue
            rows, columns, notes = _grid_rows(seed_runs, data_root)
            unscored = split.lut(train=False, size=256) == split.ignore_index
            classes = [(i, n, n in split.unseen) for i, n in zip(split.eval_raw_ids, split.eval_names)]
            others = [(split.classes.id_of(n), f"{n} (not scored)") for n in split.excluded]
            if split.ignore_index < 256:
                others.append((split.ignore_index, "void (not scored)"))
            name = f"{rel}__grid_s{seed}.png"
            qualitative_grid(rows, columns, classes, palette_for(dataset), tmp / name, unscored_lut=unscored,
                             ignore_index=split.ignore_index, mask_unscored=mask_unscored, others=others,
                             title=f"{dataset} / {split_name}, seed {seed}")
            doc.image(name, f"image | ground truth | each method, seed {seed}")
            for note in notes:
                doc.para("Note: " + note + ".")
            shown = True
        if shown:
            doc.para("The images are the runs' stored predictions (`predictions/` in each run folder): the same test "
                     "images for every method of a seed, chosen from the dataset, split and seed, preferring images "
                     "that contain unseen classes. Unseen classes are outlined in white and marked in the legend. "
                     + ("Prediction columns show the prediction where the evaluation scores it; elsewhere "
                        "(excluded classes, void) they repeat the ground truth." if mask_unscored else
                        "Prediction columns show every predicted pixel, including those the evaluation ignores."))
        else:
            doc.para("No stored predictions in these runs (made with eval.keep_predictions=0 or before predictions "
                     "were stored), so no qualitative grid.")

    doc.heading(2, "Protocol of every run")
    doc.para("Split (version and sha256 prefix), the training policy for unseen classes, how background counts, the "
             "evaluation resolution (`full`: scores upsampled to the label; `feature`: labels downsampled, CaGNet's "
             "official mode), the rule for absent classes, whether a method saw unseen labels or test images during "
             "training (transductive), calibration and reused stages.")
    doc.table(_protocol_table(runs))
    doc.heading(2, "Environment")
    doc.table(_environment_table(runs))
    failed = [r for r in runs if not r.ok]
    if failed:
        doc.heading(2, "Runs not finished")
        doc.bullets(f"`{r.path.name}`: status {r.record.get('status')}"
                    + (f", {' '.join(str(r.record.get('error')).split())}" if r.record.get("error") else "")
                    for r in failed)
    doc.heading(2, "Run folders")
    doc.bullets(f"`{r.path}`" for r in runs)
    return doc
