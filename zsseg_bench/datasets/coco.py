"""COCO 2014 with 80-class masks, as HSNet and SAZS read it for COCO-20i (dataset name `coco`).

Class list ``coco80``: PNG value 0 background, k = the k-th of the 80 COCO classes (standard
order), 255 ignored. Layout ``hsnet`` (the root or ``<root>/COCO2014``): images in
``train2014/``, ``val2014/`` and masks in ``annotations/train2014/``, ``annotations/val2014/``
(same file names, ``.png``). Train 82,783 / test (val2014) 40,504 images; the fold lists of a
few-shot protocol pick their episodes from these.
"""

from __future__ import annotations

from zsseg_bench.catalog.schema import declare_options
from zsseg_bench.datasets.base import register_dataset
from zsseg_bench.datasets.files import (
    FolderDataset,
    check_classes,
    check_layout,
    check_part,
    first_existing,
    layout_options,
    need_root,
    pair_folders,
    require_dir,
)

__all__ = ["build_coco"]

EXPECTED = {"train": 82783, "test": 40504}


@register_dataset("coco", default_split="coco20i-f0", expected=EXPECTED)
@declare_options(layout_options("hsnet", name="COCOOptions"))
def build_coco(part: str, root, cfg: dict) -> FolderDataset:
    classes = check_classes("coco", cfg, ("coco80",))
    root = need_root("coco", root, "HSNet's COCO2014 folder with train2014/, val2014/ and annotations/")
    check_part("coco", part, "val2014")
    check_layout("COCO", cfg, ("hsnet",))
    base = first_existing(*(p for p in (root, root / "COCO2014") if (p / "annotations").is_dir()))
    if base is None:
        require_dir(root / "annotations", "COCO-20i masks annotations/{train2014,val2014}/")
    folder = "train2014" if part == "train" else "val2014"
    images = require_dir(base / folder, f"COCO {folder} images")
    labels = require_dir(base / "annotations" / folder, f"COCO {folder} masks")
    return FolderDataset(name="coco", part=part, root=base, layout="hsnet",
                         samples=pair_folders(images, labels, prefix=f"{folder}/"), class_list=classes,
                         expected_size=EXPECTED[part])
