"""Dataset facts: registered once with each builder and read back by everyone who needs them."""

from __future__ import annotations

import re

import numpy as np

from zsseg_bench.catalog.splits import load_split
from zsseg_bench.datasets import DATASETS, dataset_info, default_split
from zsseg_bench.datasets.base import register_dataset
from zsseg_bench.paths import repo_root
from zsseg_bench.report.palette import palette_for, voc_palette


def test_every_builder_carries_its_facts():
    for name in DATASETS:
        info = dataset_info(name)
        assert info.name == name and DATASETS.get(name).info is info
        assert load_split(info.default_split).dataset == name
    assert [n for n in DATASETS if dataset_info(n).synthetic] == ["synthetic"]
    assert {n: dataset_info(n).marker for n in ("voc12", "context", "cocostuff", "ade20k")} == {
        "voc12": "o", "context": "s", "cocostuff": "^", "ade20k": "D"}


def test_an_unregistered_name_gets_the_defaults():
    info = dataset_info("no-such-dataset")
    assert (info.default_split, info.marker, info.palette_by_name, info.synthetic) == (None, "D", None, False)
    assert default_split("no-such-dataset") is None
    assert np.array_equal(palette_for("no-such-dataset"), voc_palette())


def test_palette_follows_the_registered_rule():
    assert np.array_equal(palette_for("voc12"), voc_palette())
    synthetic = palette_for("synthetic")  # VOC's colours by class name, so not VOC's by raw id
    assert not np.array_equal(synthetic, voc_palette())


def test_register_dataset_puts_the_facts_on_the_builder_and_in_the_registry():
    @register_dataset("test-registry-only", default_split="synthetic-9-3", marker="x", expected={"test": 3})
    def build(part, root, cfg):
        raise AssertionError("not called")

    try:
        assert DATASETS.get("test-registry-only") is build
        assert dataset_info("test-registry-only").expected == {"test": 3}
        assert default_split("test-registry-only") == "synthetic-9-3"
    finally:
        DATASETS._entries.pop("test-registry-only")


def test_the_datasets_doc_table_says_what_the_builders_registered():
    """docs/datasets.md lists each dataset's default split and full sizes for readers: the same facts."""
    root = repo_root()
    text = (root / "docs" / "datasets.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9]+)`[^|]*\| `([a-z0-9-]+)` \|[^|]*\|([^|]*)\|$", text, flags=re.MULTILINE)
    assert {name for name, _, _ in rows} == set(DATASETS.names()) - {"synthetic"}
    for name, split, sizes in rows:
        info = dataset_info(name)
        assert split == info.default_split, name
        documented = {int(n.replace(",", "")) for n in re.findall(r"[\d,]+", sizes)}
        assert documented == set(info.expected.values()), name
