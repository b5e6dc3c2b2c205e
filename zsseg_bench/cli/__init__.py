"""The `zsbench` command line. Each command parses arguments and calls one library function."""

from .app import app, main
from . import commands  # noqa: F401,E402  (registers the commands on `app`)
from . import report  # noqa: F401,E402  (report, predict)
from . import data  # noqa: F401,E402  (registers `zsbench data check|stats`)
from . import bench  # noqa: F401,E402  (zsbench bench)
from . import eval  # noqa: F401,E402  (zsbench eval --checkpoint)

__all__ = ["app", "main"]
