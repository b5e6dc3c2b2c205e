"""Records that cannot lie: the one loader `table`, `check` and `report` read run folders with.

A finished record is only believed if its numbers follow from its data:

* the split file it names still has the sha256 the run recorded (else the classes, their
  seen/unseen roles or the class list changed, or the record was forged);
* every metric in metrics.json equals the metric recomputed from confusion.npy under that split
  and the recorded scoring rule (`scoring.absent`); for episodic (fss-zeroshot) runs, each
  fusion mode's FG-mIoU recomputed from per_class.csv (metrics/episodic.py).

A record that fails either is refused with one line naming the file. A `running` record whose
process is gone (same host) or whose heartbeat is older than HEARTBEAT_STALE_S is reported as
`died`, with the command that resumes it.
"""

from __future__ import annotations

import math
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.metrics.episodic import episodic_mismatch, is_episodic_record
from zsseg_bench.runs.records import find_records, load_record, read_confusion, read_per_class, scoring_of

__all__ = ["HEARTBEAT_EVERY_S", "HEARTBEAT_STALE_S", "load_verified", "verify_scores", "death_of"]

HEARTBEAT_EVERY_S = 30.0  # how often a running run rewrites run.json's heartbeat
HEARTBEAT_STALE_S = 600.0  # older than this (20 missed beats): the run is dead, wherever it ran
_TOLERANCE = 1e-9  # metrics.json holds the recomputed floats; only JSON's float round trip may differ


def load_verified(paths) -> list[dict]:
    """Every record under `paths` (load_record), finished ones verified, dead `running` ones marked `died`."""
    records = []
    for path in find_records(paths):
        rec = load_record(path)
        _check_fields(rec, path / "run.json")
        if rec.get("status") == "ok" and rec.get("metrics") is not None:
            verify_scores(rec)
        died = death_of(rec)
        if died:
            rec["status"] = "died"
            rec["error"] = f"{died}; resume it with: zsbench run --resume {path}"
        records.append(rec)
    return records


def _check_fields(rec: dict, run_json: Path) -> None:
    """The fields every reader relies on, with their types: one line naming the first one missing."""
    named = {"method": rec.get("method"), "run_id": rec.get("run_id"), "status": rec.get("status"),
             "dataset.name": (rec.get("dataset") or {}).get("name") if isinstance(rec.get("dataset"), dict) else None,
             "split.name": (rec.get("split") or {}).get("name") if isinstance(rec.get("split"), dict) else None}
    for key, value in named.items():
        if not isinstance(value, str) or not value:
            raise ZsbenchError(f"{run_json}: no {key} (a string) in the run record; not a run folder written by "
                               f"zsbench run, or edited")
    if isinstance(rec.get("seed"), bool) or not isinstance(rec.get("seed"), int):
        raise ZsbenchError(f"{run_json}: seed {rec.get('seed')!r} is not an integer")


def _split_of(rec: dict, run_json: Path):
    from zsseg_bench.catalog.splits import load_recorded_split

    info = rec.get("split") if isinstance(rec.get("split"), dict) else {}
    name, recorded = info.get("name"), info.get("sha256")
    if not isinstance(name, str) or not isinstance(recorded, str):
        raise ZsbenchError(f"{run_json}: no split name and sha256 recorded; its metrics cannot be verified, so "
                           f"it is not used (rerun it)")
    try:
        split = load_recorded_split(info)
    except ZsbenchError as exc:
        raise ZsbenchError(f"{run_json}: split {name!r} cannot be loaded to verify the record ({exc})") from None
    if split.sha256 != recorded:
        raise ZsbenchError(f"{run_json}: recorded split {name} sha256 {recorded[:12]}, but the split file has "
                           f"{split.sha256[:12]}; the record was made under another version of the split (or "
                           f"edited): rerun it, or restore the split file it was made with")
    return split


def verify_scores(rec: dict) -> None:
    """Raise unless metrics.json follows from confusion.npy under the recorded split and scoring rule."""
    from zsseg_bench.metrics import ScoringRule, compute_scores
    from zsseg_bench.metrics.scores import METRIC_NAMES

    path = Path(rec["path"])
    split = _split_of(rec, path / "run.json")
    metrics = rec["metrics"]
    if not isinstance(metrics, dict):
        raise ZsbenchError(f"{path / 'metrics.json'}: holds a {type(metrics).__name__}, not an object of metrics")
    if is_episodic_record(rec):  # binary episodes: no confusion matrix; per_class.csv holds the counts
        problem = episodic_mismatch(metrics, read_per_class(path))
        if problem:
            raise ZsbenchError(f"{path / 'metrics.json'}: {problem}; the file was edited or is corrupt: not used")
        return
    confusion = read_confusion(path)
    k = split.num_classes
    if confusion is None or confusion.shape != (k, k) or not np.issubdtype(confusion.dtype, np.integer):
        found = "missing" if confusion is None else f"{confusion.dtype} {confusion.shape}"
        raise ZsbenchError(f"{path / 'confusion.npy'}: {found}, expected int64 ({k}, {k}) for split {split.name}; "
                           f"the record's metrics cannot be verified")
    absent = scoring_of(rec).get("absent", "nan")
    if absent not in ("nan", "zero"):
        raise ZsbenchError(f"{path / 'run.json'}: scoring.absent is {absent!r}, not 'nan' or 'zero'")
    recomputed = compute_scores(confusion, split.seen_mask, split.eval_names, ScoringRule(absent=absent),
                                split.background_index).metrics
    for name in METRIC_NAMES:
        stored = metrics.get(name)
        if not _same(stored, recomputed[name]):
            raise ZsbenchError(f"{path / 'metrics.json'}: {name} is {stored!r}, but confusion.npy under split "
                               f"{split.name} (absent={absent}) gives {recomputed[name]:.6f}; the file was edited "
                               f"or is corrupt: not used (zsbench score {path / 'confusion.npy'} --split "
                               f"{split.name} prints the true values)")


def _same(stored, value: float) -> bool:
    if isinstance(stored, bool) or not isinstance(stored, (int, float)):
        return stored is None and math.isnan(value)  # JSON writes NaN for an undefined metric; None is lenient
    if math.isnan(stored) or math.isnan(value):
        return math.isnan(stored) and math.isnan(value)
    return abs(stored - value) <= _TOLERANCE


def _process_gone(pid) -> bool:
    """True when no live process has `pid` on this machine (a zombie counts as gone)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def death_of(rec: dict, now: datetime | None = None) -> str | None:
    """Why a `running` record is dead (its process is gone, or its heartbeat stale), or None."""
    if rec.get("status") != "running":
        return None
    pid, host = rec.get("pid"), rec.get("host")
    if host == socket.gethostname() and _process_gone(pid):
        return f"its process {pid} on {host} is gone (run.json still says running)"
    beat = rec.get("heartbeat")
    if isinstance(beat, str):
        try:
            then = datetime.strptime(beat, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return None
        age = ((now or datetime.now(timezone.utc)) - then).total_seconds()
        if age > HEARTBEAT_STALE_S:
            return f"no heartbeat since {beat} ({age / 60:.0f} min ago; run.json still says running)"
    return None
