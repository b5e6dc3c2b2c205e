"""The auxiliary part of a v2 world: only auxiliary classes, deterministic, a clear content key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from zsseg_bench.catalog.splits import load_class_list, load_split
from zsseg_bench.datasets.synthetic import AUX_NAMES, CLASS_NAMES, aux_content_key, aux_dataset


def test_aux_images_hold_only_aux_classes_and_are_deterministic():
    data = aux_dataset(world=0, version=2, n_images=40, size=32)
    assert data.images.shape == (40, 3, 32, 32) and data.labels.shape == (40, 32, 32)
    assert data.class_names == ("background",) + AUX_NAMES
    present = set(np.unique(data.labels.numpy()).tolist())
    assert present <= set(range(len(data.class_names))) and len(present) > 5
    prefix = aux_dataset(world=0, version=2, n_images=10, size=32)
    assert (prefix.images == data.images[:10]).all() and (prefix.labels == data.labels[:10]).all()
    other = aux_dataset(world=1, version=2, n_images=10, size=32)
    assert not (other.images == prefix.images).all()
    item = data[3]
    assert item["label"].dtype.is_floating_point is False and item["name"] == "synthetic/aux/00003"
    assert data.embeddings().shape == (len(data.class_names), 32)


def test_aux_classes_are_disjoint_from_every_synthetic_split():
    files = sorted((Path(__file__).resolve().parents[2] / "splits" / "synthetic").glob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        split = load_split(str(path))
        assert not set(AUX_NAMES) & set(split.classes.names)
    assert not set(AUX_NAMES) & set(load_class_list("synthetic").names) and not set(AUX_NAMES) & set(CLASS_NAMES)


def test_content_key_names_what_the_pixels_depend_on():
    key = aux_content_key(world=2, version=2, n_images=100, size=48)
    assert key == {"dataset": "synthetic", "part": "aux", "version": 2, "generator": "2", "world": 2,
                   "n_images": 100, "size": 48, "embed_dim": 32}
    data = aux_dataset(world=2, version=2, n_images=2, size=48)
    assert data.content_key == aux_content_key(world=2, version=2, n_images=2, size=48)
    assert data.content_hash == hashlib.sha256(json.dumps(data.content_key, sort_keys=True).encode()).hexdigest()
    with pytest.raises(ValueError, match="version 2 only"):
        aux_dataset(world=0, version=1, n_images=2)
