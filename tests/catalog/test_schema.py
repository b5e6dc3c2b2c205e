"""Strict, typed method configs: every card validates on every dataset it knows; a mistyped,
inapplicable, mistyped-value or out-of-range key is one error line (card, key, the keys it has),
exit 2, before any folder exists; `--set +key=value` adds a key on purpose."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from zsseg_bench.catalog.cards import apply_overrides, card_paths, list_cards, load_card, resolve_config
from zsseg_bench.catalog.schema import Section, checked
from zsseg_bench.catalog.validate import _datasets_of, validate_config, validate_paths
from zsseg_bench.cli import app
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods import IMPLEMENTATIONS
from zsseg_bench.methods.common.backbones import BackboneOptions, SmallCNN, SmallCNNOptions
from zsseg_bench.methods.common.deeplab import DeepLabOptions, DeepLabV2MSC
from zsseg_bench.paths import methods_dir

SPNET_TRAIN = "spnet's train keys: batch_size, head_lr_mult, iterations, lr, lr_decay_every, momentum, poly_iterations, poly_power"

BAD = [
    ("spnet", "train.iteratons=10",
     "methods/spnet/spnet.yaml: train.iteratons: unknown key (did you mean 'iterations' or 'poly_iterations'?); " + SPNET_TRAIN),
    ("cagnet-pi", "train.iterations=20",
     "methods/cagnet/cagnet-pi.yaml: train.iterations: unknown key (did you mean 'step1.iterations' or "
     "'finetune.iterations'?); cagnet-pi's keys: adversarial, backbone,"),
    ("spnet", "train.iterations=-5", "methods/spnet/spnet.yaml: train.iterations: -5 must be >= 1; " + SPNET_TRAIN),
    ("spnet", "data.batch_size=0", "data.batch_size: 0 must be >= 1; spnet's data keys: batch_size, crop, hflip,"),
    ("zs3net", "log_every=0", "methods/zs3net/zs3net.yaml: log_every: 0 must be >= 1; zs3net's keys: backbone,"),
    ("spnet", "train.lr=-1", "train.lr: -1 must be >= 0.0; " + SPNET_TRAIN),
    ("spnet", "train.lr=.nan", "train.lr: nan is not a finite number; " + SPNET_TRAIN),
    ("spnet", "train.lr=fast", "train.lr: 'fast' is not a number; " + SPNET_TRAIN),
    ("spnet", "train.iterations=ten", "train.iterations: 'ten' is not an integer; " + SPNET_TRAIN),
    ("cagnet-pi", "finetune.interval=[1]", "finetune.interval: [1] is not an integer; cagnet-pi's finetune keys:"),
    ("spnet", "eval.mode=bogus", "eval.mode: 'bogus' is not one of 'full' or 'feature'; spnet's eval keys: absent,"),
    ("spnet", "eval.absent=bogus", "eval.absent: 'bogus' is not one of 'nan' or 'zero'; spnet's eval keys:"),
    ("spnet", "backbone.width=-4", "backbone.width: -4 must be >= 1; spnet's backbone keys: dilations, head_"),
    ("spnet", "dataset.size=1000", "dataset.size: 1000 must be <= 128; synthetic's dataset keys: classes, embed_dim,"),
    ("spnet", "backbone.msc=true", "backbone.msc: unknown key; spnet's backbone keys: dilations,"),  # small-cnn's
    ("spnet", "embeddings.halves=unit", "embeddings.halves: unknown key; spnet's embeddings keys: normalize, provider"),
    ("cagnet-pa", "pixelcnn.kernel=4", "pixelcnn.kernel 4: a masked convolution needs an odd kernel; cagnet-pa's"),
    ("cagnet-pi", "generator.dropout=[0.1]", "generator.dropout: 1 values for 2 hidden layers"),
    ("spnet-c", "calibration.heldout_fraction=1.5", "calibration.heldout_fraction: 1.5 must be < 1.0"),
    ("zs3net+st", "self_training.retrain.train.lr=fast",
     "methods/zs3net/zs3net+st.yaml: self_training.retrain.train.lr: 'fast' is not a number; zs3net+st's "
     "self_training.retrain.train keys: batch_average,"),
    ("zs3net+st", "self_training.retrain.step1.iterations=3",
     "self_training.retrain.step1.iterations: unknown key (did you mean 'train.iterations' or"),
    ("spnet+st", "self_training.style=both", "self_training.style: 'both' is not one of 'online' or 'offline'"),
    ("spnet", "+train.lr=0.5", "--set +train.lr: spnet has the key 'train.lr' already; set it without '+'"),
    ("spnet", "+backbone.note=x", "--set +backbone.note: keys cannot be added to 'backbone'"),
    ("spnet", "engine.precison=bf16", "engine.precison: unknown key (did you mean 'precision'?)"),
]


@pytest.mark.parametrize("method, override, message", BAD, ids=[f"{m} {o}" for m, o, _ in BAD])
def test_bad_config_is_one_line_exit_2_and_no_folder(tmp_path, method, override, message):
    out = tmp_path / "runs"
    result = CliRunner().invoke(app, ["run", method, "--set", override, "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.slow
def test_added_key_is_accepted_and_recorded(tmp_path):
    sets = ["+train.note=x", "train.iterations=2", "dataset.n_train=8", "dataset.n_test=4", "dataset.size=16",
            "data.batch_size=4", "eval.batch_size=4", "backbone.width=4"]
    result = CliRunner().invoke(app, ["run", "spnet", "--out", str(tmp_path), *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    run = next(tmp_path.glob("*/spnet__*"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())["config"]
    assert cfg["train"]["note"] == "x" and cfg["added_keys"] == ["train.note"]
    assert cfg["train"]["lr_decay_every"] == 1  # the schema's defaults are filled in and recorded
    assert "+train.note=x" in json.loads((run / "run.json").read_text())["overrides"]
    # the recorded config is valid as it stands (resuming and predicting read it back)
    assert validate_config(load_card("spnet"), cfg, "synthetic") == cfg
    from zsseg_bench.runs.predict import load_trained

    assert load_trained(run).method.cfg["train"]["note"] == "x"
    ckpt = run / "ckpt" / "final.pt"
    payload = torch.load(ckpt, weights_only=False)
    payload["config"]["train"]["iteratons"] = 3  # a stored config that no longer fits the schema
    torch.save(payload, ckpt)
    with pytest.raises(ZsbenchError, match="train.iteratons: unknown key"):
        load_trained(run)


def test_added_keys_are_listed_by_apply_overrides():
    cfg = apply_overrides({"train": {"lr": 1.0}}, ["+train.note=x", "+extra.deep.key=1", "train.lr=2"])
    assert cfg == {"train": {"lr": 2, "note": "x"}, "extra": {"deep": {"key": 1}},
                   "added_keys": ["train.note", "extra.deep.key"]}
    card = load_card("spnet")
    out = validate_config(card, apply_overrides(resolve_config(card, "synthetic"), ["+extra.deep.key=1"]), "synthetic")
    assert out["extra"] == {"deep": {"key": 1}}
    with pytest.raises(ZsbenchError, match="extra.deep.key: unknown key"):  # without the '+', refused
        validate_config(card, apply_overrides(resolve_config(card, "synthetic"), ["extra.deep.key=1"]), "synthetic")


def test_a_card_with_a_bad_value_fails_validate(tmp_path):
    (tmp_path / "fam").mkdir()
    text = (methods_dir() / "spnet" / "spnet.yaml").read_text().replace("name: spnet\n", "name: bad\n")
    path = tmp_path / "fam" / "bad.yaml"
    path.write_text(text.replace("{iterations: 400", "{iterations: -5"))
    problems = validate_paths([path])
    assert problems == [f"{path} (bad on synthetic): train.iterations: -5 must be >= 1; bad's train keys: batch_size, "
                        f"head_lr_mult, iterations, lr, lr_decay_every, momentum, poly_iterations, poly_power, weight_decay"]
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code != 0 and "train.iterations: -5 must be >= 1" in result.output
    path.write_text(text.replace("{iterations: 400", "{iteratons: 400"))
    assert "train.iteratons: unknown key (did you mean 'iterations' or 'poly_iterations'?)" in validate_paths([path])[0]


@pytest.mark.parametrize("path", card_paths(), ids=lambda p: p.stem)
def test_every_card_validates_on_every_dataset_it_knows(path):
    card = load_card(path.stem)
    datasets = _datasets_of(card, methods_dir())
    assert datasets[0] == "synthetic" and len(datasets) > 1
    for name in [card.name] + ([] if card.wraps else [card.name + "+st"]):
        c = load_card(name)
        for dataset in _datasets_of(c, methods_dir()):
            cfg = validate_config(c, resolve_config(c, dataset), dataset)
            # validated configs are fixed points: a stored config.yaml validates to itself
            assert validate_config(c, cfg, dataset) == cfg
            assert IMPLEMENTATIONS.get(c.impl).check_config(cfg) == cfg


def test_every_implementation_declares_its_schema():
    impls = {c.impl for c in list_cards()} | {c.impl + "+st" for c in list_cards() if not c.wraps}
    for impl in impls:
        schema = IMPLEMENTATIONS.get(impl).config_schema()
        assert schema is not None and issubclass(schema, Section), impl


@pytest.mark.parametrize("options, cls", [(SmallCNNOptions, SmallCNN), (DeepLabOptions, DeepLabV2MSC)])
def test_backbone_schema_defaults_are_the_backbone_defaults(options, cls):
    """One default per key: the schema's must be what the backbone class itself would use."""
    params = inspect.signature(cls.__init__).parameters
    for name, field in options.model_fields.items():
        if name in BackboneOptions.model_fields or field.is_required() or name == "pretrain":
            continue  # pretrain: the schedule of `init: shared` (zsseg_bench/pretrain), not the network's
        default = params[name].default
        assert field.default == (list(default) if isinstance(default, tuple) else default), name


def test_strict_types():
    class T(Section):
        lr: float
        n: int = 1

    assert checked(T, {"lr": 1}, where="f", owner="o") == {"lr": 1.0, "n": 1}  # an integer is a number
    for bad, what in [({"lr": "0.1"}, "'0.1' is not a number"), ({"lr": float("inf")}, "inf is not a finite number"),
                      ({"lr": 1, "n": True}, "True is not an integer"), ({"lr": 1, "n": 2.0}, "2.0 is not an integer"),
                      ({}, "lr: missing")]:
        with pytest.raises(ZsbenchError, match=what):
            checked(T, bad, where="f", owner="o")
    with pytest.raises(ZsbenchError, match="f: x: 3 is not a mapping"):
        checked(T, 3, where="f", owner="o", prefix=("x",))


def test_a_method_checks_the_config_it_is_built_with():
    from tests.helpers.configs import card_config

    cls = IMPLEMENTATIONS.get("zs3net")
    with pytest.raises(ZsbenchError, match="zs3net config: generator.hiden: unknown key .did you mean 'hidden'"):
        cls(card_config("zs3net", generator={"hiden": 3}, validate=False), None)
