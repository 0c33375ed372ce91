"""Your own data: snapshotting a folder, and decoding a version into uint8 tensors.

    python -m bench.data_versions [--n 2000]

On N generated 48x40 RGB images (PNG and JPEG, 10 class folders), on a private stack:
- snapshot throughput (read, hash, check, upload), first and unchanged second time;
- decoding into uint8 [N, 3, 32, 32] (centre crop, Lanczos resize): genaug's decoding
  processes (one per core, fed chunks by fetching threads) against torchvision ImageFolder +
  DataLoader (2 workers) with the same transforms, on the same files. Target: ours >= 2x
  faster;
- a version's tensors a second time (the S3 cache) against the first (decoding every stored
  image): the figure behind a second prepare_data of the same version (target >= 20x).
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


def write_folder(root: Path, n: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        # Smooth images with noise, so that PNG and JPEG sizes are those of photos, not of noise.
        base = np.linspace(0, 255, 48, dtype=np.float32)[None, :, None] * rng.random(3, dtype=np.float32)
        image = np.clip(base + rng.normal(0, 20, (40, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i:05d}{'.png' if i % 2 else '.jpg'}")
    return root


def ours(root: Path):
    files = sorted(root.rglob("*.*"))
    geometry = Geometry(32, 3, True)

    def run():
        decode_many([f.read_bytes for f in files], [str(f) for f in files], geometry, desc="bench decode")
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


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    report = Report("data_versions", f"{args.n} generated 48x40 RGB images (PNG, JPEG) in 10 class folders")
    with tempfile.TemporaryDirectory() as tmp, private_stack() as (_, env):
        root = write_folder(Path(tmp) / "images", args.n)
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
        times = interleaved({"ours": ours(root), "reference": reference(root)}, "cpu", warmup=1, repeats=args.repeats)
    report.figure("genaug: chunks decoded by one process per core, into one uint8 array", args.n / times["ours"],
                  "images/s")
    report.figure("reference: ImageFolder + DataLoader(2 workers)", args.n / times["reference"], "images/s")
    ratio = times["reference"] / times["ours"]
    return report.done("decode time, reference / genaug", ratio, ">= 2x", ratio >= 2)


if __name__ == "__main__":
    main()
