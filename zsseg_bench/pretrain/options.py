"""The pretraining schedule of the shared initialisation (`backbone.pretrain`, small-cnn only).

Its defaults are the shared initialisation: a card that changed them would no longer share it,
so no card sets them (tests/pretrain check that every default-run card resolves one hash).
Tests shrink them with `--set backbone.pretrain.iterations=...`, which makes another cache entry.
"""

from __future__ import annotations

from zsseg_bench.catalog.schema import NonNegativeFloat, PositiveInt, Section

__all__ = ["PretrainOptions"]


class PretrainOptions(Section):
    # Small enough for the default run's 7-minute budget on 2 CPU cores (rendering included): 200 x 16
    # = 3200 images from 1000 rendered. World 0's batch loss: 0.56 at 40, 0.47 at 80, 0.40 at 120,
    # 0.24 at 160, 0.37 at 200 (still falling slowly: a short pretraining, chosen for time).
    images: PositiveInt = 1000  # auxiliary images rendered
    iterations: PositiveInt = 200
    batch_size: PositiveInt = 16
    lr: NonNegativeFloat = 0.01  # SGD, momentum 0.9, poly 0.9: DeepLab's pretraining recipe in small
    momentum: NonNegativeFloat = 0.9
    weight_decay: NonNegativeFloat = 0.0005
    poly_power: NonNegativeFloat = 0.9
