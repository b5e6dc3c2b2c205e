"""Progress of a run, behind the engine's Reporter interface.

* On a terminal: a rich progress bar per stage.
* Otherwise (nohup, SLURM, CI, `> log.txt`): plain lines, flushed as they are written, every
  N iterations of a stage (a tenth of it, at least 10, by default) and after any iteration that
  ends 30 s or more after the last line, each naming the method, seed and stage, with
  iteration/total, elapsed time, ETA and the latest losses. A bar redrawn in place means nothing
  in a file, and a file must show progress while the run lasts.
* Always: the same plain lines appended to the batch folder's console.log.

Every line names the run (method and seed), which the engine announces with `run_start`.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from zsseg_bench.engine.loop import Reporter

__all__ = ["RichReporter", "PlainReporter", "ConsoleLog", "Tee", "console_reporter", "clock_text", "CONSOLE_LOG"]

CONSOLE_LOG = "console.log"


def clock_text(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    s = int(round(max(seconds, 0.0)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _run_name(method: str, seed: int) -> str:
    return f"{method} s{seed}"


class RichReporter(Reporter):
    def __init__(self, console, prefix: str = ""):
        self.console = console
        self.prefix = prefix
        self.progress = Progress(
            TextColumn("[bold]{task.description:<44}"), BarColumn(bar_width=28), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("[dim]{task.fields[info]}"),
            console=console, transient=False,
        )
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def run_start(self, method: str, seed: int, folder=None) -> None:
        self.prefix = _run_name(method, seed) + " · "

    def stage_start(self, label: str, total: int) -> None:
        self.task = self.progress.add_task(f"{self.prefix}{label}", total=total, info="")

    def advance(self, n: int = 1, info: str = "") -> None:
        if self.task is not None:
            if info:
                self.progress.update(self.task, advance=n, info=info)
            else:
                self.progress.update(self.task, advance=n)

    def stage_end(self) -> None:
        self.task = None

    def message(self, text: str) -> None:
        self.progress.console.print(f"[dim]{self.prefix}{text}", markup=True, highlight=False)


class PlainReporter(Reporter):
    """Plain progress lines through `write` (one line, no newline): at the start and end of a stage,
    every `every_n` iterations (default: a tenth of the stage, at least 10) and whenever `every_s` seconds passed."""

    def __init__(self, write, every_n: int | None = None, every_s: float = 30.0, clock=time.monotonic):
        self.write, self.every_n, self.every_s, self.clock = write, every_n, every_s, clock
        self.run = ""
        self.label, self.total, self.done, self.info = "", 0, 0, ""
        self.started = self.last = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def _line(self, text: str) -> None:
        self.write(f"{self.run} | {text}" if self.run else text)

    def run_start(self, method: str, seed: int, folder=None) -> None:
        self.run = _run_name(method, seed)

    def stage_start(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.info = label, int(total), 0, ""
        self.started = self.last = self.clock()
        self._line(f"{label} | start | {total} steps")

    def advance(self, n: int = 1, info: str = "") -> None:
        self.info = info or self.info
        if n <= 0:
            return
        self.done += n
        now = self.clock()
        step = self.every_n or max(10, self.total // 10)
        if self.done % step == 0 or now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            self._line(self._status(now))

    def _status(self, now: float) -> str:
        elapsed = now - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        text = (f"{self.label} | {self.done}/{self.total} | elapsed {clock_text(elapsed)} | "
                f"ETA {clock_text(eta) if eta == eta else '?'}")
        return text + (f" | {self.info}" if self.info else "")

    def stage_end(self) -> None:
        self._line(f"{self.label} | done | {self.done}/{self.total} in {clock_text(self.clock() - self.started)}")

    def message(self, text: str) -> None:
        self._line(text)


class ConsoleLog(PlainReporter):
    """The plain lines, appended to <batch>/console.log (the batch of the run that starts)."""

    def __init__(self, **kwargs):
        super().__init__(self._append, **kwargs)
        self.path: Path | None = None

    def run_start(self, method: str, seed: int, folder=None) -> None:
        super().run_start(method, seed, folder)
        self.path = Path(folder).parent / CONSOLE_LOG if folder is not None else None

    def _append(self, line: str) -> None:
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(line + "\n")


class Tee(Reporter):
    """Forwards every call to each reporter (the screen and console.log)."""

    def __init__(self, *reporters):
        self.reporters = reporters

    def __enter__(self):
        for r in self.reporters:
            r.__enter__()
        return self

    def __exit__(self, *exc):
        for r in reversed(self.reporters):
            r.__exit__(*exc)
        return False

    def run_start(self, method: str, seed: int, folder=None) -> None:
        for r in self.reporters:
            r.run_start(method, seed, folder)

    def stage_start(self, label: str, total: int) -> None:
        for r in self.reporters:
            r.stage_start(label, total)

    def advance(self, n: int = 1, info: str = "") -> None:
        for r in self.reporters:
            r.advance(n, info)

    def stage_end(self) -> None:
        for r in self.reporters:
            r.stage_end()

    def message(self, text: str) -> None:
        for r in self.reporters:
            r.message(text)


def _print_flushed(line: str) -> None:
    print(line, flush=True)


def console_reporter(console, log: bool = True) -> Tee:
    """What a command that trains or evaluates reports to: a bar on a terminal, plain lines
    otherwise, and (with `log`) console.log in the batch folder."""
    screen = RichReporter(console) if console.is_terminal else PlainReporter(_print_flushed)
    return Tee(screen, ConsoleLog()) if log else Tee(screen)
