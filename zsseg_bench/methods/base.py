"""The method interface: what every zero-shot segmentation method implements.

A method is an `nn.Module` that declares its training *stages* (SPNet has one; ZS3Net and
CaGNet train in phases; self-training adds more), computes named losses in
`training_step`, and says in `Stage.updates` which loss updates which optimizer. The engine
runs the stages (device, mixed precision, NaN checks, logging, checkpoints) and the evaluator
only ever calls `predict`, which returns scores over **all** evaluation classes of the split
(seen and unseen: the generalized setting), with any calibration already applied.

Implementations register under an `impl` name; user-facing method names come from the
method cards in `methods/`, several of which may share one implementation (spnet, spnet-c).

Each implementation declares its config schema once, as its `Config` (a `MethodConfig`
subclass: the sections every method has, plus its own). A method checks the config it is built
with against it and keeps the result, defaults filled in, as `self.cfg`; code reads `self.cfg`
directly. A key that a card states has no default in the schema (the card is where it lives);
the schema's defaults are for the keys the cards leave out.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal

import torch
from pydantic import Field, PrivateAttr, SerializeAsAny, model_validator
from torch import nn

from zsseg_bench.catalog.schema import PositiveInt, Section, checked
from zsseg_bench.embeddings.base import EmbeddingOptions
from zsseg_bench.engine.options import DataOptions, EngineOptions, EvalOptions, InputOptions
from zsseg_bench.methods.common.backbones import BackboneOptions
from zsseg_bench.registry import Registry

__all__ = ["Method", "MethodConfig", "Stage", "Update", "ClassSpace", "IMPLEMENTATIONS"]

IMPLEMENTATIONS: Registry[type["Method"]] = Registry("method implementation", name_attribute="impl")


@dataclass
class ClassSpace:
    """The classes a method works with, in the split's evaluation order."""

    names: tuple[str, ...]
    seen: torch.Tensor  # bool [K]
    embeddings: torch.Tensor  # float [K, D]
    ignore_index: int = 255
    calibration_val: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def seen_idx(self) -> torch.Tensor:
        return torch.nonzero(self.seen, as_tuple=False).flatten()

    @property
    def unseen_idx(self) -> torch.Tensor:
        return torch.nonzero(~self.seen, as_tuple=False).flatten()

    def seen_lut(self) -> torch.Tensor:
        """Evaluation index -> position among the seen classes (ignore for unseen); size K+1 so
        that the ignore index can be remapped after clamping."""
        lut = torch.full((self.num_classes,), self.ignore_index, dtype=torch.long)
        lut[self.seen_idx] = torch.arange(len(self.seen_idx))
        return lut

    def to(self, device) -> "ClassSpace":
        return ClassSpace(self.names, self.seen.to(device), self.embeddings.to(device), self.ignore_index,
                          self.calibration_val)

    def restrict(self, keep: list[str], seen: list[str]) -> "ClassSpace":
        """A sub-space (used to train calibration proxies on part of the seen classes)."""
        idx = [self.names.index(n) for n in keep]
        seen_t = torch.tensor([n in seen for n in keep], dtype=torch.bool, device=self.seen.device)
        return ClassSpace(tuple(keep), seen_t, self.embeddings[idx], self.ignore_index)


@dataclass
class Update:
    """After a training step, gradients of `loss` go to the parameters of `optimizer`."""

    loss: str
    optimizer: str


@dataclass
class Stage:
    name: str
    iterations: int
    updates: list[Update] = field(default_factory=lambda: [Update("loss", "main")])
    batch_size: int | None = None  # None: the run's data.batch_size
    # Some phases read no new batch (CaGNet's step-2 iterations); the engine skips loading then.
    uses_batch: Callable[[int], bool] | None = None
    # Which training images the stage draws from: "split" (after the split's training policy) or
    # "all" (every training image; self-training re-admits images that a drop_images_with_unseen
    # policy removed, since it needs their unlabelled pixels). Ignored when the caller passes indices.
    train_images: str = "split"
    # Score the val images every N iterations (and before the first, after the last) as a
    # diagnostic trajectory (engine/probe.py); None: never. Block boundaries of the finetunes.
    probe_every: int | None = None


def _pop_path(data: dict, parts: list[str]):
    """Remove data[a][b]...[z] (and the mappings it leaves empty); return it, or None if absent."""
    node, trail = data, []
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            return None
        trail.append((node, part))
        node = node[part]
    value = node.pop(parts[-1], None)
    for parent, part in reversed(trail):
        if parent[part]:
            break
        del parent[part]
    return value


def _set_path(data: dict, parts: list[str], value) -> None:
    for part in parts[:-1]:
        data = data.setdefault(part, {})
    data[parts[-1]] = value


class MethodConfig(Section):
    """The sections every method's config has (an implementation's `Config` adds its own).

    `added_keys` lists the keys added on purpose with `--set +key=value`: they are outside the
    schema, set aside while it is checked and kept in the config as given (and so recorded)."""

    omit_if_default = ("precision", "added_keys")
    unlisted = ("precision", "added_keys")

    backbone: SerializeAsAny[BackboneOptions]
    embeddings: SerializeAsAny[EmbeddingOptions]
    input: InputOptions
    data: DataOptions
    eval: EvalOptions
    engine: EngineOptions = Field(default_factory=EngineOptions)
    log_every: PositiveInt = 50  # training-log line every N iterations
    save_weights: bool = True  # ckpt/final.pt
    # Mechanism diagnostics (runs/diagnostics.py): val trajectories, generated-feature checks and
    # the methods' own statistics. They never change the trained weights; false skips them.
    diagnostics: bool = True
    dataset: dict[str, Any] = {}  # the dataset's own keys, checked against the run's dataset (validate_config)
    precision: Literal["fp32", "bf16"] | None = None  # the first engine versions' engine.precision
    added_keys: list[str] = []
    _added: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _set_aside_added(cls, data, handler):
        keys = data.get("added_keys") if isinstance(data, dict) else None
        if not (isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys)):
            return handler(data)
        data = copy.deepcopy(data)
        added = {key: _pop_path(data, key.split(".")) for key in keys}
        out = handler(data)
        out._added = {k: v for k, v in added.items() if v is not None}
        return out

    def _finish_dump(self, out: dict) -> dict:
        for key, value in self._added.items():
            _set_path(out, key.split("."), copy.deepcopy(value))
        return out


class Method(nn.Module):
    impl: ClassVar[str] = ""  # the registered name: IMPLEMENTATIONS.register sets it
    # The config schema (None only for test doubles, whose config is used as given).
    Config: ClassVar[type[MethodConfig] | None] = None
    # Config keys that only affect inference; stages trained under configs that differ only in
    # these keys are identical, so a run may reuse them (spnet-c reuses spnet's training).
    inference_only_keys: ClassVar[tuple[str, ...]] = ()
    # Protocol flags, copied into every run record and table.
    uses_unseen_labels: ClassVar[bool] = False
    transductive: ClassVar[bool] = False
    # The split protocols (catalog/splits.py TASK_PROTOCOLS) the method answers; empty: any but
    # fss-zeroshot, whose binary episodes need an episodic head (methods/sazs).
    task_protocols: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: dict, classes: ClassSpace):
        super().__init__()
        self.cfg = self.check_config(cfg)
        self.classes = classes

    # ---- configuration ------------------------------------------------------------------------
    @classmethod
    def config_schema(cls) -> type[MethodConfig] | None:
        """The schema a card of this implementation is checked against."""
        return cls.Config

    @classmethod
    def check_config(cls, cfg: dict, *, where: str = "", owner: str = "") -> dict:
        """`cfg` checked against the schema, defaults filled in (one ZsbenchError line otherwise)."""
        schema = cls.config_schema()
        if schema is None:
            return cfg
        return checked(schema, cfg, where=where or f"{cls.impl} config", owner=owner or cls.impl)

    # ---- training ---------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        raise NotImplementedError

    def configure_optimizers(self, stage: Stage) -> dict[str, tuple[torch.optim.Optimizer, Any]]:
        """name -> (optimizer, scheduler or None) for one stage."""
        raise NotImplementedError

    def on_stage_start(self, stage: Stage, ctx) -> None:
        """Called before a stage's first iteration (offline pseudo-labelling, freezing, ...)."""

    def training_step(self, batch: dict, stage: Stage, iteration: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_stage_end(self, stage: Stage, ctx) -> None:
        pass

    def after_training(self, ctx) -> dict:
        """Called once after the last stage (e.g. to fit a calibration constant). Returns facts
        to store in the run record."""
        return {}

    # ---- inference --------------------------------------------------------------------------
    def predict(self, images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Scores [B, K, h, w] over all K evaluation classes; argmax is the prediction.

        With `size`, scores are at that resolution (a method upsamples its logits *before* any
        softmax or calibration, as SPNet does); without, at the method's own output stride."""
        raise NotImplementedError

    def bench_features(self, images: torch.Tensor):
        """The feature-extraction part of a training forward (the backbone, and whatever the method
        counts with it), for `zsbench bench`'s split of a step's time between feature extraction
        and the rest (losses, generators, classifiers, optimizer steps). Returns a tensor or a
        list of tensors; None when the method has no such part."""
        backbone = getattr(self, "backbone", None)
        return backbone(images) if isinstance(backbone, nn.Module) else None

    # ---- bookkeeping ------------------------------------------------------------------------
    def protocol_flags(self) -> dict:
        return {"uses_unseen_labels": bool(self.uses_unseen_labels), "transductive": bool(self.transductive)}

    @property
    def signature_impl(self) -> str:
        """The implementation name in stage signatures. A wrapper (self-training) answers its base's,
        so that the stages it shares with the base are recognised as the same."""
        return self.impl

    def stage_signature(self, index: int) -> str:
        """Identity of the model after stages[:index + 1]: equal signatures, equal weights."""
        skip = set(self.inference_only_keys) | {"eval", "log_every", "diagnostics"}
        cfg = {k: v for k, v in self.cfg.items() if k not in skip}
        names = [s.name for s in self.stages()[: index + 1]]
        return json.dumps({"impl": self.signature_impl, "cfg": cfg, "stages": names}, sort_keys=True, default=str)
