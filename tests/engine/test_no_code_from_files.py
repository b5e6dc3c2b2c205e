"""No file handed to zsbench runs code when loaded: one test per loader feeds a pickle whose
loading would create a marker file, and asserts the marker never appears and the command
stops with one line (and no traceback)."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.settings import TINY
from zsseg_bench.cli import app

runner = CliRunner()


class Payload:
    """Unpickling this calls open(marker, 'w'): the marker file appears iff the pickle ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _sets(values):
    return [a for v in values for a in ("--set", v)]


def _refused(result, marker) -> None:
    assert not marker.exists(), "loading the file ran code from it"
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (AssertionError, TypeError))
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error: ") and "run Python code" in lines[-1], result.output


def _evil_state_dict(path, marker):
    torch.save({"conv.weight": torch.zeros(2, 2), "extra": Payload(marker)}, path)
    return path


@pytest.mark.parametrize("how", ["--init", "backbone.init"])
def test_backbone_weight_file(tmp_path, how):
    marker, evil = tmp_path / "marker", _evil_state_dict(tmp_path / "w.pt", tmp_path / "marker")
    args = ["--init", str(evil)] if how == "--init" else ["--set", f"backbone.init={evil}"]
    result = runner.invoke(app, ["run", "spnet", *args, "--out", str(tmp_path / "runs"), *_sets(TINY)])
    _refused(result, marker)
    assert not (tmp_path / "runs").exists()


def test_eval_checkpoint(tmp_path):
    from zsseg_bench.errors import ZsbenchError
    from zsseg_bench.methods.cagnet.official import read_official_checkpoint

    marker = tmp_path / "marker"
    path = tmp_path / "voc12_ourbest.pth"
    torch.save({"iteration": 1, "state_dict": {"w": torch.zeros(1)}, "x": Payload(marker)}, path)
    with pytest.raises(ZsbenchError, match="run Python code"):
        read_official_checkpoint(path)
    assert not marker.exists()


def test_embedding_pickle(tmp_path):
    from zsseg_bench.embeddings.providers import load_table
    from zsseg_bench.errors import ZsbenchError

    marker = tmp_path / "marker"
    path = tmp_path / "emb.pkl"
    path.write_bytes(pickle.dumps({"cat": np.ones(3), "dog": Payload(marker)}))
    with pytest.raises(ZsbenchError):
        load_table(path)
    assert not marker.exists()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished tiny SPNet run that kept its training checkpoint (ckpt/final.pt and ckpt/last.pt)."""
    out = tmp_path_factory.mktemp("runs")
    result = runner.invoke(app, ["run", "spnet", "--out", str(out), "--no-report", *_sets(TINY),
                                 *_sets(["engine.checkpoint_every=10", "engine.keep_training_state=true"])])
    assert result.exit_code == 0, result.output
    return next(p for p in out.glob("*/spnet__*") if p.is_dir())


def _with_payload(src, dst, marker):
    """`src` (a checkpoint the fixture just wrote) with a payload added, saved as `dst`.
    numpy's reconstructors are allowed so that this also reads checkpoints of older versions,
    which stored numpy RNG states (to run this file against them)."""
    core = getattr(np, "_core", None) or np.core
    allowed = [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    with torch.serialization.safe_globals(allowed):
        payload = torch.load(src, weights_only=True)
    payload["extra"] = {**payload.get("extra", {}), "x": Payload(marker)}
    torch.save(payload, dst)


def test_predict_final_weights(tmp_path, run_dir):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    _with_payload(run_dir / "ckpt" / "final.pt", run / "ckpt" / "final.pt", marker)
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (16, 16)).save(image)
    result = runner.invoke(app, ["predict", str(run), str(image), "-o", str(tmp_path / "pred")])
    _refused(result, marker)


def test_resume_training_checkpoint(tmp_path, run_dir):
    marker = tmp_path / "marker"
    batch = tmp_path / "batch"
    run = batch / run_dir.name
    shutil.copytree(run_dir, run)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    (run / "metrics.json").unlink()
    _with_payload(run_dir / "ckpt" / "last.pt", run / "ckpt" / "last.pt", marker)
    result = runner.invoke(app, ["run", "--resume", str(run), "--no-report"])
    _refused(result, marker)
    assert sorted(p.name for p in batch.iterdir()) == [run.name]  # no new run folder


def test_init_from_a_run_checkpoint(tmp_path, run_dir):
    marker = tmp_path / "marker"
    evil = tmp_path / "final.pt"
    _with_payload(run_dir / "ckpt" / "final.pt", evil, marker)
    result = runner.invoke(app, ["run", "spnet", "--init", str(evil), "--out", str(tmp_path / "runs"), *_sets(TINY)])
    _refused(result, marker)
