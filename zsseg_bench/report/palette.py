"""Label maps as pictures: the dataset palettes, palette PNGs and unseen-class outlines.

Label maps are drawn in *raw label ids* (the values of the dataset's label PNGs), so a stored
prediction, a ground-truth PNG and a figure use the same colour for the same class.

Palette: Pascal VOC's (the one VOC ground-truth PNGs carry: bits of the label id spread over
the high bits of R, G and B; id 0 is black, the ignore value 255 is cream). A dataset whose
builder registers `palette_by_name` (the synthetic benchmark, whose classes carry VOC names)
takes VOC's colours *by class name* (its cat is VOC's cat colour, whatever its raw id), so its
figures read like VOC's. Pascal-Context and COCO-Stuff have no palette of their own in the
official codes and use VOC's by raw id.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np

__all__ = ["voc_palette", "palette_for", "with_not_scored", "NOT_SCORED_CANDIDATES", "colorize", "encode_palette_png",
           "decode_palette_png", "boundary", "text_colour"]

# Colours a figure may give to pixels the evaluation does not score (an excluded background, void), in
# order of preference: VOC's background is black, and VOC's cat, dog, boat and tvmonitor are nearly black.
NOT_SCORED_CANDIDATES = ((235, 235, 235), (255, 255, 255), (255, 0, 255), (255, 255, 0), (0, 255, 255))


@lru_cache(maxsize=1)
def _voc() -> np.ndarray:
    palette = np.zeros((256, 3), dtype=np.uint8)
    for label in range(256):
        value, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):  # the label's bits, three at a time, from the top bit down
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[label] = (r, g, b)
    palette.setflags(write=False)
    return palette


def voc_palette() -> np.ndarray:
    """[256, 3] uint8: the Pascal VOC palette (0 black, 1 (128, 0, 0), ..., 255 (224, 224, 192))."""
    return _voc()


@lru_cache(maxsize=4)
def _voc_by_name(class_list: str) -> np.ndarray:
    """VOC's palette with each class of `class_list` given the colour of the VOC class of that name."""
    from zsseg_bench.catalog.splits import load_class_list

    voc, own = load_class_list("voc12"), load_class_list(class_list)
    palette = voc_palette().copy()
    for raw, name in zip(own.ids, own.names):
        if name in voc.names and raw < 256:
            palette[raw] = voc_palette()[voc.id_of(name)]
    palette.setflags(write=False)
    return palette


def palette_for(dataset: str) -> np.ndarray:
    """The [256, 3] palette figures use for `dataset` (raw label id -> RGB), as its builder registered it."""
    from zsseg_bench.datasets import dataset_info

    by_name = dataset_info(dataset).palette_by_name
    return _voc_by_name(by_name) if by_name else voc_palette()


def with_not_scored(palette: np.ndarray, class_ids, unscored_ids) -> tuple[np.ndarray, tuple[int, int, int]]:
    """`palette` with every not-scored raw id in one colour far from every scored class's colour: the
    first candidate at least 100 (RGB distance) from all of them, else the farthest. Returns the new
    palette and that colour."""
    classes = np.asarray([palette[i] for i in class_ids if 0 <= i < len(palette)], dtype=float).reshape(-1, 3)

    def distance(colour) -> float:
        return float(np.min(np.linalg.norm(classes - np.asarray(colour, dtype=float), axis=1))) if len(classes) else 1e9

    colour = next((c for c in NOT_SCORED_CANDIDATES if distance(c) >= 100), None)
    colour = colour or max(NOT_SCORED_CANDIDATES, key=distance)
    out = np.array(palette, dtype=np.uint8)
    for i in unscored_ids:
        if 0 <= i < len(out):
            out[i] = colour
    return out, colour


def colorize(label: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """[H, W] raw label ids -> [H, W, 3] uint8 RGB."""
    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() >= len(palette)):
        raise ValueError(f"label values must lie in [0, {len(palette) - 1}], got [{label.min()}, {label.max()}]")
    return palette[label.astype(np.intp)]


def encode_palette_png(label: np.ndarray, palette: np.ndarray) -> bytes:
    """[H, W] raw label ids (< 256) -> the bytes of a mode "P" PNG that carries `palette`."""
    from PIL import Image

    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"a label map is [H, W], got shape {label.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError("palette PNGs hold label ids 0..255")
    image = Image.fromarray(label.astype(np.uint8), mode="P")
    image.putpalette(np.asarray(palette, dtype=np.uint8).reshape(-1).tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def decode_palette_png(path) -> np.ndarray:
    """A palette (or grayscale) label PNG -> [H, W] uint8 label ids (the indices, not the colours)."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode not in ("P", "L"):
            raise ValueError(f"{path}: a label PNG is mode P or L, not {image.mode}")
        return np.array(image, dtype=np.uint8)


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` that touch a pixel outside it (4-neighbourhood): a one-pixel outline."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1, mode="edge")
    inner = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return mask & ~inner


def text_colour(rgb) -> str:
    """Black or white, whichever reads better on `rgb` (0..255)."""
    r, g, b = (float(c) for c in rgb[:3])
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"
