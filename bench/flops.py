"""Parameter and multiply-accumulate counts, from PyTorch's own FLOP counter."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def macs(fn) -> int:
    """Multiply-accumulates of one call of ``fn()`` (FLOPs / 2, matmuls and convs)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2
