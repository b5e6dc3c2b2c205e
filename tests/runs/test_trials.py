"""`zsbench trials`: equal trial counts, val only, the trials table."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.helpers.settings import TINY_DATA
from zsseg_bench.cli import app
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.runs.trials import load_trials

TINY = [*TINY_DATA, "train.iterations=4", "calibration.proxy_iterations=2"]


def _write(tmp_path, text: str):
    path = tmp_path / "trials.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,message", [
    ("trials: {spnet: [[], [train.lr=0.005]], zs3net: [[]]}", "same number of trials; found spnet 2, zs3net 1"),
    ("trials: {spnet: [[dataset.eval_part=test]]}", "sets the data"),
    ("common: [dataset.eval_part=test]\ntrials: {spnet: [[]]}", "the part is always val"),
    ("world: 0\ntrial: {}", "expected a mapping with 'trials"),
    ("trials: {spnet: [[]]}\nseed: [0]", "unknown key 'seed'"),
    ("split: nope\ntrials: {spnet: [[]]}", "split: unknown split 'nope'"),
])
def test_a_bad_trials_file_is_one_line(tmp_path, text, message):
    with pytest.raises(ZsbenchError, match=message):
        load_trials(_write(tmp_path, text))


@pytest.mark.slow
def test_trials_run_on_val_and_the_table_marks_the_best(tmp_path):
    path = _write(tmp_path, "seeds: [0]\ncommon: [" + ", ".join(TINY) + "]\n"
                            "trials: {spnet: [[], [train.lr=0.0]]}\n")
    result = CliRunner().invoke(app, ["trials", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    table = (tmp_path / "out" / "trials.md").read_text()
    assert "| spnet | 1 | `train.lr=0.0` |" in table and table.count("| yes |") == 1
    records = sorted((tmp_path / "out" / "spnet").glob("trial*/*/*/run.json"))
    assert len(records) == 2
    assert all(json.loads(r.read_text())["dataset"]["options"]["eval_part"] == "val" for r in records)


def test_a_trials_file_names_its_split(tmp_path, monkeypatch):
    """Weak-shot methods need their split; the runs get it and the table says it."""
    from zsseg_bench.runs import train, trials
    plan = load_trials(_write(tmp_path, "split: synthetic-ws-10-3\ntrials: {simformer: [[]]}"))
    calls = []

    def fake(methods, split=None, seeds=(0,), overrides=(), out=None, **_):
        calls.append((methods, split))
        run = tmp_path / "run"
        run.mkdir(exist_ok=True)
        (run / "metrics.json").write_text(json.dumps({"hIoU": 0.1, "S-mIoU": 0.2, "U-mIoU": 0.05}))
        (run / "run.json").write_text(json.dumps({}))
        return None, [run]

    monkeypatch.setattr(train, "run_comparison", fake)
    table = trials.run_trials(plan, tmp_path / "out")
    assert calls == [(["simformer"], "synthetic-ws-10-3")]
    assert "(synthetic-ws-10-3, world 0" in table.read_text()


def test_a_trial_with_a_dead_mechanism_is_chosen_only_when_every_trial_has_one():
    from zsseg_bench.runs.trials import chosen
    rows = [{"method": "m", "trial": 0, "hIoU": 0.5, "warnings": 1},
            {"method": "m", "trial": 1, "hIoU": 0.3, "warnings": 0},
            {"method": "n", "trial": 0, "hIoU": 0.2, "warnings": 2},
            {"method": "n", "trial": 1, "hIoU": 0.4, "warnings": 1},
            {"method": "k", "trial": 0, "hIoU": float("nan"), "warnings": 0},
            {"method": "k", "trial": 1, "hIoU": 0.1, "warnings": 0},
            {"method": "j", "trial": 0, "hIoU": 0.0, "warnings": 2},
            {"method": "j", "trial": 1, "hIoU": 0.0, "warnings": 1}]
    assert chosen(rows) == {"m": 1, "n": 1, "k": 1, "j": 1}


def test_a_further_round_continues_the_numbering_and_keeps_the_counts_equal(tmp_path):
    from zsseg_bench.runs.trials import _check_round_counts, _earlier_rows, write_table
    first = load_trials(_write(tmp_path, "trials: {spnet: [[], [train.lr=0.005]], zs3net: [[], []]}"))
    rows = [{"method": m, "trial": i, "overrides": "(card)", "hIoU": 0.1 * i, "S-mIoU": 0.5, "U-mIoU": 0.1,
             "warnings": 0, "runs": "", "file": "round1.yaml"} for m in ("spnet", "zs3net") for i in range(2)]
    write_table(rows, tmp_path / "out", first)
    earlier = _earlier_rows(tmp_path / "out")
    assert [(r["method"], r["trial"], r["hIoU"]) for r in earlier][:2] == [("spnet", 0, 0.0), ("spnet", 1, 0.1)]
    uneven = load_trials(_write(tmp_path, "trials: {spnet: [[train.lr=0.0025]]}"))
    with pytest.raises(ZsbenchError, match="same number of trials in all; it would have spnet 3, zs3net 2"):
        _check_round_counts(uneven, earlier)
    _check_round_counts(load_trials(_write(tmp_path, "trials: {spnet: [[]], zs3net: [[]]}")), earlier)
