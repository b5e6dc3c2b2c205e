"""Pascal-Context (dataset name `context`) in the two label spaces the source papers use.

* ``context33`` (CaGNet): 0 unlabel (ignored), 1..20 the VOC classes, 21..33 sky, grass, ground,
  road, building, tree, water, mountain, wall, floor, track, keyboard, ceiling
  (CaGNet's ``labels_refined.txt`` order).
* ``context59`` (ZS3Net): 0 background (every pixel outside the 59 classes), 1..59 in ZS3Net's
  order (the VOC classes first), which is also the row order of its embedding file.

The split's class list picks the space (the runner passes it as ``dataset.classes``). Layouts
(``dataset.layout``, default ``auto``):

* ``cagnet``: CaGNet's packaged ``dataset/context``: ``images/{train,val}/``,
  ``annotations/{train,val}/`` (PNG values are context33 ids), optional
  ``split/{train,test}_list.npy``. Holds only the 33-class space.
* ``detail``: ``VOC2010/`` with ``JPEGImages/``, ``SegmentationClassContext/`` (the 59-class PNGs
  made from the Detail API, as mmsegmentation's converter writes them: 0 background, 1..59 in
  alphabetical order) and ``ImageSets/SegmentationContext/{train,val}.txt``. Translated by
  class name to either space; for context33 the 26 classes outside CaGNet's set (and
  background) become 0 = unlabel, which is ignored. That translation is ours: CaGNet built its
  PNGs itself and did not publish how, so use its packaged files for its numbers.

Train 4,998 images, test (the Context val set) 5,105.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zsseg_bench.catalog.schema import declare_options
from zsseg_bench.catalog.splits import load_class_list
from zsseg_bench.datasets.base import register_dataset
from zsseg_bench.datasets.files import (
    FolderDataset,
    check_classes,
    check_layout,
    check_part,
    first_existing,
    layout_options,
    need_root,
    packaged_samples,
    pair_folders,
    read_id_list,
    remap_table,
    require_dir,
)
from zsseg_bench.errors import ZsbenchError

__all__ = ["build_context", "DETAIL_ORDER", "detail_remap"]

LAYOUTS = ("cagnet", "detail")
EXPECTED = {"train": 4998, "test": 5105}
# Values of SegmentationClassContext PNGs (Detail API 59-class conversion): alphabetical.
DETAIL_ORDER = (
    "background", "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book", "bottle",
    "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth", "computer", "cow", "cup", "curtain",
    "dog", "door", "fence", "floor", "flower", "food", "grass", "ground", "horse", "keyboard", "light", "motorbike",
    "mountain", "mouse", "person", "plate", "platform", "pottedplant", "road", "rock", "sheep", "shelves", "sidewalk",
    "sign", "sky", "snow", "sofa", "table", "track", "train", "tree", "truck", "tvmonitor", "wall", "water",
    "window", "wood")
_DETAIL_NAME = {"diningtable": "table", "unlabel": "background"}  # our class-list name -> Detail name


def detail_remap(classes: str) -> np.ndarray:
    """SegmentationClassContext value -> id of `classes`; Detail classes not in it -> its id 0."""
    target = load_class_list(classes)
    ids = {_DETAIL_NAME.get(n, n): i for i, n in zip(target.ids, target.names)}
    missing = [n for n in ids if n not in DETAIL_ORDER]
    if missing:
        raise ZsbenchError(f"{target.path}: classes {missing} are not Pascal-Context Detail classes")
    pairs = {v: ids.get(name, 0) for v, name in enumerate(DETAIL_ORDER)}
    pairs[255] = 255  # padding/void, if a converter wrote any: the ignore index
    return remap_table(pairs)


def _detail_base(root: Path) -> Path | None:
    return first_existing(*(p for p in (root, root / "VOC2010", root / "VOCdevkit" / "VOC2010")
                            if (p / "SegmentationClassContext").is_dir()))


@register_dataset("context", default_split="context33-29-4", marker="s", expected=EXPECTED)
@declare_options(layout_options(*LAYOUTS, name="ContextOptions"))
def build_context(part: str, root, cfg: dict) -> FolderDataset:
    classes = check_classes("context", cfg, ("context33", "context59"))
    root = need_root("context", root, "CaGNet's dataset/context, or VOC2010 with SegmentationClassContext/")
    check_part("context", part, "Context val")
    layout = check_layout("Pascal-Context", cfg, LAYOUTS)
    base = _detail_base(root)
    if layout == "auto":
        if (root / "images").is_dir() and (root / "annotations").is_dir():
            layout = "cagnet"
        elif base is not None:
            layout = "detail"
        else:
            raise ZsbenchError(f"{root}: no Pascal-Context layout found: expected images/ + annotations/ (CaGNet's "
                               f"dataset/context) or SegmentationClassContext/ with JPEGImages/ (here, in VOC2010/ "
                               f"or VOCdevkit/VOC2010/)")
    if layout == "cagnet":
        if classes != "context33":
            raise ZsbenchError(f"{root}: CaGNet's packaged Pascal-Context holds 33-class labels only; the split needs "
                               f"{classes}: use the Detail layout (VOC2010/SegmentationClassContext) instead")
        folder = "train" if part == "train" else "val"
        samples, list_file = packaged_samples(root, folder, (f"split/{part}_list.npy", f"{part}_list.npy"))
        return FolderDataset(name="context", part=part, root=root, layout=layout, samples=samples,
                             class_list=classes, expected_size=EXPECTED[part], list_file=list_file)
    if base is None:
        require_dir(root / "SegmentationClassContext", "Pascal-Context 59-class PNGs of the Detail layout")
    images = require_dir(base / "JPEGImages", "VOC2010 images")
    list_file = base / "ImageSets" / "SegmentationContext" / ("train.txt" if part == "train" else "val.txt")
    if not list_file.is_file():
        raise ZsbenchError(f"{list_file}: missing image list of the Pascal-Context {part} part")
    samples = pair_folders(images, base / "SegmentationClassContext", stems=read_id_list(list_file))
    return FolderDataset(name="context", part=part, root=base, layout=layout, samples=samples, class_list=classes,
                         remap=detail_remap(classes), source_values=tuple(range(len(DETAIL_ORDER))) + (255,),
                         expected_size=EXPECTED[part], list_file=list_file)
