"""The reader behind every real dataset: a list of (image file, label PNG) pairs.

Each dataset family (voc.py, context.py, ...) only finds its files: it detects or is told the
layout, reads the image list, and hands this module a list of `Sample`s plus, when the PNG
values are not already the ids of its class list, a lookup table from PNG value to raw id
(`remap`). Everything else is shared: decoding with Pillow, the size check, `raw_label` that
decodes only the label, and the facts `zsbench data check` needs (paths, expected counts).

Decoding: images are converted to RGB (grayscale or CMYK JPEGs exist in COCO); label PNGs
must be palette ("P", VOC) or grayscale ("L", "I;16", "I") images of class ids. A colour-coded
RGB mask is refused with a message, since its colours are not ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pydantic import create_model

from zsseg_bench.datasets.base import DatasetOptions, SegDataset
from zsseg_bench.errors import ZsbenchError

__all__ = ["Sample", "FolderDataset", "read_image", "read_label", "read_id_list", "read_npy_list",
           "require_dir", "first_existing", "need_root", "remap_table", "INVALID_VALUE"]

# What `remap` gives PNG values that are not in the layout's label space: outside every class
# list, so training stops with "label value 65535 is outside the class list" and `data check`
# (which looks at the PNG values themselves) names the real value and file.
INVALID_VALUE = 65535
LABEL_MODES = ("P", "L", "I;16", "I;16B", "I;16L", "I")


@dataclass(frozen=True)
class Sample:
    name: str  # image id as the dataset's lists spell it, e.g. "2007_000032" or "val2017/000000000139"
    image: Path
    label: Path


def read_image(path: Path) -> torch.Tensor:
    """uint8 [3, H, W] RGB."""
    try:
        with Image.open(path) as im:
            arr = np.array(im.convert("RGB"))  # a writable copy: torch refuses read-only buffers
    except FileNotFoundError:
        raise ZsbenchError(f"{path}: image file missing; run 'zsbench data check'") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ZsbenchError(f"{path}: cannot decode image ({type(exc).__name__}); the file is damaged, replace it") from None
    # A [3, H, W] view of the HWC buffer (channels-last strides), which the uint8 resize kernels like.
    return torch.from_numpy(arr).permute(2, 0, 1)


def read_label(path: Path) -> np.ndarray:
    """The PNG's values as a 2-D array (uint8 for 8-bit PNGs)."""
    try:
        with Image.open(path) as im:
            if im.mode not in LABEL_MODES:
                raise ZsbenchError(f"{path}: label image has mode {im.mode!r}; label maps must be palette or grayscale "
                                   f"PNGs whose values are class ids (a colour-coded mask cannot be read)")
            arr = np.asarray(im)
    except FileNotFoundError:
        raise ZsbenchError(f"{path}: label file missing; run 'zsbench data check'") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ZsbenchError(f"{path}: cannot decode label PNG ({type(exc).__name__}); the file is damaged, replace it") from None
    return arr


def read_id_list(path: Path) -> list[str]:
    """Image ids from a list file: one id per line, or 'image_path label_path' pairs (SBD-aug lists)."""
    ids = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        first = line.split()[0]
        ids.append(Path(first).stem if ("/" in first or "." in Path(first).name) else first)
    if not ids:
        raise ZsbenchError(f"{path}: empty image list; the list file must name at least one image")
    return ids


def read_npy_list(path: Path) -> list[tuple[str, str]]:
    """CaGNet/SPNet split lists (train_list.npy, test_list.npy): (folder, stem) of each entry.

    The entries are label paths from the authors' machines; only the last two components count.
    """
    try:
        entries = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ZsbenchError(f"{path}: not a readable numpy string array ({type(exc).__name__})") from None
    if entries.ndim != 1 or entries.dtype.kind not in "US":
        raise ZsbenchError(f"{path}: expected a 1-D array of paths, got dtype {entries.dtype} shape {entries.shape}")
    if entries.size == 0:
        raise ZsbenchError(f"{path}: empty image list; the list must name at least one image")
    out = []
    for e in entries.tolist():
        e = e.decode() if isinstance(e, bytes) else e
        parts = Path(e.replace("\\", "/")).parts
        if len(parts) < 2:
            raise ZsbenchError(f"{path}: entry {e!r} has no folder component; expected '<folder>/<image id>'")
        out.append((parts[-2], Path(parts[-1]).stem))
    return out


def require_dir(path: Path, what: str, fix: str = "") -> Path:
    if not path.is_dir():
        raise ZsbenchError(f"{path}: missing folder ({what}){'; ' + fix if fix else ''}")
    return path


def first_existing(*paths: Path) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def need_root(dataset: str, root, example: str) -> Path:
    if root is None or str(root) == "":
        raise ZsbenchError(f"dataset {dataset!r} reads files: pass --data-root PATH ({example}); "
                           f"see docs/datasets.md")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ZsbenchError(f"{path}: --data-root is not a folder")
    return path


class FolderDataset(SegDataset):
    """Images and label PNGs listed in `samples`; labels optionally translated by `remap`."""

    def __init__(self, *, name: str, part: str, root: Path, layout: str, samples: list[Sample], class_list: str,
                 remap: np.ndarray | None = None, source_values: tuple[int, ...] | None = None,
                 expected_size: int | None = None, list_file: Path | None = None, version: str = "1"):
        if not samples:
            where = list_file or root
            raise ZsbenchError(f"{where}: no images found for the {part} part of {name} (layout {layout}); "
                               f"check --data-root and the layout (docs/datasets.md)")
        self.name, self.part, self.root, self.layout = name, part, Path(root), layout
        self.samples = samples
        self.class_list = class_list
        self.remap = remap
        self.source_values = source_values  # PNG values the layout allows (None: the class list's ids)
        self.expected_size = expected_size
        self.list_file = list_file
        self.version = version

    def __len__(self) -> int:
        return len(self.samples)

    def image_name(self, index: int) -> str:
        return self.samples[index].name

    def image_path(self, index: int) -> Path:
        return self.samples[index].image

    def label_path(self, index: int) -> Path:
        return self.samples[index].label

    def source_label(self, index: int) -> np.ndarray:
        """The PNG values themselves, before any layout translation (what `data check` inspects)."""
        return read_label(self.samples[index].label)

    def raw_label(self, index: int) -> np.ndarray:
        arr = self.source_label(index)
        if self.remap is not None:
            table = self.remap
            top = int(arr.max(initial=0))
            if top >= len(table):  # a value beyond the table is not in the label space either
                table = np.concatenate([table, np.full(top + 1 - len(table), INVALID_VALUE, dtype=table.dtype)])
            arr = table[arr]
        return arr

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image = read_image(sample.image)
        label = self.raw_label(index)
        if tuple(label.shape) != tuple(image.shape[1:]):
            raise ZsbenchError(f"{sample.label}: mask is {label.shape[1]}x{label.shape[0]} but its image "
                               f"{sample.image.name} is {image.shape[2]}x{image.shape[1]}; run 'zsbench data check'")
        return {"image": image, "label": torch.from_numpy(label.astype(np.int64, copy=False)), "index": index,
                "name": sample.name}

    def cache_key(self) -> str:
        """Changes whenever a label file, the list or the translation changes (for cached label statistics)."""
        h = hashlib.sha256()
        h.update(f"{type(self).__name__}|{self.name}|{self.version}|{self.layout}|{self.part}|{self.class_list}".encode())
        if self.remap is not None:
            h.update(np.ascontiguousarray(self.remap).tobytes())
        for s in self.samples:
            try:
                st = s.label.stat()
                h.update(f"{s.label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{s.label}|missing\n".encode())
        return h.hexdigest()[:32]

    def describe(self) -> dict:
        return {"dataset": self.name, "part": self.part, "layout": self.layout, "root": str(self.root),
                "images": len(self), "expected": self.expected_size, "classes": self.class_list,
                "list": str(self.list_file) if self.list_file else None}


def remap_table(pairs: dict[int, int], size: int = 256) -> np.ndarray:
    """PNG value -> raw id lookup table; values not in `pairs` map to INVALID_VALUE."""
    table = np.full(size, INVALID_VALUE, dtype=np.int64)
    for src, dst in pairs.items():
        table[src] = dst
    return table


def pair_folders(image_dir: Path, label_dir: Path, *, prefix: str = "", stems: list[str] | None = None,
                 image_ext: str = ".jpg", label_suffix: str = ".png") -> list[Sample]:
    """Samples `image_dir/<stem>.jpg` + `label_dir/<stem>.png`; by default every image in the folder.

    Listing the images (not the masks) makes a missing mask a problem `data check` reports.
    """
    if stems is None:
        stems = sorted(p.name[: -len(image_ext)] for p in image_dir.iterdir() if p.name.endswith(image_ext))
    return [Sample(prefix + s, image_dir / f"{s}{image_ext}", label_dir / f"{s}{label_suffix}") for s in stems]


def packaged_samples(root: Path, folder: str, list_files: tuple[str, ...] = ()) -> tuple[list[Sample], Path | None]:
    """The CaGNet/SPNet packaged layout: images/<folder>/<id>.jpg and annotations/<folder>/<id>.png.

    The image set is the first list file found (CaGNet's split/train_list.npy, ...; entries name
    '<folder>/<id>') or, without one, every image in images/<folder>/.
    """
    images = require_dir(root / "images", "images/<part>/*.jpg of the packaged layout")
    labels = require_dir(root / "annotations", "annotations/<part>/*.png of the packaged layout")
    list_file = first_existing(*(root / f for f in list_files))
    if list_file is not None:
        entries = read_npy_list(list_file) if list_file.suffix == ".npy" else [(folder, s) for s in read_id_list(list_file)]
        samples = [Sample(f"{f}/{s}", images / f / f"{s}.jpg", labels / f / f"{s}.png") for f, s in entries]
        return samples, list_file
    require_dir(images / folder, f"images of the '{folder}' part")
    require_dir(labels / folder, f"label PNGs of the '{folder}' part")
    return pair_folders(images / folder, labels / folder, prefix=f"{folder}/"), None


def layout_options(*layouts: str, name: str = "FolderOptions", base: type[DatasetOptions] = DatasetOptions):
    """The `dataset` section of a folder dataset: `layout` is auto (detected) or one of `layouts`."""
    return create_model(name, __base__=base, layout=(Literal[("auto", *layouts)], "auto"))


def check_classes(dataset: str, cfg: dict, allowed: tuple[str, ...]) -> str:
    """The class list (label space) asked for by the split (cfg['classes']), if this dataset has it."""
    classes = cfg["classes"] or allowed[0]
    if classes not in allowed:
        raise ZsbenchError(f"dataset {dataset!r} has the label space(s) {', '.join(allowed)}, not {classes!r}; "
                           f"choose a split of this dataset ('zsbench ls splits')")
    return classes


def check_part(dataset: str, part: str, test_is: str = "") -> None:
    """Every real dataset has the parts 'train' and 'test' (`test_is`: which official set that is)."""
    if part not in ("train", "test"):
        what = f" ({test_is})" if test_is else ""
        raise ZsbenchError(f"{dataset} has the parts train and test{what}, not {part!r}")


def check_layout(title: str, cfg: dict, layouts: tuple[str, ...]) -> str:
    """cfg['layout'], if it is 'auto' or one of `layouts`."""
    layout = cfg["layout"]
    if layout not in ("auto", *layouts):
        raise ZsbenchError(f"dataset.layout {layout!r} is not a {title} layout; choose auto, {', '.join(layouts)}")
    return layout
