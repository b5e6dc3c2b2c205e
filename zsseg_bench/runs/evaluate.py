"""`zsbench eval --checkpoint FILE`: evaluate released CaGNet weights, no training, into a run record.

Everything is checked before the run folder exists (card, split, dataset, embeddings, device,
the checkpoint itself, loaded strictly into the model): bad input leaves nothing behind. The
record is a normal one (run.json, config.yaml, metrics.json, per_class.csv, confusion.npy,
predictions/), so `zsbench check`, `table` and `report` read it like any other; its run.json
has `evaluated_from` (file, sha256, iteration, what was mapped and dropped) and
`training: null`, and no train_log.jsonl.

The evaluation settings are the card's for the dataset (the CaGNet cards' real-data settings are
the official test: 513x513 warp, single scale, scored at feature resolution, `eval.mode:
feature`); `--set` changes them and is recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from zsseg_bench.catalog.cards import load_card
from zsseg_bench.engine.loop import Reporter
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods import IMPLEMENTATIONS
from zsseg_bench.methods.cagnet.official import (
    checkpoint_facts,
    is_cagnet_impl,
    load_official_state,
    read_official_checkpoint,
)
from zsseg_bench.runs.predictions import store_predictions
from zsseg_bench.runs.prepare import RunRequest, prepare_run
from zsseg_bench.runs.records import RunRecord, make_run_id, marking_failure, utcnow
from zsseg_bench.runs.train import initial_run_info, write_scores
from zsseg_bench.runs.verify import HEARTBEAT_EVERY_S

__all__ = ["EvalRequest", "evaluate_checkpoint"]


@dataclass
class EvalRequest:
    checkpoint: str
    method: str = "cagnet-pi"
    dataset: str = "voc12"
    split: str | None = None
    device: str = "cpu"
    data_root: str | None = None
    overrides: list[str] = field(default_factory=list)
    out: Path = Path("results/runs")
    command: str = ""


def evaluate_checkpoint(req: EvalRequest, reporter: Reporter | None = None) -> Path:
    """Evaluate an official CaGNet checkpoint under `req.method`'s card; return the run folder."""
    reporter = reporter or Reporter()
    card = load_card(req.method)
    if not is_cagnet_impl(IMPLEMENTATIONS.get(card.impl)):
        raise ZsbenchError(f"--method {req.method}: card {card.path.name} has impl {card.impl!r}, not CaGNet; "
                           f"official CaGNet checkpoints load into cagnet-pi (or cagnet-pa, cagnet-pi+st)")
    run = prepare_run(RunRequest(method=req.method, dataset=req.dataset, split=req.split, seed=0, device=req.device,
                                 data_root=req.data_root, overrides=list(req.overrides)), training=False)
    facts = _load_official(run.method, req.checkpoint, run.split, reporter)
    cfg, split, test_set = run.cfg, run.split, run.data.test
    record = RunRecord.create(req.out, make_run_id(card.name, split.name, 0))
    reporter.run_start(card.name, 0, record.path)
    started = time.time()
    record.write_json("run.json", {
        **initial_run_info(req, card, split, run_name=record.path.name, seed=0, data=run.data, n_train_used=0,
                           device=run.device, flags=run.flags, options=run.options, processes=1),
        "evaluated_from": facts, "training": None,
    })
    record.write_yaml("config.yaml", {"method": card.name, "dataset": req.dataset, "split": split.name, "seed": 0,
                                      "device": str(run.device), "checkpoint": facts["checkpoint"], "config": cfg})
    ctx = run.context(reporter=reporter, log_path=None, run_id=record.path.name)
    restore_switches = run.options.apply_global(run.device)
    try:
        with marking_failure(record, started), record.heartbeat(HEARTBEAT_EVERY_S):
            confusion = ctx.confusion(run.method, test_set, ctx.eval_lut, split.num_classes)
            rule = write_scores(record, confusion, split, cfg, len(test_set))
            store_predictions(record, run.method, ctx, test_set, split)
            record.update_run(status="ok", end=utcnow(), wall_time_s=round(time.time() - started, 2),
                              scoring={"absent": rule.absent, "eval_mode": cfg["eval"]["mode"]})
    finally:
        ctx.close()
        restore_switches()
    return record.path


def _load_official(method, checkpoint: str, split, reporter: Reporter) -> dict:
    """Load the official file into `method` strictly; return what run.json records of it."""
    state, iteration = read_official_checkpoint(checkpoint)
    report = load_official_state(method, state, checkpoint, split)
    del state
    reporter.message(f"loaded {report['loaded']} tensors from {Path(checkpoint).name} (iteration {iteration}); "
                     f"dropped {', '.join(report['dropped']) or 'nothing'}; Em_all: {report['em_all']}"
                     + (f" (max |diff| {report['em_all_max_abs_diff']:.3g})"
                        if report.get("em_all_max_abs_diff") is not None else ""))
    if report["em_all"].startswith(("differs", "shape")):
        reporter.message("warning: the official code overrides the embedding pickles with the file's Em_all; "
                         "evaluation does not use embeddings, but training from this file would")
    return checkpoint_facts(checkpoint, iteration, report)
