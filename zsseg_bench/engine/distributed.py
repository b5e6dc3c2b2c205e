"""Several processes, one run: `torchrun --nproc_per_node N -m zsseg_bench.cli run ...` or
`zsbench run --gpus N` (which starts torchrun itself).

Data-parallel training: every process holds the whole method, reads its share of each global
batch (the method card's batch size, split evenly), and the gradients are averaged over the
processes with one bucketed all-reduce before the optimizers step, exactly what
DistributedDataParallel does for a plain backward. It is done here, after backward, rather
than by wrapping the method in `DistributedDataParallel`, because methods route several
losses to several optimizers with `torch.autograd.grad` (GAN stages) and freeze different
parts per stage; DDP's wrapper only sees a single forward/backward of one module. The cost
is that gradient communication does not overlap the backward pass.

Evaluation shards the images over the processes and sums their confusion matrices
(`ConfusionMeter.all_reduce`). Only rank 0 writes run records and checkpoints.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from zsseg_bench.errors import ZsbenchError

__all__ = ["rank_and_world", "is_main", "launched_world_size", "init_from_env", "shutdown",
           "all_reduce_gradients", "broadcast_module", "all_ranks_true", "shard"]

_BUCKET_BYTES = 64 << 20


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_and_world()[0] == 0


def launched_world_size() -> int:
    """WORLD_SIZE set by torchrun (1 when started normally)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device_name: str) -> torch.device:
    """Join the process group torchrun describes in the environment; return this rank's device."""
    if not dist.is_available():
        raise ZsbenchError("this torch build has no torch.distributed; run on one device")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ZsbenchError(f"--device {device_name}: this machine has no CUDA device; use --device cpu "
                               f"(gloo) for a CPU multi-process run")
        if local_rank >= torch.cuda.device_count():
            raise ZsbenchError(f"local rank {local_rank} but only {torch.cuda.device_count()} CUDA devices; "
                               f"lower --gpus / --nproc_per_node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_gradients(params) -> None:
    """Average the .grad of `params` over all ranks (no-op on one process)."""
    _, world = rank_and_world()
    if world == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    buckets: dict[tuple, list[list[torch.Tensor]]] = {}
    for g in grads:
        key = (g.dtype, g.device)
        lists = buckets.setdefault(key, [[]])
        if sum(t.numel() * t.element_size() for t in lists[-1]) > _BUCKET_BYTES:
            lists.append([])
        lists[-1].append(g)
    for lists in buckets.values():
        for bucket in lists:
            flat = torch.cat([g.reshape(-1) for g in bucket])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat.div_(world)
            offset = 0
            for g in bucket:
                g.copy_(flat[offset: offset + g.numel()].view_as(g))
                offset += g.numel()


def broadcast_module(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (what DDP does at construction)."""
    _, world = rank_and_world()
    if world == 1:
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def all_ranks_true(flag: bool, device: torch.device) -> bool:
    """True only if `flag` holds on every rank, so that all ranks stop together."""
    _, world = rank_and_world()
    if world == 1:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def shard(indices):
    """This rank's share of a list of evaluation images (every world-th one)."""
    rank, world = rank_and_world()
    return indices[rank::world] if world > 1 else indices
