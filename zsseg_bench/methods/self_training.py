"""Self-training (ST) for any method: `<method>+st`.

ST is transductive: after the method has been trained, its own predictions on the *unlabelled*
pixels of the training images (pixels whose training label is ignore: unseen objects,
unlabelled or excluded regions) become pseudo-labels of unseen classes, and the method is
trained again with them. It uses no unseen ground truth, but it does use training images
that contain unseen objects, which a strictly inductive zero-shot protocol would not.

Two pseudo-labelling rules, both from the official codes / papers:

* `style: online` (CaGNet's `tools.construct_gt_st`; methods/self_training/README.md): at every
  iteration the *current* model ranks the classes at each ignored pixel; if an unseen class is
  among its top `top_k`, the highest-ranked unseen class becomes the pixel's label.
* `style: offline` (the ZS3Net paper; its code releases no pseudo-labelling): the model as it was after
  its own training (a frozen copy, the teacher) predicts every training image; for each
  unseen class, only the `percent` % most confident ignored pixels predicted as that class
  (ranked over the whole training set) are kept. The ranking is turned into one confidence
  threshold per class by a pass over the training set before retraining; during retraining the
  teacher labels each augmented batch with those thresholds, which is the same as stored maps
  up to the augmentation (and unlike stored maps stays aligned with random crops).

In both, a labelled pixel is never relabelled and a seen class is never a pseudo-label.

How the wrapper works: `wrap(Base)` makes a subclass of the base implementation (registered
lazily as `<impl>+st`). Its stages are the base stages unchanged (same names, same stage
signatures, so a `zsbench run zs3net zs3net+st` trains ZS3Net once and reuses it), followed by
the base stages again as `st-<name>` (or the subset in `self_training.stages`), run under the
base config patched with `self_training.retrain` and fed pseudo-labelled batches. The weights
are the base method's own, so checkpoints and `predict` are unchanged.
"""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager
from functools import lru_cache
from typing import Annotated, Any, Literal

import torch
from pydantic import Field

from zsseg_bench.catalog.cards import deep_merge
from zsseg_bench.catalog.schema import PositiveInt, Section, checked
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.base import IMPLEMENTATIONS, Method, Stage
from zsseg_bench.methods.common.diagnostics import pseudo_label_check

__all__ = ["SUFFIX", "wrap", "resolve", "SelfTrainingOptions", "topk_pseudo_labels", "confident_pseudo_labels",
           "confidence_key", "ConfidenceHistogram", "SelfTrainingMixin"]

SUFFIX = "+st"


class SelfTrainingOptions(Section):
    """The `self_training` section. Every key is stated by methods/self_training/_defaults.yaml (per
    dataset where they differ); `retrain` is a patch of the wrapped method's config, checked against
    the wrapped implementation's schema once merged."""

    style: Literal["online", "offline"]  # online: CaGNet's top-k rule; offline: ZS3Net's top-p % per class
    top_k: PositiveInt
    percent: Annotated[float, Field(gt=0, le=100)]
    rounds: PositiveInt
    images: Literal["all", "split"]
    bins: PositiveInt
    stages: list[str] | None  # base stages to repeat (None: all, in order)
    pseudo_stages: list[str] | None  # repeated stages that see pseudo-labels (None: all)
    retrain: dict[str, Any]


# ---- pseudo-labelling rules (pure functions) --------------------------------------------------
def topk_pseudo_labels(label: torch.Tensor, scores: torch.Tensor, unseen: torch.Tensor, k: int,
                       ignore: int) -> torch.Tensor:
    """CaGNet's rule. label [B, H, W], scores [B, K, H, W], unseen [K] bool -> new label.

    At ignored pixels, the highest-ranked unseen class among the top k; elsewhere unchanged."""
    k = max(1, min(int(k), scores.shape[1]))
    ranked = scores.topk(k, dim=1).indices  # [B, k, H, W], best first
    is_unseen = unseen[ranked]
    # argmax over a 0/1 tensor returns the first maximum: the best-ranked unseen class.
    first = is_unseen.to(torch.uint8).argmax(1, keepdim=True)
    cls = ranked.gather(1, first)[:, 0]
    take = (label == ignore) & is_unseen.any(1)
    return torch.where(take, cls, label)


def confident_pseudo_labels(label: torch.Tensor, scores: torch.Tensor, unseen: torch.Tensor,
                            thresholds: torch.Tensor, ignore: int) -> torch.Tensor:
    """ZS3Net's rule with per-class thresholds [K] (+inf for seen classes and unused ones).

    At ignored pixels predicted as an unseen class c with confidence >= thresholds[c], c."""
    key, pred = confidence_key(scores)
    take = (label == ignore) & unseen[pred] & (key >= thresholds[pred])
    return torch.where(take, pred, label)


def confidence_key(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """scores [B, K, ...] -> (-log(1 - p), argmax), p the softmax probability of the argmax class.

    A monotone stretch of the confidence that keeps resolution where trained networks put most
    pixels (p close to 1, where float32 softmax rounds to exactly 1): computed from log-sum-exps,
    log sum_j e^s_j - log sum_{j != argmax} e^s_j."""
    scores = scores.float()
    pred = scores.argmax(1, keepdim=True)
    others = scores.scatter(1, pred, float("-inf"))
    return torch.logsumexp(scores, 1) - torch.logsumexp(others, 1), pred[:, 0]


class ConfidenceHistogram:
    """Per-class histograms of `confidence_key` on the device: the top-p % threshold of each class
    over a whole training set without keeping every pixel (VOC has ~10^9 pixels). Keys above
    `upper` (p > 1 - e^-upper) share the last bin."""

    def __init__(self, num_classes: int, bins: int, device, upper: float = 40.0):
        self.k, self.bins, self.upper = num_classes, bins, upper
        self.counts = torch.zeros(num_classes, bins, dtype=torch.long, device=device)

    def update(self, pred: torch.Tensor, key: torch.Tensor, mask: torch.Tensor) -> None:
        b = (key[mask] / self.upper * self.bins).long().clamp(0, self.bins - 1)
        flat = pred[mask] * self.bins + b
        self.counts += torch.bincount(flat, minlength=self.k * self.bins).view(self.k, self.bins)

    def thresholds(self, percent: float) -> torch.Tensor:
        """[K]: lower edge of the bin where the top `percent` % of each class's pixels begins
        (+inf for a class with no pixel). Ties within the last bin are kept, so slightly more than
        `percent` % may pass."""
        from_top = self.counts.flip(1).cumsum(1)  # pixels at or above each bin, highest bin first
        total = from_top[:, -1]
        need = (total.double() * percent / 100.0).ceil().clamp(min=1).long()
        reached = from_top >= need.unsqueeze(1)
        first = reached.to(torch.uint8).argmax(1)  # index from the top
        edge = (self.bins - 1 - first).double() * self.upper / self.bins
        return torch.where(total > 0, edge, torch.full_like(edge, float("inf"))).float()


# ---- the wrapper -------------------------------------------------------------------------------
class SelfTrainingMixin:
    """Put in front of a Method subclass by `wrap`; see the module docstring."""

    base_impl: str = ""

    def __init__(self, cfg: dict, classes):
        st = cfg.get("self_training")
        super().__init__({k: v for k, v in cfg.items() if k != "self_training"}, classes)
        # Without a self_training section the class behaves exactly like its base (calibration
        # proxies built with type(self)(...) rely on this).
        self.st_cfg, self._retrain = None, None
        if st is not None:
            self.st_cfg = type(self).check_config({**self.cfg, "self_training": st})["self_training"]
            self._retrain = type(self)._checked_retrain(self.cfg, self.st_cfg["retrain"])
        self.__dict__["_teacher"] = None  # not a submodule: never saved, never moved by .to()
        self._thresholds: torch.Tensor | None = None
        self._pseudo_counts = torch.zeros(classes.num_classes, dtype=torch.long)
        self._st_stage_map: dict[str, Stage] = {}

    # ---- configuration -----------------------------------------------------------------------
    @classmethod
    def config_schema(cls):
        return _with_self_training(super().config_schema())

    @classmethod
    def check_config(cls, cfg: dict, *, where: str = "", owner: str = "") -> dict:
        """The base schema plus `self_training`, whose `retrain` patch must give a valid base config."""
        out = super().check_config(cfg, where=where, owner=owner)
        if out.get("self_training") is not None:
            base = {k: v for k, v in out.items() if k != "self_training"}
            cls._checked_retrain(base, out["self_training"]["retrain"], where=where, owner=owner)
        return out

    @classmethod
    def _checked_retrain(cls, base_cfg: dict, patch: dict, *, where: str = "", owner: str = "") -> dict:
        """The config of the repeated stages: the base config with the patch, checked as a base config."""
        schema = super().config_schema()
        return checked(schema, deep_merge(base_cfg, patch), where=where or f"{cls.impl} config",
                       owner=owner or cls.impl, prefix=("self_training", "retrain"))

    @property
    def signature_impl(self) -> str:
        return self.base_impl

    def protocol_flags(self) -> dict:
        flags = dict(super().protocol_flags())
        if self.st_cfg is not None:
            flags["transductive"] = True
        return flags

    def _retrain_cfg(self) -> dict:
        return self._retrain

    @contextmanager
    def _using(self, cfg: dict):
        saved = self.cfg
        self.cfg = cfg
        try:
            yield
        finally:
            self.cfg = saved

    # ---- stages ------------------------------------------------------------------------------
    def _base_stages(self) -> list[Stage]:
        return super().stages()

    def stages(self) -> list[Stage]:
        base = self._base_stages()
        if self.st_cfg is None:
            return base
        with self._using(self._retrain_cfg()):
            again = super().stages()
        names = [s.name for s in again]
        chosen = self.st_cfg["stages"] or names
        unknown = [n for n in chosen if n not in names]
        if unknown:
            raise ZsbenchError(f"self_training.stages: {unknown} are not stages of {self.base_impl} "
                               f"(its stages: {names})")
        rounds = self.st_cfg["rounds"]
        out = list(base)
        self._st_stage_map = {}
        for r in range(1, rounds + 1):
            prefix = "st-" if rounds == 1 else f"st{r}-"
            for s in again:
                if s.name in chosen:
                    st_stage = Stage(prefix + s.name, s.iterations, s.updates, s.batch_size, s.uses_batch,
                                     train_images=self.st_cfg["images"], probe_every=s.probe_every)
                    self._st_stage_map[st_stage.name] = s
                    out.append(st_stage)
        return out

    def _inner(self, stage: Stage) -> Stage | None:
        if self.st_cfg is None:
            return None
        if not self._st_stage_map:
            self.stages()
        return self._st_stage_map.get(stage.name)

    def stage_signature(self, index: int) -> str:
        n_base = len(self._base_stages())
        if self.st_cfg is None or index < n_base:
            return super().stage_signature(index)
        names = [s.name for s in self.stages()[: index + 1]]
        return json.dumps({"base": super().stage_signature(n_base - 1), "self_training": self.st_cfg,
                           "stages": names}, sort_keys=True, default=str)

    def configure_optimizers(self, stage: Stage):
        inner = self._inner(stage)
        if inner is None:
            return super().configure_optimizers(stage)
        with self._using(self._retrain_cfg()):
            return super().configure_optimizers(inner)

    def on_stage_start(self, stage: Stage, ctx) -> None:
        inner = self._inner(stage)
        if inner is None:
            return super().on_stage_start(stage, ctx)
        if self._starts_round(stage):
            self._start_round(ctx)
        with self._using(self._retrain_cfg()):
            super().on_stage_start(inner, ctx)

    def on_stage_end(self, stage: Stage, ctx) -> None:
        inner = self._inner(stage)
        if inner is None:
            return super().on_stage_end(stage, ctx)
        with self._using(self._retrain_cfg()):
            super().on_stage_end(inner, ctx)

    def training_step(self, batch: dict, stage: Stage, iteration: int) -> dict:
        inner = self._inner(stage)
        if inner is None:
            return super().training_step(batch, stage, iteration)
        pseudo_stages = self.st_cfg["pseudo_stages"]
        if pseudo_stages is None or inner.name in pseudo_stages:
            batch = {**batch, "label": self.pseudo_label(batch["image"], batch["label"])}
        with self._using(self._retrain_cfg()):
            return super().training_step(batch, inner, iteration)

    # ---- pseudo-labelling ----------------------------------------------------------------------
    def _starts_round(self, stage: Stage) -> bool:
        st_names = list(self._st_stage_map)
        per_round = len(st_names) // self.st_cfg["rounds"]
        return st_names.index(stage.name) % per_round == 0

    def _start_round(self, ctx) -> None:
        """Freeze the teacher (offline) and fit the per-class thresholds on the training set."""
        if self.st_cfg["style"] == "online":
            return
        self.__dict__["_teacher"] = None
        teacher = copy.deepcopy(self)
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
            p.grad = None
        self.__dict__["_teacher"] = teacher
        self._thresholds = self._fit_thresholds(ctx, teacher)

    @torch.no_grad()
    def _fit_thresholds(self, ctx, teacher) -> torch.Tensor:
        unseen = ~self.classes.seen.to(ctx.device)
        hist = ConfidenceHistogram(self.classes.num_classes, self.st_cfg["bins"], ctx.device)
        indices = ctx.train_indices if self.st_cfg["images"] == "split" else range(len(ctx.train_set))
        loader = ctx.loader(indices, ctx.cfg["eval"]["batch_size"], shuffle=False)
        ctx.reporter.stage_start("self-training: rank pseudo-labels", len(loader))
        for batch in loader:
            b = ctx.to_device(batch, ctx.train_lut)
            key, pred = confidence_key(teacher.predict(b["image"], b["label"].shape[-2:]))
            candidate = (b["label"] == self.classes.ignore_index) & unseen[pred]
            hist.update(pred, key, candidate)
            ctx.reporter.advance(1)
        ctx.reporter.stage_end()
        thresholds = hist.thresholds(self.st_cfg["percent"])
        thresholds[~unseen] = float("inf")
        self._candidates = hist.counts.sum(1).cpu()
        return thresholds

    @torch.no_grad()
    def pseudo_label(self, images: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """The batch's labels with pseudo-labels of unseen classes at ignored pixels."""
        unseen = ~self.classes.seen.to(label.device)
        ignore = self.classes.ignore_index
        if self.st_cfg["style"] == "online":
            was_training = self.training
            self.eval()
            scores = self.predict(images, label.shape[-2:])
            self.train(was_training)
            new = topk_pseudo_labels(label, scores, unseen, self.st_cfg["top_k"], ignore)
        else:
            teacher = self.__dict__.get("_teacher")
            if teacher is None or self._thresholds is None:
                raise ZsbenchError("self-training: the offline pseudo-labeller is not ready (its stages cannot be "
                                   "resumed half-way); rerun the self-training stages from the base method")
            scores = teacher.predict(images, label.shape[-2:])
            new = confident_pseudo_labels(label, scores, unseen, self._thresholds.to(label.device), ignore)
        changed = new[new != label]
        self._pseudo_counts += torch.bincount(changed.flatten(), minlength=self.classes.num_classes).cpu()
        return new

    def after_training(self, ctx) -> dict:
        facts = dict(super().after_training(ctx))
        if self.st_cfg is None:
            return facts
        names = self.classes.names
        unseen = [i for i, s in enumerate(self.classes.seen.tolist()) if not s]
        st = {"style": self.st_cfg["style"],
              "pseudo_labelled_pixels": {names[i]: int(self._pseudo_counts[i]) for i in unseen}}
        if self._thresholds is not None:
            st["thresholds_neg_log_1_minus_p"] = {names[i]: float(self._thresholds[i]) for i in unseen}
            st["candidate_pixels"] = {names[i]: int(self._candidates[i]) for i in unseen}
        if self.cfg["diagnostics"]:
            counts = self._pseudo_counts.clone()  # the check's labelling is not training's
            st["pseudo_label_check"] = pseudo_label_check(ctx, self.pseudo_label, self.classes.num_classes, names)
            self._pseudo_counts = counts
        self.__dict__["_teacher"] = None  # free the copy
        return {**facts, "self_training": st}


@lru_cache(maxsize=None)
def _with_self_training(schema):
    """A base config schema plus the `self_training` section (absent: the base's own config)."""
    if schema is None:
        return None

    class WithSelfTraining(schema):
        omit_if_default = (*schema.omit_if_default, "self_training")
        self_training: SelfTrainingOptions | None = None

    WithSelfTraining.__name__ = WithSelfTraining.__qualname__ = schema.__name__ + "SelfTraining"
    return WithSelfTraining


@lru_cache(maxsize=None)
def wrap(base: type[Method]) -> type[Method]:
    """The self-training version of an implementation class."""
    name = base.impl + SUFFIX
    return type(base.__name__ + "SelfTraining", (SelfTrainingMixin, base),
                {"impl": name, "base_impl": base.impl, "__module__": __name__,
                 "__doc__": f"{base.impl} followed by self-training (see zsseg_bench.methods.self_training)."})


def resolve(name: str):
    """Registry fallback: '<impl>+st' -> wrap(IMPLEMENTATIONS['<impl>'])."""
    base = name[: -len(SUFFIX)]
    if name.endswith(SUFFIX) and not base.endswith(SUFFIX) and base in IMPLEMENTATIONS:
        return wrap(IMPLEMENTATIONS.get(base))
    return None


IMPLEMENTATIONS.add_resolver(resolve)
