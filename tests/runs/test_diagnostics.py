"""Mechanism diagnostics: the dead-mechanism rules, the own-class share of generated features, the
warning at the end of `zsbench run` for a contextual module killed by a huge KL weight, and probes
that leave training exactly as it is without them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.settings import tiny
from zsseg_bench.cli import app
from zsseg_bench.methods.common.diagnostics import nearest_mean_shares
from zsseg_bench.runs.diagnostics import dead_mechanisms, warning_lines
from zsseg_bench.runs.train import RunRequest, run_one

runner = CliRunner()

LIVE = {"diagnostics": {"context": [{"after": "step1", "kld": 0.05, "zero_share": 0.4, "mu_abs": 0.2, "logvar": 0.1}],
                        "generated_features": [{"after": "mixed", "unseen_mean": 0.4, "chance": 0.083, "part": "val"}],
                        "val_trajectory": [{"label": "mixed", "iteration": 120, "seen_miou": 0.5, "unseen_miou": 0.2}]},
        "self_training": {"pseudo_label_check": {"background_share": 0.3, "pixels": 1000}}}


def _facts(**changes):
    facts = json.loads(json.dumps(LIVE))
    for path, value in changes.items():
        node = facts
        *parents, last = path.split(".")
        for part in parents:
            node = node[part] if not isinstance(node, list) else node[int(part)]
        node[last] = value
    return facts


def test_live_mechanisms_raise_no_warning():
    assert dead_mechanisms(LIVE) == [] and dead_mechanisms({}) == [] and dead_mechanisms(None) == []


@pytest.mark.parametrize("path,value,says", [
    ("diagnostics.context.0.zero_share", 0.97, "contextual module dead after step1: 97.0 % of its outputs exactly 0"),
    ("diagnostics.context.0.kld", 6e-6, "KL 6e-06 (limit 0.0001)"),
    ("diagnostics.generated_features.0.unseen_mean", 0.05, "mean own-class share 0.050 below chance 0.083"),
    ("self_training.pseudo_label_check.background_share", 0.94, "94.0 % of 1000 pseudo-labelled pixels"),
    ("diagnostics.val_trajectory.0.unseen_miou", 0.0, "no unseen class learnt by the end of mixed: val U-mIoU 0.000"),
])
def test_each_rule_fires_past_its_threshold(path, value, says):
    (line,) = dead_mechanisms(_facts(**{path: value}))
    assert says in line
    (named,) = warning_lines([{"method": "cagnet-pi", "seed": 2, "method_facts": _facts(**{path: value})}])
    assert named.startswith("cagnet-pi seed 2: ")


def test_report_row_gives_each_probed_stages_last_val_scores():
    from zsseg_bench.report.diagnostics import diagnostics_table

    trajectory = [{"label": "seg", "iteration": i, "seen_miou": 0.1 * i, "unseen_miou": 0.05 * i} for i in (0, 1, 2)]
    trajectory.append({"label": "retraining", "iteration": 4, "seen_miou": 0.7, "unseen_miou": None})
    table = diagnostics_table([("simformer", 0, {"method_facts": {"diagnostics": {"val_trajectory": trajectory}}})])
    assert table.loc[0, "val S/U-mIoU at stage ends"] == "seg 0.200/0.100, retraining 0.700/–"


def test_own_class_share_is_the_nearest_real_mean():
    means = torch.eye(3)  # class means at the unit vectors; class 2 absent from the real images
    present = torch.tensor([True, True, False])
    fake = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.0, 0.1], [0.7, 0.2, 0.0], [0.1, 0.9, 0.0], [0.0, 0.1, 0.9]])
    label = torch.tensor([0, 0, 1, 1, 2])
    shares = nearest_mean_shares(means, present, fake, label)
    # class 0: both own; class 1: one of two; class 2 has no real mean, so its feature cannot be own
    assert shares.tolist() == [1.0, 0.5, 0.0]
    assert torch.isnan(nearest_mean_shares(means, present, fake[:2], label[:2])[1])


@pytest.mark.slow
def test_a_huge_kl_weight_kills_the_contextual_module_and_the_run_says_so(tmp_path):
    sets = [a for o in [*tiny("cagnet-pi"), "step1.lambdas.B_KLD=1000"] for a in ("--set", o)]
    result = runner.invoke(app, ["run", "cagnet-pi", "--out", str(tmp_path), "--no-report", *sets])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()
    assert any(line.startswith("warning: dead mechanism: cagnet-pi seed 0: contextual module dead after step1")
               for line in last[-3:]), result.output
    (run,) = tmp_path.glob("*/cagnet-pi__*")
    assert "warning: dead mechanism: cagnet-pi seed 0: contextual module dead" in (run.parent / "console.log").read_text()
    context = json.loads((run / "run.json").read_text())["method_facts"]["diagnostics"]["context"]
    assert context[0]["kld"] < 1e-4  # the KL rule (the share of zeros need not pass its limit too)
    logged = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert all("ctx_zero" in e["losses"] for e in logged if e["stage"] == "step1")


def _run(tmp_path, name: str, extra: list[str]):
    torch.set_num_threads(1)
    req = RunRequest(method="cagnet-pi", overrides=[*tiny("cagnet-pi"), *extra], out=tmp_path / name)
    return run_one(req)


@pytest.mark.slow
def test_probes_leave_training_exactly_as_without_them(tmp_path):
    probed, plain = _run(tmp_path, "on", []), _run(tmp_path, "off", ["diagnostics=false"])
    assert np.array_equal(np.load(probed / "confusion.npy"), np.load(plain / "confusion.npy"))
    on = json.loads((probed / "run.json").read_text())["method_facts"]
    assert "diagnostics" not in json.loads((plain / "run.json").read_text())["method_facts"]
    diag = on["diagnostics"]
    # finetune of 10 iterations in blocks of 5: probed before, after each block
    assert [p["iteration"] for p in diag["val_trajectory"]] == [0, 5, 10]
    assert all(0 <= p["seen_miou"] <= 1 for p in diag["val_trajectory"])
    assert [c["after"] for c in diag["generated_features"]] == ["step1", "mixed"]
    check = diag["generated_features"][-1]
    assert check["part"] == "val" and set(check["own_class_share"]) <= {"cat", "dog", "cow", "sheep", "car", "bus",
                                                                        "train", "boat", "chair", "sofa", "table",
                                                                        "tvmonitor"}
    assert check["chance"] == pytest.approx(1 / len(check["own_class_share"]), abs=1e-3)
    assert diag["seconds"] > 0
