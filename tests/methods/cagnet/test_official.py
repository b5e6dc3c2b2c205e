"""Official CaGNet checkpoints: key map, classifier row order, real-size layout, `zsbench eval` and its errors.

The files are generated from our model through the inverse map (official_state_dict), on a
tiny DeepLabv2 (one block per ResNet stage, 8-d features) and small generated dataset trees.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.helpers.configs import card_config
from tests.helpers.datasets import make_packaged, make_voc_devkit
from tests.helpers.official_layout import cagnet_shapes
from zsseg_bench.catalog.cards import load_card, resolve_config
from zsseg_bench.catalog.splits import load_class_list, load_split
from zsseg_bench.cli import app
from zsseg_bench.datasets import build_dataset
from zsseg_bench.engine.context import RunContext
from zsseg_bench.engine.evaluate import evaluate_confusion
from zsseg_bench.engine.weights import file_sha256
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods import IMPLEMENTATIONS, ClassSpace
from zsseg_bench.methods.cagnet.official import (
    OFFICIAL_ORDERS,
    load_official_state,
    official_order,
    official_state_dict,
    read_official_checkpoint,
)

EMB_DIM = 16
TINY_MODEL = ["backbone.blocks=[1,1,1,1]", "feature_dim=8", "context.hidden=4", "generator.hidden=[8,8]",
              "generator.dropout=[0.1,0.1]", "discriminator.hidden=16", "eval.warp=40", "data.num_workers=0"]
DATASETS = {"voc12": ("voc12-15-5", "voc12"), "context": ("context33-29-4", "context33")}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """A generated VOC devkit and a CaGNet-packaged Pascal-Context tree, each with a class-embedding file."""
    root = tmp_path_factory.mktemp("official")
    make_voc_devkit(root / "voc12", n_train=2, n_val=3, size=(40, 56))
    make_packaged(root / "context", {"train": 2, "val": 3}, range(1, 34), lists={"train": "train", "test": "val"},
                  size=(40, 56))
    settings = {}
    for dataset, (_, class_list) in DATASETS.items():
        names = load_class_list(class_list).names
        np.save(root / f"{dataset}-emb.npy",
                np.random.default_rng(0).standard_normal((len(names), EMB_DIM)).astype(np.float32))
        (root / f"{dataset}-names.txt").write_text("\n".join(names) + "\n")
        settings[dataset] = TINY_MODEL + ["embeddings.provider=file", f"embeddings.path={root / f'{dataset}-emb.npy'}",
                                          f"embeddings.names={root / f'{dataset}-names.txt'}"]
    return root, settings


def _model(dataset: str, overrides: list[str], seed: int, method: str = "cagnet-pi"):
    split = load_split(DATASETS[dataset][0])
    card = load_card(method)
    cfg = card_config(method, dataset, overrides)
    setting = dict(o.split("=", 1) for o in overrides)
    table = np.load(setting["embeddings.path"])
    names = Path(setting["embeddings.names"]).read_text().split("\n")
    emb = torch.from_numpy(table[[names.index(n) for n in split.eval_names]])
    emb = emb / emb.norm(dim=1, keepdim=True)  # the card's normalize: l2, as the run computes it
    classes = ClassSpace(split.eval_names, torch.from_numpy(split.seen_mask), emb, split.ignore_index)
    torch.manual_seed(seed)
    return IMPLEMENTATIONS.get(card.impl)(cfg, classes), split, cfg


def _write(path: Path, payload) -> Path:
    torch.save(payload, path)
    return path


def _eval(root: Path, settings: list[str], checkpoint: Path, out: Path, dataset: str = "voc12", method="cagnet-pi"):
    args = ["eval", "--checkpoint", str(checkpoint), "--method", method, "--dataset", dataset,
            "--data-root", str(root / dataset), "--out", str(out)]
    for s in settings:
        args += ["--set", s]
    return CliRunner().invoke(app, args, env={"COLUMNS": "200"})


# ---- key map and row order ----------------------------------------------------------------------
def test_official_orders_match_the_splits_and_are_permutations():
    for name, (seen, novel) in OFFICIAL_ORDERS.items():
        split = load_split(name)
        order = official_order(split)
        assert sorted(order) == list(range(split.num_classes))
        assert [split.eval_names[i] for i in order[len(seen):]] == [split.classes.names[split.classes.ids.index(r)]
                                                                  for r in novel]
        assert all(split.seen_mask[i] for i in order[:len(seen)])
    # Context and COCO-Stuff rows really move: the novel lists are not in raw-id order / seen has val appended
    context = load_split("context33-29-4")
    assert [context.eval_names[i] for i in official_order(context)[-4:]] == ["cow", "motorbike", "sofa", "cat"]
    coco = load_split("cocostuff-167-15")
    assert [coco.eval_names[i] for i in official_order(coco)[155:158]] == ["motorcycle", "elephant", "baseball bat"]
    with pytest.raises(ZsbenchError, match="no official CaGNet class order"):
        official_order(load_split("synthetic-9-3"))


@pytest.mark.parametrize("dataset", ["voc12", "context"])
def test_official_layout_round_trips_into_a_differently_initialised_model(trees, dataset, one_thread):
    _, settings = trees
    ours, split, _ = _model(dataset, settings[dataset], seed=1)
    payload = official_state_dict(ours, split, iteration=7)
    state = payload["state_dict"]
    assert {k.split(".")[0] for k in state} == {"Em_vis", "Em_all", "gen", "dis", "back"}
    order = official_order(split)
    # official row r is our row order[r]; the last row is the dead logit
    assert torch.equal(state["dis.cls.weight"][:-1], ours.discriminator.cls.weight[order])
    assert torch.equal(state["dis.cls.bias"][-1], ours.discriminator.cls.bias[-1])
    assert torch.equal(state["Em_all.weight"], ours.embeddings[order])
    other, _, _ = _model(dataset, settings[dataset], seed=2)
    assert not torch.equal(other.discriminator.cls.weight, ours.discriminator.cls.weight)
    report = load_official_state(other, state, Path("gen.pth"), split)
    assert report["dropped"] == ["Em_all.weight", "Em_vis.weight"] and report["em_all_max_abs_diff"] == 0.0
    mine, theirs = ours.state_dict(), other.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    if dataset == "context":  # unpermuted rows load too, but give another classifier: the permutation matters
        shuffled = dict(state, **{"dis.cls.weight": ours.discriminator.cls.weight})  # our row order
        load_official_state(other, shuffled, Path("gen.pth"), split)
        assert not torch.equal(other.discriminator.cls.weight, ours.discriminator.cls.weight)


def test_real_size_voc_model_has_the_659_official_keys_and_shapes_without_allocating():
    split = load_split("voc12-15-5")
    cfg = resolve_config(load_card("cagnet-pi"), "voc12", [])
    classes = ClassSpace(split.eval_names, torch.from_numpy(split.seen_mask), torch.rand(20, 600), 255)
    with torch.device("meta"):  # ~100 M parameters, none of them allocated
        model = IMPLEMENTATIONS.get("cagnet")(cfg, classes)
        other = IMPLEMENTATIONS.get("cagnet")(cfg, classes)
    state = official_state_dict(model, split)["state_dict"]
    expected = cagnet_shapes(600, 20)
    assert len(expected) == 659 and len(state) == 659
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    params = sum(int(np.prod(s)) for k, s in expected.items() if not k.endswith(("running_mean", "running_var",
                                                                                 "num_batches_tracked")))
    assert round(params / 1e6, 1) == 101.8  # "about 101.8 M parameters" (section 7; BN statistics not counted)
    report = load_official_state(other, state, Path("voc12_ourbest.pth"), split)  # strict, on meta tensors
    assert report["loaded"] == 657


# ---- zsbench eval ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["voc12", "context"])
def test_zsbench_eval_writes_a_record_whose_confusion_equals_our_model(trees, tmp_path, dataset, one_thread):
    root, settings = trees
    ours, split, cfg = _model(dataset, settings[dataset], seed=3)
    ckpt = _write(tmp_path / f"{dataset}_ourbest.pth", official_state_dict(ours, split, iteration=4000))
    out = tmp_path / "runs"
    result = _eval(root, settings[dataset], ckpt, out, dataset)
    assert result.exit_code == 0, result.output
    run_dir = next(out.glob(f"cagnet-pi__{split.name}__s0__*"))
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "ok" and run["training"] is None and run["scoring"]["eval_mode"] == "feature"
    facts = run["evaluated_from"]
    assert facts["sha256"] == file_sha256(ckpt) and facts["iteration"] == 4000
    assert facts["dropped"] == ["Em_all.weight", "Em_vis.weight"] and facts["em_all_max_abs_diff"] < 1e-6
    assert not (run_dir / "train_log.jsonl").exists() and (run_dir / "per_class.csv").is_file()
    confusion = np.load(run_dir / "confusion.npy")
    # our original model, evaluated directly with the same settings
    test_set = build_dataset(dataset, "test", str(root / dataset), {"classes": split.classes.name})
    ctx = RunContext(split=split, train_set=test_set, device=torch.device("cpu"), seed=0, cfg=cfg)
    direct = evaluate_confusion(ours, ctx, test_set, ctx.eval_lut, split.num_classes)
    assert confusion.shape == (split.num_classes,) * 2 and confusion.sum() > 0
    assert np.array_equal(confusion, direct)
    # feature resolution: 40x40 warped test images -> 5x5 score maps, 3 images
    assert confusion.sum() <= 3 * 5 * 5
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_pixels"] == int(confusion.sum())


def test_zsbench_check_compares_an_evaluated_checkpoint_with_the_published_row(trees, tmp_path, one_thread):
    root, settings = trees
    ours, split, _ = _model("voc12", settings["voc12"], seed=3)
    ckpt = _write(tmp_path / "voc12_ourbest.pth", official_state_dict(ours, split))
    out = tmp_path / "runs"
    assert _eval(root, settings["voc12"], ckpt, out).exit_code == 0
    result = CliRunner().invoke(app, ["check", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 1  # random weights are far from the published CaGNet row
    assert "0.3972" in result.output and "cagnet-readme" in result.output


def _good(trees, tmp_path):
    _, settings = trees
    ours, split, _ = _model("voc12", settings["voc12"], seed=3)
    return official_state_dict(ours, split, iteration=1)


def _without(payload, key):
    state = dict(payload["state_dict"])
    state.pop(key)
    return {**payload, "state_dict": state}


def _with(payload, key, value):
    return {**payload, "state_dict": {**payload["state_dict"], key: value}}


ERRORS = {
    "missing file": (None, "checkpoint not found"),
    "not a torch file": (b"this is not a torch file", "not a readable torch file"),
    "no state_dict": (lambda p: {"iteration": 1, "model": p["state_dict"]}, "no 'state_dict' entry"),
    "missing key": (lambda p: _without(p, "gen.mlp.0.conv.weight"),
                    "1 missing (e.g. gen.mlp.0.conv.weight (as generator.mlp.0.conv.weight))"),
    "missing Em_all": (lambda p: _without(p, "Em_all.weight"), "1 missing (e.g. Em_all.weight)"),
    "unexpected key": (lambda p: _with(p, "dis.extra.weight", torch.zeros(1)), "1 unexpected (e.g. dis.extra.weight"),
    "wrong shape": (lambda p: _with(p, "gen.mlp.1.conv.bias", torch.zeros(5)),
                    "gen.mlp.1.conv.bias (as generator.mlp.1.conv.bias) (5,) in the file vs (8,) in the model"),
    "class count": (lambda p: _with(p, "dis.cls.weight", p["state_dict"]["dis.cls.weight"][:-1]),
                    "dis.cls.weight has 20 rows, split voc12-15-5 needs 21"),
    "SPNet layout": (lambda p: {**p, "state_dict": {k.replace("back.scale.", "scale."): v
                                                    for k, v in p["state_dict"].items()}},
                     "not the official CaGNet layout"),
    "not CaGNet": ("spnet", "not CaGNet"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_checkpoints_fail_with_one_line_and_leave_no_run_folder(trees, tmp_path, case):
    root, settings = trees
    make, message = ERRORS[case]
    ckpt, method = tmp_path / "voc12_ourbest.pth", "cagnet-pi"
    if isinstance(make, bytes):
        ckpt.write_bytes(make)
    elif callable(make):
        _write(ckpt, make(_good(trees, tmp_path)))
    elif make == "spnet":
        _write(ckpt, _good(trees, tmp_path))
        method = "spnet"
    out = tmp_path / "runs"
    result = _eval(root, settings["voc12"], ckpt, out, method=method)
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and str(ckpt if method != "spnet" else "spnet") in result.stderr
    assert not out.exists()


class _Foreign:  # a pickled Python object: refused by weights_only loading
    pass


def test_read_official_checkpoint_uses_weights_only(tmp_path):
    path = _write(tmp_path / "x.pth", {"iteration": 1, "state_dict": {}, "extra": _Foreign()})
    with pytest.raises(ZsbenchError, match="refused: loading this torch file .* would run Python code"):
        read_official_checkpoint(path)


def test_patch_wise_model_maps_cls_3_and_keeps_its_own_pixelcnn(trees, one_thread):
    _, settings = trees
    ours, split, _ = _model("voc12", settings["voc12"], seed=1, method="cagnet-pa")
    state = official_state_dict(ours, split)["state_dict"]
    assert "dis.cls_3.weight" in state and not any(k.startswith("pixelcnn") for k in state)
    other, _, _ = _model("voc12", settings["voc12"], seed=2, method="cagnet-pa")
    report = load_official_state(other, state, Path("voc12_pa.pth"), split)
    assert report["kept_from_model"] and all(k.startswith("pixelcnn.") for k in report["kept_from_model"])
    mine, theirs = ours.state_dict(), other.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if not k.startswith("pixelcnn."))
