"""Your own data: snapshotting a folder, and decoding a version into uint8 tensors.

    python -m bench.data_versions [--n 2000] [--small 2000]

On a private stack, with N generated 640x480 JPEG photos in 10 class folders (the size of
a downscaled phone picture; product photos and defects come as JPEG):
- snapshot throughput (read, hash, full decode check, upload), first and unchanged second
  time; with --n 10000, what a 10,000-image folder costs;
- decoding into uint8 [N, 3, 32, 32] (centre crop, antialiased Lanczos resize): genaug's
  decoding processes (one per core, fed chunks by fetching threads; a JPEG decoded at the
  DCT scale the size allows) against torchvision ImageFolder + DataLoader (2 workers) with
  the same crop and resize, on the same files. Target: ours >= 2x faster;
- a version's tensors a second time (the S3 cache) against the first (decoding every stored
  image): the figure behind a second prepare_data of the same version (target >= 20x);
- the same decoding race on --small tiny 48x40 images (PNG and JPEG), reported without a
  target: there the fixed cost per file dominates both sides.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.harness import Report, interleaved
from bench.stack import private_stack
from genaug.data.decoded import decode_many, load_version
from genaug.data.imagefile import Geometry


def write_folder(root: Path, n: int, size=(640, 480), formats=(".jpg",)) -> Path:
    """n smooth-with-noise RGB images of ``size`` (width, height) in 10 class folders, cycling
    through ``formats``: PNG and JPEG sizes are those of photos, not of noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    width, height = size
    for i in range(n):
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        base = np.linspace(0, 255, width, dtype=np.float32)[None, :, None] * rng.random(3, dtype=np.float32)
        image = np.clip(base + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i:05d}{formats[i % len(formats)]}", quality=90)
    return root


def ours(root: Path):
    files = sorted(root.rglob("*.*"))
    geometry = Geometry(32, 3, True)

    def run():
        decode_many(files, Path.read_bytes, [str(f) for f in files], geometry, desc="bench decode")
    return run


def reference(root: Path):
    from torchvision import datasets, transforms

    crop = transforms.Lambda(lambda im: transforms.functional.center_crop(im, min(im.size)))
    dataset = datasets.ImageFolder(str(root), transform=transforms.Compose([
        crop, transforms.Resize(32, interpolation=transforms.InterpolationMode.LANCZOS, antialias=True),
        transforms.PILToTensor()]))

    def run():
        loader = torch.utils.data.DataLoader(dataset, batch_size=128, num_workers=2)
        torch.cat([x for x, _ in loader])
    return run


def race(root: Path, n: int, repeats: int) -> tuple[float, float, float]:
    """(decode time reference / genaug, genaug's images/s, the reference's) on the n files
    under ``root``."""
    times = interleaved({"ours": ours(root), "reference": reference(root)}, "cpu", warmup=1, repeats=repeats)
    return times["reference"] / times["ours"], n / times["ours"], n / times["reference"]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="640x480 JPEG photos")
    p.add_argument("--small", type=int, default=2000, help="48x40 PNG and JPEG images (0: skip)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    report = Report("data_versions", f"{args.n} generated 640x480 JPEG photos in 10 class folders")
    with tempfile.TemporaryDirectory() as tmp, private_stack() as (_, env):
        root = write_folder(Path(tmp) / "photos", args.n)
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            from genaug.data.snapshots import snapshot
            from genaug.services.store import Store

            store = Store()
            t0 = time.perf_counter()
            first = snapshot("bench", str(root), store)
            t1 = time.perf_counter()
            snapshot("bench", str(root), store)
            t2 = time.perf_counter()
            load_version("bench", first["version"], store)
            t3 = time.perf_counter()
            load_version("bench", first["version"], store)
            t4 = time.perf_counter()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        report.figure("snapshot, first (read, hash, check, upload)", args.n / (t1 - t0), "images/s")
        report.figure("snapshot, unchanged source (nothing written)", args.n / (t2 - t1), "images/s")
        report.figure("version -> uint8 tensors, first (fetch and decode every image)", t3 - t2, "s")
        report.figure("version -> uint8 tensors, again (the S3 cache)", t4 - t3, "s")
        report.figure("second / first, times faster (target >= 20x)", (t3 - t2) / (t4 - t3), "x")
        ratio, ours_rate, ref_rate = race(root, args.n, args.repeats)
        report.figure("genaug: chunks decoded by one process per core, into one uint8 array", ours_rate, "images/s")
        report.figure("reference: ImageFolder + DataLoader(2 workers)", ref_rate, "images/s")
        if args.small:
            small = write_folder(Path(tmp) / "small", args.small, size=(48, 40), formats=(".jpg", ".png"))
            small_ratio, small_ours, small_ref = race(small, args.small, args.repeats)
            report.figure("48x40 PNG/JPEG (no target): genaug", small_ours, "images/s")
            report.figure("48x40 PNG/JPEG (no target): reference", small_ref, "images/s")
            report.figure("48x40 PNG/JPEG (no target): reference / genaug", small_ratio, "x")
    return report.done("decode time of the photos, reference / genaug", ratio, ">= 2x", ratio >= 2)


if __name__ == "__main__":
    main()
