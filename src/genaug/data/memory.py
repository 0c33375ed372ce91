"""How many images fit in memory, and the refusal of a dataset that does not.

genaug keeps a dataset as one uint8 tensor, images x C x H x W bytes (1M images at 64x64 RGB
is 12.3 GB), and preparing it holds about two copies at once (the decoded version and the
split the run keeps). So a dataset may take at most MEMORY_SHARE of the memory this process
may use: the container's limit (cgroup) where there is one, else the machine's.

    genaug data limits        this machine's limit, and a 24 GB and an 80 GB machine's
"""

from __future__ import annotations

import os
from pathlib import Path

MEMORY_SHARE = 0.4
GB = 1e9
SIZES = (32, 64, 128)
EXAMPLE_MACHINES_GB = (24, 80)


class MemoryLimitError(MemoryError):
    """A dataset larger than the in-memory limit; the message names both numbers and the fix."""


def available_memory() -> int:
    """Bytes this process may use: the cgroup's limit (v2, then v1) if set, else physical memory."""
    for path in (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")):
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < 1 << 60:  # "max" or a huge number: no limit
            return int(value)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def tensor_bytes(images: int, channels: int, size: int) -> int:
    """Bytes of ``images`` uint8 images of channels x size x size."""
    return int(images) * int(channels) * int(size) * int(size)


def max_images(memory: int, channels: int, size: int) -> int:
    return int(memory * MEMORY_SHARE) // tensor_bytes(1, channels, size)


def check(what: str, images: int, channels: int, size: int, memory: int | None = None) -> None:
    """Raise MemoryLimitError unless ``images`` images of channels x size x size fit."""
    memory = available_memory() if memory is None else memory
    need = tensor_bytes(images, channels, size)
    if need > memory * MEMORY_SHARE:
        smaller = [s for s in SIZES if s < size and tensor_bytes(images, channels, s) <= memory * MEMORY_SHARE]
        fix = f"a smaller size ({smaller[-1]} px fits), " if smaller else ""
        raise MemoryLimitError(
            f"{what}: {images:,} images of {channels}x{size}x{size} take {need / GB:.1f} GB as uint8, above the "
            f"in-memory limit of {memory * MEMORY_SHARE / GB:.1f} GB ({MEMORY_SHARE:.0%} of {memory / GB:.1f} GB); "
            f"use {fix}fewer images, or a machine with more memory (`genaug data limits` lists what fits)")


def limits_table(memory: int | None = None) -> str:
    """The most images that fit at each size, grey and RGB, on this machine and on 24 and 80 GB ones."""
    memory = available_memory() if memory is None else memory
    rows = [("this machine", memory)] + [(f"{gb} GB machine", gb * 10**9) for gb in EXAMPLE_MACHINES_GB]
    head = f"{'':<18}{'limit':>9}" + "".join(f"{f'{s}x{s} grey':>14}{f'{s}x{s} RGB':>14}" for s in SIZES)
    lines = [head]
    for label, mem in rows:
        cells = "".join(f"{max_images(mem, 1, s):>14,}{max_images(mem, 3, s):>14,}" for s in SIZES)
        lines.append(f"{label:<18}{mem * MEMORY_SHARE / GB:>7.1f}GB{cells}")
    return "\n".join(lines)
