"""zsbench end to end on the synthetic benchmark with tiny settings, and its bad-input paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.metrics.test_metrics import EXPECTED, HAND
from zsseg_bench.cli import app
from zsseg_bench.metrics.scores import METRIC_NAMES

runner = CliRunner()


def _sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    from tests.helpers.settings import TINY

    out = tmp_path_factory.mktemp("runs")
    result = runner.invoke(app, ["run", "spnet", "spnet-c", "--out", str(out), *_sets(TINY)])
    assert result.exit_code == 0, result.output
    (batch_dir,) = out.iterdir()
    return batch_dir, result.output


def test_run_prints_table_with_both_methods_and_every_metric(batch):
    batch_dir, output = batch
    for name in ("spnet", "spnet-c", *METRIC_NAMES):
        assert name in output
    assert str(batch_dir) in output.replace("\n", "")
    md = (batch_dir / "comparison.md").read_text()
    assert all(m in md for m in METRIC_NAMES) and "| spnet-c" in md


def test_run_records_are_complete(batch):
    batch_dir, _ = batch
    runs = sorted((p.parent for p in batch_dir.glob("*/run.json")), key=lambda p: len(p.name.split("__")[0]))
    assert [p.name.split("__")[0] for p in runs] == ["spnet", "spnet-c"]
    for run in runs:
        names = {p.name for p in run.iterdir()}
        assert {"run.json", "config.yaml", "metrics.json", "per_class.csv", "confusion.npy", "train_log.jsonl",
                "ckpt"} <= names
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "ok" and info["split"]["sha256"] and info["environment"]["torch"]
    spnet_c = json.loads((runs[1] / "run.json").read_text())
    assert spnet_c["reused_stages"] == {"train": runs[0].name}  # SPNet-c only differs at inference
    assert spnet_c["method_facts"]["calibration"]["chosen_by"] == "heldout"


def test_score_reproduces_run_metrics(batch):
    batch_dir, _ = batch
    run = next(p for p in batch_dir.iterdir() if p.name.startswith("spnet-c__"))
    result = runner.invoke(app, ["score", str(run / "confusion.npy"), "--split", "synthetic-9-3", "--json"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)["metrics"]
    stored = json.loads((run / "metrics.json").read_text())
    for m in METRIC_NAMES:
        assert scored[m] == pytest.approx(stored[m], abs=1e-15, nan_ok=True)


def test_table_command_on_records(batch):
    batch_dir, _ = batch
    result = runner.invoke(app, ["table", str(batch_dir), "--metrics", "hIoU,U-mIoU"])
    assert result.exit_code == 0 and "spnet-c" in result.output


@pytest.mark.parametrize("absent,background", list(EXPECTED))
def test_score_hand_matrix_each_convention(tmp_path, hand_split, absent, background):
    path = tmp_path / "hand.npy"
    np.save(path, HAND)
    args = ["score", str(path), "--split", str(hand_split), "--absent", absent, "--json"]
    if background == "excluded":
        args += ["--background", "excluded"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    for name, value in EXPECTED[(absent, background)].items():
        assert metrics[name] == pytest.approx(value, abs=1e-12), name


@pytest.mark.parametrize("args,message", [
    (["run", "spnte"], "unknown method 'spnte' (did you mean 'spnet'"),
    (["run", "spnet", "--split", "voc12-15-5"], "is for dataset 'voc12', not 'synthetic'"),
    (["run", "spnet", "--set", "train.lr"], "expected key=value"),
    (["run", "spnet", "--set", "train.iterations=ten"], "spnet.yaml: train.iterations: 'ten' is not an integer; "),
    (["run", "cagnet-pi", "--set", "finetune.interval=[1]"], "cagnet-pi.yaml: finetune.interval: [1] is not an "),
    (["run", "spnet", "--set", "train.iteratons=10"], "train.iteratons: unknown key (did you mean 'iterations' or 'poly_iterations'?); "
                                                      "spnet's train keys: batch_size, head_lr_mult, iterations"),
    (["run", "cagnet-pi", "--set", "train.iterations=20"], "train.iterations: unknown key (did you mean "
                                                           "'step1.iterations' or 'finetune.iterations'?)"),
    (["run", "spnet", "spnet-c", "--set", "log_every=0"], "spnet.yaml: log_every: 0 must be >= 1; spnet's keys:"),
    (["run", "spnet", "--device", "cuda"], "no CUDA device"),
    (["run", "spnet", "--seeds", "a,b"], "comma-separated integers"),
    (["score", "missing.npy", "--split", "synthetic-9-3"], "missing.npy: not a readable .npy file"),
    (["ls", "things"], "choose methods"),
])
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, args, message):
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "runs")] if args[0] == "run" else args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "runs").exists()


def test_score_rejects_wrong_shape(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.ones((3, 3)))
    result = runner.invoke(app, ["score", str(path), "--split", "synthetic-9-3"])
    assert result.exit_code == 2 and "shape (3, 3)" in result.output and "12 evaluation classes" in result.output


@pytest.mark.parametrize("what", ["methods", "splits", "metrics", "datasets", "backbones", "embeddings"])
def test_ls(what):
    result = runner.invoke(app, ["ls", what])
    assert result.exit_code == 0, result.output


def test_invoked_command_is_rebuilt_from_parsed_arguments_when_argv_is_not_zsbench():
    # Under a test runner (or a notebook) argv is the host's; the record must still show the
    # command: subcommand, arguments, non-default options, and switched-off flags by their off form.
    import typer
    from typer.testing import CliRunner as TyperRunner

    from zsseg_bench.cli.app import command, invoked_command

    demo = typer.Typer()
    seen = {}

    @command("go", group=demo, path=("demo",))
    def go(name: str = typer.Argument(...), size: int = typer.Option(3, "--size"),
           tags: list[str] = typer.Option(None, "--tag"), report: bool = typer.Option(True, "--report/--no-report"),
           fast: bool = typer.Option(False, "--fast")):
        seen["command"] = invoked_command()

    @demo.callback()
    def main():
        pass

    result = TyperRunner().invoke(demo, ["go", "x", "--size", "5", "--tag", "a", "--tag", "b", "--no-report",
                                         "--fast"])
    assert result.exit_code == 0, result.output
    assert seen["command"] == "zsbench demo go x --size 5 --tag a --tag b --no-report --fast"
    TyperRunner().invoke(demo, ["go", "y"])
    assert seen["command"] == "zsbench demo go y"


def test_help_lists_the_commands_in_order():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    names = [line.split()[1] for line in result.output.splitlines()
             if line.startswith("│ ") and len(line.split()) > 2 and line.split()[1].isidentifier()]
    order = ["run", "score", "table", "check", "published", "validate", "ls", "report", "predict", "bench", "eval",
             "data"]
    assert [n for n in names if n in order] == order
