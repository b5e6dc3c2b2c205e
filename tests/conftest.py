"""Shared fixtures: tiny run settings, a hand-made split, the ../shared folder when present."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.settings import SHARED, TINY

# Module fixtures that train a model: every test using one is marked slow (pytest -m "not slow").
TRAINING_FIXTURES = {"batch", "run_dir", "source_run", "spnet_file"}


def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def cache_folder(tmp_path_factory):
    """The shared initialisation and other cached files go to a folder of this session, never to the
    user's ~/.cache (subprocesses inherit the variable)."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("zsbench-cache")
        mp.setenv("ZSBENCH_CACHE", str(path))
        yield path


@pytest.fixture
def tiny():
    return list(TINY)


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


HAND_CLASSES = ["background", "cat", "cow", "dog", "sheep", "train"]


@pytest.fixture
def hand_split(tmp_path) -> Path:
    """A 6-class split (background scored as seen; sheep and train unseen) written to tmp_path."""
    (tmp_path / "classes").mkdir()
    (tmp_path / "classes" / "hand.txt").write_text("".join(f"{i}\t{n}\n" for i, n in enumerate(HAND_CLASSES)))
    (tmp_path / "hand").mkdir()
    path = tmp_path / "hand" / "hand-4-2.yaml"
    path.write_text("""format: 1
name: hand-4-2
version: 1
dataset: hand
classes: hand
unseen: [sheep, train]
excluded: []
background: seen
ignore_index: 255
train_policy: ignore_unseen_pixels
source: {paper: "hand-made test split", table: "tests/conftest.py"}
""")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a busy 2-core machine: one torch thread avoids OpenMP oversubscription, which
    made the tiny training runs of tests/test_report.py about 10x slower under load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
