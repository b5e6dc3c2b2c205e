"""Which raw label ids each image contains, computed once and cached.

`drop_images_with_unseen` (ZS3Net's policy) and `zsbench data stats` need, for every training
image, the set of classes in its mask. Decoding 10k-118k PNGs takes minutes, so the result is
computed with a thread pool (Pillow releases the GIL while decoding) and, for datasets read
from files, stored as a packed bit matrix under ``$ZSBENCH_CACHE`` (default
``~/.cache/zsseg-bench``) keyed by the dataset's `cache_key()`, which changes when any label
file (path, size or modification time), the image list or the label translation changes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from zsseg_bench.paths import cache_dir

__all__ = ["class_presence", "label_statistics", "cache_dir", "PRESENCE_WIDTH"]

PRESENCE_WIDTH = 256  # label ids 0..255 (8-bit PNGs, ignore index 255); wider maps widen it


def _workers(workers: int | None) -> int:
    return max(1, workers if workers is not None else min(8, (os.cpu_count() or 1) * 2))


def _cache_path(dataset) -> Path | None:
    key = getattr(dataset, "cache_key", None)
    if key is None:
        return None
    return cache_dir() / "presence" / f"{dataset.name}-{dataset.part}-{key()}.npz"


def _load(path: Path | None, n: int) -> np.ndarray | None:
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path) as f:
            width, bits = int(f["width"]), f["bits"]
        out = np.unpackbits(bits, axis=1, count=width).astype(bool)
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache file is recomputed
    return out if out.shape[0] == n else None


def _store(path: Path | None, presence: np.ndarray) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, width=presence.shape[1], bits=np.packbits(presence, axis=1))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home is not an error; the statistics are recomputed next time


def label_statistics(dataset, indices=None, workers: int | None = None, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(presence bool [N, W], pixel counts int64 [W]) over `indices` (default all) of `dataset`."""
    indices = np.arange(len(dataset)) if indices is None else np.asarray(indices)

    def one(i):
        arr = np.asarray(dataset.raw_label(int(i))).ravel()
        if arr.size and int(arr.min()) < 0:
            arr = arr[arr >= 0]
        return np.bincount(arr.astype(np.int64, copy=False), minlength=PRESENCE_WIDTH)

    presence = np.zeros((len(indices), PRESENCE_WIDTH), dtype=bool)
    totals = np.zeros(PRESENCE_WIDTH, dtype=np.int64)
    with ThreadPoolExecutor(_workers(workers)) as pool:
        for k, counts in enumerate(pool.map(one, indices)):
            if len(counts) > presence.shape[1]:  # a 16-bit mask with ids >= 256
                grow = len(counts) - presence.shape[1]
                presence = np.pad(presence, ((0, 0), (0, grow)))
                totals = np.pad(totals, (0, grow))
            presence[k, : len(counts)] = counts > 0
            totals[: len(counts)] += counts
            if progress is not None:
                progress()
    return presence, totals


def class_presence(dataset, workers: int | None = None, use_cache: bool = True) -> np.ndarray:
    """bool [len(dataset), W]: entry [i, v] says whether raw id v occurs in image i's mask."""
    path = _cache_path(dataset) if use_cache else None
    cached = _load(path, len(dataset))
    if cached is not None:
        return cached
    presence, _ = label_statistics(dataset, workers=workers)
    _store(path, presence)
    return presence
