"""The `zsbench` command line. Each command parses arguments and calls one library function."""

# Importing a command module registers its commands on `app`, in help order.
# isort: off
from zsseg_bench.cli.app import app, main
from zsseg_bench.cli import run  # noqa: F401,E402
from zsseg_bench.cli import score  # noqa: F401,E402
from zsseg_bench.cli import table  # noqa: F401,E402
from zsseg_bench.cli import check  # noqa: F401,E402
from zsseg_bench.cli import expected  # noqa: F401,E402
from zsseg_bench.cli import published  # noqa: F401,E402
from zsseg_bench.cli import validate  # noqa: F401,E402
from zsseg_bench.cli import ls  # noqa: F401,E402
from zsseg_bench.cli import report  # noqa: F401,E402  report, predict
from zsseg_bench.cli import data  # noqa: F401,E402  data check|stats
from zsseg_bench.cli import bench  # noqa: F401,E402
from zsseg_bench.cli import eval  # noqa: F401,E402  eval --checkpoint
from zsseg_bench.cli import trials  # noqa: F401,E402
from zsseg_bench.cli import orderings  # noqa: F401,E402
from zsseg_bench.cli import sazs  # noqa: F401,E402  sazs eigs
# isort: on

__all__ = ["app", "main"]
