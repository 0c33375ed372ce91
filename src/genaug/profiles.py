"""Run profiles: how much work each step does, as one table of data.

smoke: seconds per step on a 2-core CPU, for CI.
quick: minutes on a 2-core CPU; results a person recognises on Fashion-MNIST.
full:  paper-scale settings for a GPU node.

Standard library only (see genaug.params).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # Real data: at most this many training / test images (None: all of them).
    max_train: int | None
    max_test: int | None
    # Generator training.
    gan_steps: int            # optimizer steps of G (and of D)
    gan_batch: int
    gan_width: int            # base channel count of G and D
    z_dim: int
    # Classifier training.
    clf_epochs: int           # upper bound; early stopping may end sooner
    clf_patience: int         # epochs without a better val accuracy before stopping
    clf_batch: int
    clf_width: int            # channels of the first conv block
    clf_lr: float
    # How often (in critic steps) to record losses.
    log_every: int
    # How often (in generator steps) to save a resumable checkpoint to object storage.
    checkpoint_every: int

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", max_train=1200, max_test=500, gan_steps=30, gan_batch=64,
                gan_width=16, z_dim=32, clf_epochs=3, clf_patience=2, clf_batch=64,
                clf_width=8, clf_lr=3e-3, log_every=10, checkpoint_every=10),
        Profile("quick", max_train=None, max_test=None, gan_steps=1500, gan_batch=64,
                gan_width=32, z_dim=64, clf_epochs=6, clf_patience=2, clf_batch=128,
                clf_width=32, clf_lr=3e-3, log_every=250, checkpoint_every=250),
        Profile("full", max_train=None, max_test=None, gan_steps=100_000, gan_batch=128,
                gan_width=64, z_dim=128, clf_epochs=60, clf_patience=8, clf_batch=256,
                clf_width=64, clf_lr=2e-3, log_every=2000, checkpoint_every=5000),
    )
}
