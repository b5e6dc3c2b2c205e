"""One run, and a comparison of several: card + split + dataset -> trained method -> record.

Everything that can be checked is checked *before* a run folder is created, by the one run
preparation (prepare.py: method card, config, split, dataset, device, embeddings, engine
options, and the method itself is built, with its `--init` weights), so bad input leaves
nothing behind. Once the folder exists, it always ends
with a status: ok, failed (with the error) or interrupted.

Resuming (`zsbench run --resume RUN_DIR`, `resume_request`) never rewrites the interrupted
record: the continuation is a NEW run folder next to it, whose run.json says
`resumed_from: {run, checkpoint, stage, iteration}`. It uses the interrupted run's stored
config (plus any `--set`, recorded as `resume_overrides` and applied over the restored optimizer
and scheduler state, resume.py), starts its train_log.jsonl with the
interrupted run's lines up to the checkpoint, and hard-links (or copies) the interrupted run's
training checkpoints into its own ckpt/, so it can itself be resumed. The interrupted folder
keeps its status (interrupted or failed); tables only read runs with status ok.

With several processes (distributed.py) every rank trains and evaluates; only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from zsseg_bench.catalog.cards import Card, list_cards
from zsseg_bench.catalog.splits import Split, load_recorded_split
from zsseg_bench.catalog.yamlio import YAMLError, load_yaml
from zsseg_bench.engine.checkpoint_format import save_checkpoint
from zsseg_bench.engine.context import RunContext
from zsseg_bench.engine.distributed import is_main, rank_and_world
from zsseg_bench.engine.loop import Reporter, StageCache, seed_everything
from zsseg_bench.engine.monitor import Monitor
from zsseg_bench.engine.options import EngineOptions
from zsseg_bench.engine.resume import LAST, ResumePoint, TrainingCheckpoints
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.metrics import ScoringRule, compute_scores
from zsseg_bench.protocols.fss_zeroshot import is_episodic, prepare_training, score_run
from zsseg_bench.runs.predictions import store_predictions
from zsseg_bench.runs.prepare import PreparedRun, RunData, RunRequest, prepare_run, split_for, stored_config
from zsseg_bench.runs.records import (
    SCHEMA_VERSION,
    RunRecord,
    environment,
    load_record,
    make_run_id,
    marking_failure,
    process_identity,
    utcnow,
)
from zsseg_bench.runs.verify import HEARTBEAT_EVERY_S

__all__ = ["RunRequest", "run_one", "run_comparison", "default_methods", "resume_request", "initial_run_info",
           "write_scores"]


def default_methods() -> list[str]:
    from zsseg_bench.report.tables import method_sort_key

    names = [c.name for c in list_cards() if c.in_default_run]
    return sorted(names, key=method_sort_key)


class _NoRecord:
    """The run record of ranks other than 0: they write nothing."""

    path = None
    log_path = None

    def write_json(self, *args, **kwargs) -> None:
        pass

    write_yaml = write_confusion = write_csv = write_file = write_json

    def update_run(self, **fields) -> dict:
        return {}


def _continue_in(record: RunRecord, resume: ResumePoint, ctx: RunContext) -> None:
    """Start a resumed run's folder with the interrupted run's log prefix and checkpoints."""
    n = int(resume.training.get("log_lines", 0))
    old_log = resume.run_dir / "train_log.jsonl"
    lines = old_log.read_text().splitlines(keepends=True)[:n] if old_log.is_file() else []
    if lines:
        with open(record.log_path, "w") as fh:
            fh.writelines(lines)
    ctx.log_lines = len(lines)
    target = record.path / "ckpt"
    target.mkdir(parents=True, exist_ok=True)
    for src in [resume.run_dir / "ckpt" / LAST, *sorted((resume.run_dir / "ckpt").glob("stage-*.pt"))]:
        if src.is_file():
            try:
                os.link(src, target / src.name)
            except OSError:
                shutil.copy2(src, target / src.name)


def run_one(req: RunRequest, reporter: Reporter | None = None, cache: StageCache | None = None,
            out_dir: Path | None = None) -> Path | None:
    """Train and evaluate one (method, dataset, split, seed); return the run folder (None on ranks > 0)."""
    reporter = reporter or Reporter()
    run = prepare_run(req)
    main = is_main()
    run_id = make_run_id(run.card.name, run.split.name, req.seed)
    record = RunRecord.create(out_dir or req.out, run_id) if main else _NoRecord()
    run_name = record.path.name if main else run_id
    reporter.run_start(run.card.name, req.seed, record.path)
    started = time.time()
    _write_start(record, req, run, run_name, reporter)
    ctx = run.context(reporter=reporter, log_path=record.log_path, run_id=run_name)
    if run.options.tensorboard or run.options.eval_every:
        ctx.monitor = Monitor(ctx, record.path if main else None)
    checkpoints = TrainingCheckpoints(record.path / "ckpt" if main else None, run.options.checkpoint_every,
                                      method_name=run.card.name, split=run.split, config=run.cfg, writer=main,
                                      resume=req.resume)
    restore_switches = run.options.apply_global(run.device)
    beating = record.heartbeat(HEARTBEAT_EVERY_S) if main else contextlib.nullcontext()
    try:
        with marking_failure(record, started), beating:
            if req.resume is not None and main:
                _continue_in(record, req.resume, ctx)
            _train_and_score(req, run, record, ctx, checkpoints, cache, started)
    finally:
        ctx.close()
        restore_switches()
    return record.path


def _write_start(record, req: RunRequest, run: PreparedRun, run_name: str, reporter: Reporter) -> None:
    """run.json (status running) and config.yaml of a run that starts."""
    info = initial_run_info(req, run.card, run.split, run_name=run_name, seed=req.seed, data=run.data,
                            n_train_used=int(len(run.train_indices)), device=run.device, flags=run.flags,
                            options=run.options, processes=rank_and_world()[1])
    if run.init_report is not None:
        info["backbone_init"] = run.init_report
        reporter.message(run.init_report["summary"])
    if req.resume is not None:
        info["resumed_from"] = {"run": str(req.resume.run_dir), "checkpoint": f"ckpt/{LAST}",
                                "stage": req.resume.training["stage_name"], "stage_index": req.resume.stage_index,
                                "iteration": req.resume.iteration, "stage_complete": req.resume.complete}
        info["resume_overrides"] = list(req.resume_overrides)
    record.write_json("run.json", info)
    record.write_yaml("config.yaml", {"method": run.card.name, "dataset": req.dataset, "split": run.split.name,
                                      "seed": req.seed, "device": str(run.device), "config": run.cfg})


def _train_and_score(req: RunRequest, run: PreparedRun, record, ctx: RunContext, checkpoints: TrainingCheckpoints,
                     cache: StageCache | None, started: float) -> None:
    """Train (reusing cached stages or resuming), save the weights, evaluate, write the scores."""
    method, split, cfg, main = run.method, run.split, run.cfg, is_main()
    data_key = json.dumps({"dataset": req.dataset, "root": run.data.root, "options": run.data.options,
                           "split": split.sha256, "seed": req.seed, "device": str(run.device)}, sort_keys=True)
    episodic = is_episodic(split)
    protocol_facts = prepare_training(ctx, cfg, req.seed, run.data.test) if episodic else None
    reused = ctx.fit(method, cache if req.resume is None else None,
                     cache_key_extra=hashlib.sha256(data_key.encode()).hexdigest(), checkpoints=checkpoints)
    seed_everything(req.seed, 2000)  # after_training may build models: same state, reused or not
    extra = method.after_training(ctx)
    if cfg["diagnostics"]:
        extra["diagnostics"] = {**extra.get("diagnostics", {}), "val_trajectory": ctx.val_trajectory,
                                "seconds": round(ctx.probe_clock.seconds, 3)}
    if cfg["save_weights"] and main:
        save_checkpoint(record.path / "ckpt" / "final.pt", method, method_name=run.card.name, split=split,
                        config=cfg, stage=method.stages()[-1].name if method.stages() else None, extra=extra)
    test_set = run.data.test
    if episodic:  # binary episodes, scored by protocols/fss_zeroshot.py instead of a confusion matrix
        metrics = score_run(record, method, ctx, split, test_set, cfg)
        scoring = {"protocol": metrics["protocol"], "fusion": metrics["fusion"], **protocol_facts}
    else:
        confusion = ctx.confusion(method, test_set, ctx.eval_lut, split.num_classes)
        rule = write_scores(record, confusion, split, cfg, len(test_set))
        if main:
            store_predictions(record, method, ctx, test_set, split)  # predictions/ for figures
        scoring = {"absent": rule.absent, "eval_mode": cfg["eval"]["mode"]}
    record.update_run(status="ok", end=utcnow(), wall_time_s=round(time.time() - started, 2),
                      reused_stages=reused, method_facts=extra, scoring=scoring)
    if not run.options.keep_training_state:
        checkpoints.cleanup()


def initial_run_info(req, card: Card, split: Split, *, run_name: str, seed: int, data: RunData, n_train_used: int,
                     device, flags: dict, options: EngineOptions, processes: int) -> dict:
    """run.json as a run starts (status running): what runs, on what data and split, where, how.
    `req` is any request with `command`, `dataset` and `overrides` (training or checkpoint evaluation)."""
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_name, "status": "running", "error": None,
        **process_identity(),
        "command": req.command or " ".join(sys.argv), "start": utcnow(), "end": None, "wall_time_s": None,
        "method": card.name, "impl": card.impl, "card_version": card.version, "card_file": card.path.name,
        "dataset": {"name": req.dataset, "version": getattr(data.train, "version", "1"), "root": data.root,
                    "n_train": len(data.train), "n_train_used": n_train_used, "n_test": len(data.test),
                    "options": data.options},
        "split": {"name": split.name, "version": split.version, "sha256": split.sha256,
                  "file": str(split.path.resolve()), "classes": split.classes.name, "train_policy": split.train_policy, "background": split.background,
                  "protocol": split.task_protocol},
        "seed": seed, "overrides": list(req.overrides),
        "environment": {**environment(str(device)), "device_requested": getattr(req, "device", None)},
        "protocol_flags": flags,
        "engine": {**options.model_dump(), "processes": processes},
    }


def write_scores(record, confusion, split: Split, cfg: dict, n_images: int) -> ScoringRule:
    """confusion.npy, per_class.csv and metrics.json of a finished evaluation; returns the scoring rule used."""
    rule = ScoringRule(absent=cfg["eval"]["absent"])
    scores = compute_scores(confusion, split.seen_mask, split.eval_names, rule, split.background_index)
    record.write_confusion(confusion)
    record.write_csv("per_class.csv", scores.per_class)
    record.write_json("metrics.json", {**scores.metrics, "n_images": n_images, "n_pixels": int(confusion.sum())})
    return rule


def resume_request(run_dir: Path, device: str | None = None, data_root: str | None = None,
                   overrides: list[str] | tuple = (), command: str = "") -> RunRequest:
    """The request that continues an interrupted or failed run from its ckpt/last.pt."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise ZsbenchError(f"--resume {run_dir}: not a run folder (no run.json); pass the folder of one run")
    info = load_record(run_dir)
    if info.get("status") == "ok":
        raise ZsbenchError(f"--resume {run_dir}: this run finished (status ok); nothing to resume")
    try:
        stored = load_yaml((run_dir / "config.yaml").read_text())
    except (OSError, YAMLError):
        raise ZsbenchError(f"{run_dir / 'config.yaml'}: missing or unreadable; cannot resume without the run's "
                           f"config") from None
    split = load_recorded_split(info["split"])
    if split.sha256 != info["split"]["sha256"]:
        raise ZsbenchError(f"--resume {run_dir}: split {split.name} changed since the run started (sha256 "
                           f"{info['split']['sha256'][:12]} then, {split.sha256[:12]} now)")
    _remove_temporary_files(run_dir)
    resume = ResumePoint.load(run_dir, info["method"], split)
    return RunRequest(method=info["method"], dataset=info["dataset"]["name"], split=split.name, seed=info["seed"],
                      device=device or stored.get("device", "cpu"), data_root=data_root or info["dataset"]["root"],
                      overrides=list(info.get("overrides") or []), out=run_dir.parent, command=command,
                      config=stored_config(stored["config"], info), resume=resume, resume_overrides=list(overrides))


def _remove_temporary_files(run_dir: Path) -> None:
    """Half-written files a killed run left (writers use .<name>.tmp and rename): never read, removed."""
    for tmp in [*run_dir.glob(".*.tmp"), *(run_dir / "ckpt").glob(".*.tmp")]:
        tmp.unlink(missing_ok=True)


def run_comparison(methods: list[str], dataset: str = "synthetic", split: str | None = None,
                   seeds: list[int] = (0,), device: str = "cpu", data_root: str | None = None,
                   overrides: list[str] = (), out: Path = Path("results/runs"), reporter: Reporter | None = None,
                   command: str = "", init: str | None = None) -> tuple[Path | None, list[Path]]:
    """Every (seed, method) into one batch folder <out>/<UTC stamp>__<split>/; returns it and the runs."""
    def request(method: str, seed: int = 0, batch: Path | None = None) -> RunRequest:
        return RunRequest(method=method, dataset=dataset, split=split, seed=seed, device=device, data_root=data_root,
                          overrides=list(overrides), out=batch, command=command, init=init)

    split_name = split_for(dataset, split).name
    for m in methods:  # fail fast, before any folder exists: card, config, split, device, data, --init
        prepare_run(request(m), training=False, build=False)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out = Path(out)
    out_existed = out.exists()
    batch = RunRecord.create(out, f"{stamp}__{split_name}").path if is_main() else None
    cache = StageCache()
    paths = []
    try:
        for seed in seeds:
            for m in methods:
                paths.append(run_one(request(m, seed, batch), reporter, cache))
    except BaseException:
        if batch is not None and not any(batch.iterdir()):
            batch.rmdir()  # input rejected before the first run folder: leave nothing behind
            if not out_existed and not any(out.iterdir()):
                out.rmdir()
        raise
    return batch, paths
