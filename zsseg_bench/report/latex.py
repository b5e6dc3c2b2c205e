"""The comparison as LaTeX for a paper: pandas `Styler.to_latex` with booktabs rules.

* ASCII only: every cell and caption is escaped here (`latex_escape`), and the symbols the
  tables use become math (Δ -> $\\Delta$, ± -> $\\pm$, – -> --), so the file compiles with
  pdflatex and no extra package but booktabs.
* Columns whose value is the same in every row (dataset, split, seeds, published source) go
  into the caption instead of repeating down the table.
* One `table` float per block, each narrow enough for a 6.5 in text width in \\small: the key
  metrics (tables.KEY_METRICS), the other metrics, and, when published numbers are attached,
  their published values and the deltas (ours - published). Best value per metric column in
  bold (every metric is higher-is-better).

Numbers are formatted by numbers.metric_text, as everywhere else.
"""

from __future__ import annotations

import pandas as pd

from zsseg_bench.report.numbers import KEY_METRICS, MISSING, metric_text

__all__ = ["latex_escape", "comparison_latex"]

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}"}
_SYMBOLS = {"Δ": r"$\Delta$", "±": r"$\pm$", MISSING: "--", "−": "-", "·": r"$\cdot$", "×": r"$\times$"}


def latex_escape(text) -> str:
    """`text` as LaTeX source that prints it: special characters escaped, the tables' symbols as math;
    any other non-ASCII character is an error (pdflatex would stop on it)."""
    out = "".join(_SPECIAL.get(ch, _SYMBOLS.get(ch, ch)) for ch in str(text))
    bad = sorted({ch for ch in out if ord(ch) > 127})
    if bad:
        raise ValueError(f"no LaTeX form for {''.join(bad)!r} in {text!r}")
    return out


def _cells(summary: pd.DataFrame, metric: str, decimals: int, percent: bool) -> list[str]:
    """'mean' or 'mean ± std' (std small) per row."""
    out = []
    for mean, std, seeds in zip(summary[metric], summary[f"{metric} std"], summary["seeds"]):
        text = latex_escape(metric_text(mean, decimals, percent))
        if "," in str(seeds) and mean == mean:
            text += r"{\scriptsize$\pm$" + latex_escape(metric_text(std, decimals, percent)) + "}"
        out.append(text)
    return out


def _published_cells(summary: pd.DataFrame, metric: str, decimals: int, percent: bool) -> list[str]:
    """'published (delta)' per row, the delta small; '--' where the method has no published value."""
    out = []
    for pub, delta in zip(summary[f"{metric} pub"], summary[f"Δ {metric}"]):
        text = latex_escape(metric_text(pub, decimals, percent))
        if pub == pub:
            text += r"{\scriptsize(" + latex_escape(metric_text(delta, decimals, percent, signed=True)) + ")}"
        out.append(text)
    return out


def _bold_best(frame: pd.DataFrame, values: pd.DataFrame):
    """Styler function: bold the best (largest) value of each column of `values` (ties all bold)."""
    def style(column: pd.Series) -> list[str]:
        nums = values[column.name]
        if len(nums.dropna()) < 2:
            return [""] * len(column)
        best = nums.max()
        return ["font-weight: bold" if v == best else "" for v in nums]
    return style


def _flags(summary: pd.DataFrame) -> list[str]:
    marks = []
    for _, row in summary.iterrows():
        marks.append(",".join(m for m, on in (("T", row.get("transductive")), ("U", row.get("uses_unseen_labels")),
                                               ("D", bool(row.get("dead_seeds")))) if on))
    return marks


def _sources(summary: pd.DataFrame) -> str:
    """'published rows: SOURCE: method, method; SOURCE: method' (methods without a published row left out)."""
    by_source: dict[str, list[str]] = {}
    for method, source in zip(summary["method"], summary.get("source", [""] * len(summary))):
        if source:
            by_source.setdefault(source, []).append(method)
    return "published rows: " + "; ".join(f"{s}: {', '.join(m)}" for s, m in by_source.items())


def _constant(summary: pd.DataFrame, columns) -> dict[str, str]:
    return {c: str(summary[c].iloc[0]) for c in columns if c in summary and summary[c].nunique() == 1}


def _block(summary: pd.DataFrame, row_keys: pd.DataFrame, columns: dict[str, list[str]], values: pd.DataFrame | None,
           caption: str, label: str) -> str:
    frame = pd.concat([row_keys, pd.DataFrame(columns, index=row_keys.index)], axis=1)
    styler = frame.style.hide(axis="index")
    if values is not None and len(values.columns):
        styler = styler.apply(_bold_best(frame, values), axis=0, subset=list(values.columns))
    latex = styler.to_latex(column_format="l" * len(row_keys.columns) + "r" * len(columns), hrules=True,
                            caption=caption, label=label, position="t", position_float="centering",
                            convert_css=True)
    # 2pt: six "mean±std" columns and a marked method name must fit a page (pdflatex, tests/report/test_latex.py)
    return latex.replace("\\centering\n", "\\centering\n\\small\n\\setlength{\\tabcolsep}{2pt}\n", 1)


def comparison_latex(summary: pd.DataFrame, metrics, decimals: int = 4, percent: bool = False, name: str = "comparison"
                     ) -> str:
    """The comparison `summary` (tables.summarize, optionally tables.add_published) as LaTeX floats."""
    constant = _constant(summary, ["dataset", "data", "split", "seeds", "source"])
    if not constant.get("data", "x"):  # no data label (real datasets): nothing to say
        constant.pop("data")
    keys = pd.DataFrame({"method": [latex_escape(m) for m in summary["method"]]}, index=summary.index)
    for col in ("dataset", "data", "split", "seeds"):
        if col in summary and col not in constant and summary[col].astype(bool).any():
            keys[col] = [latex_escape(v) for v in summary[col]]
    flags = _flags(summary)
    if any(flags):  # a mark on the method's name, explained in the caption (a column would cost width)
        keys["method"] = [m + (f"$^{{{f}}}$" if f else "") for m, f in zip(keys["method"], flags)]
    where = ", ".join(f"{k} {v}" for k, v in constant.items() if k != "source")
    unit = "percent" if percent else "fractions"
    several = summary["seeds"].astype(str).str.contains(",").any()
    base = (f"{where}; {unit}" + ("; mean $\\pm$ std over seeds" if several else "")
            + ("; marks: T = transductive, U = uses unseen labels in training, D = a dead-mechanism warning"
               if any(flags) else ""))
    base = latex_escape(base.replace("$\\pm$", "±"))
    key = [m for m in KEY_METRICS if m in metrics]
    rest = [m for m in metrics if m not in KEY_METRICS]
    blocks = []
    for part, what in ((key, "key metrics"), (rest, "other metrics")):
        if part:
            cols = {latex_escape(m): _cells(summary, m, decimals, percent) for m in part}
            values = pd.DataFrame({latex_escape(m): summary[m] for m in part}, index=summary.index)
            blocks.append(_block(summary, keys, cols, values, f"{what.capitalize()}: {base}; best per column in bold.",
                                 f"tab:{name}-{what.split()[0]}"))
    for part, what in ((key, "key metrics"), (rest, "other metrics")):
        published = [m for m in part if f"{m} pub" in summary and summary[f"{m} pub"].notna().any()]
        if published:
            cols = {latex_escape(m): _published_cells(summary, m, decimals, percent) for m in published}
            source = f"published rows: {constant['source']}" if "source" in constant else _sources(summary)
            caption = latex_escape(f"Published values of the {what}, with ours - published in parentheses; "
                                   f"{source}; ") + base
            blocks.append(_block(summary, keys, cols, None, caption + ".", f"tab:{name}-published-{what.split()[0]}"))
    return "\n".join(blocks)
