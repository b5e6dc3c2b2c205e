"""Metric conventions, each checked against numbers computed by hand (see the fractions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.metrics import METRICS, ConfusionMeter, ScoringRule, compute_scores, confusion_matrix
from zsseg_bench.metrics.scores import METRIC_NAMES, class_stats, harmonic

# Rows = ground truth, columns = prediction; classes [background, cat, cow, dog, sheep, train].
# cow is absent (no ground truth, never predicted); train has no ground truth but is predicted.
HAND = np.array([
    [50, 5, 0, 0, 5, 0],
    [10, 30, 0, 5, 5, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 10, 0, 20, 0, 0],
    [5, 5, 0, 0, 10, 5],
    [0, 0, 0, 0, 0, 0],
])
SEEN = np.array([True, True, True, True, False, False])

# By hand. Default (absent NaN, background a seen class): IoU bg 50/75, cat 30/70, dog 20/35,
# sheep 10/35, train 0/5; Acc bg 50/60, cat 30/50, dog 20/30, sheep 10/25.
EXPECTED = {
    ("nan", "seen"): {
        "S-mIoU": 5 / 9, "U-mIoU": 1 / 7, "hIoU": 10 / 44, "mIoU": (2 / 3 + 3 / 7 + 4 / 7 + 2 / 7 + 0) / 5,
        "PA": 110 / 165, "MA": 2.5 / 4, "S-PA": 100 / 140, "U-PA": 10 / 25, "S-MA": 2.1 / 3, "U-MA": 0.4,
    },
    # ZS3Net: undefined per-class values count as 0 (cow IoU/Acc, train Acc).
    ("zero", "seen"): {
        "S-mIoU": 5 / 12, "U-mIoU": 1 / 7, "hIoU": 10 / 47, "mIoU": 41 / 126,
        "PA": 110 / 165, "MA": 2.5 / 6, "S-PA": 100 / 140, "U-PA": 10 / 25, "S-MA": 2.1 / 4, "U-MA": 0.2,
    },
    # SPNet/CaGNet on a matrix with background: its row dropped, predicting it is a miss.
    # IoU cat 30/65, dog 20/35, sheep 10/30, train 0.
    ("nan", "excluded"): {
        "S-mIoU": 47 / 91, "U-mIoU": 1 / 6, "hIoU": 94 / 373, "mIoU": (6 / 13 + 4 / 7 + 1 / 3 + 0) / 4,
        "PA": 60 / 105, "MA": (0.6 + 2 / 3 + 0.4) / 3, "S-PA": 50 / 80, "U-PA": 0.4, "S-MA": (0.6 + 2 / 3) / 2,
        "U-MA": 0.4,
    },
}


@pytest.mark.parametrize("absent,background", list(EXPECTED))
def test_hand_computed_conventions(absent, background):
    scores = compute_scores(HAND, SEEN, rule=ScoringRule(absent, background), background_index=0)
    for name, value in EXPECTED[(absent, background)].items():
        assert scores.metrics[name] == pytest.approx(value, abs=1e-12), name


def test_per_class_table_default():
    pc = compute_scores(HAND, SEEN, ["bg", "cat", "cow", "dog", "sheep", "train"], background_index=0).per_class
    assert pc.loc[2, "iou"] != pc.loc[2, "iou"]  # absent class: NaN
    assert pc.loc[5, "iou"] == 0.0  # predicted, never present: IoU 0
    assert math.isnan(pc.loc[5, "acc"])
    assert list(pc["subset"]) == ["seen"] * 4 + ["unseen"] * 2
    assert pc["gt_pixels"].sum() == HAND.sum()


def test_background_excluded_marks_class():
    pc = compute_scores(HAND, SEEN, rule=ScoringRule(background="excluded"), background_index=0).per_class
    assert pc.loc[0, "subset"] == "excluded" and math.isnan(pc.loc[0, "iou"])


def test_every_metric_is_registered_once_in_the_source_tables_order():
    assert METRIC_NAMES == ("hIoU", "mIoU", "PA", "MA", "S-mIoU", "U-mIoU", "S-PA", "U-PA", "S-MA", "U-MA")
    assert [name for name, _ in METRICS.items()] == list(METRIC_NAMES)
    assert all(METRICS.get(name).higher_is_better for name in METRIC_NAMES)
    assert list(compute_scores(HAND, SEEN).metrics) == list(METRIC_NAMES)


def test_each_metric_is_a_function_of_the_class_statistics_alone():
    stats = class_stats(HAND, SEEN, ScoringRule(), background_index=0)
    expected = EXPECTED[("nan", "seen")]
    for name, metric in METRICS.items():
        assert metric.fn(stats) == pytest.approx(expected[name], abs=1e-12), name


def test_ls_metrics_reads_the_direction_from_the_registry():
    from typer.testing import CliRunner

    from zsseg_bench.cli import app

    result = CliRunner().invoke(app, ["ls", "metrics"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and all(name in result.output for name in METRIC_NAMES)
    assert "yes" in result.output and " no" not in result.output


def test_harmonic_rules():
    assert harmonic(0.0, 0.0) == 0.0
    assert harmonic(0.5, 0.25) == pytest.approx(1 / 3)
    assert math.isnan(harmonic(float("nan"), 0.2))


def _numpy_confusion(pred, target, k, ignore):
    keep = target != ignore
    return np.bincount(target[keep] * k + pred[keep], minlength=k * k).reshape(k, k)


def test_confusion_matches_numpy_reference_with_ignore():
    rng = np.random.default_rng(0)
    k = 7
    target = rng.integers(0, k, (3, 40, 50))
    target[rng.random(target.shape) < 0.2] = 255
    pred = rng.integers(0, k, (3, 40, 50))
    ours = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), k, 255).numpy()
    np.testing.assert_array_equal(ours, _numpy_confusion(pred, target, k, 255))
    assert ours.sum() == (target != 255).sum()


def test_meter_sums_batches_like_one_matrix():
    rng = np.random.default_rng(1)
    target = torch.from_numpy(rng.integers(0, 5, (6, 16, 16)))
    pred = torch.from_numpy(rng.integers(0, 5, (6, 16, 16)))
    meter = ConfusionMeter(5)
    for i in range(0, 6, 2):
        meter.update(pred[i:i + 2], target[i:i + 2])
    np.testing.assert_array_equal(meter.numpy(), confusion_matrix(pred, target, 5).numpy())


@pytest.mark.parametrize("bad", [9, 300, -3])
def test_label_outside_classes_is_a_clear_error(bad):
    with pytest.raises(ZsbenchError, match=f"label value {bad} is outside the 5 evaluation classes"):
        confusion_matrix(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, bad, 255]), 5)


def test_meter_reports_bad_label_when_read():
    meter = ConfusionMeter(5)
    meter.update(torch.zeros(3, dtype=torch.long), torch.tensor([0, 7, 255]))
    with pytest.raises(ZsbenchError, match="label value 7"):
        meter.numpy()


def test_masked_path_for_small_ignore_index():
    # ignore -1 (SPNet's convention) cannot use the extended bins; the masked path must agree.
    target = torch.tensor([0, 1, -1, 2, 1])
    pred = torch.tensor([0, 2, 1, 2, 1])
    m = confusion_matrix(pred, target, 3, ignore_index=-1).numpy()
    np.testing.assert_array_equal(m, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])


def test_metrics_never_average_per_image():
    # Two images: one tiny with a perfect prediction, one large and wrong. Per-image averaging
    # would give IoU 0.5; the dataset-level matrix gives 1/101.
    meter = ConfusionMeter(2)
    meter.update(torch.tensor([1]), torch.tensor([1]))
    meter.update(torch.zeros(100, dtype=torch.long), torch.ones(100, dtype=torch.long))
    iou = compute_scores(meter.numpy(), [True, True]).per_class["iou"]
    assert iou[1] == pytest.approx(1 / 101)
