"""The config schemas of CaGNet (impl `cagnet`) and its patch-wise version (`cagnet-patch`).

Every key here is stated by the CaGNet cards (methods/cagnet/), which is where the values live;
the only defaults are for the per-stage batch size. What each key means: methods/cagnet/README.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from zsseg_bench.catalog.schema import (
    Dropout,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Section,
)
from zsseg_bench.methods.base import MethodConfig
from zsseg_bench.methods.common.optim import SGDOptions

__all__ = ["CaGNetConfig", "CaGNetPatchConfig"]

Sigmas = Annotated[list[PositiveFloat], Field(min_length=1)]


class Context(Section):
    hidden: PositiveInt
    dilations: Annotated[list[PositiveInt], Field(min_length=3, max_length=3)]
    train_selector: bool  # official: the context selector fc_1 is in no optimizer group


class Generator(Section):
    hidden: Annotated[list[PositiveInt], Field(min_length=1)]
    dropout: list[Dropout]  # one per hidden layer
    leaky_slope: NonNegativeFloat

    @model_validator(mode="after")
    def _one_dropout_per_layer(self):
        if len(self.dropout) != len(self.hidden):
            raise ValueError(f"generator.dropout: {len(self.dropout)} values for {len(self.hidden)} hidden layers")
        return self


class Discriminator(Section):
    hidden: PositiveInt
    dropout: Dropout


class Classifier(Section):
    dead_logit: bool  # official: one more logit, never a target, dropped at prediction


class Content(Section):
    mode: Literal["runs", "class"]  # runs: the official run-wise MMD
    sigmas: Sigmas
    samples: PositiveInt  # mode class: pixels per group
    group: Literal["image", "batch"]  # mode class: an (image, class) group, or a class over the batch
    eps: NonNegativeFloat  # under the square root


class Decay(Section):
    """The official D/G step decay: factor 1 before `start`, then gamma^((it - start) // step + 1)."""

    start: NonNegativeInt
    step: PositiveInt
    gamma: PositiveFloat


class Step1Lambdas(Section):
    D_cls_real: NonNegativeFloat
    D_cls_fake: NonNegativeFloat
    B_KLD: NonNegativeFloat
    B_cls: NonNegativeFloat
    G_content: NonNegativeFloat
    G_GAN: NonNegativeFloat
    G_cls: NonNegativeFloat


class FinetuneLambdas(Section):
    D_cls_real: NonNegativeFloat
    D_cls_fake: NonNegativeFloat
    D_cls_fake_transfer: NonNegativeFloat  # classifier-only iterations on generated features
    G_cls_transfer: NonNegativeFloat
    G_content: NonNegativeFloat
    G_GAN: NonNegativeFloat
    G_cls: NonNegativeFloat


class Step1(SGDOptions):
    """Step 1: backbone + contextual module (SGD, poly), generator and discriminator (Adam, step decay)."""

    iterations: PositiveInt
    poly_power: NonNegativeFloat
    lr_decay_every: PositiveInt
    head_lr_mult: NonNegativeFloat
    context_lr_mult: NonNegativeFloat
    lr_D: NonNegativeFloat
    lr_G: NonNegativeFloat
    weight_decay_D: NonNegativeFloat
    decay_D: Decay
    decay_G: Decay
    lambdas: Step1Lambdas
    batch_size: PositiveInt | None = None  # None: data.batch_size


class Finetune(Section):
    """The mixed stage: blocks of `interval` step-1 iterations (backbone frozen) alternating with
    classifier-only iterations on generated features."""

    iterations: PositiveInt
    interval: PositiveInt
    lr_D: NonNegativeFloat
    lr_G: NonNegativeFloat
    weight_decay_D: NonNegativeFloat
    decay_D: Decay
    decay_G: Decay
    gen_unseen_rate: NonNegativeFloat  # label prior: 1 + rate per unseen class, 1 per seen
    idle_generator_steps: bool  # official: Adam steps G with zero gradients in classifier-only iterations
    lambdas: FinetuneLambdas
    batch_size: PositiveInt | None = None


class CaGNetConfig(MethodConfig):
    feature_dim: PositiveInt
    init: Literal["kaiming", "default"]  # of every conv outside the backbone
    context: Context
    generator: Generator
    discriminator: Discriminator
    classifier: Classifier
    adversarial: Literal["l1", "ls", "bce"]  # l1: the official "lsgan" (L1 on sigmoid scores)
    content: Content
    unseen_condition: Literal["zero", "embedding"]  # G's condition for pseudo-labelled unseen pixels
    step1: Step1
    finetune: Finetune


class Patch(Section):
    """The bank of label patches sampled from the PixelCNN for the classifier-only iterations."""

    size: PositiveInt
    first_unseen: NonNegativeInt  # raster pixels preset to the patch's unseen class
    threshold: NonNegativeInt  # a kept patch has at least this many unseen pixels
    cc_max: PositiveInt  # ... and at most this many distinct classes
    topk: Annotated[float, Field(gt=0, le=1)]  # fraction of the classes sampled from at each pixel
    fuse_ratio: NonNegativeFloat  # single-class patches per sampled one
    bank_size: PositiveInt
    sample_batch: PositiveInt
    max_rounds: PositiveInt


class PixelCNN(Section):
    iterations: PositiveInt
    lr: NonNegativeFloat  # Adam
    channels: PositiveInt
    layers: PositiveInt
    kernel: PositiveInt
    dropout: Dropout
    patches_per_step: PositiveInt
    condition: Literal["class", "patch"]  # patch: the official (non-causal) condition

    @model_validator(mode="after")
    def _odd_kernel(self):
        if self.kernel % 2 == 0:
            raise ValueError(f"pixelcnn.kernel {self.kernel}: a masked convolution needs an odd kernel")
        return self


class CaGNetPatchConfig(CaGNetConfig):
    patch: Patch
    pixelcnn: PixelCNN
