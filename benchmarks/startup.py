"""Start-up time of the command line: `zsbench --help` and `zsbench ls methods`, each run as a new
process N times (median, min, max), and which heavy modules an import of the CLI pulls in.

    python -m benchmarks.startup --runs 5

The CLI imports torch, pandas and matplotlib only inside the commands that need them
(`zsbench --help` and `zsbench ls methods` need none); `python -X importtime -c "import
zsseg_bench.cli"` shows the rest. Prints a Markdown section for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (["--help"], ["ls", "methods"])
HEAVY = ("torch", "pandas", "matplotlib", "pyarrow")


def _zsbench() -> list[str]:
    script = Path(sys.executable).with_name("zsbench")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "zsseg_bench.cli"]


def time_command(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*_zsbench(), *args], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def heavy_modules(args: list[str]) -> list[str]:
    """Heavy modules loaded after running the command's code path in-process."""
    code = ("import sys; sys.argv = ['zsbench', *sys.argv[1:]]\nfrom zsseg_bench.cli import app\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("HEAVY:")][-1]
    return [m for m in line.removeprefix("HEAVY:").split(",") if m]


def import_time_ms() -> float:
    """Cumulative import time of zsseg_bench.cli (python -X importtime), milliseconds."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import zsseg_bench.cli"], capture_output=True,
                         text=True, check=True).stderr
    line = [ln for ln in err.splitlines() if ln.rstrip().endswith("| zsseg_bench.cli")][-1]
    return int(line.split("|")[1]) / 1000.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    a = parser.parse_args(argv)
    load = os.getloadavg()
    print("| command | median s | min s | max s | runs | heavy modules loaded |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for args in COMMANDS:
        times = time_command(args, a.runs)
        print(f"| `zsbench {shlex.join(args)}` | {statistics.median(times):.3f} | {min(times):.3f} | "
              f"{max(times):.3f} | {a.runs} | {', '.join(heavy_modules(args)) or 'none'} |")
    print(f"\n`import zsseg_bench.cli`: {import_time_ms():.0f} ms cumulative (python -X importtime); "
          f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores, "
          f"after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
