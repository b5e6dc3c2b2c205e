"""Files for the bad-input catalogue (tests/cli/test_bad_inputs.py): each maker writes into a scratch
folder what its cases name, and returns environment variables the case needs (or None)."""

from __future__ import annotations

import functools
import json
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SECRET = "TOPSECRET line one"  # must never appear in any output


class Payload:
    """Unpickling this would create `marker`: the catalogue's torch files must never run it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def honest_record(tmp: Path, status: str = "ok", metrics_edit=None, run_edit=None) -> Path:
    """An honest finished record of synthetic-9-3 (metrics computed from its confusion matrix) at tmp/rec."""
    from zsseg_bench.catalog.splits import load_split
    from zsseg_bench.metrics import ScoringRule, compute_scores
    from zsseg_bench.runs.records import SCHEMA_VERSION, RunRecord

    split = load_split("synthetic-9-3")
    k = split.num_classes
    confusion = np.random.default_rng(0).integers(0, 50, (k, k)) + np.eye(k, dtype=np.int64) * 400
    metrics = compute_scores(confusion, split.seen_mask, split.eval_names, ScoringRule()).metrics
    rec = RunRecord(tmp / "rec")
    rec.path.mkdir(parents=True)
    run = {"schema_version": SCHEMA_VERSION, "run_id": "rec", "status": status, "method": "spnet",
           "dataset": {"name": "synthetic", "root": None}, "seed": 0, "start": "2026-01-01T00:00:00Z",
           "split": {"name": split.name, "version": split.version, "sha256": split.sha256},
           "scoring": {"absent": "nan", "eval_mode": "full"}, "environment": {"git": {"commit": "abc"}}}
    if run_edit:
        run_edit(run)
    rec.write_json("run.json", run)
    rec.write_yaml("config.yaml", {"method": "spnet", "device": "cpu", "config": {}})
    if status == "ok":
        rec.write_confusion(confusion)
        metrics = dict(metrics)
        rec.write_json("metrics.json", metrics_edit(metrics) if metrics_edit else metrics)
    return rec.path


@functools.lru_cache(maxsize=1)
def _trained() -> Path:
    """One tiny trained SPNet run for the predict cases (made once per test process)."""
    from typer.testing import CliRunner

    from zsseg_bench.cli import app

    out = Path(tempfile.mkdtemp(prefix="zsbench-bad-inputs-"))
    sets = ["train.iterations=2", "dataset.n_train=8", "dataset.n_test=4", "dataset.size=32", "data.batch_size=4",
            "backbone.width=8", "backbone.init=null"]
    result = CliRunner().invoke(app, ["run", "spnet", "--out", str(out), "--no-report",
                                      *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    return next(out.glob("*/spnet__*"))


def _weights(tmp: Path) -> Path:
    shutil.copytree(_trained(), tmp / "rec")
    Image.new("RGB", (20, 16), (90, 120, 30)).save(tmp / "a.png")
    return tmp / "rec"


def _bomb(path: Path) -> None:
    """A PNG whose header claims 30000 x 30000 pixels (Pillow's decompression-bomb limit)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr:ihdr + 8] = struct.pack(">II", 30000, 30000)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    path.write_bytes(bytes(data))


def _split_file(tmp: Path, name: str, classes: str) -> None:
    from zsseg_bench.paths import splits_dir

    (tmp / "secret.txt").write_text(SECRET + "\n")
    text = (splits_dir() / "synthetic" / "synthetic-9-3.yaml").read_text()
    text = text.replace("name: synthetic-9-3", f"name: {name}").replace("classes: synthetic", f"classes: {classes}")
    (tmp / f"{name}.yaml").write_text(text)


def _matrices(tmp: Path) -> None:
    k = 12
    good = np.eye(k, dtype=np.int64) * 5
    np.save(tmp / "float.npy", good.astype(np.float64))
    np.save(tmp / "nan.npy", np.where(good > 0, np.nan, 0.0))
    np.save(tmp / "inf.npy", np.where(good > 0, np.inf, 0.0))
    np.save(tmp / "complex.npy", good.astype(np.complex128))
    np.save(tmp / "huge.npy", np.full((k, k), 2**63 + 5, dtype=np.uint64))
    np.save(tmp / "negative.npy", good - 10)
    np.save(tmp / "shape.npy", np.ones((3, 3), dtype=np.int64))
    np.save(tmp / "good.npy", good)
    np.save(tmp / "object.npy", np.array([{"a": 1}] * 4, dtype=object).reshape(2, 2), allow_pickle=True)


def _voc(tmp: Path, bad_values: bool = False) -> None:
    from tests.helpers.datasets import make_voc_devkit

    base = make_voc_devkit(tmp / "voc")
    if bad_values:
        for mask in (base / "SegmentationClass").glob("*.png"):
            Image.fromarray(np.full((24, 32), 99, dtype=np.uint8)).save(mask)


def _taken(tmp: Path) -> None:
    (tmp / "taken").write_text("a file, not a folder\n")


def _card(tmp: Path) -> dict:
    cards = tmp / "cards"
    (cards / "fast").mkdir(parents=True)
    (cards / "fast" / "fastcard.yaml").write_text("name: fastcard\nversion: 1\nimpl: spnet\ntitle: Fast\npaper: none\nbase: spnet\n"
                                               "config:\n  train: {lr: fast}\n")
    return {"ZSBENCH_CARDS": str(cards)}


def _edit_metrics(**fields):
    return lambda metrics: {**metrics, **fields}


MAKERS = {
    "fast_card": _card,
    "honest_record": honest_record,
    "interrupted_record": lambda tmp: honest_record(tmp, status="interrupted"),
    "junk": lambda tmp: (tmp / "junk.pt").write_bytes(b"not a torch file"),
    "evil_torch": lambda tmp: torch.save({"w": torch.zeros(1), "x": Payload(tmp / "marker")}, tmp / "evil.pt"),
    "empty_torch": lambda tmp: torch.save({}, tmp / "empty.pt"),
    "taken": _taken,
    "split_abs": lambda tmp: _split_file(tmp, "evil-split", str(tmp / "secret")),
    "split_up": lambda tmp: _split_file(tmp, "up-split", "../secret"),
    "split_broken": lambda tmp: (tmp / "broken.yaml").write_text("format: [1\nname: :::\n"),
    "npz": lambda tmp: np.savez(tmp / "m.npz", m=np.eye(12, dtype=np.int64)),
    "matrices": _matrices,
    "metrics_list": lambda tmp: honest_record(tmp, metrics_edit=lambda m: [1, 2]),
    "metric_string": lambda tmp: honest_record(tmp, metrics_edit=_edit_metrics(hIoU="high")),
    "doctored": lambda tmp: honest_record(tmp, metrics_edit=_edit_metrics(hIoU=0.99)),
    "forged_sha": lambda tmp: honest_record(tmp, run_edit=lambda r: r["split"].update(sha256="0" * 64)),
    "no_method": lambda tmp: honest_record(tmp, run_edit=lambda r: r.pop("method")),
    "corrupt_run_json": lambda tmp: (honest_record(tmp) / "run.json").write_text("{not json"),
    "newer_schema": lambda tmp: honest_record(tmp, run_edit=lambda r: r.update(schema_version=99)),
    "corrupt_metrics": lambda tmp: (honest_record(tmp) / "metrics.json").write_text("{1: 2"),
    "honest_and_taken": lambda tmp: (honest_record(tmp), _taken(tmp)),
    "png": lambda tmp: Image.new("RGB", (8, 8)).save(tmp / "a.png"),
    "honest_png": lambda tmp: (honest_record(tmp), Image.new("RGB", (8, 8)).save(tmp / "a.png")),
    "weights_only": _weights,
    "weights_bomb": lambda tmp: (_weights(tmp), _bomb(tmp / "bomb.png")),
    "weights_junk": lambda tmp: (_weights(tmp), (tmp / "junk.pt").write_bytes(b"junk")),
    "weights_taken": lambda tmp: (_weights(tmp), _taken(tmp)),
    "weights_evil": lambda tmp: _evil_final(_weights(tmp), tmp / "marker"),
    "voc": _voc,
    "voc_bad_values": lambda tmp: _voc(tmp, bad_values=True),
}


def _evil_final(run: Path, marker: Path) -> None:
    path = run / "ckpt" / "final.pt"
    payload = torch.load(path, weights_only=True)
    payload["extra"] = {"x": Payload(marker)}
    torch.save(payload, path)


def environment_of(made) -> dict:
    return made if isinstance(made, dict) else {}


__all__ = ["MAKERS", "SECRET", "Payload", "environment_of", "json"]
