"""Released CaGNet checkpoints (`<ds>_ourbest.pth`) in and out of our CaGNet model.

The official `Trainer.save` (CaGNet's `trainer.py`) writes `{'iteration': int, 'state_dict':
OurModel.state_dict()}`: 659 tensors under `Em_vis`, `Em_all`, `gen`, `dis` and `back.scale` for
the VOC model. `KEY_MAP` below is the key map onto our modules, the only place it is written
(docs/official_checkpoints.md explains it; the backbone part is read by engine/weights.py).
`Em_vis.weight` and `Em_all.weight` are not parameters of our model: they are dropped, and
`Em_all` is compared with the run's embeddings.

The classifier rows are permuted: the official rows are the seen classes in `seen_cls.npy`
order, then the unseen ones in `novel_cls.npy` order, then a dead logit; ours follow the
split's evaluation order (raw-id order), then the dead logit (`classifier.dead_logit: true`).
`OFFICIAL_ORDERS` holds the official orders as raw label ids (CaGNet's
`dataset/<ds>/split/{seen,novel}_cls.npy`); they are matched to the split's classes by raw id,
and a split whose seen/unseen sets differ is refused.

Loading is strict: missing, unexpected and wrong-shaped keys are one error line naming the file
key and both shapes (checkpoint_format.load_state_strict). The only tensors of our model that an
official file may lack are the patch-wise model's PixelCNN (`pixelcnn.*`, a separate training
stage that evaluation does not use); they are kept from the model and reported.

`official_state_dict` is the inverse (our model -> the official layout), for tests and for
running our weights in the official code.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from zsseg_bench.engine.checkpoint_format import load_state_strict
from zsseg_bench.engine.torchfile import load_torch_file
from zsseg_bench.engine.weights import backbone_state_from_file, file_sha256
from zsseg_bench.errors import ZsbenchError

__all__ = ["OFFICIAL_ORDERS", "CONTEXT_MODULES", "KEY_MAP", "official_order", "read_official_checkpoint",
           "official_to_ours", "official_name", "our_name", "load_official_state", "official_state_dict",
           "is_cagnet_impl"]

# Children of the official DeepLabV2 (`back.scale.`) that are our contextual module.
CONTEXT_MODULES = ("contextual1", "contextual2", "contextual3", "fc_1", "contextualpool", "contextuallocalmu",
                   "contextuallocalsigma")
# The key map: (our prefix, the official prefix, the official children it covers or None for all),
# first match wins. The official model keeps the contextual module inside its backbone.
KEY_MAP = (("context.", "back.scale.", CONTEXT_MODULES),
           ("backbone.scale.", "back.scale.", None),
           ("generator.", "gen.", None),
           ("discriminator.", "dis.", None))
_DROPPED = ("Em_vis.weight", "Em_all.weight")
_KEPT_FROM_MODEL = ("pixelcnn.",)  # ours only (cagnet-pa); not in the official file, unused at evaluation
_EM_VIS_ROWS = 256  # ignore_index + 1: Em_vis is padded with zero rows up to here

_COCO_NOVEL = [20, 24, 32, 33, 40, 56, 86, 99, 105, 123, 144, 147, 148, 168, 171]
_COCO_VAL = [3, 21, 38, 45, 51, 61, 75, 81, 93, 129, 136, 139]
_CONTEXT_NOVEL = [10, 14, 18, 8]

# split name -> (seen_cls.npy, novel_cls.npy) as raw label ids, in classifier-row order.
OFFICIAL_ORDERS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "voc12-15-5": (tuple(range(1, 16)), tuple(range(16, 21))),
    "context33-29-4": (tuple(i for i in range(1, 34) if i not in _CONTEXT_NOVEL), tuple(_CONTEXT_NOVEL)),
    # SPNet's seen list (ascending) followed by its val classes, which CaGNet trains as seen.
    "cocostuff-167-15": (tuple(sorted(set(range(182)) - set(_COCO_NOVEL) - set(_COCO_VAL))) + tuple(_COCO_VAL),
                         tuple(_COCO_NOVEL)),
}


def is_cagnet_impl(impl_cls) -> bool:
    from zsseg_bench.methods.cagnet.model import CaGNet

    return isinstance(impl_cls, type) and issubclass(impl_cls, CaGNet)


def official_order(split) -> list[int]:
    """Evaluation index of each official classifier row (seen_cls then novel_cls), dead logit excluded."""
    if split.name not in OFFICIAL_ORDERS:
        raise ZsbenchError(f"split {split.name!r}: no official CaGNet class order is known for it; the released "
                           f"checkpoints use {', '.join(OFFICIAL_ORDERS)} (pass one with --split)")
    seen, novel = OFFICIAL_ORDERS[split.name]
    eval_ids = list(split.eval_raw_ids)
    ours_seen = {r for r, s in zip(eval_ids, split.seen_mask) if s}
    ours_unseen = set(eval_ids) - ours_seen
    if set(seen) != ours_seen or set(novel) != ours_unseen:
        raise ZsbenchError(f"split {split.name!r} (splits/{split.dataset}/{split.name}.yaml): its seen/unseen raw ids "
                           f"differ from CaGNet's seen_cls.npy/novel_cls.npy (docs/official_checkpoints.md); restore "
                           f"the split file")
    return [eval_ids.index(r) for r in (*seen, *novel)]


def read_official_checkpoint(path) -> tuple[dict, int | None]:
    """(state_dict, iteration) of a released CaGNet file; one-line errors for anything else."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ZsbenchError(f"{path}: checkpoint not found; pass the released file, e.g. voc12_ourbest.pth")
    raw = load_torch_file(path, "torch file (CaGNet checkpoint)")
    if not isinstance(raw, dict):
        raise ZsbenchError(f"{path}: holds a {type(raw).__name__}, not a dict; official CaGNet checkpoints are "
                           f"{{'iteration', 'state_dict'}}")
    if raw.get("kind") == "zsseg-bench":
        raise ZsbenchError(f"{path}: a zsseg-bench checkpoint, not an official one; its run folder already has "
                           f"its evaluation (zsbench predict uses it)")
    state = raw.get("state_dict")
    if not isinstance(state, dict):
        raise ZsbenchError(f"{path}: no 'state_dict' entry (keys: {', '.join(map(str, list(raw)[:5])) or 'none'}); "
                           f"official CaGNet checkpoints are {{'iteration', 'state_dict'}} as Trainer.save writes "
                           f"them: wrap a bare state dict as {{'state_dict': sd}}")
    iteration = raw.get("iteration")
    return state, int(iteration) if isinstance(iteration, int) else None


def official_to_ours(state: dict, path) -> tuple[dict, dict, dict]:
    """(tensors under our keys, our key -> file key, dropped file keys -> tensors)."""
    path = Path(path)
    back, back_names, layout, outside = backbone_state_from_file({"state_dict": state}, path)
    if not all(name.startswith("back.scale.") for name in back_names.values()):
        raise ZsbenchError(f"{path}: not the official CaGNet layout ({layout}); expected the backbone under "
                           f"'back.scale.' next to 'gen.', 'dis.', 'Em_vis', 'Em_all'")
    ours, names, dropped = {}, {}, {}
    for key, tensor in back.items():  # key = "scale.<child>....", as the backbone reader names it
        ours_key = our_name("back." + key)
        ours[ours_key], names[ours_key] = tensor, back_names[key]
    for key in outside:
        if key in _DROPPED:
            dropped[key] = state[key]
            continue
        mapped = our_name(key) or key  # an unknown key stays as is: the strict load names it
        ours[mapped], names[mapped] = state[key], key
    return ours, names, dropped


def our_name(official_key: str) -> str | None:
    """An official key -> ours (KEY_MAP); None for keys our model lacks."""
    for ours_p, off, children in KEY_MAP:
        rest = official_key[len(off):]
        if official_key.startswith(off) and (children is None or rest.split(".")[0] in children):
            return ours_p + rest
    return None


def official_name(key: str) -> str | None:
    """Our key -> the official one (KEY_MAP read backwards); None for keys the official model lacks."""
    for ours_p, off, _ in KEY_MAP:
        if key.startswith(ours_p):
            return off + key[len(ours_p):]
    return None


def _rows(dead_logit: bool, k: int, order: list[int]) -> list[int]:
    """Official row of each of our rows."""
    inv = [0] * k
    for official_row, ours_row in enumerate(order):
        inv[ours_row] = official_row
    return inv + ([k] if dead_logit else [])


def load_official_state(method, state: dict, path, split) -> dict:
    """Load an official state dict into `method` (a CaGNet) strictly; return what was done."""
    path = Path(path)
    order = official_order(split)
    k = split.num_classes
    ours, names, dropped = official_to_ours(state, path)
    w = ours.get("discriminator.cls.weight")
    if w is not None and w.shape[0] != k + 1:
        raise ZsbenchError(f"{path}: dis.cls.weight has {w.shape[0]} rows, split {split.name} needs {k + 1} ({k} "
                           f"seen + unseen classes and the dead logit); the checkpoint is for another dataset or "
                           f"split: pass the matching --dataset/--split")
    em = dropped.get("Em_all.weight")
    if em is not None and em.shape[0] != k:
        raise ZsbenchError(f"{path}: Em_all.weight has {em.shape[0]} rows, split {split.name} has {k} classes; the "
                           f"checkpoint is for another dataset or split: pass the matching --dataset/--split")
    rows = torch.tensor(_rows(method.dead_logit, k, order))
    for key in ("discriminator.cls.weight", "discriminator.cls.bias"):
        if key in ours:
            ours[key] = ours[key][rows]
    own = method.state_dict()
    kept = [key for key in own if key.startswith(_KEPT_FROM_MODEL) and key not in ours]
    for key in kept:
        ours[key] = own[key]
    source = f"{path} (official CaGNet)"
    # Named as the file would name them (load_state_strict shows our names for missing keys). Em_vis and
    # Em_all are part of every official file (the official strict load needs them) even though we drop them.
    missing = [key for key in _DROPPED if key not in dropped] + [key for key in own if key not in ours]
    if missing:
        shown = [key if key in _DROPPED else f"{official_name(key) or key} (as {key})" for key in missing[:3]]
        unexpected = [names.get(key, key) for key in ours if key not in own]
        also = f"; {len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})" if unexpected else ""
        raise ZsbenchError(f"{source}: weights do not match the model: {len(missing)} missing (e.g. "
                           f"{', '.join(shown)}){also}; is this the checkpoint of this method?")
    load_state_strict(method, ours, source, names=names)
    report = {"checkpoint": str(path), "format": "CaGNet {'iteration', 'state_dict'}", "loaded": len(ours) - len(kept),
              "dropped": sorted(dropped), "kept_from_model": kept,
              "classifier_rows": "official seen_cls + novel_cls order -> split evaluation order"
                                 + (", dead logit kept" if method.dead_logit else ", dead logit dropped")}
    report.update(_compare_embeddings(method, em, order))
    return report


def _compare_embeddings(method, em_all, order: list[int]) -> dict:
    ours = method.embeddings.detach().float().cpu()[order]
    if tuple(ours.shape) != tuple(em_all.shape):
        return {"em_all": f"shape {tuple(em_all.shape)} in the file vs {tuple(ours.shape)} for this run",
                "em_all_max_abs_diff": None}
    diff = float((ours - em_all.float()).abs().max()) if ours.numel() else 0.0
    return {"em_all": "same as this run's embeddings" if diff <= 1e-5 else "differs from this run's embeddings",
            "em_all_max_abs_diff": diff if math.isfinite(diff) else None}


def official_state_dict(method, split, iteration: int = 0) -> dict:
    """Our CaGNet in the official `{'iteration', 'state_dict'}` layout (the inverse key map)."""
    order = official_order(split)
    k = split.num_classes
    state = {}
    for key, tensor in method.state_dict().items():
        if key.startswith(_KEPT_FROM_MODEL):
            continue
        name = official_name(key)
        if name is None:
            raise ZsbenchError(f"{key}: no place for it in the official CaGNet layout (a DeepLabv2 backbone is "
                               f"needed: backbone.name=deeplabv2-resnet101)")
        state[name] = tensor
    pick = torch.tensor(order, device=state["dis.cls.weight"].device)
    for key in ("dis.cls.weight", "dis.cls.bias"):
        ours = state[key]
        dead = ours[k:k + 1] if method.dead_logit else torch.zeros_like(ours[:1])
        state[key] = torch.cat([ours[pick], dead])
    emb = method.embeddings.detach().float()
    em_all = emb[torch.tensor(order, device=emb.device)]
    n_seen = int(split.seen_mask.sum())
    em_vis = torch.zeros(_EM_VIS_ROWS, em_all.shape[1], dtype=em_all.dtype, device=em_all.device)
    em_vis[:n_seen] = em_all[:n_seen]
    state = {"Em_vis.weight": em_vis, "Em_all.weight": em_all, **state}
    return {"iteration": int(iteration), "state_dict": state}


def checkpoint_facts(path, iteration: int | None, report: dict) -> dict:
    """The `evaluated_from` entry of a run record."""
    return {"checkpoint": str(Path(path).expanduser().resolve()), "sha256": file_sha256(Path(path).expanduser()),
            "iteration": iteration, "training": None, **{k: v for k, v in report.items() if k != "checkpoint"}}
