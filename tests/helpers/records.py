"""Run folders written directly through the records module, for table, check and report tests."""

from __future__ import annotations

from pathlib import Path

from zsseg_bench.runs.records import SCHEMA_VERSION, RunRecord


def write_record(root: Path, name: str, method: str, dataset: str, split: str, seed: int, metrics: dict,
                 status: str = "ok", flags: dict | None = None) -> Path:
    """A run folder made directly through records.py (for table and check tests)."""
    rec = RunRecord.create(root, name)
    rec.write_json("run.json", {"schema_version": SCHEMA_VERSION, "run_id": rec.path.name, "status": status, "method": method,
                                "dataset": {"name": dataset}, "split": {"name": split}, "seed": seed,
                                "protocol_flags": flags or {"uses_unseen_labels": False, "transductive": False}})
    if status == "ok":
        rec.write_json("metrics.json", metrics)
    return rec.path


def accept_hand_written_metrics(monkeypatch) -> None:
    """Let table/check read records whose metrics.json was written by hand (no confusion matrix or
    split sha256 behind it), to test their arithmetic and layout on chosen numbers. Everything
    else reads records through runs/verify.py, which refuses such records (tests/runs/test_verify.py)."""
    from zsseg_bench.runs import verify

    monkeypatch.setattr(verify, "verify_scores", lambda rec: None)
