"""The dataset interface and registry.

A dataset is a torch `Dataset` of dicts:

* ``image``: uint8 tensor [3, H, W], RGB. Normalisation belongs to the method (Caffe BGR mean
  for DeepLabv2, ImageNet mean/std otherwise) and happens on the device, in the engine.
* ``label``: int64 tensor [H, W] of *raw* label ids (the PNG values). The split's lookup table
  turns them into evaluation indices, so one dataset serves every split of its label space.
* ``index`` (int) and ``name`` (str, the image id, used in error messages).

Builders are registered by name: ``DATASETS.get(name)(part, root, cfg) -> SegDataset`` with
``part`` in {"train", "test"}. ``cfg`` is the run's ``dataset`` config section; the runner adds
``classes`` (the split's class list) so that a dataset with several label spaces (Pascal-Context)
yields the ids of the right one. Real datasets live in one module per family (voc.py, ...) on
top of files.py.

Each builder declares the keys of its ``dataset`` section (a `DatasetOptions` subclass, attached
with `declare_options`); `build_dataset` checks the section against them and fills the defaults.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch

from zsseg_bench.catalog.schema import Section
from zsseg_bench.registry import Registry

__all__ = ["SegDataset", "DATASETS", "DatasetBuilder", "DatasetOptions"]


class DatasetOptions(Section):
    """The keys every dataset takes: `root` (its folder, when --data-root does not give it) and
    `classes` (the label space; the runner sets it from the split)."""

    root: str | None = None
    classes: str | None = None


class SegDataset(torch.utils.data.Dataset):
    """Base class: subclasses set `name`, `version`, `class_list` and implement the two readers."""

    name: str = ""
    version: str = "1"
    class_list: str = ""
    # (H, W) when every image has the same size (the synthetic benchmark), else None: the
    # engine then needs a crop or warp to batch training images, and evaluates one at a time.
    fixed_size: tuple[int, int] | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        raise NotImplementedError

    def raw_label(self, index: int) -> np.ndarray:
        """The raw label map of one image, without decoding the image (for filters and stats)."""
        return self[index]["label"].numpy()

    def image_name(self, index: int) -> str:
        return str(index)

    def class_embeddings(self) -> np.ndarray | None:
        """Embeddings supplied by the dataset itself (the synthetic benchmark), rows = raw ids."""
        return None


class DatasetBuilder(Protocol):
    def __call__(self, part: str, root: str | None, cfg: dict) -> SegDataset: ...


DATASETS: Registry[Callable[..., SegDataset]] = Registry("dataset")
