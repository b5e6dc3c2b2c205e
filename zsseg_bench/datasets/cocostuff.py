"""COCO-Stuff: the 164k release (dataset `cocostuff`) and the 10k release (`cocostuff10k`).

``cocostuff`` (class list ``cocostuff``: the stuffthingmaps values 0..181, 255 unlabeled).
Layout ``official``, which is also CaGNet's ``dataset/cocostuff``: ``images/{train2017,val2017}/``
and the stuffthingmaps PNGs in ``annotations/{train2017,val2017}/`` (or in
``stuffthingmaps_trainval2017/{train2017,val2017}/`` as the zip unpacks). CaGNet/SPNet list files
(``split/{train,test}_list.npy``) are used when present. Train 118,287 / test 5,000 images.

``cocostuff10k`` (class list ``cocostuff171``: the 171 annotated classes with contiguous ids
0..170, 255 unlabeled). Layout ``detectron2``, written by MaskFormer's
``prepare_coco_stuff_10k_sem_seg.py`` and read by SimFormer: ``images_detectron2/{train,test}/``
and ``annotations_detectron2/{train,test}/``. Train 9,000 / test 1,000 images. The release's own
``.mat`` annotations are not read (convert them with that script). SimFormer's loader
(``register_coco_stuff_10k_splits.py``) drops seven training images; ``dataset.skip_images:
simformer`` (the default) drops them too, leaving 8,993; ``none`` keeps all 9,000.
"""

from __future__ import annotations

from typing import Literal

from zsseg_bench.catalog.schema import declare_options
from zsseg_bench.datasets.base import DatasetOptions, register_dataset
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
    require_dir,
)
from zsseg_bench.errors import ZsbenchError

__all__ = ["build_cocostuff", "build_cocostuff10k"]

EXPECTED_164K = {"train": 118287, "test": 5000}
EXPECTED_10K = {"train": 9000, "test": 1000}
# The training images SimFormer's COCO-Stuff-10K loader skips (by name).
SIMFORMER_SKIPPED = ("COCO_train2014_000000016680", "COCO_train2014_000000230639", "COCO_train2014_000000382127",
                     "COCO_train2014_000000429995", "COCO_train2014_000000314646", "COCO_train2014_000000003518",
                     "COCO_train2014_000000058075")


class _COCOStuff10kBase(DatasetOptions):
    skip_images: Literal["simformer", "none"] = "simformer"


@register_dataset("cocostuff", default_split="cocostuff-167-15", marker="^", expected=EXPECTED_164K)
@declare_options(layout_options("official", name="COCOStuffOptions"))
def build_cocostuff(part: str, root, cfg: dict) -> FolderDataset:
    classes = check_classes("cocostuff", cfg, ("cocostuff",))
    root = need_root("cocostuff", root, "the folder with images/train2017 and annotations/train2017 (stuffthingmaps)")
    check_part("cocostuff", part, "val2017")
    check_layout("COCO-Stuff-164k", cfg, ("official",))
    folder = "train2017" if part == "train" else "val2017"
    ann = first_existing(root / "annotations", root / "stuffthingmaps_trainval2017")
    if ann is None:
        require_dir(root / "annotations", "stuffthingmaps PNGs: annotations/{train2017,val2017}/")
    if ann.name == "annotations":
        samples, list_file = packaged_samples(root, folder, (f"split/{part}_list.npy", f"{part}_list.npy"))
    else:  # the zip's own folder name
        images = require_dir(root / "images" / folder, f"COCO {folder} images")
        samples = pair_folders(images, require_dir(ann / folder, f"stuffthingmaps of {folder}"), prefix=f"{folder}/")
        list_file = None
    return FolderDataset(name="cocostuff", part=part, root=root, layout="official", samples=samples,
                         class_list=classes, expected_size=EXPECTED_164K[part], list_file=list_file)


@register_dataset("cocostuff10k", default_split="cocostuff10k-ws-s1", expected=EXPECTED_10K)
@declare_options(layout_options("detectron2", name="COCOStuff10kOptions", base=_COCOStuff10kBase))
def build_cocostuff10k(part: str, root, cfg: dict) -> FolderDataset:
    classes = check_classes("cocostuff10k", cfg, ("cocostuff171",))
    root = need_root("cocostuff10k", root, "MaskFormer's coco_stuff_10k folder with images_detectron2/")
    check_part("cocostuff10k", part)
    check_layout("COCO-Stuff-10k", cfg, ("detectron2",))
    base = first_existing(*(p for p in (root, root / "coco_stuff_10k") if (p / "images_detectron2").is_dir()))
    if base is None:
        if (root / "annotations").is_dir() and any((root / "annotations").glob("*.mat")):
            raise ZsbenchError(f"{root}: this is the original COCO-Stuff-10k release (.mat annotations), which is not "
                               f"read; convert it with MaskFormer's datasets/prepare_coco_stuff_10k_sem_seg.py")
        require_dir(root / "images_detectron2", "COCO-Stuff-10k images_detectron2/{train,test}/")
    images = require_dir(base / "images_detectron2" / part, f"COCO-Stuff-10k {part} images")
    labels = require_dir(base / "annotations_detectron2" / part, f"COCO-Stuff-10k {part} label PNGs")
    samples = pair_folders(images, labels, prefix=f"{part}/")
    expected = EXPECTED_10K[part]
    if cfg["skip_images"] == "simformer" and part == "train":
        samples = [s for s in samples if s.image.stem not in SIMFORMER_SKIPPED]
        expected -= len(SIMFORMER_SKIPPED)
    return FolderDataset(name="cocostuff10k", part=part, root=base, layout="detectron2", samples=samples,
                         class_list=classes, expected_size=expected)
