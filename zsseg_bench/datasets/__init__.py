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

__all__ = ["DATASETS", "DatasetInfo", "SegDataset", "build_dataset", "dataset_info", "dataset_options", "default_split",
           "recorded_options", "record_options", "record_data_label"]


def dataset_options(name: str) -> type[DatasetOptions]:
    """The schema of dataset `name`'s config section (`dataset:`)."""
    return getattr(DATASETS.get(name), "options", DatasetOptions)


def recorded_options(name: str, cfg: dict | None) -> dict:
    """`cfg` (a run's `dataset` section) with the keys dataset `name` records filled at their defaults."""
    schema = dataset_options(name)
    if not schema.recorded:
        return dict(cfg or {})
    full = checked(schema, cfg, where="config", owner=name, prefix=("dataset",))
    return {**(cfg or {}), **{k: full[k] for k in schema.recorded}}


def record_options(info: dict) -> dict:
    """The dataset options that rebuild the data of a run from its run.json `dataset` section."""
    name = info["name"]
    if name not in DATASETS:
        return dict(info.get("options") or {})
    return dataset_options(name).from_record(dict(info.get("options") or {}), str(info.get("version", "1")))


def record_data_label(info: dict) -> str:
    """Which data a run used, in a few words for tables ("v2 world 0" on the synthetic benchmark)."""
    return dataset_options(info["name"]).describe(record_options(info)) if info["name"] in DATASETS else ""


def build_dataset(name: str, part: str, root: str | None = None, cfg: dict | None = None) -> SegDataset:
    options = checked(dataset_options(name), cfg, where="config", owner=name, prefix=("dataset",))
    return DATASETS.get(name)(part, root, options)


# Last, so that a plugin dataset (ZSBENCH_PLUGINS) finds the package complete.
load_plugins()
