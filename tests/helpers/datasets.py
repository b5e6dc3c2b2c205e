"""Small dataset trees in the exact real layouts, for tests and the loading benchmark.

No real dataset can be downloaded where zsseg-bench is tested, so every loader is exercised on
trees written here: JPEG images, label PNGs of the right kind (palette PNGs for VOC's
SegmentationClass, grayscale elsewhere), the list files and folder names of each layout. The
masks are rectangles of random class values on a background value, with a 255 border where the
real dataset has one, so every class list and remap path is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["voc_palette", "write_pair", "make_voc_devkit", "make_packaged", "make_context_detail",
           "make_cocostuff10k", "make_ade20k", "make_coco_hsnet"]


def voc_palette() -> list[int]:
    """The VOC colour map (256 RGB triples, flattened), as in the devkit's labelcolormap."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def _mask(rng: np.random.Generator, h: int, w: int, values, background: int, border: int | None) -> np.ndarray:
    mask = np.full((h, w), background, dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        v = int(rng.choice(values))
        y0, x0 = int(rng.integers(0, h - 2)), int(rng.integers(0, w - 2))
        y1, x1 = int(rng.integers(y0 + 2, h + 1)), int(rng.integers(x0 + 2, w + 1))
        mask[y0:y1, x0:x1] = v
        if border is not None:
            mask[y0, x0:x1] = border
    return mask


def write_pair(image: Path, label: Path, rng: np.random.Generator, size=(24, 32), values=(1, 2, 3),
               background: int = 0, border: int | None = 255, palette: bool = False, quality: int = 90) -> None:
    """A JPEG (random colours, smooth enough to compress) and its label PNG."""
    h, w = size
    image.parent.mkdir(parents=True, exist_ok=True)
    label.parent.mkdir(parents=True, exist_ok=True)
    mask = _mask(rng, h, w, list(values), background, border)
    colours = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    pixels = colours[mask] // 2 + rng.integers(0, 128, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image, quality=quality)
    png = Image.fromarray(mask)  # mode "L"
    if palette:
        png.putpalette(voc_palette())  # becomes mode "P" with the same indices, like VOC's masks
    png.save(label)


def _ids(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}_{k:06d}" for k in range(start, start + n)]


def _write_devkit(base: Path, sets: Path, label_folder: str, train: list[str], val: list[str],
                  rng: np.random.Generator, size, **pair) -> None:
    """A VOCdevkit-style year folder: JPEGImages/, <label_folder>/ and train.txt/val.txt in `sets`."""
    sets.mkdir(parents=True, exist_ok=True)
    for i in train + val:
        write_pair(base / "JPEGImages" / f"{i}.jpg", base / label_folder / f"{i}.png", rng, size, **pair)
    (sets / "train.txt").write_text("".join(f"{i}\n" for i in train))
    (sets / "val.txt").write_text("".join(f"{i}\n" for i in val))


def make_voc_devkit(root: Path, n_train: int = 3, n_val: int = 2, aug: int = 0, aug_list: bool = False,
                    size=(24, 32), seed: int = 0) -> Path:
    """VOCdevkit/VOC2012 with palette SegmentationClass PNGs; `aug` extra SBD images in SegmentationClassAug."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "VOCdevkit" / "VOC2012"
    sets = base / "ImageSets" / "Segmentation"
    train, val = _ids("2007", n_train), _ids("2008", n_val)
    _write_devkit(base, sets, "SegmentationClass", train, val, rng, size, values=range(1, 21), palette=True)
    (sets / "trainval.txt").write_text("".join(f"{i}\n" for i in train + val))
    if aug:
        extra = _ids("2009", aug)
        for i in extra:
            write_pair(base / "JPEGImages" / f"{i}.jpg", base / "SegmentationClassAug" / f"{i}.png", rng, size,
                       values=range(1, 21))
        for i in train + val:  # SBD-aug folders also hold (grayscale) copies of the VOC masks
            mask = np.asarray(Image.open(base / "SegmentationClass" / f"{i}.png"))
            Image.fromarray(mask).save(base / "SegmentationClassAug" / f"{i}.png")
        if aug_list:
            (sets / "trainaug.txt").write_text(
                "".join(f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png\n" for i in train + extra))
    return base


def make_packaged(root: Path, folders: dict[str, int], values, background: int = 0, border: int | None = 255,
                  lists: dict[str, str] | None = None, size=(24, 32), seed: int = 0) -> Path:
    """CaGNet/SPNet's layout: images/<folder>/<id>.jpg, annotations/<folder>/<id>.png (+ split/<part>_list.npy).

    `lists` maps a part ("train", "test") to its folder; the list holds absolute-looking label
    paths as CaGNet's do.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    made: dict[str, list[str]] = {}
    for folder, n in folders.items():
        made[folder] = _ids(folder, n)
        for i in made[folder]:
            write_pair(root / "images" / folder / f"{i}.jpg", root / "annotations" / folder / f"{i}.png", rng, size,
                       values=values, background=background, border=border)
    for part, folder in (lists or {}).items():
        (root / "split").mkdir(exist_ok=True)
        np.save(root / "split" / f"{part}_list.npy",
                np.array([f"/home/authors/data/annotations/{folder}/{i}.png" for i in made[folder]]))
    return root


def make_context_detail(root: Path, n_train: int = 3, n_val: int = 2, size=(24, 32), seed: int = 0) -> Path:
    """VOC2010 with SegmentationClassContext (values 0..59) and ImageSets/SegmentationContext lists."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "VOCdevkit" / "VOC2010"
    train, val = _ids("2008", n_train), _ids("2010", n_val)
    _write_devkit(base, base / "ImageSets" / "SegmentationContext", "SegmentationClassContext", train, val, rng, size,
                  values=range(1, 60), border=None)
    return base


def make_cocostuff10k(root: Path, n_train: int = 3, n_test: int = 2, size=(24, 32), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    base = Path(root) / "coco_stuff_10k"
    for part, n in (("train", n_train), ("test", n_test)):
        for i in _ids("COCO_train2014", n, 0 if part == "train" else 100):
            write_pair(base / "images_detectron2" / part / f"{i}.jpg", base / "annotations_detectron2" / part / f"{i}.png",
                       rng, size, values=range(0, 171), background=255, border=None)
    return base


def make_ade20k(root: Path, n_train: int = 3, n_val: int = 2, detectron2: bool = False, size=(24, 32),
                seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    base = Path(root) / "ADEChallengeData2016"
    for folder, n in (("training", n_train), ("validation", n_val)):
        for i in _ids(f"ADE_{folder[:-3] if folder == 'training' else 'val'}", n):
            if detectron2:
                write_pair(base / "images" / folder / f"{i}.jpg", base / "annotations_detectron2" / folder / f"{i}.png",
                           rng, size, values=range(0, 150), background=255, border=None)
            else:
                write_pair(base / "images" / folder / f"{i}.jpg", base / "annotations" / folder / f"{i}.png",
                           rng, size, values=range(1, 151), background=0, border=None)
    return base


def make_coco_hsnet(root: Path, n_train: int = 3, n_val: int = 2, size=(24, 32), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    base = Path(root) / "COCO2014"
    for folder, n in (("train2014", n_train), ("val2014", n_val)):
        for i in _ids(f"COCO_{folder}", n):
            write_pair(base / folder / f"{i}.jpg", base / "annotations" / folder / f"{i}.png", rng, size,
                       values=range(1, 81), background=0, border=None)
    return base
