"""`zsbench report`: one Markdown report (and an HTML twin) from run records, without re-running models.

This module collects the runs, draws the figures and gathers the data of the report
(document.ReportContent); document.py writes its text and renders it.

    <out>/report.md        the comparison table (ours beside published, with deltas), the
                           figures, qualitative grids, top confusions, the protocol of every
                           run and the environment; it references only files under <out>
    <out>/report.html      the same, one self-contained file (figures embedded)
    <out>/comparison.*     the table as Markdown, LaTeX, CSV and Parquet (tables.write_tables); named
                           comparison_with_published.* when it holds published values and deltas
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

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.report.document import Grid, ReportContent, Section, report_document
from zsseg_bench.report.tables import (
    MAIN_METRICS,
    MISSING,
    add_published,
    format_summary,
    format_value,
    method_sort_key,
    runs_frame,
    summarize,
    write_tables,
)
from zsseg_bench.runs.records import (
    read_confusion,
    read_per_class,
    read_train_log,
    scoring_of,
    utcnow,
)
from zsseg_bench.runs.verify import load_verified

__all__ = ["RunData", "load_runs", "make_report"]

MARKER = ".zsbench-report"
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
    for rec in load_verified(paths):
        path = Path(rec["path"])
        runs.append(RunData(path, rec, read_per_class(path), read_confusion(path), read_train_log(path),
                            load_stored(path)))
    return runs


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
        from zsseg_bench.datasets import build_dataset, record_options

        info = first.record["dataset"]
        dataset = build_dataset(info["name"], "test", data_root or info.get("root"), record_options(info))
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
            "eval mode": proto.get("eval_mode", MISSING),
            "absent classes": _ABSENT.get(proto.get("absent"), proto.get("absent", MISSING)),
            "unseen labels used": "yes" if flags.get("uses_unseen_labels") else "no",
            "transductive": "yes" if flags.get("transductive") else "no",
            "calibration": (f"γ={format_value(cal.get('gamma'), '.3g')} ({cal.get('chosen_by')})"
                            if isinstance(cal, dict) and isinstance(cal.get("gamma"), (int, float)) else MISSING),
            "reused stages": ", ".join(f"{k} from {v}" for k, v in (rec.get("reused_stages") or {}).items()) or MISSING,
            "train images": f"{data.get('n_train_used', MISSING)}/{data.get('n_train', MISSING)}",
            "test images": data.get("n_test", MISSING),
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
               if git.get("commit") else MISSING}
        key = repr(sorted(row.items()))
        envs.setdefault(key, {**row, "runs": 0})["runs"] += 1
    return pd.DataFrame(list(envs.values()))


def _comparison(ok: list[RunData], source: str | None, out: Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Writes the table files; returns the main metrics beside the published ones, every metric, and the
    files' stem: comparison_with_published when some run has published numbers, else comparison (then the
    same table as the batch's comparison.*, so the same name)."""
    summary = add_published(summarize(runs_frame([r.path for r in ok])), source)
    matched = any(summary[c].notna().any() for c in summary.columns if c.endswith(" pub"))
    name = "comparison_with_published" if matched else "comparison"
    write_tables(summary if matched else summary.drop(columns=_published_columns(summary)), out / name)
    return (format_summary(summary, MAIN_METRICS), format_summary(summary.drop(columns=_published_columns(summary))),
            name)


def _published_columns(summary: pd.DataFrame) -> list[str]:
    return [c for c in summary.columns if c.endswith(" pub") or c.startswith("Δ ")] + ["source"]


# ---- the report ---------------------------------------------------------------------------------------
def make_report(paths, out: Path, *, source: str | None = None, data_root: str | None = None,
                mask_unscored: bool = True, command: str = "") -> Path:
    """Write the report folder `out` for the run records at or below `paths`; returns report.md."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and ((out / MARKER).exists() or not any(out.iterdir()))):
        raise ZsbenchError(f"{out}: exists and is not a zsbench report folder; choose another --out (-o) or "
                           f"remove it")
    runs = sorted(load_runs(paths), key=lambda r: (r.group, method_sort_key(r.method), r.seed, r.path.name))
    if not any(r.ok for r in runs):
        raise ZsbenchError(f"no finished (status ok) runs under {', '.join(map(str, paths))}; nothing to report")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "figures").mkdir(parents=True)
    try:
        doc = report_document(_gather(runs, tmp, source, data_root, mask_unscored, command))
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


def _gather(runs: list[RunData], folder: Path, source, data_root, mask_unscored: bool, command: str
            ) -> ReportContent:
    """Everything the report shows; writes the tables and figures into `folder` on the way."""
    ok = [r for r in runs if r.ok]
    groups = list(dict.fromkeys(r.group for r in ok))
    made = utcnow()
    main, full, table_name = _comparison(ok, source, folder)
    unmatched = sorted({f"{d}/{s}" for d, s in groups if not ((main["dataset"] == d) & (main["split"] == s)
                                                             & (main["source"] != MISSING)).any()})
    frame = runs_frame([r.path for r in ok])
    sections = [_section(dataset, split_name, [r for r in ok if r.group == (dataset, split_name)], frame, folder,
                         source, data_root, mask_unscored) for dataset, split_name in groups]
    return ReportContent(
        made=made, command=command, n_runs=len(runs), n_ok=len(ok), methods=list(dict.fromkeys(r.method for r in ok)),
        groups=groups, seeds=sorted({r.seed for r in ok}), source=source, mask_unscored=mask_unscored,
        comparison=main, all_metrics=full, unmatched=unmatched, sections=sections,
        protocol=_protocol_table(runs), environment=_environment_table(runs),
        unfinished=[(r.path.name, r.record.get("status"), r.record.get("error")) for r in runs if not r.ok],
        folders=[str(r.path) for r in runs], table_name=table_name)


def _section(dataset: str, split_name: str, runs: list[RunData], frame: pd.DataFrame, folder: Path, source,
             data_root, mask_unscored: bool) -> Section:
    """Draws one (dataset, split)'s figures into folder/figures/<dataset>__<split>__<kind>.png (and .svg)."""
    from zsseg_bench.report import diagnostics, plots

    split = _split_of(split_name)
    stem = folder / "figures" / f"{dataset}__{split_name}"
    rel = f"figures/{dataset}__{split_name}"
    title = f"{dataset} / {split_name}"
    figures = {"scatter": f"{rel}__scatter.png"}
    ours = frame[(frame["dataset"] == dataset) & (frame["split"] == split_name)]
    published, comparable = _published_points(dataset, split_name, source)
    plots.seen_unseen_scatter(ours, published, stem.with_name(stem.name + "__scatter"),
                              f"{title}: seen vs unseen mIoU", comparable)
    per_class = [r.per_class.assign(method=r.method, seed=r.seed) for r in runs if r.per_class is not None]
    if per_class:
        plots.per_class_iou(pd.concat(per_class, ignore_index=True), stem.with_name(stem.name + "__per_class_iou"),
                            f"{title}: per-class IoU")
        figures["per_class_iou"] = f"{rel}__per_class_iou.png"
    confusions = _unseen_confusions(runs, split, dataset, stem.with_name(stem.name + "__unseen_confusions"), title)
    if confusions is not None:
        figures["unseen_confusions"] = f"{rel}__unseen_confusions.png"
    logs = [(r.method, r.seed, r.log) for r in runs if r.log]
    if logs and plots.training_curves(logs, stem.with_name(stem.name + "__training"),
                                      f"{title}: training losses") is not None:
        figures["training"] = f"{rel}__training.png"
    reused = sorted({f"{r.method} (seed {r.seed})" for r in runs if r.record.get("reused_stages")})
    grids = _grids(runs, split, dataset, folder, rel, title, data_root, mask_unscored)
    records = [(r.method, r.seed, r.record) for r in runs]
    if diagnostics.val_trajectory_figure(records, stem.with_name(stem.name + "__val_trajectory"),
                                         f"{title}: val trajectory") is not None:
        figures["val_trajectory"] = f"{rel}__val_trajectory.png"
    return Section(dataset=dataset, split_name=split_name, split=split, figures=figures, comparable=comparable,
                   any_published=not published.empty, confusions=confusions, reused=reused, grids=grids,
                   diagnostics=diagnostics.diagnostics_table(records))


def _unseen_confusions(runs: list[RunData], split, dataset: str, stem: Path, title: str) -> pd.DataFrame | None:
    """Draws where the unseen classes' pixels go (confusions summed over seeds); returns the top-absorbers
    table, or None without confusion matrices of the split's size."""
    from zsseg_bench.report import plots
    from zsseg_bench.report.palette import palette_for

    confusions = {}
    for r in runs:
        if r.confusion is not None:
            confusions[r.method] = confusions.get(r.method, 0) + r.confusion.astype(np.int64)
    if not (confusions and split is not None and all(c.shape == (split.num_classes,) * 2
                                                     for c in confusions.values())):
        return None
    colours = palette_for(dataset)[list(split.eval_raw_ids)].astype(np.float64)
    _, top = plots.unseen_confusions(confusions, split.eval_names, split.seen_mask, colours, stem,
                                     title=f"{title}: where unseen pixels go (seeds summed)")
    return top


def _grids(runs: list[RunData], split, dataset: str, folder: Path, rel: str, title: str, data_root,
           mask_unscored: bool) -> list[Grid]:
    """One qualitative grid per seed whose runs stored predictions (needs the split's class list)."""
    from zsseg_bench.report.grids import qualitative_grid
    from zsseg_bench.report.palette import palette_for

    grids = []
    for seed in sorted({r.seed for r in runs}):
        seed_runs = [r for r in runs if r.seed == seed]
        if split is None or not any(r.stored and r.stored.get("images") for r in seed_runs):
            continue
        rows, columns, notes = _grid_rows(seed_runs, data_root)
        unscored = split.lut(train=False, size=256) == split.ignore_index
        classes = [(i, n, n in split.unseen) for i, n in zip(split.eval_raw_ids, split.eval_names)]
        others = [(split.classes.id_of(n), f"{n} (not scored)") for n in split.excluded]
        if split.ignore_index < 256:
            others.append((split.ignore_index, "void (not scored)"))
        name = f"{rel}__grid_s{seed}.png"
        qualitative_grid(rows, columns, classes, palette_for(dataset), folder / name, unscored_lut=unscored,
                         ignore_index=split.ignore_index, mask_unscored=mask_unscored, others=others,
                         title=f"{title}, seed {seed}")
        grids.append(Grid(image=name, seed=seed, notes=notes))
    return grids
