"""Run records: the one place that writes and reads a run folder.

    results/runs/<batch>/<run_id>/
      run.json         schema_version, run_id, status (running | ok | failed | interrupted) and
                       error, pid, host and heartbeat (rewritten every 30 s while it runs; a
                       reader calls a dead `running` run `died`, runs/verify.py), command, start/end (UTC), wall time, environment (versions, git
                       commit and dirty flag, device), method and card version, dataset and its
                       version, split name/version/sha256, seed, protocol flags, reused stages,
                       engine options (precision, channels-last, compile, processes), backbone
                       init report (--init), resumed_from (--resume), method facts, and once
                       evaluated `scoring` (the absent-class rule and the evaluation mode)
      config.yaml      the fully resolved configuration
      metrics.json     {metric: fraction} for every metric, unrounded, plus n_images/n_pixels
      per_class.csv    class_id, class_name, subset, iou, acc, gt_pixels, pred_pixels
      confusion.npy    the raw int64 matrix (rows = ground truth); `zsbench score` rescoring it
                       reproduces metrics.json
      train_log.jsonl  one JSON object per logging step
      ckpt/            last.pt (every engine.checkpoint_every iterations, for --resume) and
                       final.pt (the trained weights); not committed to git
      predictions/     the predictions on a fixed subset of test images, as palette PNGs of raw
                       label ids, and index.json naming them (written by predictions.py)

Every file is written to a temporary name and renamed into place, so a reader never sees half
a file; metrics.json appears only once evaluation has finished. A folder is claimed with an
exclusive mkdir, so an existing record is never overwritten.

Schema versions: 1 stored the scoring entry under the key `protocol`; 2 names it `scoring`.
`load_record` reads both (`scoring_of` gives the entry either way) and refuses a record whose
schema_version is newer than this code knows.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from zsseg_bench.errors import Terminated, ZsbenchError

__all__ = ["SCHEMA_VERSION", "RunRecord", "make_run_id", "process_identity", "batch_lock", "find_records", "load_record", "scoring_of", "environment",
           "utcnow", "read_per_class", "read_confusion", "read_train_log"]

SCHEMA_VERSION = 2


def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-")


def make_run_id(method: str, split: str, seed: int) -> str:
    """<method>__<split>__s<seed>__<UTC second>-<4 random hex>: unique across batches and machines
    that start the same run in the same second (the folder itself is claimed by mkdir)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return _safe(f"{method}__{split}__s{seed}__{stamp}-{secrets.token_hex(2)}")


def process_identity() -> dict:
    """pid, host and heartbeat time for run.json: what tells a live `running` run from a dead one
    (runs/verify.py)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "heartbeat": utcnow()}


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, _umask_mode())  # mkstemp makes 0600 files; records are meant to be shared
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@functools.lru_cache(maxsize=1)
def _git_state() -> dict:
    """The checkout's commit and dirty flag, read once per process: a long `zsbench run` keeps
    running the code it started with even if the checkout moves on, so later runs of the batch
    must name that code, not the commit checked out by then."""
    from zsseg_bench.paths import repo_root

    root = repo_root()
    if root is None:
        return {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment(device: str = "cpu") -> dict:
    import torch

    from zsseg_bench import __version__

    dev = str(device)
    if dev.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(dev))
    else:
        name = platform.processor() or platform.machine()
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "zsseg_bench": __version__,
        "platform": platform.platform(),
        "device": dev,
        "device_name": name,
        "torch_threads": torch.get_num_threads(),
        "git": dict(_git_state()),
    }


@contextlib.contextmanager
def marking_failure(record, started: float):
    """Run the block; if it raises, mark the run `interrupted` (Ctrl-C) or `failed` with the error
    (and the traceback for an unexpected one), then re-raise. `record` is anything with
    `update_run` (a RunRecord, or a stand-in on ranks that write nothing)."""

    def ended() -> dict:
        return {"end": utcnow(), "wall_time_s": round(time.time() - started, 2)}

    try:
        yield
    except KeyboardInterrupt as exc:
        record.update_run(status="interrupted", error=("terminated (SIGTERM)" if isinstance(exc, Terminated)
                                                       else "interrupted by the user (Ctrl-C)"), **ended())
        raise
    except ZsbenchError as exc:
        record.update_run(status="failed", error=str(exc), **ended())
        raise
    except Exception as exc:
        record.update_run(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
                          **ended())
        raise


class RunRecord:
    """A run folder being written."""

    _run_json_lock = threading.Lock()  # update_run is a read-modify-write; the heartbeat thread shares it

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, out_dir: Path, run_id: str) -> "RunRecord":
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            path = out_dir / (run_id if n == 1 else f"{run_id}-{n}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise ZsbenchError(f"{out_dir}: could not find a free folder name for run {run_id}")

    # ---- writers --------------------------------------------------------------------------------
    def write_json(self, name: str, obj) -> None:
        _atomic_write(self.path / name, (json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n").encode())

    def write_yaml(self, name: str, obj) -> None:
        _atomic_write(self.path / name, yaml.safe_dump(obj, sort_keys=False).encode())

    def write_confusion(self, matrix: np.ndarray) -> None:
        import io

        buffer = io.BytesIO()
        np.save(buffer, np.asarray(matrix, dtype=np.int64))
        _atomic_write(self.path / "confusion.npy", buffer.getvalue())

    def write_csv(self, name: str, frame: pd.DataFrame) -> None:
        _atomic_write(self.path / name, frame.to_csv(index=False).encode())

    def write_file(self, relpath: str, data: bytes) -> Path:
        """Any other file (e.g. predictions/<image>.png), atomically, in a sub-folder if named."""
        path = self.path / relpath
        if self.path.resolve() not in path.resolve().parents:
            raise ValueError(f"{relpath!r} is not inside the run folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, data)
        return path

    def update_run(self, **fields) -> dict:
        with self._run_json_lock:
            current = json.loads((self.path / "run.json").read_text()) if (self.path / "run.json").exists() else {}
            current.update(fields)
            self.write_json("run.json", current)
            return current

    @contextlib.contextmanager
    def heartbeat(self, every_s: float):
        """While the block runs, a thread rewrites run.json's `heartbeat` every `every_s` seconds."""
        stop = threading.Event()

        def beat():
            while not stop.wait(every_s):
                self.update_run(heartbeat=utcnow())

        thread = threading.Thread(target=beat, name="zsbench-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    @property
    def log_path(self) -> Path:
        return self.path / "train_log.jsonl"


@contextlib.contextmanager
def batch_lock(batch: Path):
    """An exclusive lock on a batch folder (`.lock`, flock) for writers of its shared files (comparison.*)."""
    import fcntl

    with open(Path(batch) / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _jsonable(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def find_records(paths) -> list[Path]:
    """Run folders (those holding run.json) at or below each path, in sorted order."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise ZsbenchError(f"{p}: no such run folder")
        if (p / "run.json").is_file():
            found.append(p)
        else:
            found.extend(sorted(q.parent for q in p.rglob("run.json")))
    if not found:
        raise ZsbenchError(f"no run records (folders with run.json) under {', '.join(map(str, paths))}")
    return list(dict.fromkeys(found))


def load_record(path: Path) -> dict:
    """run.json merged with metrics (under 'metrics'); raises a clear error on a broken folder."""
    path = Path(path)
    try:
        run = json.loads((path / "run.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ZsbenchError(f"{path / 'run.json'}: unreadable run record ({exc.__class__.__name__})") from None
    version = run.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ZsbenchError(f"{path / 'run.json'}: schema_version {version!r} is newer than this zsseg-bench reads "
                           f"({SCHEMA_VERSION}); update zsseg-bench to read this record")
    run["path"] = str(path)
    metrics_file = path / "metrics.json"
    if metrics_file.exists():
        try:
            run["metrics"] = json.loads(metrics_file.read_text())
        except json.JSONDecodeError:
            raise ZsbenchError(f"{metrics_file}: corrupt metrics file") from None
    else:
        run["metrics"] = None
    return run


def scoring_of(run: dict) -> dict:
    """The scoring entry of a loaded run.json ({} before evaluation): `scoring`, or `protocol` in schema 1."""
    return run.get("scoring") or run.get("protocol") or {}


def read_per_class(path: Path) -> pd.DataFrame | None:
    """per_class.csv of a run folder, or None if the run wrote none."""
    file = Path(path) / "per_class.csv"
    if not file.is_file():
        return None
    try:
        return pd.read_csv(file)
    except (OSError, ValueError) as exc:
        raise ZsbenchError(f"{file}: unreadable per-class table ({exc.__class__.__name__})") from None


def read_confusion(path: Path) -> np.ndarray | None:
    """confusion.npy of a run folder (int64, rows = ground truth), or None if the run wrote none."""
    file = Path(path) / "confusion.npy"
    if not file.is_file():
        return None
    try:
        return np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ZsbenchError(f"{file}: unreadable confusion matrix ({exc.__class__.__name__})") from None


def read_train_log(path: Path) -> list[dict]:
    """The entries of train_log.jsonl ([] when absent); a torn last line (a killed run) is skipped."""
    file = Path(path) / "train_log.jsonl"
    if not file.is_file():
        return []
    entries = []
    lines = file.read_text().splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            if n == len(lines):
                break
            raise ZsbenchError(f"{file}:{n}: not a JSON line") from None
    return entries
