"""Pretraining the shared initialisation: a small-cnn segmenting the auxiliary classes.

Cross-entropy on the auxiliary objects' pixels (their background is ignored), SGD with momentum
and a poly schedule, random horizontal flips, the run's input normalisation. Seeded by the
world alone (the run's seed does not enter), inside its own RNG scope, so every method and
seed of a comparison gets the same weights and the run's own random stream is untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zsseg_bench.methods.common.backbones import BACKBONES
from zsseg_bench.methods.common.optim import sgd_poly
from zsseg_bench.pretrain.aux import AUX_IGNORE, aux_set

__all__ = ["pretrain_backbone"]


def pretrain_backbone(cfg: dict, options: dict, log=None) -> dict[str, torch.Tensor]:
    """The pretrained backbone's state (keys `backbone.<name>`) for the run config `cfg` whose dataset
    options (defaults included) are `options`."""
    p = cfg["backbone"]["pretrain"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options["world"])
        aux = aux_set(options, p["images"])
        net = BACKBONES.get(cfg["backbone"]["name"])(aux.num_classes, cfg["backbone"])
        net.train()
        mean = torch.tensor(cfg["input"]["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(cfg["input"]["std"]).view(1, 3, 1, 1)
        opt, sched = sgd_poly([{"params": list(net.parameters())}], p["lr"], p["iterations"], p["momentum"],
                              p["weight_decay"], p["poly_power"])
        for it in range(p["iterations"]):
            idx = torch.randint(len(aux.images), (p["batch_size"],))
            image, label = aux.images[idx].float(), aux.labels[idx]
            flip = torch.rand(len(idx)) < 0.5
            image[flip], label[flip] = image[flip].flip(-1), label[flip].flip(-1)
            logits = net((image - mean) / std)
            logits = F.interpolate(logits, size=label.shape[-2:], mode="bilinear", align_corners=False)
            loss = F.cross_entropy(logits, label, ignore_index=AUX_IGNORE)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if log is not None and (it + 1) % max(1, p["iterations"] // 5) == 0:
                log(f"shared init: pretraining {it + 1}/{p['iterations']}, loss {loss.item():.3f}")
    return {f"backbone.{k}": v.detach().clone() for k, v in net.state_dict().items()}
