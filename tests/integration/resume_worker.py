"""A GAN training run with S3 checkpoints, as a separate process the test can SIGKILL.

    python -m tests.integration.resume_worker KEY OUT.pt
"""

import sys

import numpy as np
import torch

from genaug import accel as accel_mod
from genaug import models
from genaug.store import Store
from genaug.train.checkpoints import Checkpointer
from genaug.train.gan import GanConfig, train_gan
from genaug.train.gan_losses import WassersteinGP

G_STEPS, EVERY = 60, 3


def main(key: str, out: str) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 256)
    x = (rng.integers(0, 20, (256, 1, 28, 28)) + y[:, None, None, None] * 23).astype(np.uint8)
    torch.manual_seed(0)
    G, D = models.build_gan("wgan_gp", shape=(1, 28, 28), num_classes=10, z_dim=8, width=4)
    loss = WassersteinGP()
    cfg = GanConfig(steps=G_STEPS * loss.n_critic, batch=16, z_dim=8, log_every=loss.n_critic * 5)
    ckpt = Checkpointer(Store(), key, EVERY)
    history = train_gan(G, D, x, y, cfg, accel_mod.pick("cpu"), 10, seed=0, loss=loss, checkpointer=ckpt)
    torch.save({"G": G.state_dict(), "D": D.state_dict(), "history": history}, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
