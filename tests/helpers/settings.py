"""Settings shared by the tests: where the repository and ../shared are, and a tiny run."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"

# The shared initialisation in a fraction of a second (its own cache entry: the schedule is hashed).
TINY_PRETRAIN = ["backbone.pretrain.iterations=4", "backbone.pretrain.images=16", "backbone.pretrain.batch_size=4"]
# Small enough that a run of one method takes a few seconds on 2 CPU cores. Configs are strict, so
# the schedule keys are each implementation's own (CaGNet has no `train` section, SPNet no `step1`).
TINY_DATA = ["dataset.n_train=96", "dataset.n_test=32", "dataset.size=32", "data.batch_size=8", "eval.batch_size=32",
             "log_every=10", *TINY_PRETRAIN]
TINY_SCHEDULE = {
    "spnet": ["train.iterations=25", "calibration.proxy_iterations=15"],
    "zs3net": ["train.iterations=25", "generator.iterations=10", "classifier_stage.iterations=10"],
    "cagnet": ["step1.iterations=25", "finetune.iterations=10", "finetune.interval=5"],
    "cagnet-patch": ["step1.iterations=25", "finetune.iterations=10", "finetune.interval=5", "pixelcnn.iterations=5"],
}


def tiny(method: str) -> list[str]:
    """--set values for a tiny run of `method` (a card name)."""
    from zsseg_bench.catalog.cards import load_card

    impl = load_card(method).impl.removesuffix("+st")
    return TINY_DATA + TINY_SCHEDULE[impl]


TINY = tiny("spnet")  # SPNet and SPNet-c
