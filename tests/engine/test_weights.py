"""Official weight files: generated in the official key layouts with the official shapes,
loaded strictly; mismatches are one line naming the keys and shapes.

Two cases go through real files (SPNet's DataParallel checkpoint, CaGNet's model file); the
others hand the loaded object to `load_backbone_state`, the same code minus the disk."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.official_layout import cagnet_shapes, deeplab_shapes, make_state, torchvision_shapes
from zsseg_bench.engine.weights import load_backbone_state, load_backbone_weights, torchvision_to_deeplab
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.common.backbones import build_backbone


@pytest.fixture(scope="module")
def net():
    # The real network at the real width (600): the official shapes, loaded for real.
    return build_backbone({"name": "deeplabv2-resnet101", "msc": True}, 600)


@pytest.fixture(scope="module")
def spnet_file(tmp_path_factory):
    """SPNet's checkpoint_*.pth.tar: {'iteration', 'state_dict' (module.scale.*), 'optimizer'}."""
    path = tmp_path_factory.mktemp("w") / "checkpoint_20000.pth.tar"
    torch.save({"iteration": 20000, "state_dict": make_state(deeplab_shapes(600), "module.scale."),
                "optimizer": {"state": {}, "param_groups": []}}, path)
    return path


def _expect(net, shapes, prefix="scale."):
    """Every tensor holds the constant of the official key it came from."""
    own = net.state_dict()
    for i, key in enumerate(shapes):
        assert own[prefix + key].flatten()[0].item() == i + 1, key


def test_spnet_dataparallel_checkpoint_loads_strictly(net, spnet_file):
    report = load_backbone_weights(net, spnet_file)
    assert report["loaded"] == 632 and report["ignored"] == 0 and "module.scale." in report["layout"]
    assert len(report["sha256"]) == 64
    _expect(net, deeplab_shapes(600))


def test_cagnet_checkpoint_back_scale(net, tmp_path):
    width = 600
    state = make_state(cagnet_shapes(width))
    assert len(state) == 659  # the released VOC file's count for OurModel
    path = tmp_path / "voc12_ourbest.pth"
    # The contextual module is part of CaGNet's backbone but not of plain DeepLab: 'all' fails ...
    with pytest.raises(ZsbenchError, match=r"7 unexpected \(e\.g\. back\.scale\.contextual1\.conv\.weight"):
        load_backbone_state(net, {"iteration": 20000, "state_dict": state}, path)
    torch.save({"iteration": 20000, "state_dict": state}, path)
    # ... and body+head takes the ResNet and the 600-d ASPP, reporting what it leaves.
    report = load_backbone_weights(net, path, parts="body+head")
    assert report["loaded"] == 632 and report["ignored"] == 27 and report["layout"].startswith("CaGNet")
    assert "ignored 27 keys" in report["summary"]


def test_wrong_shape_names_the_key_and_both_shapes(net, tmp_path):
    state = make_state(deeplab_shapes(21), "scale.")  # a 21-class ASPP, not the 600-d one
    path = tmp_path / "deeplab_voc.pth"
    with pytest.raises(ZsbenchError) as err:
        load_backbone_state(net, state, path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert "8 wrong-shaped" in msg
    assert "scale.aspp.stages.c0.weight (21, 2048, 3, 3) in the file vs (600, 2048, 3, 3) in the model" in msg
    # the body alone is fine (an ImageNet-style initialisation)
    report = load_backbone_state(net, state, path, parts="body")
    assert report["loaded"] == 624 and report["ignored"] == 8


def test_missing_key_and_old_files_without_bn_counters(net, tmp_path):
    shapes = deeplab_shapes(600, with_counter=False)  # a file saved before PyTorch 1.1
    state = make_state(shapes, "")
    path = tmp_path / "init.pth"
    report = load_backbone_state(net, state, path)
    assert report["kept_num_batches_tracked"] == 104 and report["loaded"] == 528
    del state["layer5.block3.increase.bn.running_var"]
    with pytest.raises(ZsbenchError, match=r"1 missing \(e\.g\. scale\.layer5\.block3\.increase\.bn\.running_var\)"):
        load_backbone_state(net, state, path)


def test_newer_deeplab_pytorch_names(net, tmp_path):
    shapes = deeplab_shapes(600)
    renamed = {k.replace(".proj.", ".shortcut.").replace("aspp.stages.", "aspp."): s for k, s in shapes.items()}
    load_backbone_state(net, {"model": make_state(renamed, "scale.")}, tmp_path / "new.pth")
    _expect(net, shapes)


def test_torchvision_resnet101(net, tmp_path):
    tv = torchvision_shapes()
    path, state = tmp_path / "resnet101.pth", make_state(tv)
    with pytest.raises(ZsbenchError, match="init_parts=body"):
        load_backbone_state(net, state, path)
    report = load_backbone_state(net, state, path, parts="body")
    assert report["loaded"] == 624 and report["ignored"] == 2  # fc.weight, fc.bias
    own = net.state_dict()
    for i, key in enumerate(tv):
        mapped = torchvision_to_deeplab(key)
        if mapped is not None:
            assert own["scale." + mapped].flatten()[0].item() == i + 1, key
    assert torchvision_to_deeplab("layer3.22.conv2.weight") == "layer4.block23.conv3x3.conv.weight"
    assert torchvision_to_deeplab("layer1.0.downsample.1.running_mean") == "layer2.block1.proj.bn.running_mean"


def test_unrecognised_and_missing_files(net, tmp_path, spnet_file):
    with pytest.raises(ZsbenchError, match="not found"):
        load_backbone_weights(net, tmp_path / "nope.pth")
    path = tmp_path / "other.pth"
    with pytest.raises(ZsbenchError, match="unrecognised weight layout"):
        load_backbone_state(net, {"encoder.weight": torch.zeros(2)}, path)
    path.write_bytes(b"not a torch file")
    with pytest.raises(ZsbenchError, match="not a readable torch weight file"):
        load_backbone_weights(net, path)
    with pytest.raises(ZsbenchError, match="unknown part 'neck'"):
        load_backbone_weights(net, spnet_file, parts="neck")
