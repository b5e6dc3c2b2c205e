"""`zsbench orderings`: published orderings counted over (world, seed) pairs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.helpers.records import accept_hand_written_metrics, write_record
from zsseg_bench.cli import app
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.report.orderings import ordering_table
from zsseg_bench.report.tables import runs_frame


@pytest.fixture(autouse=True)
def _hand_written(monkeypatch):
    accept_hand_written_metrics(monkeypatch)


@pytest.fixture
def runs(tmp_path):
    # published VOC hIoU: spnet 0.0002 < spnet-c 0.2610 < zs3net 0.2874
    for seed, (spnet, spnet_c, zs3net) in enumerate([(0.1, 0.5, 0.3), (0.1, 0.2, 0.3)]):
        for method, value in (("spnet", spnet), ("spnet-c", spnet_c), ("zs3net", zs3net)):
            write_record(tmp_path, f"{method}-{seed}", method, "synthetic", "synthetic-9-3", seed,
                         {m: value for m in METRIC_NAMES})
    return tmp_path


def test_each_published_pair_counts_the_seeds_that_agree(runs):
    table = ordering_table(runs_frame([runs]), "voc12", "voc12-15-5").set_index(["lower", "higher"])
    assert table.loc[("spnet", "spnet-c"), "holds"] == 2 and table.loc[("spnet", "spnet-c"), "of"] == 2
    assert table.loc[("spnet-c", "zs3net"), "holds"] == 1  # seed 0: spnet-c 0.5 above zs3net 0.3
    assert table.loc[("spnet-c", "zs3net"), "published lower"] == pytest.approx(0.2610)


def test_the_command_prints_the_pairs_and_refuses_an_unknown_metric(runs):
    result = CliRunner().invoke(app, ["orderings", str(runs), "--against", "voc12"])
    assert result.exit_code == 0, result.output
    assert "| spnet-c | zs3net   |" in result.output
    bad = CliRunner().invoke(app, ["orderings", str(runs), "--metric", "hiou"])
    assert bad.exit_code != 0 and "--metric 'hiou': choose from" in bad.output
