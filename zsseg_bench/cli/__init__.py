"""The `zsbench` command line. Each command parses arguments and calls one library function."""

from .app import app, main
from . import commands  # noqa: F401,E402  (registers the commands on `app`)

__all__ = ["app", "main"]
