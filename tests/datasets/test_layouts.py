"""Every real-dataset layout, generated small in its exact form, loads and passes `zsbench data check`;
each kind of damage makes the check fail with one line naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from tests.helpers.datasets import (
    make_ade20k,
    make_coco_hsnet,
    make_cocostuff10k,
    make_context_detail,
    make_packaged,
    make_voc_devkit,
)
from zsseg_bench.catalog.splits import load_class_list
from zsseg_bench.cli import app
from zsseg_bench.datasets import build_dataset
from zsseg_bench.datasets.context import DETAIL_ORDER
from zsseg_bench.errors import ZsbenchError

VOC_VALUES = range(1, 21)


def _trees(tmp):
    """name -> (dataset, root, dataset cfg, expected (n_train, n_test), expected layout)."""
    return {
        "voc-devkit": ("voc12", lambda: make_voc_devkit(tmp / "devkit", 3, 2).parent.parent, {}, (3, 2), "devkit"),
        "voc-aug-derived": ("voc12", lambda: make_voc_devkit(tmp / "aug", 2, 2, aug=3), {}, (5, 2), "aug"),
        "voc-aug-list": ("voc12", lambda: make_voc_devkit(tmp / "augl", 2, 2, aug=2, aug_list=True), {}, (4, 2), "aug"),
        "voc-cagnet": ("voc12", lambda: make_packaged(tmp / "cv", {"train": 3, "val": 2}, VOC_VALUES,
                                                      lists={"train": "train", "test": "val"}), {}, (3, 2), "cagnet"),
        "context-cagnet": ("context", lambda: make_packaged(tmp / "cc", {"train": 3, "val": 2}, range(1, 34),
                                                            border=None), {"classes": "context33"}, (3, 2), "cagnet"),
        "context59-detail": ("context", lambda: make_context_detail(tmp / "cd59"), {"classes": "context59"}, (3, 2),
                             "detail"),
        "context33-detail": ("context", lambda: make_context_detail(tmp / "cd33"), {"classes": "context33"}, (3, 2),
                             "detail"),
        "cocostuff": ("cocostuff", lambda: make_packaged(tmp / "cs", {"train2017": 3, "val2017": 2}, range(0, 182),
                                                         background=255, border=None), {}, (3, 2), "official"),
        "cocostuff10k": ("cocostuff10k", lambda: make_cocostuff10k(tmp / "c10").parent, {}, (3, 2), "detectron2"),
        "ade20k": ("ade20k", lambda: make_ade20k(tmp / "ade"), {}, (3, 2), "official"),
        "ade20k-d2": ("ade20k", lambda: make_ade20k(tmp / "ade2", detectron2=True).parent, {}, (3, 2), "detectron2"),
        "coco-hsnet": ("coco", lambda: make_coco_hsnet(tmp / "coco").parent, {}, (3, 2), "hsnet"),
    }


@pytest.mark.parametrize("tree", list(_trees(None)))
def test_layout_loads_with_the_dataset_contract(tmp_path, tree):
    name, make, cfg, (n_train, n_test), layout = _trees(tmp_path)[tree]
    root = make()
    train, test = build_dataset(name, "train", str(root), cfg), build_dataset(name, "test", str(root), cfg)
    assert (len(train), len(test)) == (n_train, n_test)
    assert train.layout == layout
    classes = load_class_list(train.class_list)
    allowed = set(classes.ids) | {255}
    for ds in (train, test):
        for i in range(len(ds)):
            item = ds[i]
            assert item["image"].dtype == torch.uint8 and item["image"].shape[0] == 3
            assert item["label"].dtype == torch.int64 and item["label"].shape == item["image"].shape[1:]
            assert set(np.unique(item["label"].numpy()).tolist()) <= allowed
            assert item["name"] == ds.image_name(i) and item["index"] == i
            np.testing.assert_array_equal(ds.raw_label(i), item["label"].numpy())
    result = CliRunner().invoke(app, ["data", "check", name, "--data-root", str(root), "--set",
                                      f"classes={cfg.get('classes', train.class_list)}"])
    assert result.exit_code == 0, result.output
    assert f"{n_train + n_test} images checked, no problems" in result.stdout
    assert "the full dataset has" in result.stdout  # the count differs from the real one: a warning only


def test_detail_layout_translates_pascal_context_values_by_name(tmp_path):
    base = make_context_detail(tmp_path, 1, 1, size=(4, 60))
    # one column per Detail value: 0 background, 1 aeroplane, ... 59 wood, then 255
    values = np.tile(np.array(list(range(60)), dtype=np.uint8), (4, 1))
    Image.fromarray(values).save(next((base / "SegmentationClassContext").glob("2008_*.png")))
    ds59 = build_dataset("context", "train", str(tmp_path), {"classes": "context59"})
    ds33 = build_dataset("context", "train", str(tmp_path), {"classes": "context33"})
    c59, c33 = load_class_list("context59"), load_class_list("context33")
    row59, row33 = ds59.raw_label(0)[0], ds33.raw_label(0)[0]
    for v, name in enumerate(DETAIL_ORDER):
        assert c59.names[c59.ids.index(row59[v])] == name
        n33 = c33.names[c33.ids.index(row33[v])]
        assert n33 == {"table": "diningtable"}.get(name, name) or (n33 == "unlabel" and name not in c33.names)
    assert (row33 == 0).sum() == 60 - 33  # background and the 26 classes outside CaGNet's set -> unlabel


def test_packaged_layout_reads_cagnet_lists(tmp_path):
    root = make_packaged(tmp_path, {"train": 4, "val": 2}, VOC_VALUES, lists={"train": "train", "test": "val"})
    entries = np.load(root / "split" / "train_list.npy")
    np.save(root / "split" / "train_list.npy", entries[:2])  # the list, not the folder, defines the set
    ds = build_dataset("voc12", "train", str(root), {})
    assert len(ds) == 2 and ds.list_file.name == "train_list.npy" and ds.image_name(0) == "train/train_000000"


def test_wrong_label_space_and_missing_root_are_one_line_errors(tmp_path):
    root = make_packaged(tmp_path, {"train": 1, "val": 1}, range(1, 34), border=None)
    with pytest.raises(ZsbenchError, match="33-class labels only"):
        build_dataset("context", "train", str(root), {"classes": "context59"})
    with pytest.raises(ZsbenchError, match="label space"):
        build_dataset("voc12", "train", str(root), {"classes": "context33"})
    with pytest.raises(ZsbenchError, match="--data-root"):
        build_dataset("voc12", "train", None, {})


def _check(root, *extra):
    return CliRunner().invoke(app, ["data", "check", "voc12", "--data-root", str(root), *extra])


def _damage_missing_folder(base):
    for p in (base / "SegmentationClass").iterdir():
        p.unlink()
    (base / "SegmentationClass").rmdir()
    return "SegmentationClass: missing folder"


def _damage_mask_size(base):
    path = base / "SegmentationClass" / "2007_000001.png"
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(path)
    return f"{path}: mask is 10x10 but image 2007_000001.jpg is 32x24"


def _damage_label_value(base):
    path = base / "SegmentationClass" / "2008_000000.png"
    mask = np.asarray(Image.open(path)).copy()
    mask[0, 0] = 77
    Image.fromarray(mask).save(path)
    return f"{path}: label values [77] are not in the label space"


def _damage_unreadable_image(base):
    path = base / "JPEGImages" / "2007_000002.jpg"
    path.write_bytes(path.read_bytes()[:60])
    return f"{path}: image does not decode"


def _damage_empty_list(base):
    path = base / "ImageSets" / "Segmentation" / "val.txt"
    path.write_text("")
    return f"{path}: empty image list"


@pytest.mark.parametrize("damage", [_damage_missing_folder, _damage_mask_size, _damage_label_value,
                                    _damage_unreadable_image, _damage_empty_list])
def test_data_check_fails_naming_the_file(tmp_path, damage):
    base = make_voc_devkit(tmp_path, 3, 2)
    expected = damage(base)
    result = _check(tmp_path)
    assert result.exit_code == 1
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert errors and all("\n" not in e for e in errors)
    assert any(expected in e for e in errors), result.stderr


def test_strict_counts_turns_the_count_warning_into_a_problem(tmp_path):
    make_voc_devkit(tmp_path, 2, 1)
    result = _check(tmp_path, "--strict-counts", "--part", "test")
    assert result.exit_code == 1 and "1 images in the test part; the full dataset has 1449" in result.stderr


def test_data_stats_counts_classes_and_images_with_unseen(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path / "cache"))
    base = make_voc_devkit(tmp_path, 4, 1, aug=2)
    masks = [np.asarray(Image.open(p)) for p in sorted((base / "SegmentationClassAug").glob("*.png"))
             if not p.stem.startswith("2008")]
    with_unseen = sum(bool(np.isin(m, [10, 14, 1, 18]).any()) for m in masks)  # voc12-zs3-u4
    result = CliRunner().invoke(app, ["data", "stats", "voc12", "--data-root", str(tmp_path),
                                      "--split", "voc12-zs3-u4"])
    assert result.exit_code == 0, result.output
    assert f"{with_unseen} of 6 train images contain unseen classes" in " ".join(result.stdout.split())
    pixels = sum(int((m == 15).sum()) for m in masks)
    assert any(ln.split("│")[2].strip() == "person" and int(ln.split("│")[3]) == pixels
               for ln in result.stdout.splitlines() if ln.count("│") > 4)
