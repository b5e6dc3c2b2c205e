"""Every `--help` of the command line works and ends with examples; --version and -h."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from zsseg_bench import __version__
from zsseg_bench.cli import app

runner = CliRunner()


def _command_paths(cmd, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    if hasattr(cmd, "commands"):  # a group
        for name, sub in cmd.commands.items():
            paths += _command_paths(sub, (*prefix, name))
    return paths


PATHS = _command_paths(typer.main.get_command(app))


def test_every_command_is_found():
    names = {" ".join(p) for p in PATHS}
    assert {"", "run", "table", "data", "data check", "data stats", "ls", "published"} <= names
    assert len(PATHS) >= 15


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "zsbench" for p in PATHS])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_works_and_ends_with_examples(path, flag):
    result = runner.invoke(app, [*path, flag], terminal_width=120)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Usage:" in result.output
    tail = result.output[result.output.rfind("Examples:"):]
    assert "Examples:" in result.output and "zsbench" in tail, result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"zsbench {__version__}"


@pytest.mark.parametrize("args", [["--help"], ["ls", "methods"], ["run", "--help"], ["table", "--help"]])
def test_start_up_imports_no_heavy_module(args):
    """torch, pandas and matplotlib load inside the commands that need them, not at start-up
    (the times: benchmarks/startup.py, benchmarks/RESULTS.md)."""
    from benchmarks.startup import heavy_modules

    assert heavy_modules(args) == []
