"""One run, and a comparison of several: card + split + dataset -> trained method -> record.

Everything that can be checked is checked *before* a run folder is created (method card,
split, dataset, device, embeddings, engine options, and the method itself is built, with its
`--init` weights), so bad input leaves nothing behind. Once the folder exists, it always ends
with a status: ok, failed (with the error) or interrupted.

Resuming (`zsbench run --resume RUN_DIR`, `resume_request`) never rewrites the interrupted
record: the continuation is a NEW run folder next to it, whose run.json says
`resumed_from: {run, checkpoint, stage, iteration}`. It uses the interrupted run's stored
config (plus any `--set`, recorded as `resume_overrides`), starts its train_log.jsonl with the
interrupted run's lines up to the checkpoint, and hard-links (or copies) the interrupted run's
training checkpoints into its own ckpt/, so it can itself be resumed. The interrupted folder
keeps its status (interrupted or failed); tables only read runs with status ok.

With several processes (distributed.py) every rank trains and evaluates; only rank 0 writes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from zsseg_bench.catalog.cards import Card, apply_overrides, list_cards, load_card, resolve_config
from zsseg_bench.catalog.splits import Split, load_split
from zsseg_bench.catalog.validate import validate_config
from zsseg_bench.catalog.yamlio import YAMLError, load_yaml
from zsseg_bench.datasets import build_dataset
from zsseg_bench.datasets.presence import class_presence
from zsseg_bench.embeddings.base import split_embeddings
from zsseg_bench.engine.checkpoints import save_checkpoint
from zsseg_bench.engine.distributed import broadcast_module, is_main, rank_and_world
from zsseg_bench.engine.loop import Reporter, StageCache, TrainContext, check_data_config, seed_everything
from zsseg_bench.engine.options import EngineOptions, prepare_method
from zsseg_bench.engine.resume import LAST, ResumePoint, TrainingCheckpoints
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods import IMPLEMENTATIONS, ClassSpace
from zsseg_bench.metrics import Protocol, compute_scores
from zsseg_bench.runs.predictions import store_predictions
from zsseg_bench.runs.records import (
    SCHEMA_VERSION,
    RunRecord,
    environment,
    load_record,
    make_run_id,
    marking_failure,
    utcnow,
)

__all__ = ["RunRequest", "run_one", "run_comparison", "default_methods", "DEFAULT_SPLITS", "resolve_device",
           "resume_request", "split_for", "prepare_data", "build_method", "initial_run_info", "write_scores"]

# The split a dataset uses when --split is not given.
DEFAULT_SPLITS = {"synthetic": "synthetic-9-3", "voc12": "voc12-15-5", "context": "context33-29-4",
                  "cocostuff": "cocostuff-167-15", "cocostuff10k": "cocostuff10k-ws-s1", "ade20k": "ade20k-ws-s1",
                  "coco": "coco20i-f0"}


@dataclass
class RunRequest:
    method: str
    dataset: str = "synthetic"
    split: str | None = None
    seed: int = 0
    device: str = "cpu"
    data_root: str | None = None
    overrides: list[str] = field(default_factory=list)
    out: Path = Path("results/runs")
    command: str = ""
    init: str | None = None  # --init PATH: backbone weights (backbone.init)
    config: dict | None = None  # a resolved config used as is (resuming)
    resume: ResumePoint | None = None
    resume_overrides: list[str] = field(default_factory=list)


def default_methods() -> list[str]:
    from zsseg_bench.report.tables import _method_rank

    names = [c.name for c in list_cards() if c.in_default_run]
    return sorted(names, key=_method_rank)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ZsbenchError(f"--device {name!r} is not a device; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ZsbenchError(f"--device {name}: this machine has no CUDA device (torch {torch.__version__}); "
                           f"use --device cpu")
    return device


def split_for(req: RunRequest) -> Split:
    name = req.split or DEFAULT_SPLITS.get(req.dataset)
    if name is None:
        raise ZsbenchError(f"dataset {req.dataset!r} has no default split; pass --split")
    split = load_split(name)
    if split.dataset != req.dataset:
        raise ZsbenchError(f"split {split.name!r} is for dataset {split.dataset!r}, not {req.dataset!r}")
    return split


def train_indices(split: Split, dataset) -> np.ndarray:
    """Training images after the split's policy (drop_images_with_unseen removes some).

    Uses the per-image class presence, computed in parallel once and cached on disk for
    datasets read from files (datasets/presence.py).
    """
    n = len(dataset)
    if split.train_policy != "drop_images_with_unseen":
        return np.arange(n)
    presence = class_presence(dataset)
    unseen_raw = [split.classes.id_of(c) for c in split.unseen]
    return np.flatnonzero(~presence[:, unseen_raw].any(axis=1)).astype(np.int64)


class _Datasets:
    """Datasets built once per process and shared by every run of a comparison."""

    def __init__(self):
        self._cache: dict = {}

    def get(self, name: str, part: str, root, cfg: dict):
        key = (name, part, root, json.dumps(cfg, sort_keys=True, default=str))
        if key not in self._cache:
            self._cache[key] = build_dataset(name, part, root, cfg)
        return self._cache[key]


_DATASETS = _Datasets()


def prepare_data(req: RunRequest, cfg: dict, split: Split):
    """The run's datasets and class embeddings, with its data settings checked (before any folder exists)."""
    data_cfg = dict(cfg.get("dataset", {}))
    data_root = req.data_root or data_cfg.pop("root", None)
    data_cfg.setdefault("classes", split.classes.name)  # the label space a multi-space dataset must yield
    train_set = _DATASETS.get(req.dataset, "train", data_root, data_cfg)
    test_set = _DATASETS.get(req.dataset, "test", data_root, data_cfg)
    embeddings = split_embeddings(split, train_set, cfg.get("embeddings"))
    check_data_config(cfg, split, train_set)
    return data_cfg, data_root, train_set, test_set, embeddings


class _NoRecord:
    """The run record of ranks other than 0: they write nothing."""

    path = None
    log_path = None

    def write_json(self, *args, **kwargs) -> None:
        pass

    write_yaml = write_confusion = write_csv = write_file = write_json

    def update_run(self, **fields) -> dict:
        return {}


def _with_init(cfg: dict, init: str) -> dict:
    path = Path(init).expanduser().resolve()
    if not path.is_file():
        raise ZsbenchError(f"--init {init}: no such file")
    cfg.setdefault("backbone", {})
    if not isinstance(cfg["backbone"], dict):
        raise ZsbenchError("--init: the config's 'backbone' is not a mapping")
    cfg["backbone"]["init"] = str(path)
    return cfg


def _continue_in(record: RunRecord, resume: ResumePoint, ctx: TrainContext) -> None:
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
    card: Card = load_card(req.method)
    if req.config is not None:
        cfg = apply_overrides(copy.deepcopy(req.config), req.resume_overrides)
    else:
        cfg = resolve_config(card, req.dataset, req.overrides)
    cfg = validate_config(card, cfg, req.dataset)
    if req.init:
        cfg = _with_init(cfg, req.init)
    options = EngineOptions.from_cfg(cfg)
    impl = IMPLEMENTATIONS.get(card.impl)
    split = split_for(req)
    device = resolve_device(req.device)
    data_cfg, data_root, train_set, test_set, embeddings = prepare_data(req, cfg, split)
    classes = ClassSpace(split.eval_names, torch.from_numpy(split.seen_mask), torch.from_numpy(embeddings),
                         split.ignore_index, split.calibration_val).to(device)
    indices = train_indices(split, train_set)

    # The method is built before any folder exists: a bad --init file, backbone option or config
    # leaves nothing behind, and the protocol flags (which may depend on the config, e.g. zs3net's
    # protocol) are known up front.
    torch.manual_seed(req.seed)
    method = build_method(impl, card, cfg, classes).to(device)
    flags = method.protocol_flags()
    broadcast_module(method)  # several processes: rank 0's initial weights everywhere
    prepare_method(method, options)
    init_report = getattr(getattr(method, "backbone", None), "init_report", None)
    if req.resume is not None:
        _check_same_init(req.resume, init_report)

    main = is_main()
    run_id = make_run_id(card.name, req.dataset, split.name, req.seed)
    record = RunRecord.create(out_dir or req.out, run_id) if main else _NoRecord()
    run_name = record.path.name if main else run_id
    started = time.time()
    run_info = initial_run_info(req, card, split, run_name=run_name, seed=req.seed, train_set=train_set,
                                test_set=test_set, data_root=data_root, data_cfg=data_cfg,
                                n_train_used=int(len(indices)), device=device, flags=flags, options=options,
                                processes=rank_and_world()[1])
    if init_report is not None:
        run_info["backbone_init"] = init_report
        reporter.message(init_report["summary"])
    if req.resume is not None:
        run_info["resumed_from"] = {"run": str(req.resume.run_dir), "checkpoint": f"ckpt/{LAST}",
                                    "stage": req.resume.training["stage_name"],
                                    "stage_index": req.resume.stage_index, "iteration": req.resume.iteration,
                                    "stage_complete": req.resume.complete}
        run_info["resume_overrides"] = list(req.resume_overrides)
    record.write_json("run.json", run_info)
    record.write_yaml("config.yaml", {"method": card.name, "dataset": req.dataset, "split": split.name,
                                      "seed": req.seed, "device": str(device), "config": cfg})
    ctx = TrainContext(split=split, train_set=train_set, device=device, seed=req.seed, cfg=cfg, reporter=reporter,
                       log_path=record.log_path, run_id=run_name, train_indices=indices,
                       pass_unseen_labels=bool(flags.get("uses_unseen_labels", False)))
    checkpoints = TrainingCheckpoints(record.path / "ckpt" if main else None, options.checkpoint_every,
                                      method_name=card.name, split=split, config=cfg, writer=main,
                                      resume=req.resume)
    restore_switches = options.apply_global(device)
    try:
        with marking_failure(record, started):
            if req.resume is not None and main:
                _continue_in(record, req.resume, ctx)
            data_key = json.dumps({"dataset": req.dataset, "root": data_root, "options": data_cfg,
                                   "split": split.sha256, "seed": req.seed, "device": str(device)}, sort_keys=True)
            reused = ctx.fit(method, cache if req.resume is None else None,
                             cache_key_extra=hashlib.sha256(data_key.encode()).hexdigest(), checkpoints=checkpoints)
            seed_everything(req.seed, 2000)  # after_training may build models: same state, reused or not
            extra = method.after_training(ctx)
            if cfg.get("save_weights", True) and main:
                save_checkpoint(record.path / "ckpt" / "final.pt", method, method_name=card.name, split=split,
                                config=cfg, stage=method.stages()[-1].name if method.stages() else None, extra=extra)
            confusion = ctx.confusion(method, test_set, ctx.eval_lut, split.num_classes)
            protocol = write_scores(record, confusion, split, cfg, len(test_set))
            if main:
                store_predictions(record, method, ctx, test_set, split)  # predictions/ for figures
            eval_mode = cfg.get("eval", {}).get("mode", "full")
            record.update_run(status="ok", end=utcnow(), wall_time_s=round(time.time() - started, 2),
                              reused_stages=reused, method_facts=extra,
                              protocol={"absent": protocol.absent, "eval_mode": eval_mode})
            if not options.keep_training_state:
                checkpoints.cleanup()
    finally:
        ctx.close()
        restore_switches()
    return record.path


def build_method(impl, card: Card, cfg: dict, classes: ClassSpace):
    """The method of a run, with its stage schedule read once: a configuration value of the wrong
    kind (`--set step1.iterations=ten`, a card key missing) is one error line before any run
    folder exists, not a traceback from inside training."""
    try:
        method = impl(cfg, classes)
        method.stages()
    except (ValueError, TypeError, KeyError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ZsbenchError(f"{card.path}: the configuration of {card.name} cannot be used ({type(exc).__name__}: "
                           f"{what}); check the --set values, or the card if you edited it") from None
    return method


def initial_run_info(req, card: Card, split: Split, *, run_name: str, seed: int, train_set, test_set, data_root,
                     data_cfg: dict, n_train_used: int, device, flags: dict, options: EngineOptions,
                     processes: int) -> dict:
    """run.json as a run starts (status running): what runs, on what data and split, where, how.
    `req` is any request with `command`, `dataset` and `overrides` (training or checkpoint evaluation)."""
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_name, "status": "running", "error": None,
        "command": req.command or " ".join(sys.argv), "start": utcnow(), "end": None, "wall_time_s": None,
        "method": card.name, "impl": card.impl, "card_version": card.version, "card_file": card.path.name,
        "dataset": {"name": req.dataset, "version": getattr(train_set, "version", "1"), "root": data_root,
                    "n_train": len(train_set), "n_train_used": n_train_used, "n_test": len(test_set),
                    "options": data_cfg},
        "split": {"name": split.name, "version": split.version, "sha256": split.sha256,
                  "classes": split.classes.name, "train_policy": split.train_policy, "background": split.background},
        "seed": seed, "overrides": list(req.overrides), "environment": environment(str(device)),
        "protocol_flags": flags,
        "engine": {**options.model_dump(), "processes": processes},
    }


def write_scores(record, confusion, split: Split, cfg: dict, n_images: int) -> Protocol:
    """confusion.npy, per_class.csv and metrics.json of a finished evaluation; returns the protocol used."""
    protocol = Protocol(absent=cfg.get("eval", {}).get("absent", "nan"))
    scores = compute_scores(confusion, split.seen_mask, split.eval_names, protocol, split.background_index)
    record.write_confusion(confusion)
    record.write_csv("per_class.csv", scores.per_class)
    record.write_json("metrics.json", {**scores.metrics, "n_images": n_images, "n_pixels": int(confusion.sum())})
    return protocol


def _check_same_init(resume: ResumePoint, report: dict | None) -> None:
    try:
        before = load_record(resume.run_dir).get("backbone_init")
    except ZsbenchError:
        return
    if before and report and before.get("sha256") != report.get("sha256"):
        raise ZsbenchError(f"{report['path']}: the backbone init file changed since {resume.run_dir.name} started "
                           f"(sha256 {before['sha256'][:12]} then, {report['sha256'][:12]} now); resuming needs the "
                           f"same file")


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
    split = load_split(info["split"]["name"])
    if split.sha256 != info["split"]["sha256"]:
        raise ZsbenchError(f"--resume {run_dir}: split {split.name} changed since the run started (sha256 "
                           f"{info['split']['sha256'][:12]} then, {split.sha256[:12]} now)")
    resume = ResumePoint.load(run_dir, info["method"], split)
    return RunRequest(method=info["method"], dataset=info["dataset"]["name"], split=split.name, seed=info["seed"],
                      device=device or stored.get("device", "cpu"), data_root=data_root or info["dataset"]["root"],
                      overrides=list(info.get("overrides") or []), out=run_dir.parent, command=command,
                      config=stored["config"], resume=resume, resume_overrides=list(overrides))


def run_comparison(methods: list[str], dataset: str = "synthetic", split: str | None = None,
                   seeds: list[int] = (0,), device: str = "cpu", data_root: str | None = None,
                   overrides: list[str] = (), out: Path = Path("results/runs"), reporter: Reporter | None = None,
                   command: str = "", init: str | None = None) -> tuple[Path | None, list[Path]]:
    """Every (seed, method) into one batch folder <out>/<UTC stamp>__<split>/; returns it and the runs."""
    split_obj = split_for(RunRequest(method=methods[0], dataset=dataset, split=split))
    for m in methods:  # fail fast, before any folder exists
        card = load_card(m)
        IMPLEMENTATIONS.get(card.impl)
        cfg = validate_config(card, resolve_config(card, dataset, overrides), dataset)
        prepare_data(RunRequest(method=m, dataset=dataset, split=split, data_root=data_root), cfg, split_obj)
    split_name = split_obj.name
    resolve_device(device)
    if init is not None and not Path(init).expanduser().is_file():
        raise ZsbenchError(f"--init {init}: no such file")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out = Path(out)
    out_existed = out.exists()
    batch = RunRecord.create(out, f"{stamp}__{split_name}").path if is_main() else None
    cache = StageCache()
    paths = []
    try:
        for seed in seeds:
            for m in methods:
                req = RunRequest(method=m, dataset=dataset, split=split, seed=seed, device=device,
                                 data_root=data_root, overrides=list(overrides), out=batch, command=command, init=init)
                paths.append(run_one(req, reporter, cache))
    except BaseException:
        if batch is not None and not any(batch.iterdir()):
            batch.rmdir()  # input rejected before the first run folder: leave nothing behind
            if not out_existed and not any(out.iterdir()):
                out.rmdir()
        raise
    return batch, paths
