"""One training process of the DDP tests: run alone (world size 1) or under torchrun
(``python -m torch.distributed.run --standalone --nproc_per_node=N tests/ddp_worker.py KIND OUT``).
Each rank saves its weights and history to OUT/rank<r>.pt."""

import sys
from pathlib import Path

import numpy as np
import torch

from genaug import accel as accel_mod
from genaug import models
from genaug.diffusion import Diffusion
from genaug.sections import DiffusionConfig
from genaug.train import distributed
from genaug.train.diffusion import train_diffusion

STEPS, BATCH = int(__import__("os").environ.get("DDP_STEPS", 20)), 16


def _data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 256).astype(np.int64)
    x = (rng.integers(0, 20, (256, 1, 28, 28)) + y[:, None, None, None] * 23).astype(np.uint8)
    return x, y


def diffusion(world: distributed.World) -> dict:
    x, y = _data()
    torch.manual_seed(0)
    # No dropout: its masks are drawn inside the network, per rank (genaug.train.distributed).
    net = models.build_generator("ddim", shape=(1, 28, 28), num_classes=10, base_channels=8,
                                 channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=(14,), dropout=0.0)
    cfg = DiffusionConfig(steps=STEPS, batch=BATCH, lr=1e-3, warmup=5, ema_decay=0.9, log_every=5)
    ema, history = train_diffusion(net, Diffusion.from_schedule("linear", 100), x, y, cfg,
                                   accel_mod.pick("cpu"), seed=0, mirror=True, world=world)
    probe = torch.Generator().manual_seed(1)
    x, t, labels = torch.randn(8, 1, 28, 28, generator=probe), torch.arange(0, 80, 10), torch.arange(8)
    with torch.no_grad():
        predicted = {"model": net.eval()(x, t, labels), "ema": ema.eval()(x, t, labels)}
    return {"model": net.state_dict(), "ema": ema.state_dict(), "history": history, "predicted": predicted}


def main(kind: str, out: str) -> None:
    world = distributed.World.from_env()
    distributed.init(world, torch.device("cpu"))
    try:
        result = {"diffusion": diffusion}[kind](world)
        torch.save(result, Path(out) / f"rank{world.rank}.pt")
    finally:
        distributed.leave()


if __name__ == "__main__":
    main(*sys.argv[1:3])
