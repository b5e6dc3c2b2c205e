"""zsbench check: exit 1 beyond tolerance, 0 within; a run without a published row is an error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.helpers.records import accept_hand_written_metrics, write_record
from zsseg_bench.catalog.published import lookup
from zsseg_bench.cli import app
from zsseg_bench.metrics.scores import METRIC_NAMES


@pytest.fixture(autouse=True)
def _hand_written(monkeypatch):
    accept_hand_written_metrics(monkeypatch)


def _published_plus(delta, method="spnet-c"):
    row = lookup(method, "voc12", "voc12-15-5")
    return {m: float(row[m]) + delta for m in METRIC_NAMES if row[m] == row[m]}


def test_check_passes_within_tolerance(tmp_path):
    run = write_record(tmp_path, "ok", "spnet-c", "voc12", "voc12-15-5", 0, _published_plus(0.004))
    result = CliRunner().invoke(app, ["check", str(run), "--tolerance", "0.005"])
    assert result.exit_code == 0, result.output
    assert "within tolerance" in result.output


def test_check_fails_beyond_tolerance(tmp_path):
    run = write_record(tmp_path, "off", "spnet-c", "voc12", "voc12-15-5", 0, _published_plus(0.03))
    result = CliRunner().invoke(app, ["check", str(run), "--tolerance", "0.01"])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "deviate beyond tolerance" in result.output


def test_check_uses_the_named_source(tmp_path):
    row = lookup("cagnet-pi", "context", "context33-29-4", "cagnetv2-readme")
    metrics = {m: float(row[m]) for m in METRIC_NAMES if row[m] == row[m]}
    run = write_record(tmp_path, "ctx", "cagnet-pi", "context", "context33-29-4", 0, metrics)
    assert CliRunner().invoke(app, ["check", str(run), "--source", "cagnetv2-readme", "--tolerance", "0.001"]
                              ).exit_code == 0
    # The v1 README prints PA 0.5924 for the same row: 0.0051 away.
    assert CliRunner().invoke(app, ["check", str(run), "--source", "cagnet-readme", "--tolerance", "0.001"]
                              ).exit_code == 1


def test_check_without_published_row_is_an_error(tmp_path):
    run = write_record(tmp_path, "syn", "spnet", "synthetic", "synthetic-9-3", 0, _published_plus(0.0, "spnet"))
    result = CliRunner().invoke(app, ["check", str(run)])
    assert result.exit_code == 2 and "no published row" in result.output


def test_check_shows_a_missing_metric_as_a_dash_and_fails(tmp_path):
    metrics = _published_plus(0.0)
    metrics["PA"] = float("nan")
    run = write_record(tmp_path, "lacks-pa", "spnet-c", "voc12", "voc12-15-5", 0, metrics)
    result = CliRunner().invoke(app, ["check", str(run)])
    assert result.exit_code == 1
    (line,) = [ln for ln in result.output.splitlines() if " PA " in ln]
    cells = [c.strip() for c in line.split("│")[1:-1]]
    assert cells[2:6] == ["PA", "0.7755", "–", "–"] and "FAIL" in cells
