"""ADE20K SceneParsing, 150 classes (dataset name `ade20k`), for SimFormer's weak-shot splits.

Class list ``ade20k``: annotation value 0 = other (unlabelled; the splits exclude it, so it is
ignored), 1..150 the classes. Layouts (``dataset.layout``, default ``auto``), under the root or
``<root>/ADEChallengeData2016``:

* ``official``: ``images/{training,validation}/*.jpg``, ``annotations/{training,validation}/*.png``.
* ``detectron2``: the same images with MaskFormer's ``annotations_detectron2/{training,validation}``
  (values 0..149, 255 = other); read back into the official ids (value + 1, 255 -> 0). SimFormer's
  data package names the image folder ``images_detectron2``; it is read when ``images`` is absent.

Train 20,210 / test (validation) 2,000 images.
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
    remap_table,
    require_dir,
)

__all__ = ["build_ade20k"]

EXPECTED = {"train": 20210, "test": 2000}


@register_dataset("ade20k", default_split="ade20k-ws-s1", expected=EXPECTED)
@declare_options(layout_options("official", "detectron2", name="ADE20KOptions"))
def build_ade20k(part: str, root, cfg: dict) -> FolderDataset:
    classes = check_classes("ade20k", cfg, ("ade20k",))
    root = need_root("ade20k", root, "ADEChallengeData2016 with images/ and annotations/")
    check_part("ade20k", part, "validation")
    layout = check_layout("ADE20K", cfg, ("official", "detectron2"))
    base = first_existing(*(p for p in (root, root / "ADEChallengeData2016")
                            if (p / "images").is_dir() or (p / "images_detectron2").is_dir()))
    if base is None:
        require_dir(root / "images", "ADE20K images/{training,validation}/ (or SimFormer's images_detectron2/)")
    if layout == "auto":
        layout = "official" if (base / "annotations").is_dir() else "detectron2"
    folder = "training" if part == "train" else "validation"
    image_root = base / "images" if (base / "images").is_dir() else base / "images_detectron2"
    images = require_dir(image_root / folder, f"ADE20K {folder} images")
    if layout == "official":
        labels = require_dir(base / "annotations" / folder, f"ADE20K {folder} annotations")
        remap, source = None, None
    else:
        labels = require_dir(base / "annotations_detectron2" / folder, f"ADE20K {folder} annotations_detectron2")
        remap = remap_table({**{v: v + 1 for v in range(150)}, 255: 0})
        source = tuple(range(150)) + (255,)
    return FolderDataset(name="ade20k", part=part, root=base, layout=layout,
                         samples=pair_folders(images, labels, prefix=f"{folder}/"), class_list=classes, remap=remap,
                         source_values=source, expected_size=EXPECTED[part])
