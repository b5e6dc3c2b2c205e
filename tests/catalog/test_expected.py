"""Expected results of the synthetic benchmark: written from a batch of records (mean and
tolerance over >= 3 seeds), checked by `zsbench validate`, and compared by `zsbench check`, which
exits 0 within a row's tolerance and 1 beyond it. The records are made here; no committed
expected file is read."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from tests.helpers.records import accept_hand_written_metrics
from zsseg_bench.catalog import expected as expected_module
from zsseg_bench.catalog.expected import TOLERANCE_FLOOR, build_expected, expected_problems, tolerance_of
from zsseg_bench.cli import app
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.runs.records import SCHEMA_VERSION, RunRecord, find_records, load_record

runner = CliRunner()
HIOU = {"spnet": [0.040, 0.045, 0.042], "zs3net": [0.30, 0.36, 0.33]}


def _record(root, method: str, seed: int, hiou: float, overrides=(), world: int = 0):
    rec = RunRecord.create(root, f"{method}__s{seed}")
    rec.write_json("run.json", {
        "schema_version": SCHEMA_VERSION, "run_id": rec.path.name, "status": "ok", "method": method, "seed": seed,
        "command": "zsbench run --seeds 0,1,2", "overrides": list(overrides),
        "dataset": {"name": "synthetic", "version": "1", "options": {"seed": world, "classes": "synthetic"}},
        "split": {"name": "synthetic-9-3"}, "environment": {"git": {"commit": "abc123", "dirty": False}},
        "protocol_flags": {"uses_unseen_labels": False, "transductive": False}})
    rec.write_json("metrics.json", {"hIoU": hiou, "mIoU": 0.5, "S-mIoU": 0.6 + hiou / 10, "U-mIoU": hiou})
    return rec.path


@pytest.fixture
def batch(tmp_path):
    root = tmp_path / "batch"
    for method, values in HIOU.items():
        for seed, value in enumerate(values):
            _record(root, method, seed, value)
    return root


@pytest.fixture
def expected_home(tmp_path, monkeypatch):
    home = tmp_path / "expected"
    monkeypatch.setattr(expected_module, "expected_dir", lambda: home)
    accept_hand_written_metrics(monkeypatch)  # the records here have chosen metrics, no confusion matrix
    return home


def _records(path):
    return [load_record(p) for p in find_records([path])]


def test_the_rule_is_the_mean_and_three_sample_stds_with_a_floor():
    mean, tol, std = tolerance_of([0.30, 0.36, 0.33])
    assert mean == pytest.approx(0.33) and std == pytest.approx(0.03) and tol == pytest.approx(0.09)
    assert tolerance_of([0.040, 0.045, 0.042])[1] == TOLERANCE_FLOOR  # 3 x 0.0025 is below the floor


def test_build_from_records_gives_one_row_per_method_and_metric(batch):
    data = build_expected(_records(batch))
    assert (data["dataset"], data["version"], data["world"], data["split"]) == ("synthetic", "1", 0, "synthetic-9-3")
    assert data["source"]["command"] == "zsbench run --seeds 0,1,2" and data["source"]["commit"] == "abc123"
    rows = {(r["method"], r["metric"]): r for r in data["rows"]}
    assert len(rows) == 8
    zs3 = rows[("zs3net", "hIoU")]
    assert (zs3["mean"], zs3["tolerance"], zs3["n_seeds"], zs3["seeds"]) == (pytest.approx(0.33), pytest.approx(0.09),
                                                                            3, [0, 1, 2])


def test_fewer_than_three_seeds_or_overrides_are_refused(tmp_path):
    two = tmp_path / "two"
    for seed in (0, 1):
        _record(two, "spnet", seed, 0.04)
    with pytest.raises(ZsbenchError, match="at least 3 distinct seeds"):
        build_expected(_records(two))
    _record(two, "spnet", 2, 0.04, overrides=["train.iterations=10"])
    with pytest.raises(ZsbenchError, match="--set train.iterations=10"):
        build_expected(_records(two))


def test_cli_writes_then_check_passes_within_and_fails_beyond_tolerance(batch, expected_home, tmp_path):
    result = runner.invoke(app, ["expected", str(batch)])
    assert result.exit_code == 0, result.output
    written = expected_home / "synthetic-v1-w0__synthetic-9-3.yaml"
    assert written.is_file() and expected_problems([written]) == (1, [])
    again = runner.invoke(app, ["expected", str(batch)])
    assert again.exit_code != 0 and "--force" in again.output

    ok = runner.invoke(app, ["check", str(batch)])
    assert ok.exit_code == 0, ok.output
    assert "within their tolerances" in ok.output
    # one run far off its row (zs3net hIoU 0.33 +- 0.09): exit 1
    run = batch / "zs3net__s1"
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "hIoU": 0.05}))
    bad = runner.invoke(app, ["check", str(batch)])
    assert bad.exit_code == 1, bad.output
    assert "1 of 24 metrics deviate" in bad.output


def test_check_of_another_world_finds_no_row(batch, expected_home, tmp_path):
    assert runner.invoke(app, ["expected", str(batch)]).exit_code == 0
    other = _record(tmp_path / "other", "spnet", 0, 0.04, world=1)
    result = runner.invoke(app, ["check", str(other)])
    assert result.exit_code == 2 and "no expected row" in result.output


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["rows"][0].update(tolerance=0), "tolerance: must be > 0"),
    (lambda d: d["rows"][0].update(seeds=[0, 1], n_seeds=2), "at least 3"),
    (lambda d: d["rows"][0].update(metric="IoU"), "is not a metric"),
    (lambda d: d["rows"][0].update(method="no-such-method"), "no-such-method"),
    (lambda d: d.update(split="no-such-split"), "no-such-split"),
    (lambda d: d.pop("world"), "world: missing"),
])
def test_validate_names_the_file_and_key_of_a_bad_expected_file(batch, expected_home, edit, message):
    data = build_expected(_records(batch))
    edit(data)
    expected_home.mkdir()
    path = expected_home / "synthetic-v1-w0__synthetic-9-3.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    n, problems = expected_problems([path])
    assert n == 1 and len(problems) == 1 and str(path) in problems[0] and message in problems[0]
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1 and message in result.output
