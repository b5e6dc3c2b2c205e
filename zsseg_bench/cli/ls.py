"""`zsbench ls`: list what is registered (methods, datasets, splits, metrics, backbones, embeddings)."""

from __future__ import annotations

import typer

from zsseg_bench.cli.app import command, console
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.metrics.scores import METRICS


@command("ls", epilog="Examples:\n\n  zsbench ls methods\n\n  zsbench ls splits")
def ls(what: str = typer.Argument(..., help="methods | datasets | splits | metrics | backbones | embeddings")):
    """List what is registered."""
    import pandas as pd

    from zsseg_bench.catalog.cards import list_cards
    from zsseg_bench.catalog.splits import list_splits
    from zsseg_bench.datasets import DATASETS
    from zsseg_bench.embeddings.base import EMBEDDINGS
    from zsseg_bench.methods.common.backbones import BACKBONES
    from zsseg_bench.report.tables import print_packed

    if what == "methods":
        frame = pd.DataFrame([{"method": c.name, "impl": c.impl, "version": c.version, "title": c.title,
                               "default run": "yes" if c.in_default_run else ""} for c in list_cards()])
    elif what == "splits":
        frame = pd.DataFrame([s.describe() for s in list_splits()])
        frame = frame.rename(columns={"n_seen": "seen", "n_unseen": "unseen"})
    elif what == "metrics":
        frame = pd.DataFrame([{"metric": name, "higher is better": "yes" if metric.higher_is_better else "no"}
                              for name, metric in METRICS.items()])
    elif what in ("datasets", "backbones", "embeddings"):
        reg = {"datasets": DATASETS, "backbones": BACKBONES, "embeddings": EMBEDDINGS}[what]
        frame = pd.DataFrame({what[:-1]: reg.names()})
    else:
        raise ZsbenchError(f"zsbench ls {what!r}: choose methods, datasets, splits, metrics, backbones or embeddings")
    key = list(frame.columns[:1])
    print_packed(console, frame.astype(str), key, [[c] for c in frame.columns[1:]])
