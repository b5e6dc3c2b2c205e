"""Joint transforms: masks keep their values, padding is the ignore index, sizes are what the config says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.configs import card_config
from zsseg_bench.engine.transforms import (
    EvalTransform,
    TrainTransform,
    pad_fill,
    pad_pair,
    resize_image,
    resize_label_at_centres,
    transforms_from_config,
)
from zsseg_bench.errors import ZsbenchError


def _item(h=37, w=53, seed=0):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 21, (h, w), generator=g)
    label[:, :3] = 255
    return {"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8), "label": label,
            "index": 0, "name": "x"}


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8])
@pytest.mark.parametrize("size", [(513, 513), (11, 70), (37, 53), (5, 5), (100, 17)])
def test_resize_label_is_nearest_and_invents_no_values(size, dtype):
    item = _item()
    item["label"] = item["label"].to(dtype)
    out = resize_label_at_centres(item["label"], size)
    assert out.shape == size and out.dtype == dtype
    assert set(out.unique().tolist()) <= set(item["label"].unique().tolist())
    # exact nearest neighbour at pixel centres
    ys = ((np.arange(size[0]) + 0.5) * 37 / size[0]).astype(int)
    xs = ((np.arange(size[1]) + 0.5) * 53 / size[1]).astype(int)
    np.testing.assert_array_equal(out.numpy(), item["label"].numpy()[ys][:, xs])


def test_labels_beyond_uint8_keep_their_values():
    item = _item()
    item["label"][5:9, 5:9] = 300  # a 16-bit label map
    out = TrainTransform(scale=(1.3, 1.3), crop=(30, 30))(item)
    assert out["label"].dtype == torch.int64 and set(out["label"].unique().tolist()) <= set(range(21)) | {255, 300}


def test_resize_image_is_bilinear_uint8():
    image = torch.arange(4, dtype=torch.uint8).view(1, 2, 2).expand(3, 2, 2) * 80
    out = resize_image(image.contiguous(), (4, 4))
    assert out.dtype == torch.uint8 and out.shape == (3, 4, 4)
    assert out[0, 0, 0] == 0 and out[0, -1, -1] == 240 and 0 < int(out[0, 1, 1]) < 240


def test_padding_uses_ignore_for_the_mask_and_fill_for_the_image():
    item = _item(10, 12)
    img, lbl = pad_pair(item["image"], item["label"], (16, 20), (104, 117, 123), 255, "symmetric")
    assert lbl.shape == (16, 20) and img.shape == (3, 16, 20)
    assert (lbl[:3] == 255).all() and (lbl[-3:] == 255).all() and (lbl[:, :4] == 255).all()
    assert torch.equal(lbl[3:13, 4:16], item["label"])
    assert img[:, 0, 0].tolist() == [104, 117, 123]
    _, lbl2 = pad_pair(item["image"], item["label"], (16, 20), (0, 0, 0), 255, "bottom_right")
    assert torch.equal(lbl2[:10, :12], item["label"])


def test_train_transform_gives_the_crop_size_and_only_old_labels():
    t = TrainTransform(warp=(64, 64), scale=(0.5, 1.5), crop=(48, 48), pad_to=(64, 64), fill=(1, 2, 3))
    torch.manual_seed(0)
    source = _item()
    values = set(source["label"].unique().tolist()) | {255}
    for _ in range(20):
        out = t(source)
        assert out["image"].shape == (3, 48, 48) and out["label"].shape == (48, 48)
        assert set(out["label"].unique().tolist()) <= values


def test_small_scale_pads_with_ignore():
    t = TrainTransform(scale=(0.25, 0.25), crop=(40, 40))
    out = t(_item(40, 40))
    assert (out["label"] == 255).float().mean() > 0.8  # a 10x10 image inside a 40x40 crop


def test_eval_transforms():
    item = _item(30, 60)
    warped = EvalTransform(warp=(513, 513))(item)
    assert warped["image"].shape == (3, 513, 513) and warped["label"].shape == (513, 513)
    short = EvalTransform(short_side=90)(item)
    assert short["image"].shape == (3, 90, 180) and short["label"].shape == (90, 180)
    original = EvalTransform(warp=(64, 64), label_at="original")(item)
    assert original["image"].shape == (3, 64, 64) and torch.equal(original["label"], item["label"])
    assert EvalTransform(warp=(64, 64), label_at="original").fixed_size is None


def test_config_and_caffe_mean_fill():
    caffe = {"mean": [104.008, 116.669, 122.675], "std": [1.0, 1.0, 1.0], "bgr": True}
    train, ev = transforms_from_config(card_config("spnet", data={"crop": 321, "scale": [0.5, 1.5], "warp": 513,
                                                                  "pad_to": 513}, eval={"warp": 513}, input=caffe), 255)
    assert train.crop == (321, 321) and train.fixed_size == (321, 321) and ev.fixed_size == (513, 513)
    assert train.fill == (123, 117, 104)  # RGB order of the BGR mean
    assert transforms_from_config(card_config("spnet", data={"batch_size": 4}), 255) == (None, None)
    assert pad_fill({}, 7) == (7, 7, 7)


@pytest.mark.parametrize("sections, key", [
    ({"data": {"crop": "big"}}, "data.crop"), ({"data": {"scale": [2, 1]}}, "data.scale"),
    ({"eval": {"warp": 5, "short_side": 5}}, "eval"), ({"eval": {"warp": 5, "label_at": "somewhere"}}, "eval.label_at"),
    ({"data": {"crop": 9, "pad_mode": "mirror"}}, "data.pad_mode"), ({"data": {"pad_image": 300}}, "data.pad_image"),
    ({"eval": {"short_side": 0}}, "eval.short_side"),
])
def test_bad_transform_settings_are_refused_by_the_schema(sections, key):
    """The values transforms_from_config converts are checked once, by the schema, when a run is prepared."""
    with pytest.raises(ZsbenchError, match=key.replace(".", r"\.")):
        card_config("spnet", **sections)


def test_spnet_train_transform_speed(benchmark, one_thread):
    """SPNet's training transform on one 500x375 VOC-sized item (warp 513, scale, pad, crop 321).

    One torch thread, as in a DataLoader worker. Measure with:
    pytest tests/test_transforms.py -k speed --benchmark-enable
    """
    item = _item(375, 500)
    t = TrainTransform(warp=(513, 513), scale=(0.5, 1.5), crop=(321, 321), pad_to=(513, 513), fill=(123, 117, 104))
    out = benchmark(t, item)
    assert out["image"].shape == (3, 321, 321) and out["label"].dtype == torch.int64
