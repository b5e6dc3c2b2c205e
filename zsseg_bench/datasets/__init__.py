"""Datasets: the registry and one module per dataset family."""

from zsseg_bench.datasets import (  # noqa: F401,E402  (register the real datasets)
    ade20k,
    coco,
    cocostuff,
    context,
    synthetic,  # noqa: F401  (registers "synthetic")
    voc,
)
from zsseg_bench.catalog.schema import checked
from zsseg_bench.datasets.base import DATASETS, DatasetOptions, SegDataset

__all__ = ["DATASETS", "SegDataset", "build_dataset", "dataset_options"]


def dataset_options(name: str) -> type[DatasetOptions]:
    """The schema of dataset `name`'s config section (`dataset:`)."""
    return getattr(DATASETS.get(name), "options", DatasetOptions)


def build_dataset(name: str, part: str, root: str | None = None, cfg: dict | None = None) -> SegDataset:
    options = checked(dataset_options(name), cfg, where="config", owner=name, prefix=("dataset",))
    return DATASETS.get(name)(part, root, options)
