"""CaGNet: context-aware feature generation for zero-shot semantic segmentation.

Paper: Gu, Zhou, Niu, Zhang, "Context-aware Feature Generation for Zero-shot Semantic
Segmentation", ACM MM 2020; patch-wise version "From Pixel to Patch: Synthesize Context-aware
Features for Zero-shot Semantic Segmentation" (CaGNetv2, TNNLS 2022).
Code read: github.com/bcmi/CaGNet-Zero-Shot-Semantic-Segmentation (249305b) and
github.com/bcmi/CaGNetv2-Zero-Shot-Semantic-Segmentation (0040e4e). User guide, with the official
code's quirks and what we do about each: methods/cagnet/README.md.

The model (impl `cagnet`, cards `cagnet-pi`, `cagnet-pa`) is the run's backbone plus the
contextual module, generator and discriminator of networks.py, which also says how their
modules are named after the official checkpoint's keys.

Classifier rows: row k of `discriminator.cls` is evaluation class k of the split
(`classifier_rows()` names them); with `classifier.dead_logit: true` (official) there is one more
row, K, that is never a target and is dropped at prediction. The official rows are the seen
classes in `seen_cls.npy` order, then the unseen ones in `novel_cls.npy` order, then the dead
logit: an importer permutes the official rows into ours (`official_row = position of the class
in seen_cls + novel_cls`).

Training stages: `step1` (backbone + contextual module + G + D/C) and `mixed` (blocks of
`interval` iterations alternating step-1 updates with the backbone frozen and classifier-only
updates on generated features whose labels come from a prior favouring unseen classes; the
latter read no batch). The patch-wise model adds a label-patch PixelCNN stage (patch.py).
Each loss goes to its optimizer through `Stage.updates`; the engine computes all gradients
before any optimizer steps, which is what the official D -> backbone -> G order meant (on
PyTorch >= 1.5 that order raises an in-place modification error; methods/cagnet/README.md).

What we do differently, each an option (methods/cagnet/README.md has the table):
`context.train_selector` (official: fc_1 never optimized), `content.mode` (official run-wise MMD
or per class), `adversarial` (official L1 on sigmoid scores, or least squares / BCE),
`classifier.dead_logit`, `eval.mode` (official: feature resolution), `finetune.idle_generator_steps`
(official: Adam keeps stepping G with zero gradients in classifier-only iterations),
`unseen_condition` (self-training: official zero embedding for pseudo-labelled unseen pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.engine.transforms import label_maps_at
from zsseg_bench.methods.base import IMPLEMENTATIONS, ClassSpace, Method, Stage, Update
from zsseg_bench.methods.cagnet.config import CaGNetConfig
from zsseg_bench.methods.cagnet.diagnostics import CaGNetDiagnostics
from zsseg_bench.methods.cagnet.losses import (
    adversarial_d,
    adversarial_g,
    content_mmd_classes,
    content_mmd_runs,
    kl_term,
)
from zsseg_bench.methods.cagnet.networks import ContextualModule, Discriminator, Generator, embed_labels
from zsseg_bench.methods.common.backbones import build_backbone
from zsseg_bench.methods.common.deeplab import FrozenBatchNorm2d
from zsseg_bench.methods.common.optim import adam, sgd_poly
from zsseg_bench.methods.common.sampling import class_prior

__all__ = ["CaGNet", "step_decay"]

def step_decay(start: int, step: int, gamma: float):
    """The official D/G "lambda" policy: 1 before `start`, then gamma^((it - start) // step + 1)."""

    def factor(it: int) -> float:
        return 1.0 if it < start else gamma ** ((it - start) // max(1, step) + 1)

    return factor


def _adam_decay(params, c: dict, lr_key: str, decay_key: str, weight_decay: float):
    opt = adam(params, c[lr_key], weight_decay=weight_decay)
    d = c[decay_key]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, step_decay(d["start"], d["step"], d["gamma"]))
    return opt, sched


@IMPLEMENTATIONS.register("cagnet")
class CaGNet(Method):
    Config = CaGNetConfig
    patch = False  # the patch-wise subclass (patch.py) sets it

    def __init__(self, cfg: dict, classes: ClassSpace):
        super().__init__(cfg, classes)
        cfg = self.cfg
        self.adversarial = cfg["adversarial"]
        dim = cfg["feature_dim"]
        emb_dim = classes.embeddings.shape[1]
        self.feature_dim = dim
        self.backbone = build_backbone(cfg["backbone"], dim)
        ctx = cfg["context"]
        self.context = ContextualModule(dim, ctx["hidden"], tuple(ctx["dilations"]))
        gen = cfg["generator"]
        self.generator = Generator(emb_dim + dim, dim, gen["hidden"], gen["dropout"], gen["leaky_slope"])
        dis = cfg["discriminator"]
        self.dead_logit = cfg["classifier"]["dead_logit"]
        k = classes.num_classes
        self.discriminator = Discriminator(dim, k + int(self.dead_logit), dis["hidden"], dis["dropout"],
                                           patch=self.patch)
        self._init_weights(cfg["init"])
        self.register_buffer("embeddings", classes.embeddings.clone().float(), persistent=False)
        self.register_buffer("seen", classes.seen.clone(), persistent=False)
        self._fake_shape: tuple[int, int, int] | None = None
        self.skipped_batches = 0  # real batches without a labelled pixel at some output's resolution
        self.diagnostics = CaGNetDiagnostics(cfg["log_every"])

    def _init_weights(self, init: str) -> None:
        """The official weights_init('kaiming') on every conv outside the backbone (fan_in, bias 0).
        The backbone keeps its own init (ImageNet / official weights on real data)."""
        if init == "default":
            return
        for part in (self.context, self.generator, self.discriminator):
            for m in part.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_in")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def classifier_rows(self) -> list[str]:
        """The class of each row of `discriminator.cls` (eval order; then the dead logit, if kept)."""
        return list(self.classes.names) + (["<dead logit>"] if self.dead_logit else [])

    # ---- stages -------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        c = self.cfg
        interval = c["finetune"]["interval"]
        return [
            Stage("step1", c["step1"]["iterations"],
                  [Update("loss_D", "discriminator"), Update("loss_B", "backbone"), Update("loss_G", "generator")],
                  batch_size=c["step1"]["batch_size"]),
            Stage("mixed", c["finetune"]["iterations"],
                  [Update("loss_D", "discriminator"), Update("loss_G", "generator")],
                  batch_size=c["finetune"]["batch_size"], uses_batch=_ReadsBatch(interval),
                  probe_every=interval if c["diagnostics"] else None),  # val scores at block boundaries
        ]

    def _context_params(self) -> list[nn.Parameter]:
        train_selector = self.cfg["context"]["train_selector"]
        return [p for n, p in self.context.named_parameters() if train_selector or not n.startswith("fc_1.")]

    def configure_optimizers(self, stage: Stage):
        if stage.name == "step1":
            s = self.cfg["step1"]
            groups = self.backbone.lr_groups()
            mult = s["head_lr_mult"]
            param_groups = [
                {"params": groups["body"], "lr_mult": 1.0},
                {"params": self._context_params(), "lr_mult": s["context_lr_mult"]},
                {"params": groups["head_weight"], "lr_mult": mult},
                {"params": groups["head_bias"], "lr_mult": 2 * mult, "weight_decay": 0.0},
            ]
            back = sgd_poly(param_groups, s["lr"], stage.iterations, s["momentum"], s["weight_decay"],
                            s["poly_power"], s["lr_decay_every"])
            return {"backbone": back,
                    "discriminator": _adam_decay(self.discriminator.parameters(), s, "lr_D", "decay_D",
                                                 s["weight_decay_D"]),
                    "generator": _adam_decay(self.generator.parameters(), s, "lr_G", "decay_G", 0.0)}
        if stage.name == "mixed":
            f = self.cfg["finetune"]
            return {"discriminator": _adam_decay(self.discriminator.parameters(), f, "lr_D", "decay_D",
                                                 f["weight_decay_D"]),
                    "generator": _adam_decay(self.generator.parameters(), f, "lr_G", "decay_G", 0.0)}
        raise KeyError(stage.name)

    def on_stage_start(self, stage: Stage, ctx) -> None:
        frozen = stage.name != "step1"
        self._set_backbone_trainable(not frozen)
        self.context.requires_grad_(not frozen)
        if not self.cfg["context"]["train_selector"]:
            self.context.fc_1.requires_grad_(False)  # official: in no optimizer group
        self._fake_shape = None

    def on_stage_end(self, stage: Stage, ctx) -> None:
        self._set_backbone_trainable(True)
        self.context.requires_grad_(True)
        if self.cfg["diagnostics"]:
            self.diagnostics.stage_end(self, stage, ctx)

    def _set_backbone_trainable(self, trainable: bool) -> None:
        self.backbone.requires_grad_(trainable)
        for m in self.backbone.modules():  # DeepLab's BatchNorm stays frozen whatever the stage
            if isinstance(m, FrozenBatchNorm2d):
                m.requires_grad_(False)

    # ---- forward pieces -----------------------------------------------------------------------
    def encode(self, images: torch.Tensor, sample: bool):
        """Backbone + contextual module on every scale of the backbone.

        Returns (X per backbone output, (mu, logvar, Z) of the full-scale input). A multi-scale
        backbone calls the head on the full scale first; its X list is [X1.0, X0.5, X0.75, Xmax]."""
        stats, zero_shares = [], []

        def head(feat):
            x, mu, logvar, z = self.context(feat, sample)
            stats.append((mu, logvar, z))
            zero_shares.append(self.context.zero_share)
            return x

        out = self.backbone(images, head=head)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        self._context_zero = zero_shares[0]  # of the full-scale input, like the statistics returned
        return outs, stats[0]

    def bench_features(self, images: torch.Tensor):
        """Backbone + contextual module (everything up to X), for `zsbench bench`'s time split."""
        return self.encode(images, sample=True)[0]

    def generate(self, label: torch.Tensor, latent: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """G([embedding of each pixel's label ; latent]); labels outside the table embed to zero."""
        inp = torch.cat([embed_labels(label, table).to(latent.dtype), latent], 1).detach()
        return self.generator(inp)

    def _condition_table(self) -> torch.Tensor:
        """Embeddings G is conditioned on in step-1 updates. Official (`unseen_condition: zero`):
        `Em_vis`, i.e. zero for every non-seen class (matters only for pseudo-labelled pixels)."""
        if self.cfg["unseen_condition"] == "embedding":
            return self.embeddings
        return self.embeddings * self.seen.unsqueeze(1).to(self.embeddings.dtype)

    def _ce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), target, ignore_index=self.classes.ignore_index)

    def _content(self, fake, real, label, valid) -> torch.Tensor:
        c = self.cfg["content"]
        sigmas, eps = tuple(c["sigmas"]), c["eps"]
        if c["mode"] == "runs":
            return content_mmd_runs(fake, real, label, valid, sigmas, eps)
        return content_mmd_classes(fake, real, label, valid, self.classes.num_classes, c["samples"],
                                   c["group"] == "image", sigmas, eps)

    # ---- training -----------------------------------------------------------------------------
    def training_step(self, batch: dict, stage: Stage, iteration: int) -> dict:
        if stage.name == "step1":
            return self._step1(batch, self.cfg["step1"]["lambdas"], train_backbone=True)
        if stage.name == "mixed":
            f = self.cfg["finetune"]
            if stage.uses_batch(iteration):
                return self._step1(batch, f["lambdas"], train_backbone=False)
            return self._transfer(f)
        raise KeyError(stage.name)

    def _step1(self, batch: dict, lam: dict, train_backbone: bool) -> dict:
        """Step-1 losses: D/C on real (and fake) seen features, the backbone's CE + KL, G's GAN +
        content (+ CE). With the backbone frozen (mixed stage) no loss_B and no backbone graph."""
        ignore = self.classes.ignore_index
        if train_backbone:
            outs, (mu, logvar, z) = self.encode(batch["image"], sample=True)
        else:
            # Frozen (official): the backbone stays in training mode (a multi-scale wrapper still
            # gives its four outputs, Z is sampled) but no BatchNorm statistic moves (small-cnn's
            # BatchNorm is not frozen by itself; DeepLab's always is).
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
            with torch.no_grad():
                outs, (mu, logvar, z) = self.encode(batch["image"], sample=True)
        x = outs[0]
        labels = [label_maps_at(batch["label"], o.shape[-2:]) for o in outs]
        if not all(bool((lab != ignore).any()) for lab in labels):
            # Official: skipped when any output's label map (e.g. the x0.5 one) has no labelled pixel,
            # whose cross-entropy would be NaN.
            self.skipped_batches += 1
            return {}
        label = labels[0]
        valid = label != ignore
        self._fake_shape = (x.shape[0], x.shape[2], x.shape[3])
        dis = self.discriminator
        h_real = dis.fc(x)
        cls_real = self._ce(dis.classify(h_real), label)
        for o, lab in zip(outs[1:], labels[1:]):
            cls_real = cls_real + self._ce(dis.classify(dis.fc(o)), lab)
        cls_real = cls_real / len(outs)  # mean over the multi-scale outputs
        fake = self.generate(label, z, self._condition_table())
        h_fake = dis.fc(fake)
        fake_score = dis.pred(h_fake)
        cls_fake = self._ce(dis.classify(h_fake), label)
        # Only D's parameters receive loss_D's gradient (Stage.updates), so the real score may
        # share the classifier's trunk pass and the fake score need not be detached.
        gan_d = adversarial_d(dis.pred(h_real), fake_score, valid, self.adversarial)
        gan_g = adversarial_g(fake_score, valid, self.adversarial)
        content = self._content(fake, x.detach(), label, valid)
        losses = {
            "loss_D": gan_d + lam["D_cls_real"] * cls_real + lam["D_cls_fake"] * cls_fake,
            "loss_G": lam["G_GAN"] * gan_g + lam["G_content"] * content + lam["G_cls"] * cls_fake,
        }
        if train_backbone:
            kld = kl_term(mu, logvar, valid)
            losses["loss_B"] = lam["B_KLD"] * kld + lam["B_cls"] * cls_real
            losses["kld"] = kld.detach()
            if self.cfg["diagnostics"]:
                losses.update(self.diagnostics.context_stats(kld, self._context_zero, mu, logvar))
        losses.update({"cls_real": cls_real.detach(), "cls_fake": cls_fake.detach(), "gan_d": gan_d.detach(),
                       "gan_g": gan_g.detach(), "content": content.detach()})
        return losses

    def _transfer_features(self, f: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(generated features, their classification target) of a classifier-only iteration:
        labels drawn i.i.d. from the prior for every pixel of the last real batch's feature map,
        latent N(0, I). The patch-wise model tiles label patches instead."""
        label = self._transfer_labels(f)
        latent = torch.randn(label.shape[0], self.feature_dim, *label.shape[1:], device=label.device)
        return self.generate(label, latent, self.embeddings), label

    def _transfer_labels(self, f: dict) -> torch.Tensor:
        b, h, w = self._fake_shape
        prior = class_prior(self.seen, f["gen_unseen_rate"])
        return torch.multinomial(prior, b * h * w, replacement=True).view(b, h, w)

    def _transfer(self, f: dict) -> dict:
        """Classifier-only iteration on generated features (`_transfer_features`)."""
        if self._fake_shape is None:  # no real batch seen in this stage yet
            return {}
        made = self._transfer_features(f)
        if made is None:
            return {}
        fake, target = made
        cls_fake = self._ce(self.discriminator.classify(self.discriminator.fc(fake)), target)
        lam = f["lambdas"]
        out = {"loss_D": lam["D_cls_fake_transfer"] * cls_fake, "cls_transfer": cls_fake.detach()}
        g = lam["G_cls_transfer"]
        # Official (PyTorch 1.4, grads zeroed not freed): Adam steps G even with a zero gradient,
        # so its momentum keeps moving G. A zero-weighted loss reproduces that.
        if g != 0.0 or f["idle_generator_steps"]:
            out["loss_G"] = g * cls_fake
        return out

    def after_training(self, ctx) -> dict:
        facts = {**super().after_training(ctx), "skipped_batches": self.skipped_batches}
        if self.cfg["diagnostics"]:
            facts["diagnostics"] = self.diagnostics.facts()
        return facts

    # ---- inference ----------------------------------------------------------------------------
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Scores of X from the full-scale input (the official test), dead logit dropped."""
        outs, _ = self.encode(images, sample=False)
        x = outs[0]
        logits = self.discriminator.classify(self.discriminator.fc(x))
        return logits[:, : self.classes.num_classes]

    def predict(self, images: torch.Tensor, size=None) -> torch.Tensor:
        logits = self.logits(images)
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)
        return logits


class _ReadsBatch:
    """Stage.uses_batch of the mixed stage: step-1 blocks read a batch, classifier-only blocks do not.
    A class (not a lambda) so that stages compare and print sensibly."""

    def __init__(self, interval: int):
        self.interval = max(1, int(interval))

    def __call__(self, it: int) -> bool:
        return (it // self.interval) % 2 == 0

    def __repr__(self) -> str:
        return f"alternate({self.interval})"
