"""Weight files for a backbone (`backbone.init`, `zsbench run --init PATH`): official layouts in,
strict loading, one line saying what was used and what was not.

Layouts recognised (keys may sit inside a `state_dict` or `model` entry):

* **deeplab-pytorch / SPNet**: `scale.layer1.conv1.conv.weight`, ..., `scale.aspp.stages.c0.weight`;
  with `module.` in front when saved from `nn.DataParallel` (SPNet's `checkpoint_*.pth.tar`);
  without `scale.` for a single-scale `DeepLabV2`. Newer deeplab-pytorch names (`shortcut`
  for `proj`, `aspp.c0` for `aspp.stages.c0`) are accepted too.
* **CaGNet**: the whole `OurModel` state dict; the backbone is under `back.scale.`, the other
  parts (`Em_vis`, `Em_all`, `gen`, `dis`) are outside the backbone and reported as ignored.
* **torchvision ResNet-101** (`conv1.weight`, `layer1.0.conv1.weight`, ..., `fc.weight`), mapped
  onto deeplab-pytorch's names (docs/deeplab.md): layerN -> layer(N+1), index i -> block(i+1),
  conv1/2/3 -> reduce/conv3x3/increase, downsample.0/1 -> proj conv/bn, stem conv1/bn1 ->
  layer1.conv1. It has no ASPP, so it needs `init_parts: body`. torchvision strides the 3x3
  conv of a block, Caffe the first 1x1: set `backbone.stride_at: conv3x3` to run those weights
  as they were trained (and torchvision's RGB, ImageNet mean/std input normalisation).
* **zsseg-bench checkpoints** (`ckpt/final.pt`, any backbone): the `backbone.` entries.

`parts` chooses what must come from the file: `all` (every backbone tensor; the file's backbone
keys must match the model's exactly), or `+`-joined part names of the backbone (DeepLab: `body`
= ResNet layers, `head` = ASPP; small-cnn: `body` = stem + body, `head`), e.g. `body` for an
ImageNet initialisation. Keys of other parts in the file are then ignored and counted in the
report. Missing, unexpected or wrong-shaped keys are an error naming the keys and both shapes.
BatchNorm `num_batches_tracked` counters (absent from files saved before PyTorch 1.1; unused
because every BN is frozen) are kept from the model when the file lacks them.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from torch import nn

from zsseg_bench.engine.checkpoint_format import load_state_strict
from zsseg_bench.engine.torchfile import load_torch_file
from zsseg_bench.errors import ZsbenchError

__all__ = ["load_backbone_weights", "load_backbone_state", "backbone_state_from_file", "torchvision_to_deeplab",
           "file_sha256"]

_DEEPLAB_STEM = "layer1.conv1.conv.weight"
_TORCHVISION_STEM = "layer1.0.conv1.weight"
_BOTTLENECK = {"1": "reduce", "2": "conv3x3", "3": "increase"}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read(path: Path):
    return load_torch_file(path, "torch weight file (backbone.init / --init)")


def torchvision_to_deeplab(key: str) -> str | None:
    """A torchvision ResNet key -> the DeepLab key (without `scale.`); None for the classifier."""
    if key.startswith("fc."):
        return None
    m = re.fullmatch(r"(conv1|bn1)\.(.+)", key)
    if m:
        return f"layer1.conv1.{'conv' if m[1] == 'conv1' else 'bn'}.{m[2]}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.(conv|bn)([123])\.(.+)", key)
    if m:
        return f"layer{int(m[1]) + 1}.block{int(m[2]) + 1}.{_BOTTLENECK[m[4]]}.{m[3]}.{m[5]}"
    m = re.fullmatch(r"layer(\d)\.(\d+)\.downsample\.([01])\.(.+)", key)
    if m:
        return f"layer{int(m[1]) + 1}.block{int(m[2]) + 1}.proj.{'conv' if m[3] == '0' else 'bn'}.{m[4]}"
    return key  # unknown: kept, so that the strict check names it


def _deeplab_alias(key: str) -> str:
    key = key.replace(".shortcut.", ".proj.")
    return re.sub(r"(^|\.)aspp\.c(\d+)\.", r"\1aspp.stages.c\2.", key)


def backbone_state_from_file(raw, path: Path) -> tuple[dict, dict, str, list[str]]:
    """(state in the backbone's key space, backbone key -> file key, layout, file keys outside the backbone)."""
    if isinstance(raw, dict) and raw.get("kind") == "zsseg-bench":
        tensors = raw.get("state_dict", {})
        inside = {k[len("backbone."):]: k for k in tensors if k.startswith("backbone.")}
        if not inside:
            raise ZsbenchError(f"{path}: zsseg-bench checkpoint of method {raw.get('method')!r} has no "
                               f"'backbone.' weights")
        outside = [k for k in tensors if not k.startswith("backbone.")]
        return ({k: tensors[f] for k, f in inside.items()}, inside,
                f"zsseg-bench checkpoint ({raw.get('method')})", outside)
    if isinstance(raw, dict):
        for container in ("state_dict", "model"):
            if isinstance(raw.get(container), dict):
                raw = raw[container]
                break
    if not isinstance(raw, dict):
        raise ZsbenchError(f"{path}: expected a state dict (a mapping of names to tensors), found "
                           f"{type(raw).__name__}")
    tensors = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    stems = [k for k in tensors if k.endswith(_DEEPLAB_STEM)]
    tv_stems = [k for k in tensors if k.endswith(_TORCHVISION_STEM)]
    if len(stems) == 1:
        prefix = stems[0][: -len(_DEEPLAB_STEM)]
        inside = {"scale." + _deeplab_alias(k[len(prefix):]): k for k in tensors if k.startswith(prefix)}
        layout = f"deeplab-pytorch ({prefix or 'no prefix'!s})"
        if prefix.endswith("back.scale."):
            layout = f"CaGNet ({prefix})"
    elif len(tv_stems) == 1 and not stems:
        prefix = tv_stems[0][: -len(_TORCHVISION_STEM)]
        inside = {}
        for k in tensors:
            if k.startswith(prefix):
                mapped = torchvision_to_deeplab(k[len(prefix):])
                if mapped is not None:
                    inside["scale." + mapped] = k
        layout = f"torchvision ResNet ({prefix or 'no prefix'!s})"
    elif len(stems) > 1:
        raise ZsbenchError(f"{path}: several DeepLab backbones in one file ({', '.join(stems[:3])}); "
                           f"save the one to load on its own")
    else:
        raise ZsbenchError(f"{path}: unrecognised weight layout: no key ends in '{_DEEPLAB_STEM}' (DeepLab, "
                           f"SPNet, CaGNet) or '{_TORCHVISION_STEM}' (torchvision); first keys: "
                           f"{', '.join(list(tensors)[:3]) or 'none'}")
    outside = [k for k in tensors if k not in set(inside.values())]
    return {k: tensors[f] for k, f in inside.items()}, inside, layout, outside


def _part_prefixes(backbone: nn.Module, parts: str) -> tuple[str, ...] | None:
    """None for 'all'; else the key prefixes of the chosen parts."""
    if parts in (None, "", "all"):
        return None
    table = getattr(backbone, "weight_parts", None)
    if not table:
        raise ZsbenchError(f"backbone.init_parts={parts!r}: this backbone ({type(backbone).__name__}) has no named "
                           f"parts; use init_parts: all")
    chosen = [p.strip() for p in str(parts).split("+")]
    unknown = [p for p in chosen if p not in table]
    if unknown:
        raise ZsbenchError(f"backbone.init_parts={parts!r}: unknown part {unknown[0]!r}; choose 'all' or "
                           f"'+'-joined parts of {', '.join(table)}")
    return tuple(prefix for p in chosen for prefix in table[p])


def load_backbone_weights(backbone: nn.Module, path, parts: str = "all") -> dict:
    """Load a weight file into `backbone` strictly (for the chosen parts); return a report."""
    path = Path(path).expanduser()
    _part_prefixes(backbone, parts)  # a bad option fails before reading hundreds of MB
    report = load_backbone_state(backbone, _read(path), path, parts)
    report["sha256"] = file_sha256(path)
    return report


def load_backbone_state(backbone: nn.Module, raw, path: Path, parts: str = "all") -> dict:
    """`load_backbone_weights` for an object already read from `path` (a state dict or checkpoint)."""
    path = Path(path)
    prefixes = _part_prefixes(backbone, parts)
    state, names, layout, outside = backbone_state_from_file(raw, path)
    own = backbone.state_dict()
    not_selected: list[str] = []
    if prefixes is not None:
        not_selected = [names[k] for k in state if not k.startswith(prefixes)]
        state = {k: v for k, v in state.items() if k.startswith(prefixes)}
        target = {k: v for k, v in own.items() if k.startswith(prefixes)}
    else:
        target = own
    filled = 0
    for k in target:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = own[k]
            filled += 1
    if prefixes is None and layout.startswith("torchvision"):
        raise ZsbenchError(f"{path}: a torchvision ResNet has no ASPP head; load its ResNet layers only with "
                           f"backbone.init_parts=body")
    # Parts not chosen keep the model's own tensors; the chosen ones must match exactly.
    full = {**{k: v for k, v in own.items() if k not in target}, **state}
    load_state_strict(backbone, full, f"{path} ({layout})", names=names)
    ignored = outside + not_selected
    report = {
        "path": str(path), "sha256": None, "layout": layout, "parts": parts or "all",
        "loaded": len(state) - filled, "kept_num_batches_tracked": filled, "ignored": len(ignored),
        "ignored_examples": ignored[:5],
    }
    report["summary"] = (f"loaded {report['loaded']} tensors ({report['parts']}) from {path.name} [{layout}]"
                         + (f"; ignored {len(ignored)} keys of other parts (e.g. {', '.join(ignored[:3])})"
                            if ignored else "")
                         + (f"; kept {filled} BN num_batches_tracked counters absent from the file" if filled else ""))
    return report
