"""The shared initialisation: one hash for every card, trained once, reused, written atomically under
a lock, loaded with weights_only, recorded in the run."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from tests.helpers.settings import TINY_PRETRAIN
from zsseg_bench.catalog.cards import list_cards, load_card, resolve_config
from zsseg_bench.catalog.validate import validate_config
from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods.common.backbones import build_backbone
from zsseg_bench.pretrain import shared
from zsseg_bench.pretrain.load import shared_init_path
from zsseg_bench.runs.prepare import RunRequest, prepare_run

TINY_WORLD = ["dataset.size=32", "dataset.n_train=32", "dataset.n_test=16", *TINY_PRETRAIN]


def config(card: str = "spnet", overrides=(), dataset: str = "synthetic") -> dict:
    c = load_card(card)
    return shared.resolve_shared_init(validate_config(c, resolve_config(c, dataset, list(overrides)), dataset),
                                      dataset)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSBENCH_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture
def counted(monkeypatch):
    """pretrain_backbone, counting its calls (and slow enough for a second thread to arrive)."""
    from zsseg_bench.pretrain import train

    calls = []
    real = train.pretrain_backbone

    def wrapped(*args, **kwargs):
        calls.append(1)
        time.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "pretrain_backbone", wrapped)
    return calls


def test_every_default_card_shares_one_initialisation():
    hashes = {c.name: config(c.name)["backbone"]["shared_init"] for c in list_cards() if c.in_default_run}
    assert len(hashes) == 8 and len(set(hashes.values())) == 1, hashes


def test_the_hash_follows_world_version_schedule_and_architecture_not_the_seed_or_method():
    base = config("spnet")["backbone"]["shared_init"]
    assert config("cagnet-pi")["backbone"]["shared_init"] == base  # the run seed is not in the config at all
    for change in (["dataset.world=1"], ["dataset.size=48"], ["backbone.pretrain.iterations=7"], ["backbone.width=16"],
                   ["input.std=[1.0, 1.0, 1.0]"]):
        assert config("spnet", change)["backbone"]["shared_init"] != base, change


def test_a_second_use_reuses_the_cache(cache, counted):
    cfg = config("spnet", TINY_WORLD)
    first = shared.ensure_shared_init(cfg, "synthetic")
    second = shared.ensure_shared_init(config("zs3net", TINY_WORLD), "synthetic")
    assert first == second == cache / "shared-init" / f"{cfg['backbone']['shared_init']}.pt"
    assert len(counted) == 1
    assert (cache / "shared-init" / f"{cfg['backbone']['shared_init']}.json").is_file()


def test_concurrent_first_uses_train_once(cache, counted):
    cfg = config("spnet", TINY_WORLD)
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(shared.ensure_shared_init(cfg, "synthetic")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(counted) == 1 and len(set(paths)) == 1 and paths[0].is_file()
    assert [p.name for p in paths[0].parent.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_an_interrupted_pretraining_leaves_no_file(cache, monkeypatch):
    from zsseg_bench.pretrain import train

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "pretrain_backbone", broken)
    with pytest.raises(KeyboardInterrupt):
        shared.ensure_shared_init(config("spnet", TINY_WORLD), "synthetic")
    assert [p.suffix for p in (cache / "shared-init").iterdir()] == [".lock"]


class _Payload:  # a pickled object that a weights_only load refuses
    pass


def test_a_file_with_code_objects_is_refused_not_run(cache):
    cfg = config("spnet", TINY_WORLD)
    path = shared_init_path(cfg["backbone"]["shared_init"])
    path.parent.mkdir(parents=True)
    torch.save({"hash": cfg["backbone"]["shared_init"], "x": _Payload()}, path)
    with pytest.raises(ZsbenchError, match="unreadable shared initialisation .*delete it"):
        build_backbone(cfg["backbone"], 32)


def test_the_run_starts_from_it_and_records_its_hash(cache):
    req = RunRequest(method="cagnet-pi", overrides=TINY_WORLD + ["step1.iterations=2", "finetune.iterations=2"])
    run = prepare_run(req)
    digest = run.cfg["backbone"]["shared_init"]
    assert run.init_report["shared_init"] == digest and run.init_report["parts"] == "body"
    state = torch.load(shared_init_path(digest), weights_only=True)["state_dict"]
    body = {k: v for k, v in run.method.backbone.state_dict().items() if k.startswith(("stem.", "body."))}
    assert body and all(torch.equal(v, state[f"backbone.{k}"]) for k, v in body.items())
    assert not any(k.startswith("head.") and torch.equal(v, state.get(f"backbone.{k}", v[:0]))
                   for k, v in run.method.backbone.state_dict().items())


def test_a_real_dataset_has_no_shared_initialisation():
    with pytest.raises(ZsbenchError, match="backbone.init: shared is the synthetic benchmark's"):
        config("spnet", ["backbone.init=shared"], dataset="voc12")
