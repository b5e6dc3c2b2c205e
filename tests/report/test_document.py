"""document.py: the same Document read as Markdown and as one self-contained HTML page."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd

from zsseg_bench.report.document import Document


def _doc(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"\x89PNG fake")
    doc = Document()
    doc.heading(2, "Results")
    doc.para("See `comparison.md` and **this** <tag>.")
    doc.table(pd.DataFrame({"method": ["spnet", "zs3net"], "hIoU": ["0.1000", None], "n": [3, np.nan]}))
    doc.image("figures/a.png", "a figure")
    doc.bullets(["one", "`two`"])
    return doc


def test_markdown(tmp_path):
    text = _doc(tmp_path).markdown()
    assert text.startswith("## Results\n\nSee `comparison.md` and **this** <tag>.\n\n| method ")
    assert "| zs3net   | –      | –   |" in text  # missing numbers read as an en dash
    assert "![a figure](figures/a.png)\n\n- one\n- `two`\n" in text


def test_html_escapes_and_embeds_images(tmp_path):
    page = _doc(tmp_path).html(tmp_path, "t <1>")
    assert "<title>t &lt;1&gt;</title>" in page
    assert "<p>See <code>comparison.md</code> and <b>this</b> &lt;tag&gt;.</p>" in page
    assert "<td>zs3net</td><td>–</td><td>–</td>" in page
    encoded = base64.b64encode(b"\x89PNG fake").decode()
    assert f'src="data:image/png;base64,{encoded}"' in page
    assert "<li><code>two</code></li>" in page
