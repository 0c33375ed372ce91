"""The cost of DistributedDataParallel: diffusion training at world size 2 (gloo, torchrun,
one CPU thread each) against world size 1 (as many threads as ranks), at the same global batch.

    python -m bench.ddp [--steps 30] [--batch 32]

Both train genaug's UNet through ``genaug.train.diffusion.train_diffusion`` on the same data
for the same steps; each side is a fresh process timed from its first step to its last, so
the two ranks' start-up (process group, rendezvous) is outside the figure and only what
DDP adds per step is in it: the gradient all-reduce, the loss's all-reduce, and the whole
batch's draws on every rank. The ratio is world size 1's time over world size 2's: 1.0 means
two ranks do in the time of one process what it does, > 1 that they are faster. On one GPU
per rank the all-reduce runs over NVLink or PCIe instead (bench/gpu.sh measures images/s per
GPU count). Target on this 2-core CPU: >= 0.8x (gloo's all-reduce of a few MB per step goes
through loopback TCP).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Report

REPO = Path(__file__).resolve().parents[1]


# The full profile's UNet (genaug.profiles) at CIFAR-10's size, for bench/gpu.sh's scaling figures.
FULL_UNET = dict(base_channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2, attention_levels=(1,))
SMALL_UNET = dict(base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=())


def train(steps: int, batch: int, full: bool = False) -> float:
    """Seconds of ``steps`` training steps in this process (a rank of torchrun's world, or
    alone), on the device accel.pick() chooses: the CPU here, this rank's GPU on a GPU node."""
    import numpy as np
    import torch

    from genaug import accel as accel_mod
    from genaug import models
    from genaug.diffusion import Diffusion
    from genaug.sections import DiffusionConfig
    from genaug.train import distributed
    from genaug.train.diffusion import train_diffusion

    shape = (3, 32, 32) if full else (1, 28, 28)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 4096).astype(np.int64)
    x = rng.integers(0, 256, (4096, *shape)).astype(np.uint8)
    acc = accel_mod.pick()
    with distributed.joined(acc.device) as world:
        torch.manual_seed(0)
        unet = DiffusionConfig(**(FULL_UNET if full else SMALL_UNET), dropout=0.0)
        net = models.build_generator("ddim", shape=shape, num_classes=10, **unet.unet_args(shape[1]))

        def run(n: int) -> None:
            cfg = DiffusionConfig(steps=n, batch=batch, lr=1e-3, warmup=1, ema_decay=0.9, log_every=n)
            train_diffusion(net, Diffusion.from_schedule("linear", 100), x, y, cfg, acc, 0, world=world)

        run(2)  # allocation and warm-up, untimed
        world.barrier()
        t0 = time.perf_counter()
        run(steps)
        world.barrier()
        if acc.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0


def scaling(ranks: int, steps: int, batch: int, full: bool) -> float:
    """Images per second of ``ranks`` processes (torchrun) training at a global ``batch``."""
    return steps * batch / _side(ranks, steps, batch, full)


def _side(ranks: int, steps: int, batch: int, full: bool = False) -> float:
    threads = str(max(1, (os.cpu_count() or 2) // ranks))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "OMP_NUM_THREADS": threads}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"] \
        if ranks > 1 else [sys.executable]
    out = subprocess.run([*launcher, "-m", "bench.ddp", "--as-rank", "--steps", str(steps), "--batch", str(batch),
                          *(["--full"] if full else [])],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"bench.ddp at world size {ranks} failed:\n{out.stderr[-3000:]}")
    return json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][0])["seconds"]


def main(argv: list[str]) -> dict | None:
    parser = argparse.ArgumentParser(prog="python -m bench.ddp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--full", action="store_true", help="the full profile's UNet at 32x32x3")
    parser.add_argument("--as-rank", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.as_rank:
        seconds = train(args.steps, args.batch, args.full)
        if os.environ.get("RANK", "0") == "0":
            print(json.dumps({"seconds": seconds}), flush=True)
        return None
    report = Report("ddp", f"diffusion training, {args.steps} steps of a global batch of {args.batch}: "
                           "world size 2 (gloo) against 1")
    single, double = _side(1, args.steps, args.batch, args.full), _side(2, args.steps, args.batch, args.full)
    report.figure("world size 1: images/s", args.steps * args.batch / single, "img/s")
    report.figure("world size 2 (gloo): images/s", args.steps * args.batch / double, "img/s")
    ratio = single / double
    return report.done("world size 1 time / world size 2 time", ratio, ">= 0.8x on a 2-core CPU",
                       ratio >= 0.8 if (os.cpu_count() or 0) == 2 else None)


if __name__ == "__main__":
    main(sys.argv[1:])
