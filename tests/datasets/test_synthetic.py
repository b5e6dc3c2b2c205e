"""The synthetic benchmark, version 1 (pinned: `benchmark_version=1`): deterministic, transferable
appearance, context that informs. Version 2: test_synthetic_v2.py."""

from __future__ import annotations

import numpy as np
import pytest

from zsseg_bench.catalog.splits import load_class_list, load_split
from zsseg_bench.datasets.synthetic import CLASS_NAMES, SCENES, SUPERCLASSES, SyntheticBenchmark, SyntheticSegmentation


@pytest.fixture(scope="module")
def data():
    return SyntheticSegmentation("train", count=300, benchmark_version=1)


def test_deterministic_and_prefix_stable(data):
    again = SyntheticSegmentation("train", count=120, benchmark_version=1)
    assert (again.images[:120] == data.images[:120]).all() and (again.labels == data.labels[:120]).all()
    other_seed = SyntheticSegmentation("train", count=20, seed=1, benchmark_version=1)
    assert not (other_seed.images == data.images[:20]).all()
    test = SyntheticSegmentation("test", count=20, benchmark_version=1)
    assert not (test.images == data.images[:20]).all()


def test_shapes_and_classes(data):
    assert data.images.shape == (300, 3, 64, 64) and data.images.dtype.is_floating_point is False
    present = np.unique(data.labels.numpy())
    assert set(present) == set(range(len(CLASS_NAMES)))  # background + all 12 objects appear
    assert len(CLASS_NAMES) - 1 >= 10
    assert tuple(load_class_list("synthetic").names) == CLASS_NAMES


def test_embeddings_cluster_by_superclass():
    emb = SyntheticBenchmark().embeddings
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    groups = [[CLASS_NAMES.index(c) for c in g] for g in SUPERCLASSES.values()]
    cos = emb @ emb.T
    within = np.mean([cos[i, j] for g in groups for i in g for j in g if i != j])
    across = np.mean([cos[i, j] for a in groups for b in groups if a is not b for i in a for j in b])
    assert within > 0.4 > 0.1 > across


def test_appearance_follows_embedding():
    """Nearby embeddings look alike: appearance distance grows with embedding distance."""
    bench = SyntheticBenchmark()
    emb = bench.embeddings[1:]
    looks = np.array([np.concatenate([bench.look(i)["rgb"], bench.look(i)["tex"]]) for i in range(1, len(CLASS_NAMES))])
    iu = np.triu_indices(len(emb), 1)
    d_emb = np.linalg.norm(emb[:, None] - emb[None], axis=-1)[iu]
    d_look = np.linalg.norm(looks[:, None] - looks[None], axis=-1)[iu]
    assert np.corrcoef(d_emb, d_look)[0, 1] > 0.3


def test_context_constrains_cooccurrence(data):
    """Scenes decide which classes meet: boats and sofas never share an image."""
    boat, sofa = CLASS_NAMES.index("boat"), CLASS_NAMES.index("sofa")
    labels = data.labels.numpy().reshape(len(data), -1)
    has_boat = (labels == boat).any(1)
    has_sofa = (labels == sofa).any(1)
    assert has_boat.sum() > 10 and has_sofa.sum() > 10 and not (has_boat & has_sofa).any()
    assert set(c for s in SCENES.values() for c in s[0]) == set(CLASS_NAMES[1:])


def test_default_split_has_unseen_with_seen_siblings():
    split = load_split("synthetic-9-3")
    assert len(split.unseen) >= 3
    for unseen in split.unseen:
        group = next(g for g in SUPERCLASSES.values() if unseen in g)
        assert any(c in split.seen_names for c in group)
