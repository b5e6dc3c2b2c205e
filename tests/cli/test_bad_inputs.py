"""The bad-input catalogue: every input a user can get wrong ends in one line naming the file or key,
a non-zero exit, no traceback and no half-written folder.

Add a case with one line in CASES: an id, the command's arguments, the expected exit code and a
regular expression the error line must match. In arguments `{tmp}` is the test's scratch folder,
`{file:NAME}` a file that `make` (a function of that folder) wrote there first. Every case runs
with `--out {tmp}/runs` where the command takes one, and the test checks that no `runs` folder
(nor any other output folder named in the case) is left behind.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers.bad_inputs import MAKERS, SECRET, environment_of
from zsseg_bench.cli import app

runner = CliRunner()


SMALL = [a for v in ("train.iterations=2", "dataset.n_train=8", "dataset.n_test=4", "dataset.size=32",
                     "data.batch_size=4", "backbone.width=8") for a in ("--set", v)]


@dataclass
class Case:
    id: str
    args: list[str]
    code: int
    pattern: str
    make: str | None = None  # a MAKERS entry that writes the files the case names
    leftovers: list[str] = field(default_factory=lambda: ["runs"])


def run(*extra):
    return ["run", "spnet", *extra]


# A folder nobody may write to, root included (the tests may run as root, which ignores chmod).
READ_ONLY = "/sys/zsbench-read-only"


CASES = [
    # ---- zsbench run: names, options, config values -------------------------------------------
    Case("unknown-method", ["run", "nosuch"], 2, r"nosuch"),
    Case("unknown-dataset", ["run", "spnet", "--dataset", "nosuch"], 2, r"unknown dataset 'nosuch'"),
    Case("unknown-split", ["run", "spnet", "--split", "nosuch"], 2, r"nosuch"),
    Case("bad-seeds", ["run", "spnet", "--seeds", "a,b"], 2, r"comma-separated integers"),
    Case("empty-seeds", ["run", "spnet", "--seeds", ","], 2, r"--seeds"),
    Case("negative-seed", ["run", "spnet", "--seeds", "-1"], 2, r"--seeds"),
    Case("repeated-seed", ["run", "spnet", "--seeds", "0,0"], 2, r"--seeds '0,0': expected distinct"),
    Case("no-cuda", ["run", "spnet", "--device", "cuda"], 2, r"no CUDA device"),
    Case("bogus-device", ["run", "spnet", "--device", "tpu"], 2, r"tpu"),
    Case("gpus-zero", ["run", "spnet", "--gpus", "0"], 2, r"--gpus"),
    Case("set-without-equals", run("--set", "train.lr"), 2, r"train\.lr"),
    Case("set-unknown-key", run("--set", "train.lrr=1"), 2, r"train\.lrr"),
    Case("lr-string", run("--set", "train.lr=fast"), 2, r"train\.lr"),
    Case("lr-nan", run("--set", "train.lr=nan"), 2, r"train\.lr"),
    Case("lr-dot-nan", run("--set", "train.lr=.nan"), 2, r"train\.lr"),
    Case("lr-inf", run("--set", "train.lr=.inf"), 2, r"train\.lr"),
    Case("lr-negative", run("--set", "train.lr=-1"), 2, r"train\.lr"),
    Case("momentum-negative", run("--set", "train.momentum=-0.5"), 2, r"train\.momentum"),
    Case("weight-decay-string", run("--set", "train.weight_decay=lots"), 2, r"train\.weight_decay"),
    Case("iterations-zero", run("--set", "train.iterations=0"), 2, r"train\.iterations"),
    Case("iterations-float", run("--set", "train.iterations=2.5"), 2, r"train\.iterations"),
    Case("width-negative", run("--set", "backbone.width=-4"), 2, r"backbone\.width"),
    Case("backbone-int", run("--set", "backbone=7"), 2, r"backbone"),
    Case("backbone-unknown", run("--set", "backbone.name=resnet9000"), 2, r"resnet9000"),
    Case("size-too-big", run("--set", "dataset.size=1000"), 2, r"dataset\.size"),
    Case("size-string", run("--set", "dataset.size=abc"), 2, r"dataset\.size"),
    Case("n-train-negative", run("--set", "dataset.n_train=-1"), 2, r"dataset\.n_train"),
    Case("n-test-zero", run("--set", "dataset.n_test=0"), 2, r"dataset\.n_test"),
    Case("batch-size-zero", run("--set", "data.batch_size=0"), 2, r"data\.batch_size"),
    Case("log-every-zero", run("--set", "log_every=0"), 2, r"log_every"),
    Case("absent-bogus", run("--set", "eval.absent=bogus"), 2, r"eval\.absent"),
    Case("eval-mode-bogus", run("--set", "eval.mode=bogus"), 2, r"eval\.mode"),
    Case("checkpoint-every-negative", run("--set", "engine.checkpoint_every=-1"), 2, r"checkpoint_every"),
    Case("precision-bogus", run("--set", "engine.precision=fp8"), 2, r"precision"),
    Case("gamma-string", ["run", "spnet-c", "--set", "calibration.gamma=high"], 2, r"calibration\.gamma"),
    Case("card-lr-string", ["run", "fastcard"], 2, r"fastcard\.yaml.*train\.lr", make="fast_card"),
    Case("resume-and-method", ["run", "spnet", "--resume", "{tmp}"], 2, r"--resume"),
    Case("resume-not-a-run", ["run", "--resume", "{tmp}"], 2, r"not a run folder"),
    Case("resume-finished-run", ["run", "--resume", "{tmp}/rec"], 2, r"finished", make="honest_record"),
    Case("resume-without-checkpoint", ["run", "--resume", "{tmp}/rec"], 2, r"no training checkpoint",
         make="interrupted_record"),
    Case("init-missing", run("--init", "{tmp}/none.pt"), 2, r"none\.pt: no such file"),
    Case("init-not-torch", run("--init", "{file:junk.pt}"), 2, r"junk\.pt: not a readable", make="junk"),
    Case("init-runs-code", run("--init", "{file:evil.pt}"), 2, r"evil\.pt: refused", make="evil_torch"),
    Case("init-empty-dict", run("--init", "{file:empty.pt}"), 2, r"empty\.pt: unrecognised", make="empty_torch"),
    Case("out-is-a-file", ["run", "spnet", "--out", "{file:taken}"], 2, r"taken", make="taken"),
    Case("out-read-only", ["run", "spnet", "--out", READ_ONLY + "/runs"], 2, r"zsbench-read-only"),
    Case("out-under-a-file", ["run", "spnet", "--out", "{file:taken}/runs"], 2, r"taken", make="taken"),
    Case("split-file-classes-abs", ["run", "spnet", "--split", "{file:evil-split.yaml}"], 2,
         r"class list '/.*must be the bare name", make="split_abs"),
    Case("split-file-classes-dotdot", ["run", "spnet", "--split", "{file:up-split.yaml}"], 2,
         r"class list '\.\./.*must be the bare name", make="split_up"),
    Case("split-file-malformed", ["run", "spnet", "--split", "{file:broken.yaml}"], 2, r"broken\.yaml",
         make="split_broken"),
    # ---- zsbench validate ---------------------------------------------------------------------
    Case("validate-classes-abs", ["validate", "{file:evil-split.yaml}"], 1, r"must be the bare name", make="split_abs"),
    Case("validate-missing", ["validate", "{tmp}/none.yaml"], 1, r"none\.yaml"),
    # ---- zsbench score ------------------------------------------------------------------------
    Case("score-missing", ["score", "{tmp}/none.npy", "--split", "synthetic-9-3"], 2, r"not a readable \.npy"),
    Case("score-npz", ["score", "{file:m.npz}", "--split", "synthetic-9-3"], 2, r"m\.npz", make="npz"),
    Case("score-float", ["score", "{file:float.npy}", "--split", "synthetic-9-3"], 2, r"float\.npy.*integer",
         make="matrices"),
    Case("score-nan", ["score", "{file:nan.npy}", "--split", "synthetic-9-3"], 2, r"nan\.npy.*integer",
         make="matrices"),
    Case("score-inf", ["score", "{file:inf.npy}", "--split", "synthetic-9-3"], 2, r"inf\.npy.*integer",
         make="matrices"),
    Case("score-complex", ["score", "{file:complex.npy}", "--split", "synthetic-9-3"], 2, r"complex\.npy.*integer",
         make="matrices"),
    Case("score-uint64-overflow", ["score", "{file:huge.npy}", "--split", "synthetic-9-3"], 2, r"huge\.npy",
         make="matrices"),
    Case("score-negative", ["score", "{file:negative.npy}", "--split", "synthetic-9-3"], 2, r"negative\.npy",
         make="matrices"),
    Case("score-wrong-shape", ["score", "{file:shape.npy}", "--split", "synthetic-9-3"], 2, r"shape\.npy",
         make="matrices"),
    Case("score-pickle", ["score", "{file:object.npy}", "--split", "synthetic-9-3"], 2, r"object\.npy",
         make="matrices"),
    Case("score-unknown-split", ["score", "{file:shape.npy}", "--split", "nosuch"], 2, r"nosuch", make="matrices"),
    Case("score-bad-absent", ["score", "{file:good.npy}", "--split", "synthetic-9-3", "--absent", "x"], 2,
         r"--absent", make="matrices"),
    # ---- zsbench table / check / report on records -------------------------------------------
    Case("table-missing", ["table", "{tmp}/none"], 2, r"none: no such run folder"),
    Case("table-empty", ["table", "{tmp}"], 2, r"no run records"),
    Case("table-metrics-list", ["table", "{tmp}/rec"], 2, r"metrics\.json", make="metrics_list"),
    Case("table-metric-string", ["table", "{tmp}/rec"], 2, r"metrics\.json: hIoU", make="metric_string"),
    Case("table-doctored-metric", ["table", "{tmp}/rec"], 2, r"metrics\.json: hIoU is 0\.99", make="doctored"),
    Case("check-doctored-metric", ["check", "{tmp}/rec"], 2, r"metrics\.json: hIoU is 0\.99", make="doctored"),
    Case("report-doctored-metric", ["report", "{tmp}/rec", "-o", "{tmp}/rep"], 2, r"metrics\.json: hIoU",
         make="doctored", leftovers=["rep"]),
    Case("table-forged-sha", ["table", "{tmp}/rec"], 2, r"run\.json: recorded split", make="forged_sha"),
    Case("check-forged-sha", ["check", "{tmp}/rec"], 2, r"run\.json: recorded split", make="forged_sha"),
    Case("report-forged-sha", ["report", "{tmp}/rec", "-o", "{tmp}/rep"], 2, r"run\.json: recorded split",
         make="forged_sha", leftovers=["rep"]),
    Case("table-no-method", ["table", "{tmp}/rec"], 2, r"run\.json.*method", make="no_method"),
    Case("table-corrupt-run-json", ["table", "{tmp}/rec"], 2, r"run\.json: unreadable", make="corrupt_run_json"),
    Case("table-newer-schema", ["table", "{tmp}/rec"], 2, r"schema_version 99", make="newer_schema"),
    Case("table-corrupt-metrics", ["table", "{tmp}/rec"], 2, r"metrics\.json: corrupt", make="corrupt_metrics"),
    Case("table-bad-metric-column", ["table", "{tmp}/rec", "--metrics", "hiou"], 2, r"--metrics", make="honest_record"),
    Case("table-against-alone", ["table", "{tmp}/rec", "--against", "voc12"], 2, r"--against",
         make="honest_record"),
    Case("table-out-is-folder-file", ["table", "{tmp}/rec", "--out", "{file:taken}/t"], 2, r"taken",
         make="honest_and_taken"),
    Case("table-out-read-only", ["table", "{tmp}/rec", "--out", READ_ONLY + "/t"], 2, r"zsbench-read-only",
         make="honest_record"),
    Case("check-negative-tolerance", ["check", "{tmp}/rec", "--tolerance", "-1"], 2, r"--tolerance",
         make="honest_record"),
    Case("check-no-published-row", ["check", "{tmp}/rec"], 2, r"no published row", make="honest_record"),
    Case("check-unknown-source", ["check", "{tmp}/rec", "--source", "nosuch"], 2, r"nosuch", make="honest_record"),
    Case("report-out-is-a-file", ["report", "{tmp}/rec", "-o", "{file:taken}"], 2, r"taken", make="honest_and_taken"),
    Case("report-out-read-only", ["report", "{tmp}/rec", "-o", READ_ONLY + "/rep"], 2, r"zsbench-read-only",
         make="honest_record"),
    Case("predict-out-read-only", ["predict", "{tmp}/rec", "{file:a.png}", "-o", READ_ONLY], 2,
         r"zsbench-read-only", make="weights_only"),
    # ---- zsbench predict ----------------------------------------------------------------------
    Case("predict-not-a-run", ["predict", "{tmp}", "{file:a.png}", "-o", "{tmp}/pred"], 2, r"run", make="png",
         leftovers=["pred"]),
    Case("predict-no-weights", ["predict", "{tmp}/rec", "{file:a.png}", "-o", "{tmp}/pred"], 2, r"final\.pt",
         make="honest_png", leftovers=["pred"]),
    Case("predict-bomb", ["predict", "{tmp}/rec", "{file:bomb.png}", "-o", "{tmp}/pred"], 2, r"bomb\.png",
         make="weights_bomb", leftovers=["pred"]),
    Case("predict-not-an-image", ["predict", "{tmp}/rec", "{file:junk.pt}", "-o", "{tmp}/pred"], 2, r"junk\.pt",
         make="weights_junk", leftovers=["pred"]),
    Case("predict-missing-image", ["predict", "{tmp}/rec", "{tmp}/none.png", "-o", "{tmp}/pred"], 2, r"none\.png",
         make="weights_only", leftovers=["pred"]),
    Case("predict-out-is-a-file", ["predict", "{tmp}/rec", "{file:a.png}", "-o", "{file:taken}"], 2, r"taken",
         make="weights_taken"),
    Case("predict-evil-weights", ["predict", "{tmp}/rec", "{file:a.png}", "-o", "{tmp}/pred"], 2,
         r"final\.pt: refused", make="weights_evil", leftovers=["pred"]),
    Case("predict-bad-size", ["predict", "{tmp}/rec", "{file:a.png}", "-o", "{tmp}/pred", "--input-size", "-3"],
         2, r"--input-size", make="weights_only", leftovers=["pred"]),
    # ---- zsbench data / eval / published / ls / bench -----------------------------------------
    Case("data-check-unknown-dataset", ["data", "check", "nosuch", "--data-root", "{tmp}"], 2, r"nosuch"),
    Case("data-check-missing-root", ["data", "check", "voc12", "--data-root", "{tmp}/none"], 1, r"none"),
    Case("data-check-negative-limit", ["data", "check", "voc12", "--data-root", "{tmp}/voc", "--limit", "-1"], 2,
         r"--limit", make="voc"),
    Case("data-stats-out-of-range", ["data", "stats", "voc12", "--data-root", "{tmp}/voc"], 1, r"label value",
         make="voc_bad_values"),
    Case("eval-missing-word-vectors", ["eval", "--checkpoint", "{tmp}/none.pth", "--method", "cagnet-pi",
                                       "--dataset", "voc12", "--data-root", "{tmp}/voc"], 2, r"fasttext\.pkl", make="voc"),
    Case("eval-no-dataset", ["eval", "--checkpoint", "{tmp}/none.pth", "--method", "cagnet-pi", "--dataset", "voc12",
                             "--data-root", "{tmp}"], 2, r"no Pascal-VOC layout"),
    Case("published-unknown-source", ["published", "--source", "nosuch"], 2, r"nosuch"),
    Case("ls-unknown", ["ls", "things"], 2, r"choose methods"),
    Case("bench-unknown-method", ["bench", "nosuch"], 2, r"nosuch"),
]


def _expand(arg: str, tmp: Path) -> str:
    arg = re.sub(r"\{file:([^}]+)\}", lambda m: str(tmp / m[1]), arg)
    return arg.replace("{tmp}", str(tmp))


def test_catalogue_is_large_and_ids_unique():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    assert all(c.make is None or c.make in MAKERS for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(tmp_path, monkeypatch, case: Case):
    if case.make:
        for key, value in environment_of(MAKERS[case.make](tmp_path)).items():
            monkeypatch.setenv(key, value)
    before = {p for p in tmp_path.rglob("*")}
    args = [_expand(a, tmp_path) for a in case.args]
    if args[0] == "run" and "--out" not in args:
        args += ["--out", str(tmp_path / "runs")]
    if args[0] == "run":  # tiny settings first (a case's own --set comes later and wins): a wrongly
        args[1:1] = SMALL     # accepted input then costs seconds, not a full training
        args.append("--no-report")
    result = runner.invoke(app, args, catch_exceptions=True)
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"traceback: {type(result.exception).__name__}: {result.exception}"
    assert "Traceback" not in output and SECRET not in output
    assert not (tmp_path / "marker").exists(), "a file ran code when loaded"
    assert result.exit_code == case.code, output
    lines = [ln for ln in output.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and re.search(case.pattern, lines[0]), output
    for name in case.leftovers:
        left = tmp_path / name
        assert left in before or not left.exists() or not any(left.iterdir()), f"{name} left behind"
    new = {p for p in tmp_path.rglob("*") if p not in before}
    assert not [p for p in new if p.name.endswith(".tmp")], "temporary files left behind"


def test_helpers_write_what_they_say(tmp_path):
    MAKERS["matrices"](tmp_path)
    assert np.load(tmp_path / "float.npy").dtype == np.float64
    MAKERS["metrics_list"](tmp_path)
    assert isinstance(json.loads((tmp_path / "rec" / "metrics.json").read_text()), list)
