"""CaGNet patch-wise (CaGNetv2, "From Pixel to Patch"): impl `cagnet-patch`, card `cagnet-pa`.

Code read: github.com/bcmi/CaGNetv2-Zero-Shot-Semantic-Segmentation (0040e4e): `model.py`,
`networks.py` (`Discriminator_ps3`), `losses.py`, `pixelcnn_newnew*.py`,
`pixelcnn_sample_combine_cc_topk_fu.py`, `fuse.py` (what it releases: methods/cagnet/README.md). That code is
partial: there is no patch finetune config and no self-training; the choices made here are
listed in methods/cagnet/README.md and are all options under `patch:` and `pixelcnn:`.

On top of the pixel-wise model (cagnet.py):

* the classifier gains `discriminator.cls_3`, a 3x3 conv (1024 -> 1024) before `cls`, used for
  real and generated features and at test time, so a pixel's score sees its neighbours;
* stage `pixelcnn`: a conditional PixelCNN learns k x k label patches (k = `patch.size`, 3) cut
  from the seen-only training label maps at feature resolution (patches with at least one
  labelled pixel; ignored pixels are not targets). Its input is the class-embedding map of the
  patch (zeros where ignored), masked convs (type A, then B) keep it causal in raster order,
  each layer adds a 1x1 projection of a condition map, and the output is projected onto the
  class embeddings (so unseen classes, never targets, still get scores through their
  embeddings; the official head is a 1x1 conv over the S + U classes plus a `p_base` boost);
* stage `mixed`: the pixel-wise alternation, but each classifier-only iteration tiles the
  feature map with patches drawn from a bank sampled from the PixelCNN when the stage starts
  (each patch conditioned on one random unseen class, its first `first_unseen` raster pixels
  preset to it, the rest sampled autoregressively with a `topk` fraction of the classes;
  patches kept when they have >= `threshold` unseen pixels and <= `cc_max` distinct classes),
  fused with `fuse_ratio` times as many single-class patches drawn from the class prior; one
  N(0, I) latent per patch is repeated over its pixels, G turns the tiled label map into a
  feature map, and the cross-entropy is taken at patch centres only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.engine.transforms import label_maps_at
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.base import IMPLEMENTATIONS, Stage, Update
from zsseg_bench.methods.cagnet.config import CaGNetPatchConfig
from zsseg_bench.methods.cagnet.model import CaGNet
from zsseg_bench.methods.cagnet.networks import embed_labels
from zsseg_bench.methods.common.optim import adam
from zsseg_bench.methods.common.sampling import class_prior

__all__ = ["CaGNetPatch", "LabelPixelCNN", "MaskedConv2d", "sample_patches", "tile_patches", "patch_centres"]


class MaskedConv2d(nn.Conv2d):
    """A PixelCNN convolution: type A sees strictly earlier raster positions, type B also itself."""

    def __init__(self, cin: int, cout: int, kernel: int, mask_type: str):
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        mask = torch.ones(kernel, kernel)
        c = kernel // 2
        mask[c, c + (mask_type == "B"):] = 0
        mask[c + 1:] = 0
        self.register_buffer("mask", mask.view(1, 1, kernel, kernel), persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class LabelPixelCNN(nn.Module):
    """(embedding map of a label patch, condition map) [N, E, k, k] -> per-pixel logits over classes."""

    def __init__(self, emb_dim: int, channels: int = 64, layers: int = 8, kernel: int = 7, dropout: float = 0.5):
        super().__init__()
        self.convs = nn.ModuleList(
            MaskedConv2d(emb_dim if i == 0 else channels, channels, kernel, "A" if i == 0 else "B")
            for i in range(layers))
        self.conds = nn.ModuleList(nn.Conv2d(emb_dim, channels, 1, bias=False) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Conv2d(channels, emb_dim, 1)
        self.layers = layers

    def forward(self, inp: torch.Tensor, cond: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
        h = inp
        for i, (conv, proj) in enumerate(zip(self.convs, self.conds)):
            h = F.relu(conv(h) + proj(cond))
            if i >= self.layers - 2:  # dropout on the last two layers, as the official network
                h = self.drop(h)
        return torch.einsum("nekl,ce->nckl", self.out(h), class_emb.to(h.dtype))


@torch.no_grad()
def sample_patches(net: LabelPixelCNN, table: torch.Tensor, unseen_idx: torch.Tensor, n: int, size: int,
                   first_unseen: int, topk: float) -> torch.Tensor:
    """n patches [n, size, size]: condition = a random unseen class, its first pixels preset, the
    rest drawn autoregressively from the top `topk` fraction of the classes."""
    device = table.device
    cls = unseen_idx[torch.randint(len(unseen_idx), (n,), device=device)]
    labels = torch.full((n, size * size), -1, dtype=torch.long, device=device)
    first = min(int(first_unseen), size * size)
    labels[:, :first] = cls.unsqueeze(1)
    cond = table[cls][:, :, None, None].expand(-1, -1, size, size)
    keep = max(1, math.ceil(float(topk) * table.shape[0]))
    for p in range(first, size * size):
        logits = net(embed_labels(labels.view(n, size, size), table), cond, table)
        prob = logits.flatten(2)[:, :, p].float().softmax(1)
        if keep < prob.shape[1]:
            top = prob.topk(keep, dim=1)
            prob = torch.zeros_like(prob).scatter(1, top.indices, top.values)
        labels[:, p] = torch.multinomial(prob, 1)[:, 0]
    return labels.view(n, size, size)


def tile_patches(bank: torch.Tensor, b: int, rows: int, cols: int) -> torch.Tensor:
    """[b, rows*k, cols*k] label maps tiled with patches drawn from bank [M, k, k]."""
    k = bank.shape[-1]
    pick = torch.randint(len(bank), (b * rows * cols,), device=bank.device)
    tiles = bank[pick].view(b, rows, cols, k, k)
    return tiles.permute(0, 1, 3, 2, 4).reshape(b, rows * k, cols * k)


def patch_centres(label: torch.Tensor, k: int, ignore: int) -> torch.Tensor:
    """The label with every pixel but the patch centres (rows/cols k//2, k + k//2, ...) ignored."""
    h, w = label.shape[-2:]
    centre = torch.zeros(h, w, dtype=torch.bool, device=label.device)
    centre[k // 2::k, k // 2::k] = True
    return torch.where(centre, label, torch.full_like(label, ignore))


@IMPLEMENTATIONS.register("cagnet-patch")
class CaGNetPatch(CaGNet):
    Config = CaGNetPatchConfig
    patch = True

    def __init__(self, cfg, classes):
        super().__init__(cfg, classes)
        p = self.cfg["pixelcnn"]
        self.pixelcnn = LabelPixelCNN(classes.embeddings.shape[1], p["channels"], p["layers"], p["kernel"],
                                      p["dropout"])
        self.register_buffer("patch_bank", torch.zeros(0, self.k, self.k, dtype=torch.long), persistent=False)
        self._bank_facts: dict = {}
        self._feature_sizes: dict = {}

    @property
    def k(self) -> int:
        return self.cfg["patch"]["size"]

    # ---- stages -------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        step1, mixed = super().stages()
        p = self.cfg["pixelcnn"]
        return [step1, Stage("pixelcnn", p["iterations"], [Update("loss_P", "pixelcnn")]), mixed]

    def configure_optimizers(self, stage: Stage):
        if stage.name == "pixelcnn":
            return {"pixelcnn": (adam(self.pixelcnn.parameters(), self.cfg["pixelcnn"]["lr"]), None)}
        return super().configure_optimizers(stage)

    def on_stage_start(self, stage: Stage, ctx) -> None:
        super().on_stage_start(stage, ctx)
        self.pixelcnn.requires_grad_(stage.name == "pixelcnn")
        if stage.name == "mixed":
            self._build_bank()

    def on_stage_end(self, stage: Stage, ctx) -> None:
        super().on_stage_end(stage, ctx)
        self.pixelcnn.requires_grad_(True)

    def training_step(self, batch: dict, stage: Stage, iteration: int) -> dict:
        if stage.name == "pixelcnn":
            return self._pixelcnn_step(batch)
        return super().training_step(batch, stage, iteration)

    # ---- the label-patch PixelCNN -------------------------------------------------------------
    @torch.no_grad()
    def _feature_size(self, images: torch.Tensor) -> tuple[int, int]:
        key = tuple(images.shape[-2:])
        if key not in self._feature_sizes:
            was = self.backbone.training
            self.backbone.eval()
            self._feature_sizes[key] = tuple(self.backbone(images[:1]).shape[-2:])
            self.backbone.train(was)
        return self._feature_sizes[key]

    def _pixelcnn_step(self, batch: dict) -> dict:
        p = self.cfg["pixelcnn"]
        k, ignore = self.k, self.classes.ignore_index
        label = label_maps_at(batch["label"], self._feature_size(batch["image"]))
        patches = label.unfold(1, k, 1).unfold(2, k, 1).reshape(-1, k, k)
        patches = patches[(patches != ignore).flatten(1).any(1)]
        if len(patches) == 0:
            return {}
        n = p["patches_per_step"]
        if len(patches) > n:
            patches = patches[torch.randperm(len(patches), device=patches.device)[:n]]
        inp = embed_labels(patches, self.embeddings)
        if p["condition"] == "patch":
            cond = inp  # official: the patch's own embedding map (not causal)
        else:
            # one labelled pixel's class per patch, as a constant map (what sampling gives it)
            weights = (patches != ignore).flatten(1).float()
            pick = torch.multinomial(weights, 1)[:, 0]
            cls = patches.flatten(1).gather(1, pick.unsqueeze(1))[:, 0]
            cond = self.embeddings[cls][:, :, None, None].expand(-1, -1, k, k)
        self.pixelcnn.train()
        logits = self.pixelcnn(inp, cond, self.embeddings)
        loss = F.cross_entropy(logits.float(), patches, ignore_index=ignore)
        return {"loss_P": loss}

    @torch.no_grad()
    def _build_bank(self) -> None:
        """Sample unseen-class patches from the PixelCNN, filter them, fuse single-class patches."""
        p = self.cfg["patch"]
        k, device = self.k, self.embeddings.device
        unseen = torch.nonzero(~self.seen, as_tuple=False).flatten()
        want, per_round = p["bank_size"], p["sample_batch"]
        kept, drawn = [], 0
        best = None
        self.pixelcnn.eval()
        for _ in range(p["max_rounds"]):
            if sum(len(x) for x in kept) >= want or len(unseen) == 0:
                break
            cand = sample_patches(self.pixelcnn, self.embeddings, unseen, per_round, k, p["first_unseen"], p["topk"])
            drawn += per_round
            n_unseen = (~self.seen[cand]).flatten(1).sum(1)
            n_classes = F.one_hot(cand.flatten(1), self.classes.num_classes).amax(1).sum(1)
            ok = (n_unseen >= p["threshold"]) & (n_classes <= p["cc_max"])
            kept.append(cand[ok])
            best = cand
        sampled = torch.cat(kept)[:want] if kept else torch.zeros(0, k, k, dtype=torch.long, device=device)
        if len(sampled) == 0 and best is not None:
            sampled = best[:want]  # nothing passed the filters: keep the last draw rather than none
        n_single = int(round(p["fuse_ratio"] * max(1, len(sampled))))
        prior = class_prior(self.seen, self.cfg["finetune"]["gen_unseen_rate"])
        single = torch.multinomial(prior, n_single, replacement=True).to(device)
        bank = torch.cat([sampled, single[:, None, None].expand(-1, k, k)])
        self.patch_bank = bank
        self._bank_facts = {"pixelcnn_patches_drawn": drawn, "pixelcnn_patches_kept": int(len(sampled)),
                            "single_class_patches": n_single,
                            "unseen_pixel_share": float((~self.seen[bank]).float().mean())}

    # ---- patch-wise classifier-only iterations --------------------------------------------------
    def _transfer_features(self, f: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The feature map tiled with bank patches (one N(0, I) latent per patch), scored at patch centres."""
        if len(self.patch_bank) == 0:
            return None
        k = self.k
        b, h, w = self._fake_shape
        rows, cols = h // k, w // k
        if rows == 0 or cols == 0:
            raise ZsbenchError(f"cagnet-pa: the feature map ({h}x{w}) is smaller than one {k}x{k} patch")
        label = tile_patches(self.patch_bank, b, rows, cols)
        latent = torch.randn(b, self.feature_dim, rows, cols, device=label.device)
        latent = latent.repeat_interleave(k, 2).repeat_interleave(k, 3)  # one latent per patch
        fake = self.generate(label, latent, self.embeddings)
        return fake, patch_centres(label, k, self.classes.ignore_index)

    def after_training(self, ctx) -> dict:
        facts = dict(super().after_training(ctx))
        if self._bank_facts:
            facts["patch_bank"] = dict(self._bank_facts)
        return facts
