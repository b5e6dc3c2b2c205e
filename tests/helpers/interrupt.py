"""A Reporter that interrupts a run the way Ctrl-C does (for resume tests)."""

from __future__ import annotations

from zsseg_bench.engine.loop import Reporter


class StopAt(Reporter):
    """Raises KeyboardInterrupt after `n` iterations of the stage labelled `label` (any stage if None)."""

    def __init__(self, n: int, label: str | None = None):
        self.n, self.label, self.count, self.current = n, label, 0, None

    def stage_start(self, label, total):
        self.current, self.count = label, 0

    def advance(self, n=1, info=""):
        self.count += n
        if (self.label is None or self.current == self.label) and self.count >= self.n:
            raise KeyboardInterrupt
