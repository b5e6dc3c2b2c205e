"""`zsbench data check` and `zsbench data stats`: look at a dataset before GPU time is spent on it.

The check builds each part with the dataset's own loader (so layout problems are the loader's
messages: missing folder, missing or empty list), then opens every image and mask:

* the image decodes (fully, not just its header) and the mask decodes as a palette/grayscale PNG;
* the mask has the image's size;
* every mask value is in the label space: the layout's PNG values when it translates them
  (Pascal-Context Detail, ADE20K detectron2), else the class list's ids plus the ignore index.

Image counts are compared with the full dataset's known size. A different count is a warning,
not a problem, because subsets (and the small trees the tests generate) are legitimate;
``strict_counts`` turns it into a problem.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from zsseg_bench.catalog.splits import Split, load_class_list
from zsseg_bench.datasets import build_dataset
from zsseg_bench.datasets.files import read_label
from zsseg_bench.datasets.presence import _workers, label_statistics
from zsseg_bench.errors import ZsbenchError

__all__ = ["Problem", "PartReport", "check_dataset", "dataset_stats"]


@dataclass
class Problem:
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}" if self.file else self.message


@dataclass
class PartReport:
    part: str
    layout: str = "-"
    root: str = ""
    images: int = 0
    expected: int | None = None
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _dataset_cfg(cfg: dict | None, split: Split | None) -> dict:
    cfg = dict(cfg or {})
    if split is not None:
        cfg["classes"] = split.classes.name
    return cfg


def _class_list(name: str, split: Split | None):
    """Class list `name`: the split's own when it has that name (it may sit beside a split file
    outside splits/), else the one under splits/classes/."""
    return split.classes if split is not None and split.classes.name == name else load_class_list(name)


def _allowed_values(dataset, ignore_index: int, split: Split | None) -> np.ndarray:
    table = np.zeros(65536, dtype=bool)
    if getattr(dataset, "source_values", None) is not None:
        table[list(dataset.source_values)] = True
    else:
        table[list(_class_list(dataset.class_list, split).ids)] = True
        table[ignore_index] = True
    return table


def _check_one(dataset, i: int, allowed: np.ndarray) -> list[Problem]:
    image_path, label_path = dataset.image_path(i), dataset.label_path(i)
    problems = []
    size = None
    if not image_path.is_file():
        problems.append(Problem(str(image_path), "image file missing"))
    else:
        try:
            with Image.open(image_path) as im:
                im.load()  # decodes every byte, so truncated files fail here
                size = im.size
        except Exception as exc:  # noqa: BLE001  (any decoder error means "unreadable")
            problems.append(Problem(str(image_path), f"image does not decode ({type(exc).__name__}: {exc})"))
    if not label_path.is_file():
        problems.append(Problem(str(label_path), "label file missing"))
        return problems
    try:
        label = read_label(label_path)
    except ZsbenchError as exc:
        problems.append(Problem("", str(exc)))
        return problems
    if size is not None and (label.shape[1], label.shape[0]) != size:
        problems.append(Problem(str(label_path), f"mask is {label.shape[1]}x{label.shape[0]} but image "
                                                 f"{image_path.name} is {size[0]}x{size[1]}"))
    values = np.unique(label).astype(np.int64)
    bad = values[(values >= len(allowed)) | ~allowed[np.minimum(values, len(allowed) - 1)]]
    if bad.size:
        problems.append(Problem(str(label_path), f"label values {bad.tolist()[:8]} are not in the label space "
                                                 f"({dataset.class_list}, layout {dataset.layout})"))
    return problems


def check_dataset(name: str, root, cfg: dict | None = None, split: Split | None = None,
                  parts: tuple[str, ...] = ("train", "test"), limit: int | None = None, workers: int | None = None,
                  strict_counts: bool = False, progress=None) -> list[PartReport]:
    """One report per part; `progress(part, total)` returns a callable advanced once per image."""
    if split is not None and split.dataset != name:
        raise ZsbenchError(f"split {split.name!r} is for dataset {split.dataset!r}, not {name!r}")
    cfg = _dataset_cfg(cfg, split)
    ignore = split.ignore_index if split is not None else 255
    reports = []
    for part in parts:
        report = PartReport(part)
        reports.append(report)
        try:
            dataset = build_dataset(name, part, root, cfg)
        except ZsbenchError as exc:
            report.problems.append(Problem("", str(exc)))
            continue
        report.layout, report.root = getattr(dataset, "layout", "-"), str(getattr(dataset, "root", ""))
        report.images, report.expected = len(dataset), getattr(dataset, "expected_size", None)
        if not hasattr(dataset, "image_path"):
            report.warnings.append(f"{name} is not read from files; nothing to check")
            continue
        if report.expected is not None and report.images != report.expected:
            text = f"{report.images} images in the {part} part; the full dataset has {report.expected}"
            (report.problems.append(Problem(str(dataset.list_file or dataset.root), text)) if strict_counts
             else report.warnings.append(text))
        allowed = _allowed_values(dataset, ignore, split)
        indices = range(len(dataset) if limit is None else min(limit, len(dataset)))
        tick = progress(part, len(indices)) if progress else None
        with ThreadPoolExecutor(_workers(workers)) as pool:
            for found in pool.map(lambda i: _check_one(dataset, i, allowed), indices):
                report.problems += found
                report.checked += 1
                if tick:
                    tick()
    return reports


def dataset_stats(name: str, root, cfg: dict | None = None, split: Split | None = None, part: str = "train",
                  workers: int | None = None, progress=None) -> dict:
    """Per-class pixel and image counts of one part, and for a split how many images hold unseen classes."""
    cfg = _dataset_cfg(cfg, split)
    dataset = build_dataset(name, part, root, cfg)
    classes = _class_list(getattr(dataset, "class_list", None) or (split.classes.name if split else name), split)
    tick = progress(part, len(dataset)) if progress else None
    presence, totals = label_statistics(dataset, workers=workers, progress=tick)
    labelled = sum(int(totals[i]) for i in classes.ids if i < len(totals))
    rows = []
    for raw, cname in zip(classes.ids, classes.names):
        pixels = int(totals[raw]) if raw < len(totals) else 0
        images = int(presence[:, raw].sum()) if raw < presence.shape[1] else 0
        row = {"id": raw, "class": cname, "pixels": pixels,
               "pixel %": round(100.0 * pixels / labelled, 3) if labelled else 0.0, "images": images}
        if split is not None:
            row["role"] = ("excluded" if cname in split.excluded else "unseen" if cname in split.unseen else "seen")
        rows.append(row)
    ignore = split.ignore_index if split is not None else 255
    out = {"dataset": name, "part": part, "images": len(dataset), "classes": classes.name, "rows": rows,
           "ignored pixels": int(totals[ignore]) if ignore < len(totals) else 0,
           "outside": {v: int(totals[v]) for v in range(len(totals))
                       if totals[v] and v != ignore and v not in set(classes.ids)}}
    if split is not None:
        unseen = [split.classes.id_of(c) for c in split.unseen]
        with_unseen = int(presence[:, unseen].any(axis=1).sum()) if unseen else 0
        out["split"] = split.name
        out["images with unseen classes"] = with_unseen
        out["train_policy"] = split.train_policy
        out["images used for training"] = (len(dataset) - with_unseen
                                           if split.train_policy == "drop_images_with_unseen" else len(dataset))
    return out
