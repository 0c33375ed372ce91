"""Minibatches straight from uint8 tensors in memory: no Dataset, no worker processes.

Images stay uint8 [N, C, H, W] on the training device (a quarter of float32's size);
each batch is converted to float only when it is used.
"""

from __future__ import annotations

import numpy as np
import torch


class Batches:
    """Shuffled minibatches of (uint8 images [B, C, H, W], int64 labels [B]) on ``device``.

    Epoch e's order is a permutation drawn from a generator seeded with (seed, e) alone,
    so the batch at any global step can be rebuilt without replaying earlier steps: a
    resumed run sees exactly the batches the interrupted one would have seen.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, device: torch.device,
                 seed: int, drop_last: bool = True):
        self.x = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        self.y = torch.from_numpy(np.ascontiguousarray(y)).to(device)
        self.batch_size = min(batch_size, len(self.y))
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0  # the next epoch ``iter()`` yields

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.y), generator=gen).to(self.x.device)

    def _epoch(self, epoch: int, first: int = 0):
        order = self._order(epoch)
        for i in range(first, len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self._epoch(epoch)

    def forever(self, start_step: int = 0):
        """Batches from global step ``start_step`` on (step = epoch * len(self) + index)."""
        epoch, first = divmod(start_step, len(self))
        while True:
            yield from self._epoch(epoch, first)
            epoch, first = epoch + 1, 0


def ordered(x: np.ndarray, batch_size: int):
    """Consecutive uint8 tensor slices of ``x`` (for evaluation), as CPU tensors."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    for i in range(0, len(t), batch_size):
        yield t[i:i + batch_size]


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard CIFAR augmentation on a whole batch at once.

    x: float [B, C, H, W]. Zero-pads by ``pad`` pixels, takes a random HxW crop per image,
    and mirrors half of the images left-right.
    """
    b, c, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    flip = torch.rand(b, generator=generator).to(dev) < 0.5
    rows = oy[:, None] + torch.arange(h, device=dev)
    cols = torch.arange(w, device=dev).expand(b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols) + ox[:, None]
    out = padded[torch.arange(b, device=dev)[:, None, None, None],
                 torch.arange(c, device=dev)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]
    return out.contiguous(memory_format=torch.channels_last) if x.is_contiguous(
        memory_format=torch.channels_last) and not x.is_contiguous() else out
