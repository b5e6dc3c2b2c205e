"""BatchStream: same batches as the first engine's DataLoader, resumable, per-item seeding."""

from __future__ import annotations

import numpy as np
import torch

from zsseg_bench.engine.stream import BatchStream, collate


class _Items(torch.utils.data.Dataset):
    """Item i carries i and a random number drawn from the global RNG (a random transform)."""

    def __len__(self):
        return 23

    def __getitem__(self, i):
        return {"image": torch.rand(1, 1, 1), "label": torch.tensor([[i]]), "index": i, "name": str(i)}


def _gen(seed=3):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_same_batches_as_dataloader_shuffle():
    ds, g_old, g_new = _Items(), _gen(), _gen()

    def old():
        while True:
            yield from torch.utils.data.DataLoader(torch.utils.data.Subset(ds, list(range(23))), batch_size=5,
                                                   shuffle=True, drop_last=True, collate_fn=collate, generator=g_old)

    stream = BatchStream(ds, np.arange(23), 5, g_new)
    ref = old()
    for _ in range(14):  # several epochs of 4 batches
        assert next(ref)["index"].tolist() == next(stream)["index"].tolist()
        torch.rand(5, generator=g_old), torch.rand(5, generator=g_new)  # the flips between batches


def test_restore_mid_epoch_and_at_epoch_end():
    ds = _Items()
    full = BatchStream(ds, np.arange(23), 5, _gen())
    seq = [next(full) for _ in range(11)]
    for cut in (2, 4, 8):  # 4 = exactly the end of the first epoch
        a = BatchStream(ds, np.arange(23), 5, _gen())
        for _ in range(cut):
            next(a)
        state, gen_state = a.state_dict(), a.gen.get_state()
        b = BatchStream(ds, np.arange(23), 5, _gen(99))
        b.load_state_dict(state)
        b.gen.set_state(gen_state)
        for k in range(cut, 11):
            got = next(b)
            assert got["index"].tolist() == seq[k]["index"].tolist()
            assert torch.equal(got["image"], seq[k]["image"])  # same per-item random numbers


def test_item_randomness_does_not_depend_on_workers_or_global_rng():
    ds = _Items()
    a = BatchStream(ds, np.arange(23), 4, _gen())
    b = BatchStream(ds, np.arange(23), 4, _gen(), num_workers=2)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    xa = [next(a)["image"] for _ in range(6)]
    # reading items (and starting epochs) leaves the global RNG where it was
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(456)
    xb = [next(b)["image"] for _ in range(6)]
    assert all(torch.equal(u, v) for u, v in zip(xa, xb))
    assert len({float(x) for batch in xa for x in batch.flatten()}) == 24  # items do differ


def test_ranks_read_contiguous_shares_of_the_global_batch():
    ds = _Items()
    whole = BatchStream(ds, np.arange(23), 6, _gen())
    r0 = BatchStream(ds, np.arange(23), 6, _gen(), rank=0, world=2)
    r1 = BatchStream(ds, np.arange(23), 6, _gen(), rank=1, world=2)
    for _ in range(5):
        w = next(whole)["index"].tolist()
        assert next(r0)["index"].tolist() + next(r1)["index"].tolist() == w
