"""Every split of the source papers exists under its guessable name, with the papers' class counts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from zsseg_bench.catalog.splits import list_splits, load_class_list, load_split
from zsseg_bench.cli import app
from zsseg_bench.datasets import DATASETS, default_split
from zsseg_bench.methods.cagnet.official import OFFICIAL_ORDERS

# name -> (seen, unseen) as `zsbench ls splits` counts them (evaluation classes only).
EXPECTED = {
    "voc12-15-5": (15, 5),                    # SPNet/CaGNet: background excluded
    "context33-29-4": (29, 4),                # CaGNet: 'unlabel' excluded
    "cocostuff-167-15": (167, 15),            # SPNet/CaGNet: 155 seen + 12 val
    **{f"voc12-zs3-u{k}": (21 - k, k) for k in (2, 4, 6, 8, 10)},       # ZS3Net: background seen
    **{f"context59-zs3-u{k}": (60 - k, k) for k in (2, 4, 6, 8, 10)},   # ZS3Net: 59 + background
    # SAZS: background is scored as every episode's negative ("others"), so it counts as seen.
    **{f"pascal5i-f{f}": (16, 5) for f in range(4)},
    **{f"coco20i-f{f}": (61, 20) for f in range(4)},                    # HSNet folds
    **{f"synthetic-5i-f{f}": (10, 3) for f in range(4)},                # synthetic counterpart
    **{f"cocostuff10k-ws-s{s}": (128, 43) for s in range(1, 5)},        # SimFormer: 43 novel of 171
    **{f"ade20k-ws-s{s}": (112, 38) for s in range(1, 5)},              # SimFormer: 38 novel of 150
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_split_counts_match_the_papers(name):
    split = load_split(name)
    assert (int(split.seen_mask.sum()), int(split.unseen_mask.sum())) == EXPECTED[name]
    assert split.source.get("paper") and split.source.get("table")


def test_ls_splits_prints_the_counts():
    result = CliRunner().invoke(app, ["ls", "splits"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    rows = {ln.split("│")[1].strip(): ln.split("│") for ln in result.stdout.splitlines() if ln.count("│") > 8}
    for name, (seen, unseen) in EXPECTED.items():
        assert name in rows, name
        assert (int(rows[name][5]), int(rows[name][6])) == (seen, unseen), name


def test_validate_passes_on_every_split():
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert {s.name for s in list_splits()} >= set(EXPECTED)


def test_zs3_lists_are_nested_and_protocol_fields_are_right():
    for family in ("voc12-zs3-u", "context59-zs3-u"):
        previous: tuple = ()
        for k in (2, 4, 6, 8, 10):
            split = load_split(f"{family}{k}")
            assert split.unseen[: len(previous)] == previous
            assert split.background == "seen" and split.train_policy == "drop_images_with_unseen"
            previous = split.unseen
    assert load_split("voc12-zs3-u4").unseen == ("cow", "motorbike", "aeroplane", "sofa")
    assert set(load_split("context33-29-4").unseen) == {"cow", "motorbike", "sofa", "cat"}
    assert {load_split(f"pascal5i-f{f}").task_protocol for f in range(4)} == {"fss-zeroshot"}
    assert load_split("coco20i-f0").unseen[:4] == ("person", "airplane", "boat", "parking meter")
    assert {load_split(f"ade20k-ws-s{s}").task_protocol for s in range(1, 5)} == {"weak-shot"}


def test_cocostuff_split_matches_spnet_ids_and_documents_the_empty_classes():
    split = load_split("cocostuff-167-15")
    coco = load_class_list("cocostuff")
    # The file's source block transcribes SPNet's novel_cls.npy / val_cls.npy; the names must say the same.
    assert [coco.id_of(n) for n in split.unseen] == split.source["novel_ids"]
    assert [coco.id_of(n) for n in split.calibration_val] == split.source["val_ids"]
    seen, novel = OFFICIAL_ORDERS["cocostuff-167-15"]  # CaGNet's checkpoint rows: the same classes
    assert list(novel) == split.source["novel_ids"] and list(seen[-12:]) == split.source["val_ids"]
    for name in ("street sign", "hat", "shoe", "eye glasses", "plate", "mirror", "window", "desk", "door", "blender",
                 "hair brush"):
        assert name in split.notes and name in split.seen_names


def test_simformer_class_indices_match_names():
    c171, ade = load_class_list("cocostuff171"), load_class_list("ade20k")
    for s in range(1, 5):
        split = load_split(f"cocostuff10k-ws-s{s}")
        assert [c171.names[i] for i in split.source["class_indices"]] == sorted(split.unseen, key=c171.names.index)
        split = load_split(f"ade20k-ws-s{s}")
        assert [ade.names[i + 1] for i in split.source["class_indices"]] == list(split.unseen)


def test_every_dataset_has_a_default_split():
    for dataset in DATASETS:
        assert load_split(default_split(dataset)).dataset == dataset
