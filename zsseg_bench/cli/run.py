"""`zsbench run`: train and evaluate methods, one run record each, then the comparison table and report."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import List, Optional

import typer

from zsseg_bench.cli.app import command, console, examples, plain_console
from zsseg_bench.errors import Terminated, ZsbenchError
from zsseg_bench.paths import default_runs_dir


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) < len(seeds):
        raise ZsbenchError(f"--seeds {text!r}: expected distinct comma-separated integers >= 0, e.g. 0,1,2")
    return seeds


@command("run", epilog=examples(
    "zsbench run", "zsbench run spnet spnet-c --seeds 0,1,2", "zsbench run spnet --set train.iterations=200 --out /tmp/runs",
    "zsbench run --print-config cagnet-pi", "zsbench run spnet --set engine.tensorboard=true",
    "zsbench run spnet --dataset voc12 --data-root ~/data/VOC2012 --device cuda --init deeplabv2_resnet101_init.pth "
    "--set backbone.init_parts=body", "zsbench run spnet --dataset voc12 --device cuda --gpus 4",
    "zsbench run --resume results/runs/<batch>/<run>"))
def run(
    methods: List[str] = typer.Argument(None, help="Method names (default: every method of the comparison)."),
    dataset: str = typer.Option("synthetic", "--dataset", "-d", help="synthetic, voc12, context, cocostuff, ..."),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="Split name or file (default: the dataset's)."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds, e.g. 0,1,2."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:N or auto (default auto: cuda "
                                         "when present, else cpu; with --resume, the interrupted run's). "
                                         "run.json records the device used."),
    out: Path = typer.Option(None, "--out", "-o", help="Where run folders go (default ./results/runs)."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="Root folder of a real dataset."),
    overrides: List[str] = typer.Option(None, "--set", help="Config override key=value (repeatable); keys are "
                                        "checked against the card's schema, +key=value adds a new key."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write <batch>/report/ (zsbench report)."),
    init: Optional[str] = typer.Option(None, "--init", help="Backbone weights: an official DeepLab/SPNet/CaGNet "
                                       "file, a torchvision ResNet-101 or a zsseg-bench checkpoint."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted or failed run folder "
                                          "from its last checkpoint (into a new run folder)."),
    gpus: int = typer.Option(1, "--gpus", help="Train and evaluate in N processes (torchrun; DDP-style)."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved configuration of each "
                                      "method (card, dataset block, --set, schema defaults) and exit; writes nothing."),
):
    """Train and evaluate methods; write one run record each and print the comparison table."""
    if print_config:
        return _print_config(methods, dataset, split, device, data_root, list(overrides or []), resume)
    from zsseg_bench.cli.launch import relaunch_with_torchrun
    from zsseg_bench.engine.distributed import launched_world_size

    if gpus < 1:
        raise ZsbenchError(f"--gpus {gpus}: the number of processes must be >= 1")
    if gpus > 1 and launched_world_size() == 1:
        raise typer.Exit(relaunch_with_torchrun(gpus))
    if resume is not None and (methods or init):
        raise ZsbenchError("--resume continues one run as it was configured; drop the method names and --init")
    trained = _train(methods, dataset, split, seeds, device, out or default_runs_dir(), data_root,
                     list(overrides or []), init, resume)
    if trained is not None:  # only the main process reports
        _show(*trained, report)
        _warn_dead_mechanisms(trained[1], trained[0])


def _train(methods, dataset, split, seeds, device, out, data_root, overrides, init, resume
           ) -> tuple[Path, list[Path]] | None:
    """Runs the comparison (or resumes one run); returns the batch folder and the paths the table covers,
    or None in the processes other than the main one."""
    from zsseg_bench.cli.launch import distributed_session, recorded_command
    from zsseg_bench.cli.progress import console_reporter
    from zsseg_bench.engine.distributed import is_main
    from zsseg_bench.engine.loop import Reporter
    from zsseg_bench.runs.train import default_methods, resume_request, run_comparison, run_one

    recorded = recorded_command()
    names = list(methods) if methods else default_methods()
    with _sigterm_interrupts(), distributed_session(device or "auto") as dev:
        main = is_main()
        try:
            with (console_reporter(console) if main else contextlib.nullcontext(Reporter())) as reporter:
                if resume is not None:
                    run_one(resume_request(resume, dev if device else None, data_root, overrides, recorded), reporter)
                    batch, paths = resume.parent, [resume.parent]  # the table covers every finished run of the batch
                else:
                    batch, paths = run_comparison(names, dataset, split, _seeds(seeds), dev, data_root, overrides,
                                                  out, reporter, recorded, init=init)
        except KeyboardInterrupt as exc:
            how, code = ("terminated (SIGTERM)", 143) if isinstance(exc, Terminated) else ("interrupted (Ctrl-C)", 130)
            # A stop during preparation (e.g. the shared initialisation's pretraining) leaves no run folder.
            raise ZsbenchError(f"{how}; a run that had started is marked 'interrupted' in its run.json; continue it "
                               f"with zsbench run --resume RUN_DIR", exit_code=code) from None
    return (batch, paths) if main else None


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (timeout, a scheduler's time limit) stops the run like Ctrl-C: `interrupted`, resumable."""
    def terminated(signum, frame):
        raise Terminated()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _show(batch: Path, paths: list[Path], report: bool) -> None:
    """The batch's comparison table (printed and written) and, with `report`, its report folder."""
    from zsseg_bench.cli.progress import CONSOLE_LOG
    from zsseg_bench.cli.table import print_episodic
    from zsseg_bench.report.selection import select_runs
    from zsseg_bench.report.tables import print_comparison, runs_frame, summarize, write_tables
    from zsseg_bench.runs.records import batch_lock

    # Two processes finishing runs of one batch (e.g. two --resume) take turns: each rewrites
    # comparison.* and report/ from every finished run, so the last one's include the other's run.
    with batch_lock(batch):
        frame, notes = select_runs(runs_frame(paths), latest=True)
        summary = summarize(frame)
        if not summary.empty:  # GZS3 runs; fss-zeroshot runs have their own table (comparison-episodic.*)
            written = write_tables(summary, batch / "comparison")
            for line in notes:
                console.print(f"[yellow]{line}", soft_wrap=True)
            print_comparison(console, summary)
            with open(batch / CONSOLE_LOG, "a") as fh:  # the same table, plain, for the batch's console.log
                print_comparison(plain_console(fh), summary)
            console.print(f"table: {written[0]}")
        print_episodic(paths, False, batch / "comparison")
        console.print(f"run records: [bold]{batch}[/]")
        if report:
            from zsseg_bench.report.build import make_report

            made = make_report([batch], batch / "report", command=f"zsbench report {batch} -o {batch / 'report'}")
            console.print(f"report: [bold]{made}[/]")


def _warn_dead_mechanisms(paths: list[Path], batch: Path | None = None) -> None:
    """One line per dead mechanism of a finished run (runs/diagnostics.py), last, where it is seen,
    and at the end of the batch's console.log."""
    from zsseg_bench.cli.progress import CONSOLE_LOG
    from zsseg_bench.runs.diagnostics import warning_lines
    from zsseg_bench.runs.records import find_records, load_record

    records = [rec for rec in map(load_record, find_records(paths)) if rec.get("status") == "ok"]
    lines = [f"warning: dead mechanism: {line}" for line in warning_lines(records)]
    for line in lines:
        console.print(f"[yellow]{line}", highlight=False, soft_wrap=True)
    if lines and batch is not None and batch.is_dir():
        with open(batch / CONSOLE_LOG, "a") as fh:
            fh.write("".join(line + "\n" for line in lines))


def _print_config(methods, dataset, split, device, data_root, overrides, resume) -> None:
    """`--print-config`: each method's checked configuration as YAML, as config.yaml would record it."""
    import yaml

    from zsseg_bench.runs.prepare import RunRequest, resolved_config, split_for
    from zsseg_bench.runs.train import default_methods, resume_request

    if resume is not None:
        req = resume_request(resume, device, data_root, overrides)
        requests = [req]
    else:
        requests = [RunRequest(method=m, dataset=dataset, split=split, device=device or "auto", data_root=data_root,
                               overrides=overrides) for m in (list(methods) if methods else default_methods())]
    for req in requests:
        cfg = resolved_config(req)
        facts = {"method": req.method, "dataset": req.dataset, "split": split_for(req.dataset, req.split).name}
        typer.echo("---\n" + yaml.safe_dump({**facts, "config": cfg}, sort_keys=False))  # one YAML document each
