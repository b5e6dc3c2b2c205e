"""A rich progress bar per training stage, behind the engine's Reporter interface."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from zsseg_bench.engine.loop import Reporter


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
        self.progress.console.print(f"[dim]{self.prefix}{text}")
