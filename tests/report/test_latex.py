"""LaTeX tables for a paper: ASCII only, escaped, constant columns in the caption, best value in
bold, fixed decimals; the committed ones compile with pdflatex and fit a 6.5 in text width."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.helpers.settings import REPO
from zsseg_bench.metrics.scores import METRIC_NAMES
from zsseg_bench.report.latex import comparison_latex, latex_escape
from zsseg_bench.report.tables import format_summary

COMMITTED = sorted((REPO / "results").glob("tables/*.tex")) + sorted((REPO / "results").glob("runs/*/comparison.tex"))
DOCUMENT = r"""\documentclass{article}
\usepackage[margin=1in]{geometry}
\usepackage{booktabs}
\begin{document}
\input{table.tex}
\end{document}
"""


def _summary(n_seeds: int = 3) -> pd.DataFrame:
    rows = []
    for i, method in enumerate(["spnet", "my_method 100%", "zs3net+st"]):
        row = {"method": method, "dataset": "synthetic", "split": "synthetic-9-3",
               "seeds": ",".join(map(str, range(n_seeds))), "uses_unseen_labels": i == 1, "transductive": i == 2}
        for k, m in enumerate(METRIC_NAMES):
            row[m] = 0.1 * (i + 1) + 0.01 * k if m != "U-MA" else 0.5
            row[f"{m} std"] = 0.01
        rows.append(row)
    return pd.DataFrame(rows)


def test_escape_is_ascii_and_rejects_what_it_cannot_write():
    assert latex_escape("a_b & 50% ± Δ –") == r"a\_b \& 50\% $\pm$ $\Delta$ --"
    with pytest.raises(ValueError, match="no LaTeX form"):
        latex_escape("φ")


def test_latex_is_ascii_escaped_with_caption_bold_and_fixed_decimals():
    summary = _summary()
    summary["hIoU pub"], summary["Δ hIoU"], summary["source"] = 0.2, summary["hIoU"] - 0.2, "cagnet-readme"
    tex = comparison_latex(summary, METRIC_NAMES)
    assert tex.isascii()
    assert r"my\_method 100\%$^{U}$" in tex and "zs3net+st$^{T}$" in tex
    assert "dataset synthetic, split synthetic-9-3, seeds 0,1,2" in tex and "\\toprule" in tex
    assert r"\bfseries 0.3000{\scriptsize$\pm$0.0100}" in tex  # best hIoU (zs3net+st), 4 fixed decimals
    assert r"\bfseries 0.5000" in tex  # U-MA: a tie, every best bold
    assert "published rows: cagnet-readme" in tex and "0.2000{\\scriptsize(+0.1000)}" in tex
    assert tex.count(r"\begin{table}") == 3  # key metrics, other metrics, published key metrics


def test_markdown_keeps_trailing_zeros_and_percent():
    summary = _summary(1)
    shown = format_summary(summary, ["hIoU", "U-MA"])
    assert shown["hIoU"].tolist() == ["0.1000", "0.2000", "0.3000"]
    shown = format_summary(summary, ["hIoU"], decimals=1, percent=True)
    assert shown["hIoU"].tolist() == ["10.0", "20.0", "30.0"]


@pytest.mark.parametrize("path", COMMITTED, ids=[p.relative_to(REPO).as_posix() for p in COMMITTED])
def test_committed_latex_compiles_and_fits_the_page(path, tmp_path):
    text = path.read_text()
    assert text.isascii(), path
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed")
    (tmp_path / "table.tex").write_text(text)
    (tmp_path / "doc.tex").write_text(DOCUMENT)
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert done.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log, [line for line in log.splitlines() if "Overfull" in line]
    assert np.any([line.startswith("Output written") for line in log.splitlines()])
