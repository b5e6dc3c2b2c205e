"""CaGNet: context-aware feature generation for zero-shot semantic segmentation.

Paper: Gu, Zhou, Niu, Zhang, "Context-aware Feature Generation for Zero-shot Semantic
Segmentation", ACM MM 2020; patch-wise version "From Pixel to Patch: Synthesize Context-aware
Features for Zero-shot Semantic Segmentation" (CaGNetv2, TNNLS 2022).
Code read: github.com/bcmi/CaGNet-Zero-Shot-Semantic-Segmentation (249305b) and
github.com/bcmi/CaGNetv2-Zero-Shot-Semantic-Segmentation (0040e4e); summary in
`../shared/reference/cagnet.md`. User guide: methods/cagnet/README.md.

The model (impl `cagnet`, cards `cagnet-pi`, `cagnet-pa`):

* `backbone`: the run's backbone, producing F (D channels). On real data DeepLabv2
  ResNet-101 (`build_backbone`), whose keys are the official `back.scale.layer*` /
  `back.scale.aspp.*` ones with `back.` replaced by `backbone.` (weights.py, docs/deeplab.md).
* `context`: the contextual module on sigmoid(F): `contextual1..3` (3x3, dilations 1, 2, 5,
  serial, ReLU), the context selector `fc_1` (3x3 conv to 3 maps, ReLU then sigmoid, one weight
  map per dilated output), `contextualpool` (1x1 + ReLU), `contextuallocalmu` (3x3) and
  `contextuallocalsigma` (3x3 + ReLU, used as log-variance). Z = mu + eps * exp(logvar / 2)
  while training, mu at test; X = sigmoid(F + F * sigmoid(Z)) is the feature everything
  classifies. Every conv is bias-less and sits in a `.conv` child, as in the official file.
* `generator`: a pixel-wise MLP of 1x1 convs, [class embedding ; latent] (E + D) -> 1024 ->
  960 -> 864 -> 784 -> 720 -> D, LeakyReLU(0.2) and dropout 0.1/0.1/0.3/0.5/0.5 after each
  hidden layer, sigmoid at the end (widths configurable for the synthetic benchmark). Its input
  is detached: generator losses never reach the backbone.
* `discriminator`: a shared trunk `fc` (1x1 conv to 1024 + ReLU + dropout 0.5), the GAN head
  `pred` (1x1 -> 1, a raw score; the losses apply the sigmoid) and the classifier `cls`
  (1x1 -> K or K + 1 logits); the patch-wise model adds `cls_3` (3x3, 1024 -> 1024) before `cls`.

Official checkpoint key map (reference §7; `{'iteration', 'state_dict'}`, 659 keys):

    back.scale.layer*, back.scale.aspp.*        -> backbone.scale.layer*, backbone.scale.aspp.*
    back.scale.contextual{1,2,3}.conv.weight    -> context.contextual{1,2,3}.conv.weight
    back.scale.fc_1.conv.weight                 -> context.fc_1.conv.weight
    back.scale.contextualpool.conv.weight       -> context.contextualpool.conv.weight
    back.scale.contextuallocal{mu,sigma}.conv.weight -> context.contextuallocal{mu,sigma}.conv.weight
    gen.mlp.{0..4}.conv.{weight,bias}, gen.mlp.5.{weight,bias} -> generator.mlp.* (same suffixes)
    dis.fc.conv.*, dis.pred.*, dis.cls.*, dis.cls_3.* -> discriminator.fc.conv.*, .pred.*, .cls.*, .cls_3.*
    Em_vis.weight, Em_all.weight                -> not parameters here (the run's embeddings are
                                                   buffers, not saved); compare or drop them

Classifier rows: row k of `discriminator.cls` is evaluation class k of the split
(`classifier_rows()` names them); with `classifier.dead_logit: true` (official) there is one more
row, K, that is never a target and is dropped at prediction. The official rows are the seen
classes in `seen_cls.npy` order, then the unseen ones in `novel_cls.npy` order, then the dead
logit: an importer permutes the official rows into ours (`official_row = position of the class
in seen_cls + novel_cls`).

Training stages: `step1` (backbone + contextual module + G + D/C) and `mixed` (blocks of
`interval` iterations alternating step-1 updates with the backbone frozen and classifier-only
updates on generated features whose labels come from a prior favouring unseen classes; the
latter read no batch). The patch-wise model adds a label-patch PixelCNN stage (cagnet_patch.py).
Each loss goes to its optimizer through `Stage.updates`; the engine computes all gradients
before any optimizer steps, which is what the official D -> backbone -> G order meant (on
PyTorch >= 1.5 that order raises an in-place modification error, reference §2.2).

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
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.base import IMPLEMENTATIONS, ClassSpace, Method, Stage, Update
from zsseg_bench.methods.cagnet.losses import (
    ADVERSARIAL,
    adversarial_d,
    adversarial_g,
    content_mmd_classes,
    content_mmd_runs,
    kl_term,
)
from zsseg_bench.methods.common.backbones import build_backbone
from zsseg_bench.methods.common.deeplab import FrozenBatchNorm2d
from zsseg_bench.methods.common.dropout import FastDropout
from zsseg_bench.methods.common.mmd import CAGNET_SIGMAS
from zsseg_bench.methods.common.optim import adam, sgd_poly
from zsseg_bench.methods.zs3net import class_prior

__all__ = ["CaGNet", "ContextualModule", "Generator", "Discriminator", "step_decay"]

GEN_HIDDEN = (1024, 960, 864, 784, 720)
GEN_DROPOUT = (0.1, 0.1, 0.3, 0.5, 0.5)


class _Conv(nn.Module):
    """conv (no bias) [+ ReLU]; the official `_ConvReLU_`, whose weight is under `.conv`."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int = 1, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False)
        self.relu = relu

    def forward(self, x):
        x = self.conv(x)
        return F.relu(x) if self.relu else x


class ContextualModule(nn.Module):
    """F [B, D, h, w] -> (X, mu, logvar, Z), see the module docstring."""

    def __init__(self, dim: int, hidden: int = 256, dilations=(1, 2, 5)):
        super().__init__()
        d1, d2, d3 = dilations
        self.contextual1 = _Conv(dim, hidden, 3, d1)
        self.contextual2 = _Conv(hidden, hidden, 3, d2)
        self.contextual3 = _Conv(hidden, hidden, 3, d3)
        self.fc_1 = _Conv(3 * hidden, 3, 3)  # ReLU here, sigmoid in forward: weights in [0.5, 1)
        self.contextualpool = _Conv(3 * hidden, dim, 1)
        self.contextuallocalmu = _Conv(dim, dim, 3, relu=False)
        self.contextuallocalsigma = _Conv(dim, dim, 3)  # ReLU: logvar >= 0 (official)

    def forward(self, feat: torch.Tensor, sample: bool):
        c1 = self.contextual1(torch.sigmoid(feat))
        c2 = self.contextual2(c1)
        c3 = self.contextual3(c2)
        cat = torch.cat([c1, c2, c3], 1)
        w = torch.sigmoid(self.fc_1(cat))  # [B, 3, h, w]
        n = c1.shape[1]
        weighted = cat * w.repeat_interleave(n, dim=1)
        pooled = self.contextualpool(weighted)
        mu = self.contextuallocalmu(pooled)
        logvar = self.contextuallocalsigma(pooled)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        x = torch.sigmoid(feat + feat * torch.sigmoid(z))
        return x, mu, logvar, z


class _GenBlock(nn.Module):
    def __init__(self, cin: int, cout: int, dropout: float, slope: float):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.act = nn.LeakyReLU(slope)
        self.drop = FastDropout(dropout)

    def forward(self, x):
        return self.drop(self.act(self.conv(x)))


class Generator(nn.Module):
    """[embedding ; latent] map [B, E + D, h, w] -> feature map [B, D, h, w] in (0, 1)."""

    def __init__(self, in_dim: int, out_dim: int, hidden=GEN_HIDDEN, dropout=GEN_DROPOUT, slope: float = 0.2):
        super().__init__()
        hidden, dropout = list(hidden), list(dropout)
        if len(dropout) != len(hidden):
            raise ZsbenchError(f"generator.dropout: {len(dropout)} values for {len(hidden)} hidden layers")
        layers, cin = [], in_dim
        for width, p in zip(hidden, dropout):
            layers.append(_GenBlock(cin, width, p, slope))
            cin = width
        layers.append(nn.Conv2d(cin, out_dim, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return torch.sigmoid(self.mlp(x))


class _Trunk(nn.Module):
    def __init__(self, cin: int, cout: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.drop = FastDropout(dropout)

    def forward(self, x):
        return self.drop(F.relu(self.conv(x)))


class Discriminator(nn.Module):
    """Shared trunk `fc`, GAN head `pred`, classifier `cls` (and `cls_3` for patches)."""

    def __init__(self, dim: int, n_logits: int, hidden: int = 1024, dropout: float = 0.5, patch: bool = False):
        super().__init__()
        self.fc = _Trunk(dim, hidden, dropout)
        self.pred = nn.Conv2d(hidden, 1, 1)
        self.cls = nn.Conv2d(hidden, n_logits, 1)
        self.cls_3 = nn.Conv2d(hidden, hidden, 3, padding=1) if patch else None

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.cls(self.cls_3(h) if self.cls_3 is not None else h)


def embed_labels(labels: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Label maps [B, h, w] -> embedding maps [B, E, h, w]; a label outside the table (ignore,
    or an unseen class missing from a seen-only table) embeds to the zero vector."""
    k = table.shape[0]
    inside = (labels >= 0) & (labels < k)
    return (table[labels.clamp(0, k - 1)] * inside.unsqueeze(-1).to(table.dtype)).permute(0, 3, 1, 2)


def step_decay(start: int, step: int, gamma: float):
    """The official D/G "lambda" policy: 1 before `start`, then gamma^((it - start) // step + 1)."""

    def factor(it: int) -> float:
        return 1.0 if it < start else gamma ** ((it - start) // max(1, step) + 1)

    return factor


def _adam_decay(params, c: dict, lr_key: str, decay_key: str, weight_decay: float):
    opt = adam(params, float(c[lr_key]), weight_decay=weight_decay)
    d = c.get(decay_key) or {}
    sched = torch.optim.lr_scheduler.LambdaLR(opt, step_decay(int(d.get("start", 10**9)), int(d.get("step", 1)),
                                                              float(d.get("gamma", 1.0))))
    return opt, sched


@IMPLEMENTATIONS.register("cagnet")
class CaGNet(Method):
    impl = "cagnet"
    patch = False  # the patch-wise subclass (cagnet_patch.py) sets it

    def __init__(self, cfg: dict, classes: ClassSpace):
        super().__init__(cfg, classes)
        self.adversarial = cfg.get("adversarial", "l1")
        if self.adversarial not in ADVERSARIAL:
            raise ZsbenchError(f"cagnet: adversarial must be one of {', '.join(ADVERSARIAL)}, not {self.adversarial!r}")
        content = cfg.get("content", {})
        if content.get("mode", "runs") not in ("runs", "class"):
            raise ZsbenchError(f"cagnet: content.mode must be 'runs' (official) or 'class', not {content['mode']!r}")
        if cfg.get("unseen_condition", "zero") not in ("zero", "embedding"):
            raise ZsbenchError("cagnet: unseen_condition must be 'zero' (official) or 'embedding'")
        dim = int(cfg.get("feature_dim", 600))
        emb_dim = classes.embeddings.shape[1]
        self.feature_dim = dim
        self.backbone = build_backbone(cfg.get("backbone", {}), dim)
        ctx = cfg.get("context", {})
        self.context = ContextualModule(dim, int(ctx.get("hidden", 256)), tuple(ctx.get("dilations", (1, 2, 5))))
        gen = cfg.get("generator", {})
        self.generator = Generator(emb_dim + dim, dim, gen.get("hidden", GEN_HIDDEN), gen.get("dropout", GEN_DROPOUT),
                                   float(gen.get("leaky_slope", 0.2)))
        dis = cfg.get("discriminator", {})
        self.dead_logit = bool(cfg.get("classifier", {}).get("dead_logit", True))
        k = classes.num_classes
        self.discriminator = Discriminator(dim, k + int(self.dead_logit), int(dis.get("hidden", 1024)),
                                           float(dis.get("dropout", 0.5)), patch=self.patch)
        self._init_weights(cfg.get("init", "kaiming"))
        self.register_buffer("embeddings", classes.embeddings.clone().float(), persistent=False)
        self.register_buffer("seen", classes.seen.clone(), persistent=False)
        self._fake_shape: tuple[int, int, int] | None = None
        self.skipped_batches = 0  # real batches without a labelled pixel at some output's resolution

    def _init_weights(self, init: str) -> None:
        """The official weights_init('kaiming') on every conv outside the backbone (fan_in, bias 0).
        The backbone keeps its own init (ImageNet / official weights on real data)."""
        if init not in ("kaiming", "default"):
            raise ZsbenchError(f"cagnet: init must be 'kaiming' (official) or 'default', not {init!r}")
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
        interval = int(c["finetune"].get("interval", 100))
        return [
            Stage("step1", int(c["step1"]["iterations"]),
                  [Update("loss_D", "discriminator"), Update("loss_B", "backbone"), Update("loss_G", "generator")],
                  batch_size=c["step1"].get("batch_size")),
            Stage("mixed", int(c["finetune"]["iterations"]),
                  [Update("loss_D", "discriminator"), Update("loss_G", "generator")],
                  batch_size=c["finetune"].get("batch_size"), uses_batch=_ReadsBatch(interval)),
        ]

    def _context_params(self) -> list[nn.Parameter]:
        train_selector = bool(self.cfg.get("context", {}).get("train_selector", False))
        return [p for n, p in self.context.named_parameters() if train_selector or not n.startswith("fc_1.")]

    def configure_optimizers(self, stage: Stage):
        if stage.name == "step1":
            s = self.cfg["step1"]
            groups = self.backbone.lr_groups()
            mult = float(s.get("head_lr_mult", 10.0))
            param_groups = [
                {"params": groups["body"], "lr_mult": 1.0},
                {"params": self._context_params(), "lr_mult": float(s.get("context_lr_mult", 5.0))},
                {"params": groups["head_weight"], "lr_mult": mult},
                {"params": groups["head_bias"], "lr_mult": 2 * mult, "weight_decay": 0.0},
            ]
            back = sgd_poly(param_groups, float(s["lr"]), stage.iterations, s.get("momentum", 0.9),
                            s.get("weight_decay", 5e-4), s.get("poly_power", 0.9), s.get("lr_decay_every", 10))
            return {"backbone": back,
                    "discriminator": _adam_decay(self.discriminator.parameters(), s, "lr_D", "decay_D",
                                                 float(s.get("weight_decay_D", 5e-4))),
                    "generator": _adam_decay(self.generator.parameters(), s, "lr_G", "decay_G", 0.0)}
        if stage.name == "mixed":
            f = self.cfg["finetune"]
            return {"discriminator": _adam_decay(self.discriminator.parameters(), f, "lr_D", "decay_D",
                                                 float(f.get("weight_decay_D", 5e-4))),
                    "generator": _adam_decay(self.generator.parameters(), f, "lr_G", "decay_G", 0.0)}
        raise KeyError(stage.name)

    def on_stage_start(self, stage: Stage, ctx) -> None:
        frozen = stage.name != "step1"
        self._set_backbone_trainable(not frozen)
        self.context.requires_grad_(not frozen)
        if not bool(self.cfg.get("context", {}).get("train_selector", False)):
            self.context.fc_1.requires_grad_(False)  # official: in no optimizer group
        self._fake_shape = None

    def on_stage_end(self, stage: Stage, ctx) -> None:
        self._set_backbone_trainable(True)
        self.context.requires_grad_(True)

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
        stats = []

        def head(feat):
            x, mu, logvar, z = self.context(feat, sample)
            stats.append((mu, logvar, z))
            return x

        out = self.backbone(images, head=head)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
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
        if self.cfg.get("unseen_condition", "zero") == "embedding":
            return self.embeddings
        return self.embeddings * self.seen.unsqueeze(1).to(self.embeddings.dtype)

    def _ce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), target, ignore_index=self.classes.ignore_index)

    def _content(self, fake, real, label, valid) -> torch.Tensor:
        c = self.cfg.get("content", {})
        sigmas = tuple(c.get("sigmas", CAGNET_SIGMAS))
        eps = float(c.get("eps", 1e-8))
        if c.get("mode", "runs") == "runs":
            return content_mmd_runs(fake, real, label, valid, sigmas, eps)
        return content_mmd_classes(fake, real, label, valid, self.classes.num_classes, int(c.get("samples", 128)),
                                   c.get("group", "image") == "image", sigmas, eps)

    # ---- training -----------------------------------------------------------------------------
    def training_step(self, batch: dict, stage: Stage, iteration: int) -> dict:
        if stage.name == "step1":
            return self._step1(batch, self.cfg["step1"].get("lambdas", {}), train_backbone=True)
        if stage.name == "mixed":
            f = self.cfg["finetune"]
            if stage.uses_batch(iteration):
                return self._step1(batch, f.get("lambdas", {}), train_backbone=False)
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
            "loss_D": gan_d + float(lam.get("D_cls_real", 1.0)) * cls_real
            + float(lam.get("D_cls_fake", 0.0)) * cls_fake,
            "loss_G": float(lam.get("G_GAN", 1.0)) * gan_g + float(lam.get("G_content", 50.0)) * content
            + float(lam.get("G_cls", 0.0)) * cls_fake,
        }
        if train_backbone:
            kld = kl_term(mu, logvar, valid)
            losses["loss_B"] = float(lam.get("B_KLD", 100.0)) * kld + float(lam.get("B_cls", 0.5)) * cls_real
            losses["kld"] = kld.detach()
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
        prior = class_prior(self.seen, float(f.get("gen_unseen_rate", 9)))
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
        lam = f.get("lambdas", {})
        out = {"loss_D": float(lam.get("D_cls_fake_transfer", 0.125)) * cls_fake, "cls_transfer": cls_fake.detach()}
        g = float(lam.get("G_cls_transfer", 0.0))
        # Official (PyTorch 1.4, grads zeroed not freed): Adam steps G even with a zero gradient,
        # so its momentum keeps moving G. A zero-weighted loss reproduces that.
        if g != 0.0 or bool(f.get("idle_generator_steps", True)):
            out["loss_G"] = g * cls_fake
        return out

    def after_training(self, ctx) -> dict:
        return {**super().after_training(ctx), "skipped_batches": self.skipped_batches}

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
