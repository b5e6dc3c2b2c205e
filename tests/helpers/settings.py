"""Settings shared by the tests: where the repository and ../shared are, and a tiny run."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"

# Small enough that a run of one method takes a few seconds on 2 CPU cores.
TINY = ["train.iterations=25", "dataset.n_train=96", "dataset.n_test=32", "dataset.size=32", "data.batch_size=8",
        "calibration.proxy_iterations=15", "eval.batch_size=32", "log_every=10"]
