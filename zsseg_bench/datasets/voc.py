"""Pascal-VOC 2012 and its SBD-augmented training set (dataset name `voc12`).

One label space, class list `voc12`: PNG value 0 background, 1..20 the classes, 255 the void
boundary (the splits' ignore index). Three layouts (`dataset.layout`, default `auto`):

* ``devkit``: ``VOC2012/`` of the VOC devkit: ``JPEGImages/``, ``SegmentationClass/`` (palette
  PNGs), ``ImageSets/Segmentation/{train,val}.txt``. Train = the 1,464 ``train`` images.
* ``aug``: the same folder with ``SegmentationClassAug/`` (SBD-augmented masks, grayscale PNGs)
  added. Train = the 10,582-image list used by SPNet, CaGNet and (as VOC train + SBD
  train_noval) ZS3Net: a list file if one is there (``ImageSets/Segmentation/trainaug.txt``,
  ``train_aug.txt``, ``aug.txt`` or ``ImageSets/SegmentationAug/train_aug.txt``; plain ids or
  "image label" path pairs), else every ``SegmentationClassAug`` mask that is not in ``val.txt``.
* ``cagnet``: the packaged folder of CaGNet/SPNet (``dataset/voc12``): ``images/{train,val}/``,
  ``annotations/{train,val}/``, optional ``split/{train,test}_list.npy``.

The devkit folder may be given as the root itself, ``<root>/VOC2012`` or ``<root>/VOCdevkit/VOC2012``.
Test is always VOC12 val (1,449 images).
"""

from __future__ import annotations

from pathlib import Path

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
    packaged_samples,
    pair_folders,
    read_id_list,
    require_dir,
)
from zsseg_bench.errors import ZsbenchError

__all__ = ["build_voc12", "detect_voc_layout", "AUG_LISTS", "EXPECTED"]

LAYOUTS = ("devkit", "aug", "cagnet")
AUG_LISTS = ("ImageSets/Segmentation/trainaug.txt", "ImageSets/Segmentation/train_aug.txt",
             "ImageSets/Segmentation/aug.txt", "ImageSets/SegmentationAug/train_aug.txt")
EXPECTED = {("devkit", "train"): 1464, ("aug", "train"): 10582, ("cagnet", "train"): 10582,
            ("devkit", "test"): 1449, ("aug", "test"): 1449, ("cagnet", "test"): 1449}


def _devkit_base(root: Path) -> Path | None:
    return first_existing(*(p for p in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012")
                            if (p / "JPEGImages").is_dir()))


def detect_voc_layout(root: Path, layout: str = "auto") -> tuple[str, Path]:
    """(layout, folder that holds it)."""
    check_layout("VOC", {"layout": layout}, LAYOUTS)
    if layout in ("auto", "cagnet") and (root / "images").is_dir() and (root / "annotations").is_dir():
        return "cagnet", root
    if layout == "cagnet":
        require_dir(root / "images", "images/{train,val} of the CaGNet packaged layout")
        require_dir(root / "annotations", "annotations/{train,val} of the CaGNet packaged layout")
    base = _devkit_base(root)
    if base is None:
        raise ZsbenchError(f"{root}: no Pascal-VOC layout found: expected JPEGImages/ with SegmentationClass/ or "
                           f"SegmentationClassAug/ (here, in VOC2012/ or VOCdevkit/VOC2012/), or images/ + "
                           f"annotations/ (CaGNet's packaged layout)")
    if layout == "auto":
        layout = "aug" if (base / "SegmentationClassAug").is_dir() else "devkit"
    return layout, base


def _val_ids(base: Path) -> tuple[list[str], Path]:
    path = base / "ImageSets" / "Segmentation" / "val.txt"
    if not path.is_file():
        raise ZsbenchError(f"{path}: missing image list (VOC12 val); it comes with the VOC2012 devkit")
    return read_id_list(path), path


def _devkit_samples(layout: str, base: Path, part: str, cfg: dict):
    images = require_dir(base / "JPEGImages", "VOC images")
    if part == "test":
        ids, list_file = _val_ids(base)
        label_dir = base / "SegmentationClass"
        if not label_dir.is_dir() and layout == "aug":
            label_dir = base / "SegmentationClassAug"
        require_dir(label_dir, "VOC12 val masks (SegmentationClass/*.png)")
        return pair_folders(images, label_dir, stems=ids), list_file
    if layout == "devkit":
        list_file = base / "ImageSets" / "Segmentation" / "train.txt"
        if not list_file.is_file():
            raise ZsbenchError(f"{list_file}: missing image list (VOC12 train); it comes with the VOC2012 devkit")
        label_dir = require_dir(base / "SegmentationClass", "VOC12 masks (SegmentationClass/*.png)")
        return pair_folders(images, label_dir, stems=read_id_list(list_file)), list_file
    label_dir = require_dir(base / "SegmentationClassAug", "SBD-augmented masks (SegmentationClassAug/*.png)")
    given = cfg["train_list"]
    list_file = Path(given) if given else first_existing(*(base / p for p in AUG_LISTS))
    if list_file is not None and not list_file.is_absolute() and not list_file.exists():
        list_file = base / list_file
    if list_file is not None:
        if not list_file.is_file():
            raise ZsbenchError(f"{list_file}: dataset.train_list is not a file")
        return pair_folders(images, label_dir, stems=read_id_list(list_file)), list_file
    val = set(_val_ids(base)[0])
    ids = sorted(p.stem for p in label_dir.glob("*.png") if p.stem not in val)
    return pair_folders(images, label_dir, stems=ids), None


class VOCOptions(layout_options(*LAYOUTS, name="VOCLayout")):
    train_list: str | None = None  # the augmented layout's training list (default: the first found)


@register_dataset("voc12", default_split="voc12-15-5", marker="o", expected=EXPECTED)
@declare_options(VOCOptions)
def build_voc12(part: str, root, cfg: dict) -> FolderDataset:
    classes = check_classes("voc12", cfg, ("voc12",))
    root = need_root("voc12", root, "the VOC2012 devkit folder, or CaGNet's dataset/voc12")
    check_part("voc12", part, "VOC12 val")
    layout, base = detect_voc_layout(root, cfg["layout"])
    if layout == "cagnet":
        folder = "train" if part == "train" else "val"
        lists = (f"split/{part}_list.npy", f"{part}_list.npy")
        samples, list_file = packaged_samples(base, folder, lists)
    else:
        samples, list_file = _devkit_samples(layout, base, part, cfg)
    return FolderDataset(name="voc12", part=part, root=base, layout=layout, samples=samples, class_list=classes,
                         expected_size=EXPECTED[(layout, part)], list_file=list_file)
