"""Starting a multi-process run: `zsbench run --gpus N` re-runs the same command under torchrun,
and every process joins the group torchrun describes (see zsseg_bench/distributed.py)."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys

from zsseg_bench.engine.distributed import init_from_env, launched_world_size, shutdown

__all__ = ["distributed_session", "recorded_command", "relaunch_with_torchrun", "strip_option"]

_COMMAND_ENV = "ZSBENCH_COMMAND"


def strip_option(argv: list[str], name: str) -> list[str]:
    """argv without `name VALUE` / `name=VALUE`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if arg.startswith(name + "="):
            continue
        out.append(arg)
    return out


def relaunch_with_torchrun(n: int) -> int:
    """Run this very command in n processes with torchrun; return its exit code."""
    args = strip_option(sys.argv[1:], "--gpus")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "zsseg_bench.cli", *args]
    env = {**os.environ, _COMMAND_ENV: shlex.join(["zsbench", *sys.argv[1:]])}
    return subprocess.call(cmd, env=env)


def recorded_command() -> str:
    """The command line a run record should show (the user's, not torchrun's child's)."""
    if os.environ.get(_COMMAND_ENV):
        return os.environ[_COMMAND_ENV]
    if launched_world_size() > 1:
        return shlex.join(["torchrun", f"--nproc_per_node={launched_world_size()}", "-m", "zsseg_bench.cli",
                           *sys.argv[1:]])
    from zsseg_bench.cli.app import invoked_command

    return invoked_command()


@contextlib.contextmanager
def distributed_session(device: str):
    """Yields the device to use: this rank's under torchrun (process group joined), else `device`."""
    if launched_world_size() <= 1:
        yield device
        return
    dev = init_from_env(device)
    try:
        yield str(dev)
    finally:
        shutdown()
