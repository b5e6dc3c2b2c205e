"""Training batches as a stream whose position can be saved, restored and shared out.

`BatchStream` yields endless shuffled batches of a training set, epoch after epoch, and can say
where it is (epoch, batch within the epoch, the epoch's order and seed), so a resumed run reads
exactly the batches an uninterrupted one would have read, without loading the skipped ones.

* It draws from the stage's generator exactly what `DataLoader(shuffle=True, generator=gen)`
  drew in the first engine version (per epoch: one int64, DataLoader's worker base seed, then
  `randperm(n)`, and one more, unused, `randperm(n)` when the epoch runs out), so runs on the
  synthetic benchmark kept their numbers.
* Every item is read under its own RNG seed, derived from (epoch seed, position in the epoch):
  random transforms inside a dataset (crops, scales) that draw from the global torch, numpy
  or `random` generators give the same result whatever the number of loader workers, the
  number of processes, or where a run was resumed. A dataset whose items are fixed may say
  so with a class attribute `random_transforms = False` (the synthetic benchmark does).
* With several processes each reads its contiguous share of every global batch.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from zsseg_bench.errors import ZsbenchError

__all__ = ["BatchStream", "collate"]


def collate(items: list[dict]) -> dict:
    return {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.stack([it["label"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
        "name": [it["name"] for it in items],
    }


class _SeededItems(torch.utils.data.Dataset):
    """Item `pos` of an epoch = dataset[order[pos]], read under a seed made from (epoch seed, pos)."""

    def __init__(self, dataset, order: np.ndarray, epoch_seed: int):
        self.dataset, self.order, self.epoch_seed = dataset, order, epoch_seed

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, pos: int) -> dict:
        seeds = np.random.SeedSequence([self.epoch_seed & (2**64 - 1), int(pos)]).generate_state(2)
        # The CPU generator directly: torch.manual_seed also records a stack trace for lazy CUDA
        # seeding, which costs about a millisecond per item.
        cpu = torch.default_generator
        torch_state, np_state, py_state = cpu.get_state(), np.random.get_state(), random.getstate()
        cpu.manual_seed(int(seeds[0]))
        np.random.seed(int(seeds[1]))
        random.seed(int(seeds[1]))
        try:
            return self.dataset[int(self.order[pos])]
        finally:
            cpu.set_state(torch_state)
            np.random.set_state(np_state)
            random.setstate(py_state)


class BatchStream:
    def __init__(self, dataset, indices, batch_size: int, gen: torch.Generator, *, num_workers: int = 0,
                 pin_memory: bool = False, rank: int = 0, world: int = 1):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        if len(self.indices) == 0:
            raise ValueError("BatchStream needs at least one training image")
        self.batch_size = min(int(batch_size), len(self.indices))
        if self.batch_size % world:
            raise ZsbenchError(f"batch size {self.batch_size} does not split over {world} processes; use a batch "
                               f"size divisible by the number of processes (--set data.batch_size=...)")
        self.local = self.batch_size // world
        self.rank = rank
        self.per_epoch = len(self.indices) // self.batch_size
        self.gen = gen
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.epoch, self.pos, self.epoch_seed, self.order = -1, 0, 0, None
        self._it = None

    def _start_epoch(self) -> None:
        if self.order is not None:
            # RandomSampler draws (and drops) one more permutation when an epoch runs out.
            torch.randperm(len(self.indices), generator=self.gen)
        self.epoch += 1
        self.epoch_seed = int(torch.empty((), dtype=torch.int64).random_(generator=self.gen).item())
        self.order = torch.randperm(len(self.indices), generator=self.gen)
        self.pos = 0
        self._it = None

    def _open(self):
        first = self.rank * self.local
        batches = [list(range(b * self.batch_size + first, b * self.batch_size + first + self.local))
                   for b in range(self.pos, self.per_epoch)]
        order = self.indices[self.order.numpy()]
        if getattr(self.dataset, "random_transforms", True):
            items = _SeededItems(self.dataset, order, self.epoch_seed)
        else:  # the dataset says its items are fixed: skip the per-item seeding (~0.1 ms each)
            items = torch.utils.data.Subset(self.dataset, order.tolist())
        # A generator of its own: the DataLoader draws its worker base seed from it, not from
        # the global RNG (that draw would shift the method's random numbers after a resume).
        own = torch.Generator()
        own.manual_seed(self.epoch_seed & (2**63 - 1))
        loader = torch.utils.data.DataLoader(items, batch_sampler=batches, collate_fn=collate, generator=own,
                                             num_workers=self.num_workers, pin_memory=self.pin_memory)
        return iter(loader)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        if self.order is None or self.pos >= self.per_epoch:
            self._start_epoch()
        if self._it is None:
            self._it = self._open()
        batch = next(self._it)
        self.pos += 1
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos, "epoch_seed": self.epoch_seed,
                "order": None if self.order is None else self.order.clone(), "batch_size": self.batch_size,
                "n": len(self.indices)}

    def load_state_dict(self, state: dict) -> None:
        if state["n"] != len(self.indices) or state["batch_size"] != self.batch_size:
            raise ZsbenchError(f"the checkpoint's data stream had {state['n']} images in batches of "
                               f"{state['batch_size']}, this run has {len(self.indices)} in batches of "
                               f"{self.batch_size}; resume with the same data and batch size")
        self.epoch, self.pos, self.epoch_seed = state["epoch"], state["pos"], state["epoch_seed"]
        self.order = None if state["order"] is None else state["order"].clone()
        self._it = None
