"""`zsbench ls`: list what is registered (methods, datasets, splits, metrics, backbones, embeddings).

Each listing imports only what it lists, so `zsbench ls methods` starts without torch or pandas."""

from __future__ import annotations

import json

import typer

from zsseg_bench.cli.app import command, console, examples
from zsseg_bench.errors import ZsbenchError

KINDS = ("methods", "datasets", "splits", "metrics", "backbones", "embeddings")


def _methods() -> list[dict]:
    from zsseg_bench.catalog.cards import list_cards

    return [{"method": c.name, "impl": c.impl, "version": c.version, "title": c.title,
             "default run": "yes" if c.in_default_run else ""} for c in list_cards()]


def _splits() -> list[dict]:
    from zsseg_bench.catalog.splits import list_splits

    renamed = {"n_seen": "seen", "n_unseen": "unseen"}
    return [{renamed.get(k, k): v for k, v in s.describe().items()} for s in list_splits()]


def _metrics() -> list[dict]:
    from zsseg_bench.metrics.scores import METRICS

    return [{"metric": name, "higher is better": "yes" if metric.higher_is_better else "no"}
            for name, metric in METRICS.items()]


def _registered(what: str) -> list[dict]:
    if what == "datasets":
        from zsseg_bench.datasets import DATASETS as reg
    elif what == "backbones":
        from zsseg_bench.methods.common.backbones import BACKBONES as reg
    else:
        from zsseg_bench.embeddings.base import EMBEDDINGS as reg
    return [{what[:-1]: name} for name in reg.names()]


def listing(what: str) -> list[dict]:
    """The rows `zsbench ls WHAT` shows."""
    from zsseg_bench.registry import load_plugins

    if what not in KINDS:
        raise ZsbenchError(f"zsbench ls {what!r}: choose {', '.join(KINDS[:-1])} or {KINDS[-1]}")
    load_plugins()  # ZSBENCH_PLUGINS may register more (a broken one is one error line); none: no import
    return {"methods": _methods, "splits": _splits, "metrics": _metrics}.get(what, lambda: _registered(what))()


@command("ls", epilog=examples("zsbench ls methods", "zsbench ls splits", "zsbench ls splits --json"))
def ls(what: str = typer.Argument(..., help="methods | datasets | splits | metrics | backbones | embeddings"),
       as_json: bool = typer.Option(False, "--json", help="Print a JSON list of rows instead of a table.")):
    """List what is registered."""
    from rich.table import Table

    rows = listing(what)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(header_style="bold")
    columns = list(rows[0]) if rows else [what[:-1]]
    for col in columns:
        table.add_column(col, justify="right" if col in ("seen", "unseen") else "left")
    for row in rows:
        table.add_row(*[str(row[c]) for c in columns])
    console.print(table)
