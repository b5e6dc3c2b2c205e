"""`zsbench run` -> stored predictions -> `zsbench report`: every file the report writes is checked.

One tiny two-seed comparison (spnet, spnet-c; a few iterations on a few images) is made once for
the module through the CLI, so the acceptance line "zsbench run prints the path of its report"
is exercised on the real command.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from zsseg_bench.cli import app
from zsseg_bench.metrics.scores import harmonic
from zsseg_bench.report.palette import decode_palette_png, palette_for
from zsseg_bench.runs.records import RunRecord

TINY = ["--set", "train.iterations=3", "--set", "dataset.n_train=32", "--set", "dataset.n_test=24",
        "--set", "data.batch_size=8", "--set", "log_every=1", "--set", "eval.keep_predictions=4"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["run", "spnet", "spnet-c", "--seeds", "0,1", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    printed = re.search(r"report:(\S+?report\.md)", "".join(result.stdout.split()))  # rich wraps long paths
    assert printed, result.stdout
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder, Path(printed.group(1))


def _pngs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


def test_run_prints_its_report_and_the_report_exists(batch):
    folder, report_md = batch
    assert report_md == folder / "report" / "report.md"
    assert report_md.is_file() and report_md.with_suffix(".html").is_file()


def test_every_report_png_opens_has_size_mode_and_content(batch):
    folder, report_md = batch
    pngs = _pngs(report_md.parent)
    names = {p.name for p in pngs}
    for kind in ("scatter", "per_class_iou", "unseen_confusions", "training", "grid_s0", "grid_s1"):
        assert f"synthetic__synthetic-9-3__{kind}.png" in names
    for kind in ("scatter", "per_class_iou", "unseen_confusions", "training"):
        assert (report_md.parent / "figures" / f"synthetic__synthetic-9-3__{kind}.svg").stat().st_size > 1000
    for path in pngs:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.mode in ("RGB", "RGBA"), (path, image.mode)
            assert image.width >= 300 and image.height >= 200, (path, image.size)
            colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
            assert len(colours) > 1, f"{path} is blank"


def test_markdown_references_only_existing_files(batch):
    _, report_md = batch
    text = report_md.read_text()
    targets = re.findall(r"\]\(([^)]+)\)", text)
    assert len([t for t in targets if t.endswith(".png")]) >= 6
    for target in targets:
        assert not re.match(r"^[a-z]+://", target) and not target.startswith("/"), target
        assert (report_md.parent / target).is_file(), target
    for name in re.findall(r"`(comparison\.[a-z]+)`", text):
        assert (report_md.parent / name).is_file(), name


def test_report_content_table_protocol_environment(batch):
    _, report_md = batch
    text = report_md.read_text()
    # no published numbers for the synthetic benchmark: no column of dashes, and the report says why
    assert "hIoU pub" not in text and "Δ hIoU" not in text
    assert "No published numbers exist for `synthetic/synthetic-9-3`" in text
    assert "reference only" in text
    for heading in ("## Comparison", "### Seen vs unseen", "### Per-class IoU", "### Where unseen pixels go",
                    "### Training curves", "### Qualitative results", "## Protocol of every run", "## Environment"):
        assert heading in text, heading
    assert "ignore_unseen_pixels" in text and "| full " in text  # training policy, evaluation mode
    assert "| left out (NaN) " in text  # the absent-class rule of every run
    assert "2.13" in text or "torch" in text
    html = report_md.with_suffix(".html").read_text()
    srcs = re.findall(r'src="([^"]+)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_stored_predictions_same_images_for_every_method_of_a_seed(batch):
    folder, _ = batch
    index = {}
    for run_json in folder.glob("*/run.json"):
        run = json.loads(run_json.read_text())
        stored = json.loads((run_json.parent / "predictions" / "index.json").read_text())
        assert len(stored["images"]) == 4
        index[(run["method"], run["seed"])] = [e["index"] for e in stored["images"]]
        assert all(e["has_unseen"] for e in stored["images"])  # enough test images show an unseen class
        palette = palette_for("synthetic")
        for e in stored["images"]:
            path = run_json.parent / "predictions" / e["file"]
            ids = decode_palette_png(path)
            assert ids.shape == (e["height"], e["width"])
            with Image.open(path) as image:
                assert image.mode == "P"
                rgb = np.asarray(image.convert("RGB"))
            assert (rgb == palette[ids]).all()  # the PNG carries the dataset's palette
            assert set(np.unique(ids)) <= set(range(1, 13))  # object classes only: background is excluded
    assert index[("spnet", 0)] == index[("spnet-c", 0)]
    assert index[("spnet", 1)] == index[("spnet-c", 1)]


def test_report_replaces_its_own_folder_refuses_others_and_lists_failed_runs(batch, tmp_path):
    folder, _ = batch
    mixed = tmp_path / "mixed"
    shutil.copytree(next(folder.glob("spnet__*s0*")), mixed / "ok-run", ignore=shutil.ignore_patterns("ckpt"))
    failed = RunRecord.create(mixed, "broken-run")
    failed.write_json("run.json", {"run_id": "broken-run", "status": "failed", "error": "loss 'loss' is nan",
                                   "method": "spnet", "seed": 0, "dataset": {"name": "synthetic"},
                                   "split": {"name": "synthetic-9-3"}})
    out = tmp_path / "report"
    runner = CliRunner()
    for _ in range(2):  # the second time replaces the first report
        result = runner.invoke(app, ["report", str(mixed), "-o", str(out), "--show-unscored"])
        assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert "## Runs not finished" in text and "broken-run" in text and "loss 'loss' is nan" in text
    assert "raw predictions (every pixel)" not in text  # that note is drawn in the figure, not the text
    assert not list(tmp_path.glob(".report.tmp-*"))

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["report", str(mixed), "-o", str(foreign)])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "not a zsbench report folder" in result.stderr
    assert (foreign / "notes.txt").read_text() == "mine"

    result = runner.invoke(app, ["report", str(tmp_path / "nothing-here"), "-o", str(tmp_path / "r2")])
    assert result.exit_code == 2 and "no such run folder" in result.stderr


def test_published_points_comparable_only_for_the_same_split():
    from zsseg_bench.report.build import _published_points

    same, comparable = _published_points("voc12", "voc12-15-5", None)
    assert comparable and set(same["dataset"]) == {"voc12"} and not same.duplicated("method").any()
    ref, comparable = _published_points("synthetic", "synthetic-9-3", None)
    assert not comparable and {"voc12", "context", "cocostuff"} <= set(ref["dataset"])
    assert set(ref["protocol"]) == {"gzs3"}


def test_hiou_iso_curve_has_the_stated_harmonic_mean():
    from zsseg_bench.report.plots import hiou_curve

    s = np.linspace(0.05, 1, 50)
    for h in (0.1, 0.4, 0.8):
        u = hiou_curve(h, s)
        ok = ~np.isnan(u)
        assert ok.any()
        assert np.allclose([harmonic(a, b) for a, b in zip(s[ok], u[ok])], h)


def test_cli_start_up_does_not_import_matplotlib():
    code = "import sys, zsseg_bench.cli; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_grid_cells_use_the_palette_and_outline_unseen_regions():
    from zsseg_bench.report.grids import label_picture

    palette = palette_for("synthetic")
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[2:6, 2:6] = 4  # sheep, unseen in synthetic-9-3
    plain = label_picture(mask, palette, unseen_ids=(), shape=(16, 16))
    assert plain.shape == (16, 16, 3) and (plain == palette[np.kron(mask, np.ones((2, 2), int))]).all()
    outlined = label_picture(mask, palette, unseen_ids=(4,), shape=(16, 16))
    assert (outlined[4, 4:12] == 255).all() and (outlined[5, 5:11] == 0).all()  # white edge, black inner line
    assert (outlined[7, 7] == palette[4]).all() and (outlined[0, 0] == palette[0]).all()


def test_scatter_with_comparable_published_points(tmp_path):
    import pandas as pd

    from zsseg_bench.report.build import _published_points
    from zsseg_bench.report.plots import seen_unseen_scatter

    published, comparable = _published_points("voc12", "voc12-15-5", None)
    ours = pd.DataFrame({"method": ["spnet", "spnet", "zs3net"], "seed": [0, 1, 0], "S-mIoU": [0.7, 0.72, 0.75],
                         "U-mIoU": [0.02, 0.01, 0.2]})
    png, svg = seen_unseen_scatter(ours, published, tmp_path / "scatter", "voc12", comparable)
    with Image.open(png) as image:
        assert image.width > 400 and len(image.convert("RGB").getcolors(maxcolors=1 << 24)) > 1
    assert svg.read_text().startswith("<?xml")
