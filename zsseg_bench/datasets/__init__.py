"""Datasets: the registry, one module per dataset family, and each family's registered facts."""

from zsseg_bench.catalog.schema import checked
from zsseg_bench.datasets import (  # noqa: F401,E402  (each module registers its datasets)
    ade20k,
    coco,
    cocostuff,
    context,
    synthetic,
    voc,
)
from zsseg_bench.datasets.base import DATASETS, DatasetInfo, DatasetOptions, SegDataset, dataset_info, default_split
from zsseg_bench.registry import load_plugins

__all__ = ["DATASETS", "DatasetInfo", "SegDataset", "build_dataset", "dataset_info", "dataset_options", "default_split"]


def dataset_options(name: str) -> type[DatasetOptions]:
    """The schema of dataset `name`'s config section (`dataset:`)."""
    return getattr(DATASETS.get(name), "options", DatasetOptions)


def build_dataset(name: str, part: str, root: str | None = None, cfg: dict | None = None) -> SegDataset:
    options = checked(dataset_options(name), cfg, where="config", owner=name, prefix=("dataset",))
    return DATASETS.get(name)(part, root, options)


# Last, so that a plugin dataset (ZSBENCH_PLUGINS) finds the package complete.
load_plugins()
