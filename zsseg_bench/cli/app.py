"""The Typer app, the error wrapper every command uses, and the console."""

from __future__ import annotations

import contextvars
import functools
import inspect
import shlex
import sys
from pathlib import Path

import typer
import typer.models
from rich.console import Console

from zsseg_bench.errors import ZsbenchError


def examples(*lines: str) -> str:
    """A help epilog: "Examples:" and one command per paragraph (rich keeps paragraphs apart)."""
    return "Examples:\n\n" + "\n\n".join(f"  {line}" for line in lines)


def make_console() -> Console:
    """The console every command prints to. Writing to a file or pipe (nohup, SLURM, CI), rich would
    wrap at 80 columns and cut progress lines; there the lines are as long as they need to be."""
    if sys.stdout.isatty():
        return Console()
    return plain_console(None)


def plain_console(file) -> Console:
    """A console for a file (None: stdout): no colours, lines up to 200 columns."""
    return Console(file=file, width=200, color_system=None if file is not None else "auto")


# -h is --help everywhere (sub-apps pass the same settings).
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="zsbench",
    help="zsseg-bench: zero-shot semantic segmentation under one protocol and one evaluator.",
    epilog=examples("zsbench run", "zsbench run spnet cagnet-pi --seeds 0,1,2", "zsbench table results/runs/<batch>",
                    "zsbench ls methods", "zsbench COMMAND --help"),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings=CONTEXT,
)
console = make_console()


def _version(value: bool) -> None:
    if value:
        from zsseg_bench import __version__

        typer.echo(f"zsbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                       callback=_version)) -> None:
    """zsseg-bench: zero-shot semantic segmentation under one protocol and one evaluator."""


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit with `code`."""
    typer.echo("error: " + " ".join(str(message).split()), err=True)
    raise typer.Exit(code)


# The command being run and its parsed arguments, so records can show how they were made.
_invocation: contextvars.ContextVar = contextvars.ContextVar("zsbench_invocation", default=None)


def command(*args, group: typer.Typer = app, path: tuple[str, ...] = (), **kwargs):
    """`group.command`, plus: a ZsbenchError becomes one line on stderr and a non-zero exit.

    `path` names the sub-app (("data",) for `zsbench data ...`), for `invoked_command`.
    """

    def decorator(fn):
        name = args[0] if args else kwargs.get("name", fn.__name__.replace("_", "-"))

        @functools.wraps(fn)
        def wrapper(*a, **k):
            token = _invocation.set(((*path, name), fn, k))
            try:
                return fn(*a, **k)
            except ZsbenchError as exc:
                fail(str(exc), exc.exit_code)
            except OSError as exc:  # a path the user named cannot be written or read (a file where a
                if exc.filename is None:  # folder should be, a read-only folder, a full disk)
                    raise
                fail(f"{exc.filename}: {exc.strerror or exc}; name a folder you can write to (or a file you "
                     f"can read)", 2)
            finally:
                _invocation.reset(token)

        return group.command(*args, **kwargs)(wrapper)

    return decorator


def invoked_command() -> str:
    """The command line as the user typed it, for run records, reports and benchmark files.

    Under the `zsbench` script (or `python -m zsseg_bench.cli`) that is argv. When the app is called
    some other way (a test's CliRunner, a notebook) argv belongs to the host program, so the line is
    rebuilt from the running command's parsed arguments, leaving out those at their defaults.
    """
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "zsbench" or "zsseg_bench" in argv0:
        return shlex.join(["zsbench", *sys.argv[1:]])
    current = _invocation.get()
    if current is None:
        return "zsbench"
    names, fn, values = current
    words = []
    for pname, param in inspect.signature(fn).parameters.items():
        info, value = param.default, values.get(pname)
        default = getattr(info, "default", info)
        if value is None or value == default or value in ((), []):
            continue
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if isinstance(info, typer.models.ArgumentInfo):
            words += [str(v) for v in items]
            continue
        decls = [d for d in getattr(info, "param_decls", ()) or () if d.startswith("--")]
        on, _, off = (decls[0] if decls else "--" + pname.replace("_", "-")).partition("/")
        if isinstance(value, bool):  # a flag: "--x" when set, "--no-x" (its off form) when cleared
            words += [on if value else off] if (value or off) else []
        else:
            words += [w for v in items for w in (on, str(v))]
    return shlex.join(["zsbench", *names, *words])


def main() -> None:
    app()
