"""State dicts in the official DeepLabv2 / CaGNet / torchvision key layouts: the one statement
of those layouts for the tests. They are written out from the official models (deeplab-pytorch's
`DeepLabV2` as SPNet and CaGNet use it, CaGNet's `OurModel`, torchvision's ResNet-101), not from
our modules, so that loading them tests our key map (zsseg_bench/methods/cagnet/official.py,
engine/weights.py)."""

from __future__ import annotations

import torch

BLOCKS = (3, 4, 23, 3)
# (in, mid, out) of layer2..layer5
CHANNELS = ((64, 64, 256), (256, 128, 512), (512, 256, 1024), (1024, 512, 2048))


def _bn(c: int, with_counter: bool = True) -> dict:
    out = {"weight": (c,), "bias": (c,), "running_mean": (c,), "running_var": (c,)}
    if with_counter:
        out["num_batches_tracked"] = ()
    return out


def deeplab_shapes(width: int = 600, with_counter: bool = True) -> dict[str, tuple]:
    """Keys (without prefix) and shapes of the official DeepLabV2 ResNet-101 + ASPP."""
    shapes: dict[str, tuple] = {"layer1.conv1.conv.weight": (64, 3, 7, 7)}
    shapes.update({f"layer1.conv1.bn.{k}": s for k, s in _bn(64, with_counter).items()})
    for layer, (n, (cin, mid, cout)) in enumerate(zip(BLOCKS, CHANNELS), start=2):
        for b in range(1, n + 1):
            first_in = cin if b == 1 else cout
            convs = {"reduce": (mid, first_in, 1, 1), "conv3x3": (mid, mid, 3, 3), "increase": (cout, mid, 1, 1)}
            if b == 1:
                convs["proj"] = (cout, cin, 1, 1)
            for name, shape in convs.items():
                shapes[f"layer{layer}.block{b}.{name}.conv.weight"] = shape
                shapes.update({f"layer{layer}.block{b}.{name}.bn.{k}": s
                               for k, s in _bn(shape[0], with_counter).items()})
    for i in range(4):
        shapes[f"aspp.stages.c{i}.weight"] = (width, 2048, 3, 3)
        shapes[f"aspp.stages.c{i}.bias"] = (width,)
    return shapes


def torchvision_shapes() -> dict[str, tuple]:
    shapes: dict[str, tuple] = {"conv1.weight": (64, 3, 7, 7)}
    shapes.update({f"bn1.{k}": s for k, s in _bn(64).items()})
    for layer, (n, (cin, mid, cout)) in enumerate(zip(BLOCKS, CHANNELS), start=1):
        for i in range(n):
            first_in = cin if i == 0 else cout
            convs = {"conv1": (mid, first_in, 1, 1), "conv2": (mid, mid, 3, 3), "conv3": (cout, mid, 1, 1)}
            for k, (name, shape) in enumerate(convs.items(), start=1):
                shapes[f"layer{layer}.{i}.{name}.weight"] = shape
                shapes.update({f"layer{layer}.{i}.bn{k}.{key}": s for key, s in _bn(shape[0]).items()})
            if i == 0:
                shapes[f"layer{layer}.0.downsample.0.weight"] = (cout, cin, 1, 1)
                shapes.update({f"layer{layer}.0.downsample.1.{key}": s for key, s in _bn(cout).items()})
    shapes["fc.weight"] = (1000, 2048)
    shapes["fc.bias"] = (1000,)
    return shapes


def make_state(shapes: dict[str, tuple], prefix: str = "") -> dict[str, torch.Tensor]:
    """One distinct constant per tensor (its position), so a loaded tensor identifies its key."""
    state = {}
    for i, (key, shape) in enumerate(shapes.items()):
        dtype = torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        state[prefix + key] = torch.full(shape, float(i + 1), dtype=dtype)
    return state


def cagnet_extra(width: int = 600, n_classes: int = 20) -> dict[str, tuple]:
    """The parts of CaGNet's `OurModel` outside the DeepLab body and ASPP, with their full keys, for
    `n_classes` seen + unseen classes (VOC: 20): the embedding tables, the contextual module (inside
    the official backbone), the generator and the discriminator, whose classifier has a dead logit."""
    shapes = {"Em_vis.weight": (256, width), "Em_all.weight": (n_classes, width),
              "dis.fc.conv.weight": (1024, width, 1, 1), "dis.fc.conv.bias": (1024,),
              "dis.pred.weight": (1, 1024, 1, 1), "dis.pred.bias": (1,),
              "dis.cls.weight": (n_classes + 1, 1024, 1, 1), "dis.cls.bias": (n_classes + 1,),
              "back.scale.contextual1.conv.weight": (256, width, 3, 3),
              "back.scale.contextual2.conv.weight": (256, 256, 3, 3),
              "back.scale.contextual3.conv.weight": (256, 256, 3, 3),
              "back.scale.fc_1.conv.weight": (3, 768, 3, 3),
              "back.scale.contextualpool.conv.weight": (width, 768, 1, 1),
              "back.scale.contextuallocalmu.conv.weight": (width, width, 3, 3),
              "back.scale.contextuallocalsigma.conv.weight": (width, width, 3, 3)}
    dims = [2 * width, 1024, 960, 864, 784, 720]
    for i in range(5):
        shapes[f"gen.mlp.{i}.conv.weight"] = (dims[i + 1], dims[i], 1, 1)
        shapes[f"gen.mlp.{i}.conv.bias"] = (dims[i + 1],)
    shapes["gen.mlp.5.weight"] = (width, 720, 1, 1)
    shapes["gen.mlp.5.bias"] = (width,)
    return shapes


def cagnet_shapes(width: int = 600, n_classes: int = 20) -> dict[str, tuple]:
    """Every key of a released CaGNet checkpoint's state dict and its shape (VOC: 659 keys)."""
    backbone = {"back.scale." + k: shape for k, shape in deeplab_shapes(width).items()}
    return {**backbone, **cagnet_extra(width, n_classes)}
