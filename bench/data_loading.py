"""One epoch of classifier batches: genaug's in-memory uint8 path against the standard
torchvision ImageFolder + DataLoader (PNG files, PIL transforms, 2 workers).

    python -m bench.data_loading [--n 20000] [--batch 128] [--augment]

Both sides hand the model float32 [B, C, H, W] in [0, 1] on the training device, in a
shuffled order, for the same N real Fashion-MNIST training images; ``--augment`` adds the
random pad-4 crop and horizontal flip on both sides (ours on the whole batch at once).
Target: ours >= 10x faster per epoch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.harness import Report, interleaved
from genaug import accel as accel_mod
from genaug import catalog
from genaug.data.batches import Batches, random_crop_flip
from genaug.data.sources import load_raw


def write_image_folder(x: np.ndarray, y: np.ndarray, root: Path) -> Path:
    """PNG files in ImageFolder's layout, root/<class>/<index>.png (what people start from)."""
    from PIL import Image

    for cls in np.unique(y):
        (root / str(cls)).mkdir(parents=True, exist_ok=True)
    for i, (img, cls) in enumerate(zip(x, y)):
        Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(root / str(cls) / f"{i}.png")
    return root


def ours(x, y, batch: int, acc, augment: bool):
    batches = Batches(x, y, batch, acc.device, seed=0)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        for xb, yb in batches:
            images = acc.images(xb)
            if augment:
                images = random_crop_flip(images, 4, gen)
            images.sum()  # touch it, as a model would
    return epoch


def reference(root: Path, batch: int, device, augment: bool, grayscale: bool):
    from torchvision import datasets, transforms

    steps = [transforms.Grayscale()] if grayscale else []
    if augment:
        steps += [transforms.RandomCrop(28, padding=4), transforms.RandomHorizontalFlip()]
    dataset = datasets.ImageFolder(str(root), transform=transforms.Compose(steps + [transforms.ToTensor()]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=2, drop_last=True,
                                         pin_memory=torch.device(device).type == "cuda", persistent_workers=True)

    def epoch():
        for xb, yb in loader:
            xb.to(device, non_blocking=True).sum()
            yb.to(device, non_blocking=True)
    return epoch


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20000, help="training images (of Fashion-MNIST's 60000)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--augment", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    acc = accel_mod.pick()
    raw = load_raw(catalog.dataset("fashion_mnist"))
    x, y = raw.train_x[:args.n], raw.train_y[:args.n].astype(np.int64)
    report = Report("data_loading", f"one epoch of {len(y)} Fashion-MNIST images, batch {args.batch}, "
                                    f"{'crop+flip, ' if args.augment else ''}on {acc.device}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        root = write_image_folder(x, y, Path(tmp) / "fmnist")
        report.figure("writing the PNG ImageFolder (once, not timed below)", time.perf_counter() - t0, "s")
        times = interleaved({"ours": ours(x, y, args.batch, acc, args.augment),
                             "reference": reference(root, args.batch, acc.device, args.augment, x.shape[1] == 1)},
                            acc.device, warmup=1, repeats=args.repeats)
    n = (len(y) // args.batch) * args.batch
    report.figure("genaug: uint8 tensors on the device, Batches", times["ours"], "s/epoch")
    report.figure("reference: ImageFolder + DataLoader(2 workers), PIL", times["reference"], "s/epoch")
    report.figure("genaug", n / times["ours"], "images/s")
    report.figure("reference", n / times["reference"], "images/s")
    ratio = times["reference"] / times["ours"]
    return report.done("epoch time, reference / genaug", ratio, ">= 10x", ratio >= 10)


if __name__ == "__main__":
    main()
