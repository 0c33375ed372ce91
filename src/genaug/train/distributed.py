"""Training on every GPU of a pod: the ranks, each rank's share of the global batch, and the
checks that keep the ranks one model. The rules follow NVlabs/edm's training loop:

- the global batch is the profile's; rank r of W takes rows [r B/W, (r+1) B/W) of it;
- every random draw of a sample (noise, timestep, label dropout, mirroring) is made for the
  WHOLE global batch, on every rank, from a generator keyed by (seed, step) alone
  (``step_generator``), and each rank keeps its rows. Sample i of step s then gets the same
  draws whatever W is, and W ranks together take the step one process takes: the gradient
  all-reduce averages the ranks' means of equal shares, which is the global mean up to the
  order of the float additions. A draw inside the network (dropout) is the exception: each
  rank makes it for its own rows from its own global RNG;
- the data order is the (seed, epoch) permutation (genaug.data.batches) on every rank;
- EMA weights are updated on every rank from the unwrapped network, identically;
- only rank 0 logs, writes artifacts and saves checkpoints, after ``check_same`` and a
  barrier; on resume every rank loads the same state.

The draws for the whole batch cost W times a rank's share of random numbers: for a 38M
parameter UNet, noise of [B, C, H, W] is nothing beside one forward pass.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import torch

# How long a collective waits for a rank before the step fails (a dead rank must not hang it).
COLLECTIVE_TIMEOUT = timedelta(minutes=10)
CHECK_ENV = "GENAUG_DDP_CHECK"
BATCH_PER_GPU_ENV = "GENAUG_BATCH_PER_GPU"


class RankMismatch(RuntimeError):
    """The ranks' parameters differ: they are no longer training one model."""


class MainRankFailed(RuntimeError):
    """Rank 0 failed at a point where this one needed its result."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (torchrun's RANK, WORLD_SIZE,
    LOCAL_RANK); World() is a single process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    # GENAUG_DDP_CHECK=1: compare the ranks' weights after every step, not only before a
    # checkpoint (one all-gather of two numbers per model and step; for tests and debugging).
    check_every_step: bool = False
    # GENAUG_BATCH_PER_GPU: at most this many images per forward and backward; a rank whose
    # share of the global batch is larger accumulates the gradients of several (0: its share).
    batch_per_gpu: int = 0

    @classmethod
    def from_env(cls) -> "World":
        per_gpu = os.environ.get(BATCH_PER_GPU_ENV, "0") or "0"
        if not per_gpu.isdigit():
            raise ValueError(f"{BATCH_PER_GPU_ENV}={per_gpu!r} is not a whole number; give the most images one GPU "
                             "takes per forward pass, or 0 for its whole share of the batch")
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)), os.environ.get(CHECK_ENV) == "1", int(per_gpu))

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Whether this rank logs, writes artifacts and saves checkpoints."""
        return self.rank == 0

    def rows(self, n: int) -> slice:
        """This rank's rows of a global batch of ``n``; ``n`` must split evenly, so that the
        average of the ranks' means is the global mean."""
        if n % self.size:
            raise ValueError(f"a global batch of {n} does not split over {self.size} ranks; "
                             f"choose a batch that is a multiple of {self.size}")
        share = n // self.size
        return slice(self.rank * share, (self.rank + 1) * share)

    def parts(self, n: int) -> list[slice]:
        """This rank's rows of a global batch of ``n``, in pieces of at most batch_per_gpu: one
        forward and backward each, their gradients accumulated (scale each loss by its
        piece's share of the rows, ``len(piece) / len(rows)``)."""
        rows = self.rows(n)
        size = self.batch_per_gpu or (rows.stop - rows.start)
        return [slice(s, min(s + size, rows.stop)) for s in range(rows.start, rows.stop, size)]

    def accumulating(self, ddp: torch.nn.Module, last: bool):
        """The context of one piece's backward: DDP's no_sync() but for the last piece, so the
        gradients are all-reduced once per step, after they are all summed."""
        if self.distributed and not last and hasattr(ddp, "no_sync"):
            return ddp.no_sync()
        return contextlib.nullcontext()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` under DistributedDataParallel across the world (itself for one process)."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        on_gpu = next(model.parameters()).device.type == "cuda"
        return DistributedDataParallel(model, device_ids=[self.local_rank] if on_gpu else None)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over the ranks (for logging: every rank gets the same figure)."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        out = value.detach().clone().float()
        dist.all_reduce(out)
        return out / self.size

    def average_gradients(self, *modules: torch.nn.Module) -> None:
        """Replace every gradient of ``modules`` by its mean over the ranks: what DDP's reducer
        computes, in one all-reduce of a flat buffer after backward. The GANs use it instead of
        DDP: a critic step calls D two or three times before one backward, and WGAN-GP's
        penalty differentiates twice, neither of which DDP's reducer allows."""
        if not self.distributed:
            return
        import torch.distributed as dist

        grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast_buffers(self, *modules: torch.nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm's running statistics), as DDP does
        before each forward: the ranks stay one model, bit for bit."""
        if not self.distributed:
            return
        import torch.distributed as dist

        for m in modules:
            for b in m.buffers():
                dist.broadcast(b.data, src=0)

    def sync_batchnorm(self, module: torch.nn.Module) -> torch.nn.Module:
        """BatchNorm over the global batch (SyncBatchNorm) where the backend has it (NCCL).
        On gloo each rank normalises by its own rows' statistics: a batch of B/W instead of B,
        so world size W trains like W smaller batches there, not like one process."""
        if not self.distributed:
            return module
        import torch.distributed as dist

        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module) if dist.get_backend() == "nccl" else module

    def from_main(self, compute: Callable[[], float]) -> float:
        """``compute()`` on rank 0 alone, its value on every rank (a measurement that must be
        made once and decide the same thing everywhere). If it raises on rank 0, every rank
        raises: rank 0 its own error, the others MainRankFailed, so that no rank waits for a
        value that never comes."""
        if not self.distributed:
            return compute()
        import torch.distributed as dist

        error, value = None, torch.zeros(2, dtype=torch.float64)  # [ok, value]
        if self.main:
            try:
                value = torch.tensor([1.0, float(compute())], dtype=torch.float64)
            except Exception as err:  # told to the other ranks below, then raised
                error = err
        dist.broadcast(value, src=0)
        if error is not None:
            raise error
        if value[0] != 1.0:
            raise MainRankFailed(f"rank 0 failed to compute a value that rank {self.rank} waits for; rank 0's log "
                             "has its error")
        return float(value[1])

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def check_same(self, *modules: torch.nn.Module) -> None:
        """Raise RankMismatch unless every rank holds bit-identical parameters."""
        if not self.distributed:
            return
        import torch.distributed as dist

        mine = torch.stack([fingerprint(m) for m in modules]).flatten()
        gathered = [torch.empty_like(mine) for _ in range(self.size)]
        dist.all_gather(gathered, mine)
        differ = [r for r, theirs in enumerate(gathered) if not torch.equal(theirs, gathered[0])]
        if differ:
            raise RankMismatch(f"rank(s) {differ} hold other parameters than rank 0; a random draw or a "
                               "BatchNorm statistic is not the same on every rank")


def after_step(world: World, *modules: torch.nn.Module) -> None:
    """The end of an optimizer step: the ranks' weights compared when the world asks for it."""
    if world.check_every_step:
        world.check_same(*modules)


def step_generator(device: torch.device, seed: int, step: int) -> torch.Generator:
    """The generator of step ``step``'s per-sample draws: keyed by (seed, step) alone, so a
    resumed run needs no saved state to draw them again and every rank draws the same."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)


def fingerprint(module: torch.nn.Module) -> torch.Tensor:
    """float64 [2]: a position-weighted sum and the sum of squares of every parameter, in
    order. Equal on two ranks with bit-identical parameters; a single differing value changes
    it. Buffers are left out: under DDP a rank's BatchNorm statistics are its own until the
    next forward gives every rank rank 0's."""
    values = [p.detach().double().flatten() for p in module.parameters()]
    flat = torch.cat(values) if values else torch.zeros(1, dtype=torch.float64)
    weights = torch.arange(1, len(flat) + 1, dtype=torch.float64, device=flat.device)
    return torch.stack([(flat * weights).sum(), flat.square().sum()]).cpu()


def init(world: World, device: torch.device) -> str:
    """Join the process group of ``world`` (torchrun's rendezvous in the environment):
    NCCL between GPUs, gloo on the CPU. Returns the backend."""
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    if world.distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=COLLECTIVE_TIMEOUT)
    return backend


def leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def joined(device: torch.device):
    """The block runs in torchrun's process group (when there is one); yields this World."""
    world = World.from_env()
    init(world, device)
    try:
        yield world
    finally:
        leave()
