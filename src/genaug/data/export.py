"""A built-in dataset written out as a user's folder of class folders, at another size and
format, optionally with classes cut down: real images at the resolutions and imbalance that
users bring, with known labels, to try the pipeline on.

    genaug data export fashion_mnist /data/fmnist64 --size 64 --format jpg --colour --cut Shirt=0.1

    OUT/train/<class>/<index>.<ext>    the official training split (cut classes thinned)
    OUT/test/<class>/<index>.<ext>     the official test split, whole

A class name becomes a folder name with '/' replaced by '-' ("T-shirt/top" -> "T-shirt-top").
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from genaug.catalog import DatasetSpec
from genaug.data.splits import stratified_take
from genaug.train.progress import bar

FORMATS = {"jpg": ("JPEG", {"quality": 95}), "png": ("PNG", {}), "webp": ("WEBP", {"quality": 95})}
CUT_SEED = 5  # which images of a cut class stay: fixed, so every export of the same cut agrees


class ExportError(ValueError):
    """Arguments that cannot make an export; the message names the value and the fix."""


def folder_name(class_name: str) -> str:
    return class_name.replace("/", "-")


def parse_cuts(cuts: list[str], spec: DatasetSpec) -> dict[int, float]:
    """{class index: share of its training images kept} from ["Shirt=0.1", ...]."""
    out = {}
    names = {name: k for k, name in enumerate(spec.classes)} | {folder_name(n): k for k, n in enumerate(spec.classes)}
    for cut in cuts:
        name, _, share = cut.rpartition("=")
        try:
            value = float(share)
        except ValueError:
            value = -1.0
        if name not in names or not 0.0 < value <= 1.0:
            raise ExportError(f"--cut {cut!r} must be CLASS=SHARE with SHARE in (0, 1] and CLASS one of "
                              f"{', '.join(spec.classes)}; e.g. --cut {folder_name(spec.classes[0])}=0.1")
        out[names[name]] = value
    return out


def kept_indices(labels: np.ndarray, cuts: dict[int, float]) -> np.ndarray:
    """Indices of ``labels`` that stay: every image of an uncut class, a fixed share of a cut one."""
    keep = np.ones(len(labels), dtype=bool)
    for k, share in cuts.items():
        members = np.flatnonzero(labels == k)
        stay = members[stratified_take(labels[members], max(1, round(share * len(members))), CUT_SEED)]
        keep[members] = False
        keep[stay] = True
    return np.flatnonzero(keep)


def encode(image: np.ndarray, size: int, colour: bool, fmt: str) -> bytes:
    """uint8 [C, H, W] -> the file's bytes: Lanczos-resized to size x size, grey replicated to
    RGB when ``colour``."""
    from PIL import Image

    array = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    picture = Image.fromarray(array)
    if colour and picture.mode == "L":
        picture = picture.convert("RGB")
    if picture.size != (size, size):
        picture = picture.resize((size, size), Image.Resampling.LANCZOS)
    kind, options = FORMATS[fmt]
    out = io.BytesIO()
    picture.save(out, format=kind, **options)
    return out.getvalue()


def export(spec: DatasetSpec, raw, out: Path, size: int, fmt: str = "jpg", colour: bool = False,
           cuts: dict[int, float] | None = None, workers: int = 4) -> dict:
    """Write ``raw`` (RawSplits of ``spec``) under ``out`` as train/ and test/ class folders;
    returns {"train": {class: n}, "test": {class: n}}."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not 8 <= size <= 512:
        raise ExportError(f"--size {size} must be between 8 and 512 pixels, e.g. --size 64")
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty; give a new folder, so that no old image stays in the dataset")
    splits = {"train": (raw.train_x, raw.train_y, kept_indices(raw.train_y, cuts or {})),
              "test": (raw.test_x, raw.test_y, np.arange(len(raw.test_y)))}
    counts = {}
    total = sum(len(idx) for _, _, idx in splits.values())
    with ThreadPoolExecutor(max_workers=workers) as pool, bar(total, f"export {spec.name}", "image") as progress:
        for split, (x, y, idx) in splits.items():
            for k in range(spec.num_classes):
                (out / split / folder_name(spec.classes[k])).mkdir(parents=True, exist_ok=True)

            def write(i: int, split=split, x=x, y=y) -> None:
                path = out / split / folder_name(spec.classes[int(y[i])]) / f"{i:05d}.{fmt}"
                path.write_bytes(encode(x[i], size, colour, fmt))

            for _ in pool.map(write, idx):
                progress.update(1)
            labels, n = np.unique(y[idx], return_counts=True)
            counts[split] = {spec.classes[int(k)]: int(c) for k, c in zip(labels, n)}
    return counts
