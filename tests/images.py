"""Labelled image folders in real formats, for the tests of user datasets."""

import numpy as np
from PIL import Image

CLASSES = ("bolt", "nut", "washer")
# Every format the policy handles: (extension, PIL mode, save options).
FORMATS = [(".png", "L", {}), (".jpg", "RGB", {"quality": 90}), (".webp", "RGB", {"lossless": True}),
           (".png", "RGBA", {}), (".png", "P", {}), (".png", "I;16", {}), (".bmp", "RGB", {}), (".tif", "L", {})]


def image(seed: int, mode: str, size=(40, 30), band: int | None = None) -> Image.Image:
    """Noise in ``mode``; with ``band`` (0, 1 or 2) its values lie in that third of the range,
    so that a classifier can tell the bands apart."""
    rng = np.random.default_rng(seed)
    low, high = (0, 256) if band is None else (85 * band, 85 * band + 85)
    if mode == "I;16":
        return Image.fromarray(rng.integers(low * 257, high * 257 - 1, size[::-1]).astype(np.uint16))
    if mode == "P":
        return Image.fromarray(rng.integers(low, high, (*size[::-1], 3), dtype=np.uint8)).quantize(16)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    array = rng.integers(low, high, (*size[::-1], channels), dtype=np.uint8)
    if channels == 4 and band is not None:
        array[..., 3] = 255  # opaque: the background it is composited on does not move it to another band
    return Image.fromarray(array[..., 0] if channels == 1 else array, mode)


def make_folder(root, per_class: int = 40, start: int = 0, classes=CLASSES, salt: int = 0, learnable: bool = False):
    """``per_class`` distinct images per class, cycling through FORMATS, seeds from ``start``.
    Another ``salt`` gives other images: the session's store keeps every image it was given,
    so a test that counts new objects needs images of its own. ``learnable``: each class's
    pixels in a band of its own (at most three classes)."""
    for k, label in enumerate(classes):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(start, start + per_class):
            ext, mode, options = FORMATS[i % len(FORMATS)]
            image(1_000_000 * salt + 10_000 * k + i, mode, band=k if learnable else None).save(
                root / label / f"{i:04d}{ext}", **options)
    return root
