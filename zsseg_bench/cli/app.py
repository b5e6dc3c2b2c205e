"""The Typer app, the error wrapper every command uses, and the console."""

from __future__ import annotations

import functools

import typer
from rich.console import Console

from ..errors import ZsbenchError

app = typer.Typer(
    name="zsbench",
    help="zsseg-bench: zero-shot semantic segmentation under one protocol and one evaluator.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console()


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit with `code`."""
    typer.echo("error: " + " ".join(str(message).split()), err=True)
    raise typer.Exit(code)


def command(*args, **kwargs):
    """`app.command`, plus: a ZsbenchError becomes one line on stderr and a non-zero exit."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            try:
                return fn(*a, **k)
            except ZsbenchError as exc:
                fail(str(exc), exc.exit_code)

        return app.command(*args, **kwargs)(wrapper)

    return decorator


def main() -> None:
    app()
