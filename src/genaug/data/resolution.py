"""The image side a run works at, and images brought to it.

A run asks for RESOLUTION (32, 64 or 128 px a side), or leaves it to the data:
- a built-in dataset keeps its native side (28 or 32);
- a user dataset whose images all have one kept size (28x28 or 32x32) keeps it;
- otherwise the largest of 32, 64 and 128 that the typical (median) image's short side
  reaches, so photos are never upsampled by default, capped at the profile's
  ``max_resolution`` (smoke 32, quick 64, full 128: what each can afford).
"""

from __future__ import annotations

import numpy as np

from genaug.data.imagefile import KEPT_SIZES
from genaug.sections import RESOLUTIONS, DataConfig

# Images per resize call: bounds the float32 copy (256 x 3 x 128 x 128 x 4 B = 50 MB).
RESIZE_CHUNK = 256


def derived_side(sizes: list[tuple[int, int]], max_side: int) -> int:
    """The side for images of ``sizes`` (width, height) under the module docstring's rule."""
    distinct = set(sizes)
    if len(distinct) == 1 and next(iter(distinct)) in KEPT_SIZES:
        return next(iter(distinct))[0]
    short = float(np.median([min(w, h) for w, h in sizes])) if sizes else 0.0
    fitting = [r for r in RESOLUTIONS if r <= short] or [RESOLUTIONS[0]]
    return min(fitting[-1], max_side)


def side_for(data: DataConfig, native: int | None = None, sizes: list[tuple[int, int]] | None = None) -> int:
    """The run's image side: ``data.resolution`` when asked for; else a built-in dataset's
    ``native`` side, or one derived from a user version's image ``sizes``."""
    if data.resolution:
        return int(data.resolution)
    if native is not None:
        return int(native)
    return derived_side(sizes or [], data.max_resolution)


def resize(images: np.ndarray, side: int) -> np.ndarray:
    """uint8 [N, C, H, W] -> uint8 [N, C, side, side]: antialiased bicubic, rounded and
    clamped to [0, 255]; the array itself when it has that side already."""
    if images.shape[-2:] == (side, side):
        return images
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), images.shape[1], side, side), dtype=np.uint8)
    for start in range(0, len(images), RESIZE_CHUNK):
        chunk = torch.from_numpy(images[start:start + RESIZE_CHUNK]).float()
        scaled = F.interpolate(chunk, size=(side, side), mode="bicubic", antialias=True, align_corners=False)
        out[start:start + RESIZE_CHUNK] = scaled.round().clamp(0, 255).to(torch.uint8).numpy()
    return out
