"""ZS3Net: a segmentation network whose final classifier is retrained on generated features.

Paper: Bucher, Vu, Cord, Pérez, "Zero-Shot Semantic Segmentation", NeurIPS 2019.
Code read: github.com/valeoai/ZS3 (6031f4a), `train_pascal.py`, `train_pascal_GMMN.py`,
`modeling/gmmn.py`, `utils/loss_GMMN.py` (how each is followed: methods/zs3net/README.md).

Three stages:
1. `segmentation`: the run's backbone (small-cnn here, DeepLabv2 on real data) giving a D-dim
   feature map, plus a 1x1 classifier over all K classes, trained with cross-entropy on the
   labelled (seen) pixels; unseen logits only ever receive negative gradient.
2. `generator`: a GMMN, [class embedding ; uniform noise] -> Linear -> LeakyReLU(0.2) ->
   Dropout(0.5) -> Linear -> D, trained with the multi-kernel Gaussian MMD between generated
   and real features of the same class (128 pixels drawn with replacement per image and class).
3. `classifier`: the 1x1 classifier is re-initialised and retrained on real features plus
   generated ones, with everything else frozen.

What we do differently, each configurable and documented in methods/zs3net/README.md:
* The stage-3 variant (card key `protocol`): `prior` (default) uses no unseen ground truth
  anywhere: in stage 3 the generated features get labels drawn i.i.d. from a class prior
  (weight 1 per seen class, 1 + `gen_unseen_rate` per unseen class), as CaGNet's finetune does;
  since the classifier is 1x1, only the label counts matter, not a spatial layout.
  `official-gt` reproduces the official stage 3: images containing unseen pixels have every
  labelled pixel replaced by a generated feature of its ground-truth class, CE weight 100 for
  unseen classes. It reads the unseen labels, so its runs are flagged `uses_unseen_labels`.
* The GMMN takes one Adam step per batch on the mean MMD of all (image, class) groups of the
  batch, computed at once, instead of one step per group.
* The backbone is the run's (DeepLabv2 under the CaGNet protocol, as CaGNet re-ran ZS3Net)
  rather than DeepLabv3+; the generator sees the run's embeddings (600-d fastText+word2vec on
  real data under the CaGNet protocol).
* Official quirks offered as options: `train.batch_average` (the loss divided again by the
  batch size), `classifier_stage.init: rand` (re-initialisation with uniform [0, 1)),
  `classifier_stage.backbone_mode: train` (BatchNorm statistics keep updating while frozen).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from zsseg_bench.catalog.schema import Dropout, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Section
from zsseg_bench.engine.transforms import label_maps_at
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.base import IMPLEMENTATIONS, ClassSpace, Method, MethodConfig, Stage, Update
from zsseg_bench.methods.common.backbones import build_backbone
from zsseg_bench.methods.common.diagnostics import generated_feature_check
from zsseg_bench.methods.common.mmd import mmd
from zsseg_bench.methods.common.optim import SGDOptions, adam, sgd_poly
from zsseg_bench.methods.common.sampling import class_prior, sample_groups

__all__ = ["ZS3Net", "ZS3NetConfig", "GMMN"]


class ZS3NetTrain(SGDOptions):
    """Stage 1, the segmentation network."""

    iterations: PositiveInt
    head_lr_mult: NonNegativeFloat
    poly_power: NonNegativeFloat
    lr_decay_every: PositiveInt = 1
    batch_average: bool  # official quirk: the loss divided again by the batch size
    # Head biases (the backbone's head and the classifier's): lr = head lr x this, with or without
    # weight decay. DeepLabv2 convention (SPNet, CaGNet): 2, none; official ZS3 (one 10x group): 1, decayed.
    head_bias_lr_mult: NonNegativeFloat = 2.0
    head_bias_weight_decay: bool = False


class GMMNOptions(Section):
    """Stage 2, the GMMN generator and its MMD."""

    iterations: PositiveInt
    lr: NonNegativeFloat  # Adam
    hidden: PositiveInt
    dropout: Dropout
    leaky_slope: NonNegativeFloat
    samples: PositiveInt  # pixels drawn (with replacement) per group
    group: Literal["image", "batch"]  # an (image, class) group, or a class over the batch
    sigmas: Annotated[list[PositiveFloat], Field(min_length=1)]  # kernel bandwidths (variances)
    noise_dim: PositiveInt | None = None  # None: the embedding's size (official)
    # Images per Adam step (None: data.batch_size). The official code steps once per (image, class);
    # 1 comes closest to its number of steps for a given number of images.
    batch_size: PositiveInt | None = None


class ClassifierStage(SGDOptions):
    """Stage 3, the classifier retrained on real and generated features."""

    iterations: PositiveInt
    init: Literal["default", "rand"]  # rand: the official uniform [0, 1) re-initialisation
    backbone_mode: Literal["eval", "train"]  # train: BatchNorm statistics keep moving (official)
    unseen_weight: NonNegativeFloat  # cross-entropy weight of the unseen classes
    gen_unseen_rate: NonNegativeFloat  # prior of generated labels: 1 + rate per unseen class, 1 per seen
    fake_weight: NonNegativeFloat
    poly_power: NonNegativeFloat = 0.9
    fake_pixels: NonNegativeInt = 0  # generated pixels per step (0: as many as the batch's feature map)
    generator_dropout: bool = True  # the generator's dropout stays on while it generates


class ZS3NetConfig(MethodConfig):
    # The stage-3 variant (card key `protocol`); official-gt: stage 3 places generated features with
    # unseen labels.
    protocol: Literal["prior", "official-gt"]
    feature_dim: PositiveInt
    train: ZS3NetTrain
    generator: GMMNOptions
    classifier_stage: ClassifierStage


class GMMN(nn.Module):
    """[embedding ; noise] -> feature. Xavier-uniform weights and bias 0.01, as `modeling/gmmn.py`."""

    def __init__(self, embed_dim: int, noise_dim: int, hidden: int, out_dim: int, dropout: float = 0.5,
                 slope: float = 0.2):
        super().__init__()
        self.noise_dim = noise_dim
        self.net = nn.Sequential(nn.Linear(embed_dim + noise_dim, hidden), nn.LeakyReLU(slope), nn.Dropout(dropout),
                                 nn.Linear(hidden, out_dim))
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.constant_(layer.bias, 0.01)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """embeddings [..., E] -> features [..., D]; noise ~ U[0, 1) per row, as the official code."""
        noise = torch.rand(*embeddings.shape[:-1], self.noise_dim, device=embeddings.device,
                           dtype=embeddings.dtype)
        return self.net(torch.cat([embeddings, noise], -1))


@IMPLEMENTATIONS.register("zs3net")
class ZS3Net(Method):
    Config = ZS3NetConfig

    def __init__(self, cfg: dict, classes: ClassSpace):
        super().__init__(cfg, classes)
        cfg = self.cfg
        self.stage3_variant = cfg["protocol"]
        dim = cfg["feature_dim"]
        self.backbone = build_backbone(cfg["backbone"], dim)
        self.classifier = nn.Conv2d(dim, classes.num_classes, 1)
        gen = cfg["generator"]
        emb_dim = classes.embeddings.shape[1]
        self.generator = GMMN(emb_dim, gen["noise_dim"] or emb_dim, gen["hidden"], dim, gen["dropout"],
                              gen["leaky_slope"])
        self.register_buffer("embeddings", classes.embeddings.clone().float(), persistent=False)
        self.register_buffer("seen", classes.seen.clone(), persistent=False)
        self.generated_checks: list[dict] = []  # diagnostics: own-class shares after each generator stage

    # ---- protocol flags ---------------------------------------------------------------------
    def protocol_flags(self) -> dict:
        return {"uses_unseen_labels": self.stage3_variant == "official-gt", "transductive": bool(self.transductive)}

    # ---- stages -----------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        c = self.cfg
        return [
            Stage("segmentation", c["train"]["iterations"], [Update("loss", "main")]),
            Stage("generator", c["generator"]["iterations"], [Update("mmd", "generator")],
                  batch_size=c["generator"]["batch_size"]),
            # Probed on the val images every log_every iterations (diagnostics: the trajectory).
            Stage("classifier", c["classifier_stage"]["iterations"], [Update("loss", "classifier")],
                  probe_every=c["log_every"] if c["diagnostics"] else None),
        ]

    def configure_optimizers(self, stage: Stage):
        if stage.name == "segmentation":
            t = self.cfg["train"]
            # The backbone names its groups: small-cnn's head, DeepLab's ASPP (frozen BN in none).
            parts = self.backbone.lr_groups()
            mult = t["head_lr_mult"]
            bias = {"params": parts["head_bias"] + [self.classifier.bias], "lr_mult": t["head_bias_lr_mult"] * mult}
            if not t["head_bias_weight_decay"]:
                bias["weight_decay"] = 0.0
            groups = [
                {"params": parts["body"], "lr_mult": 1.0},
                {"params": parts["head_weight"] + [self.classifier.weight], "lr_mult": mult},
                bias,
            ]
            opt, sched = sgd_poly(groups, t["lr"], stage.iterations, t["momentum"], t["weight_decay"],
                                  t["poly_power"], t["lr_decay_every"])
            return {"main": (opt, sched)}
        if stage.name == "generator":
            g = self.cfg["generator"]
            return {"generator": (adam(self.generator.parameters(), g["lr"]), None)}
        if stage.name == "classifier":
            c = self.cfg["classifier_stage"]
            opt, sched = sgd_poly([{"params": list(self.classifier.parameters())}], c["lr"], stage.iterations,
                                  c["momentum"], c["weight_decay"], c["poly_power"])
            return {"classifier": (opt, sched)}
        raise KeyError(stage.name)

    def on_stage_start(self, stage: Stage, ctx) -> None:
        frozen = {"segmentation": False, "generator": True, "classifier": True}[stage.name]
        for p in self.backbone.parameters():
            p.requires_grad_(not frozen)
        for p in self.generator.parameters():
            p.requires_grad_(stage.name == "generator")
        self.classifier.requires_grad_(stage.name != "generator")
        if stage.name == "classifier":
            self._reset_classifier()

    def on_stage_end(self, stage: Stage, ctx) -> None:
        self.requires_grad_(True)
        if stage.name == "generator" and self.cfg["diagnostics"]:
            check = generated_feature_check(self, ctx, self._features, self._generate_as_stage3,
                                            after=getattr(ctx, "current_stage", "") or stage.name)
            if check is not None:
                self.generated_checks.append(check)

    def _generate_as_stage3(self, labels: torch.Tensor) -> torch.Tensor:
        """Generated features of `labels` [n] as the classifier stage makes them (dropout as configured)."""
        self.generator.train(self.cfg["classifier_stage"]["generator_dropout"])
        return self.generator(self.embeddings[labels])

    def after_training(self, ctx) -> dict:
        facts = super().after_training(ctx)
        if self.generated_checks:
            facts["diagnostics"] = {"generated_features": list(self.generated_checks)}
        return facts

    def _reset_classifier(self) -> None:
        if self.cfg["classifier_stage"]["init"] == "rand":  # the official `--random_last_layer`: uniform [0, 1)
            nn.init.uniform_(self.classifier.weight, 0.0, 1.0)
            nn.init.uniform_(self.classifier.bias, 0.0, 1.0)
        else:
            self.classifier.reset_parameters()

    # ---- training ---------------------------------------------------------------------------
    def training_step(self, batch: dict, stage: Stage, iteration: int) -> dict:
        if stage.name == "segmentation":
            return self._segmentation_step(batch)
        if stage.name == "generator":
            return self._generator_step(batch)
        return self._classifier_step(batch)

    def _ce(self, logits: torch.Tensor, target: torch.Tensor, weight=None) -> torch.Tensor:
        if logits.shape[-2:] != target.shape[-2:]:
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        loss = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=self.classes.ignore_index)
        if self.cfg["train"]["batch_average"]:  # official `batch_average`: divide again by B
            loss = loss / target.shape[0]
        return loss

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        """The feature map. A multi-scale backbone returns several maps; like SPNet's inference we
        take its last output."""
        out = self.backbone(images)
        return out[-1] if isinstance(out, (list, tuple)) else out

    def _segmentation_step(self, batch: dict) -> dict:
        out = self.backbone(batch["image"])
        outputs = out if isinstance(out, (list, tuple)) else [out]
        # As SPNet, a multi-scale backbone's loss is summed over its outputs.
        return {"loss": sum(self._ce(self.classifier(f), batch["label"]) for f in outputs)}

    @torch.no_grad()
    def _frozen_features(self, images: torch.Tensor, mode: str = "eval") -> torch.Tensor:
        self.backbone.train(mode == "train")
        return self._features(images).float()

    def _unseen_in_image(self, batch: dict) -> torch.Tensor | None:
        """[B] bool: image has an unseen ground-truth pixel (official-gt variant only)."""
        if self.stage3_variant != "official-gt":
            return None
        if "label_all" not in batch:
            raise ZsbenchError("zs3net protocol official-gt needs the unseen labels (label_all), but the run "
                               "did not pass them; the run must be flagged uses_unseen_labels")
        lab = batch["label_all"]
        unseen = ~self.seen[lab.clamp(max=self.classes.num_classes - 1)] & (lab != self.classes.ignore_index)
        return unseen.flatten(1).any(1)

    def _generator_step(self, batch: dict) -> dict:
        g = self.cfg["generator"]
        feats = self._frozen_features(batch["image"])  # [B, D, h, w]
        label = label_maps_at(batch["label"], feats.shape[-2:])
        has_unseen = self._unseen_in_image(batch)
        keep = None if has_unseen is None else ~has_unseen  # official: only images without unseen pixels
        index, cls = sample_groups(label, self.classes.num_classes, self.classes.ignore_index,
                                   g["samples"], g["group"] == "image", keep)
        if index is None:
            return {}
        real = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])[index]  # [G, n, D]
        self.generator.train()
        fake = self.generator(self.embeddings[cls].unsqueeze(1).expand(-1, index.shape[1], -1))
        sigmas = tuple(g["sigmas"])
        return {"mmd": mmd(fake, real, sigmas, eps=1e-8).mean()}

    def _classifier_step(self, batch: dict) -> dict:
        c = self.cfg["classifier_stage"]
        feats = self._frozen_features(batch["image"], c["backbone_mode"])
        self.generator.train(c["generator_dropout"])
        weight = torch.ones(self.classes.num_classes, device=feats.device)
        weight[~self.seen] = c["unseen_weight"]
        if self.stage3_variant == "official-gt":
            return {"loss": self._official_gt_loss(batch, feats, weight)}
        # Real features of the labelled pixels, scored at the label's resolution.
        real_loss = self._ce(self.classifier(feats), batch["label"], weight)
        # Generated features with labels drawn from the class prior (no unseen ground truth).
        n_fake = c["fake_pixels"] or feats.shape[0] * feats.shape[2] * feats.shape[3]
        prior = class_prior(self.seen, c["gen_unseen_rate"])
        fake_label = torch.multinomial(prior, n_fake, replacement=True)
        with torch.no_grad():
            fake = self.generator(self.embeddings[fake_label])
        fake_logits = F.linear(fake, self.classifier.weight.flatten(1), self.classifier.bias)
        fake_loss = F.cross_entropy(fake_logits, fake_label, weight=weight)
        return {"loss": real_loss + c["fake_weight"] * fake_loss,
                "real": real_loss.detach(), "fake": fake_loss.detach()}

    def _official_gt_loss(self, batch: dict, feats: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Official stage 3: in every image with an unseen pixel, each labelled pixel gets a generated
        feature of its ground-truth class (seen or unseen) and unlabelled pixels get zeros."""
        label_all = batch["label_all"]
        has_unseen = self._unseen_in_image(batch)
        if bool(has_unseen.any()):
            lab = label_maps_at(label_all, feats.shape[-2:])
            valid = lab != self.classes.ignore_index
            with torch.no_grad():
                fake = self.generator(self.embeddings[lab.clamp(max=self.classes.num_classes - 1)])
            fake = torch.where(valid.unsqueeze(-1), fake, torch.zeros_like(fake)).permute(0, 3, 1, 2)
            feats = torch.where(has_unseen.view(-1, 1, 1, 1), fake, feats)
        return self._ce(self.classifier(feats), label_all, weight)

    # ---- inference --------------------------------------------------------------------------
    def predict(self, images: torch.Tensor, size=None) -> torch.Tensor:
        logits = self.classifier(self._features(images))
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)
        return logits
