"""Every split file is valid; bad split files fail with one line naming the file and field."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from zsseg_bench.catalog.splits import load_split, split_paths
from zsseg_bench.cli import app
from zsseg_bench.errors import ZsbenchError

SPLITS = split_paths()


@pytest.mark.parametrize("path", SPLITS, ids=[p.stem for p in SPLITS])
def test_split_file_is_valid(path):
    split = load_split(path)
    assert split.name == path.stem
    assert not set(split.unseen) & set(split.seen_names)
    assert len(split.eval_names) == len(split.seen_names) + len(split.unseen)
    lut = split.lut(train=True)
    for name in split.unseen:
        assert lut[split.classes.id_of(name)] == split.ignore_index


def test_voc12_15_5_matches_spnet_cagnet():
    s = load_split("voc12-15-5")
    assert s.num_classes == 20 and s.seen_mask.sum() == 15
    assert s.unseen == ("pottedplant", "sheep", "sofa", "train", "tvmonitor")
    assert s.background == "excluded" and s.train_policy == "ignore_unseen_pixels"
    lut = s.lut(train=False)
    assert lut[0] == 255 and lut[1] == 0 and lut[20] == 19 and lut[255] == 255 and lut[21] == -1


def test_synthetic_default_split():
    s = load_split("synthetic-9-3")
    assert s.seen_mask.sum() == 9 and len(s.unseen) == 3


BASE = """format: 1
name: bad
version: 1
dataset: synthetic
classes: synthetic
unseen: [sheep, train, sofa]
excluded: [background]
background: excluded
ignore_index: 255
train_policy: ignore_unseen_pixels
source: {paper: test}
"""

BAD = {
    "unknown-class": (("unseen: [sheep, train, sofa]", "unseen: [sheeep, train]"), "field 'unseen': unknown class 'sheeep'"),
    "overlap": (("excluded: [background]", "excluded: [background, sheep]"), "field 'unseen'"),
    "missing-field": (("train_policy: ignore_unseen_pixels\n", ""), "field 'train_policy': missing"),
    "bad-policy": (("ignore_unseen_pixels", "keep_everything"), "field 'train_policy'"),
    "background-inconsistent": (("excluded: [background]", "excluded: []"), "field 'background'"),
    "ignore-is-a-class": (("ignore_index: 255", "ignore_index: 3"), "field 'ignore_index'"),
    "unknown-field": (("source: {paper: test}", "source: {paper: test}\nunsen: [cat]"), "field 'unsen': unknown field"),
    "wrong-name": (("name: bad", "name: other"), "field 'name'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_split_file_names_file_and_field(tmp_path, case):
    (old, new), message = BAD[case]
    path = tmp_path / "synthetic" / "bad.yaml"
    path.parent.mkdir()
    path.write_text(BASE.replace(old, new))
    with pytest.raises(ZsbenchError) as err:
        load_split(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_validate_cli_fails_on_bad_split_with_one_line(tmp_path):
    path = tmp_path / "synthetic" / "bad.yaml"
    path.parent.mkdir()
    path.write_text(BASE.replace("unseen: [sheep, train, sofa]", "unseen: [sheeep]"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and "'unseen'" in lines[0] and "did you mean 'sheep'" in lines[0]


def test_validate_cli_passes_on_repository():
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
