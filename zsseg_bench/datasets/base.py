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

Everything else the harness knows about a dataset is declared once, where its builder is
registered (`register_dataset`), and read back with `dataset_info(name)`: the split used when
``--split`` is not given, how figures colour it, its marker in the report's scatter plot, the
image counts of the full release and whether it is the synthetic benchmark.

Each builder declares the keys of its ``dataset`` section (a `DatasetOptions` subclass, attached
with `declare_options`); `build_dataset` checks the section against them and fills the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from zsseg_bench.catalog.schema import Section
from zsseg_bench.registry import Registry

__all__ = ["SegDataset", "DATASETS", "DatasetInfo", "DatasetOptions", "register_dataset", "dataset_info",
           "default_split"]


class DatasetOptions(Section):
    """The keys every dataset takes: `root` (its folder, when --data-root does not give it) and
    `classes` (the label space; the runner sets it from the split)."""

    # Keys written into every run record (config.yaml, run.json) even at their defaults, because
    # they say which data a number is on and a later default must not change what a record means.
    recorded: ClassVar[tuple[str, ...]] = ()
    root: str | None = None
    classes: str | None = None

    @classmethod
    def from_record(cls, options: dict, version: str) -> dict:
        """The options that rebuild a recorded run's data, from run.json's dataset `options` and
        `version` (a subclass fills what records made before a key was recorded leave out)."""
        return dict(options)

    @classmethod
    def describe(cls, options: dict) -> str:
        """Which data, in a few words for tables ("" when the dataset's name says it all)."""
        return ""


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


DATASETS: Registry[Callable[..., SegDataset]] = Registry("dataset")


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's facts outside its files, declared by its builder (`register_dataset`)."""

    name: str
    default_split: str | None = None  # the split `--dataset NAME` uses when --split is not given
    marker: str = "D"  # matplotlib marker of its published points in the report's seen/unseen plot
    # Figures use Pascal VOC's palette by raw label id, or, when this names a class list, VOC's
    # colour of the VOC class of the same name (the synthetic benchmark's classes carry VOC names).
    palette_by_name: str | None = None
    # Image counts of the full release, by part or by (layout, part): what `zsbench data check` expects.
    expected: Mapping = field(default_factory=dict)
    synthetic: bool = False  # generated in memory: no data root, one image size, its own class embeddings


def register_dataset(name: str, **facts) -> Callable:
    """Decorator: register a builder under `name` in DATASETS with its DatasetInfo fields."""
    info = DatasetInfo(name=name, **facts)

    def decorator(builder):
        builder.info = info
        return DATASETS.register(name)(builder)

    return decorator


def dataset_info(name: str) -> DatasetInfo:
    """The registered facts of dataset `name`. A name no builder registered (a run record made by
    an installation with other datasets) gets the defaults: no default split, VOC colours by id."""
    if name not in DATASETS:
        return DatasetInfo(name=name)
    return DATASETS.get(name).info


def default_split(dataset: str) -> str | None:
    """The split a run on `dataset` uses when no --split is given (None: the dataset has none)."""
    return dataset_info(dataset).default_split
