"""A generator training run with S3 checkpoints, as a separate process the test can SIGKILL.

    python -m tests.integration.resume_worker {gan|diffusion} KEY OUT.pt

Writes OUT.pt (the final weights and history) only when training finishes, and
``STEPS`` is long enough that the test can kill it between checkpoints.
"""

import sys

import numpy as np
import torch

from genaug import accel as accel_mod
from genaug import models
from genaug.diffusion import Diffusion
from genaug.sections import DiffusionConfig, GanConfig
from genaug.services.store import Store
from genaug.train.checkpoints import Checkpointer
from genaug.train.diffusion import train_diffusion
from genaug.train.gan import train_gan
from genaug.train.gan_losses import WassersteinGP

STEPS, EVERY = 60, 3


def _data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 256)
    x = (rng.integers(0, 20, (256, 1, 28, 28)) + y[:, None, None, None] * 23).astype(np.uint8)
    return x, y


def gan(ckpt: Checkpointer) -> dict:
    x, y = _data()
    G, D = models.build_gan("wgan_gp", shape=(1, 28, 28), num_classes=10, z_dim=8, width=4)
    loss = WassersteinGP()
    cfg = GanConfig(steps=STEPS * loss.n_critic, batch=16, z_dim=8, log_every=loss.n_critic * 5)
    history = train_gan(G, D, x, y, cfg, accel_mod.pick("cpu"), 10, seed=0, loss=loss, checkpointer=ckpt)
    return {"G": G.state_dict(), "D": D.state_dict(), "history": history, "loss_key": "d_loss"}


def diffusion(ckpt: Checkpointer) -> dict:
    x, y = _data()
    # Dropout on, so the test also covers the RNG state that dropout draws from.
    net = models.build_generator("ddim", shape=(1, 28, 28), num_classes=10, base_channels=8,
                                 channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=(14,), dropout=0.1)
    cfg = DiffusionConfig(steps=STEPS, batch=16, lr=1e-3, warmup=5, ema_decay=0.9, log_every=5)
    ema, history = train_diffusion(net, Diffusion.from_schedule("linear", 100), x, y, cfg,
                                   accel_mod.pick("cpu"), seed=0, checkpointer=ckpt)
    return {"model": net.state_dict(), "ema": ema.state_dict(), "history": history, "loss_key": "loss"}


def main(kind: str, key: str, out: str) -> None:
    torch.manual_seed(0)
    result = {"gan": gan, "diffusion": diffusion}[kind](Checkpointer(Store(), key, EVERY))
    torch.save(result, out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
