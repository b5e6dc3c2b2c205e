"""The config schema of the `sazs` implementation (cards `sazs` and `lseg-zs`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import PlainValidator

from zsseg_bench.catalog.schema import Fraction, NonNegativeFloat, PositiveInt, Section
from zsseg_bench.methods.base import MethodConfig
from zsseg_bench.methods.common.optim import SGDOptions

__all__ = ["SAZSConfig"]


class SAZSTrain(SGDOptions):
    """The official schedule is in epochs (20) with the poly factor (1 - epoch/epochs)^power set per
    epoch; an epoch here is `iterations_per_epoch` batches (the synthetic cards scale it down)."""

    epochs: PositiveInt
    iterations_per_epoch: PositiveInt
    head_lr_mult: NonNegativeFloat  # the text-projection head (and edge head) at lr x mult
    poly_power: NonNegativeFloat
    batch_size: PositiveInt | None = None  # None: data.batch_size


class EdgeOptions(Section):
    """The shape-aware terms; both weights 0 is the plain text-embedding segmenter (lseg-zs)."""

    bce_weight: NonNegativeFloat  # official 0.3
    attention_weight: NonNegativeFloat  # official 0.1
    attention_threshold: Fraction = 0.8
    radius: PositiveInt = 2


class InverseFormOptions(Section):
    """Optional InverseForm term (official weight 0.3): off unless `path` names the user's InverseNet
    weights and `factory` ('module:function') builds the network they load into."""

    weight: NonNegativeFloat = 0.3
    path: str | None = None
    factory: str | None = None


def _threshold(value):
    if value == "heldout" or (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1.01):
        return value
    raise ValueError(f"{value!r}: use heldout or a number in [0, 1.01]")


class FusionOptions(Section):
    """Eigen-mask fusion at test time. Every mode is scored; `mode` is the run's headline number."""

    mode: Literal["none", "self", "oracle"] = "none"
    eigs: str | None = None  # cached masks (.npz from `zsbench sazs eigs`) or released PNGs; None: computed
    k: PositiveInt = 5
    threshold: Annotated[float | str, PlainValidator(_threshold)] = "heldout"  # `self` mode
    stride: PositiveInt = 4  # feature grid of the computed eigen-masks (synthetic colour/position)


class SelectionOptions(Section):
    """Which epoch's weights are evaluated: the last, the best on held-out training-fold episodes, or
    (the official code's choice, flagged uses-test-labels) the best on the test fold."""

    mode: Literal["last", "heldout", "test-fold"] = "heldout"
    heldout_fraction: Fraction = 0.1  # of the training images, held out of training
    episodes: PositiveInt = 300  # held-out episodes per evaluation


class SAZSConfig(MethodConfig):
    train: SAZSTrain
    edge: EdgeOptions
    inverseform: InverseFormOptions = InverseFormOptions()
    fusion: FusionOptions = FusionOptions()
    selection: SelectionOptions = SelectionOptions()
    others_class: str = "background"  # the class whose embedding is the "others" prompt
