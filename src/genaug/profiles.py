"""Run profiles: how much work each step does, as one table of data.

smoke: seconds per step on a 2-core CPU, for CI.
quick: minutes on a 2-core CPU; results a person recognises on Fashion-MNIST.
full:  paper-scale settings for a GPU node.

Standard library only (see genaug.params).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# The validation split: a stratified share of the official training split, the same for every run.
VAL_FRACTION = 0.1


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
    # Diffusion (ddpm, ddim): the UNet (genaug.models.unet.UNet's arguments).
    unet_base: int
    unet_mults: tuple[int, ...]
    unet_res_blocks: int
    unet_attention: tuple[int, ...]   # level indices with self-attention (the middle always has it)
    unet_dropout: float
    # Diffusion: the process and its training.
    timesteps: int            # T
    schedule: str             # "linear" or "cosine"
    p_uncond: float           # label dropout that teaches the unconditional eps for guidance
    diffusion_steps: int      # optimizer steps
    diffusion_batch: int
    diffusion_lr: float
    warmup: int               # linear learning-rate warm-up, in optimizer steps
    ema_decay: float          # of the weights that sample (ramped up early in training)
    snr_gamma: float          # Min-SNR-gamma loss weighting (Hang et al., 2023); 0: Ho et al.'s plain MSE
    # Diffusion: sampling, as synthesized and as served (K steps in one call).
    sample_steps: int         # K
    eta: float                # DDIM noise; 0 is deterministic
    guidance: float           # classifier-free guidance scale w
    # Sample grids logged during generator training, at epoch ends, at most this many.
    max_grids: int
    # Generator metrics (genaug.metrics.generative): generated and reference images for FID,
    # KID, precision/recall (class-balanced, reference from the full real training split),
    # the FID preprocessing modes, and the feature network: "inception" (Inception-v3 pool3,
    # found by genaug.metrics.feature_net) or "stand-in" (random conv features, for smoke
    # runs only: its numbers are not comparable with anything published).
    fid_samples: int = 2000
    fid_modes: tuple[str, ...] = ("clean",)
    fid_network: str = "inception"
    # The augmentation experiment's defaults (make experiment): real-only is ratio 0.
    exp_ratios: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    exp_seeds: tuple[int, ...] = (0, 1, 2)
    exp_classifiers: tuple[str, ...] = ("cnn", "shallow_mlp")
    exp_fractions: tuple[float, ...] = (0.1, 1.0)
    # quick defaults to (0.02, 0.1): on a 2-core CPU a cnn on all of Fashion-MNIST costs ~110 s per
    # configuration (~30 min for 4 ratios x 3 seeds), the small-data arms ~25 s; FRACTIONS=0.1,1 runs both.

    def as_dict(self) -> dict:
        return asdict(self)

    def train_counts(self, official: int, fraction: float, num_classes: int) -> tuple[int, int]:
        """(training images without the validation split, those kept at ``fraction``) for an
        official training split of ``official`` images: what prepare_data will hold."""
        full = official - int(round(official * VAL_FRACTION))
        if self.max_train is not None:
            full = min(full, int(self.max_train * (1 - VAL_FRACTION)))
        return full, (full if fraction >= 1.0 else max(num_classes, round(fraction * full)))


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", max_train=1200, max_test=500, gan_steps=30, gan_batch=64,
                gan_width=16, z_dim=32, clf_epochs=3, clf_patience=2, clf_batch=64,
                clf_width=8, clf_lr=3e-3, log_every=10, checkpoint_every=10,
                unet_base=8, unet_mults=(1, 2), unet_res_blocks=1, unet_attention=(), unet_dropout=0.0,
                timesteps=100, schedule="linear", p_uncond=0.1, diffusion_steps=20, diffusion_batch=32,
                diffusion_lr=1e-3, warmup=5, ema_decay=0.9, snr_gamma=5.0, sample_steps=4, eta=0.0,
                guidance=2.0, max_grids=2, fid_samples=200, fid_network="stand-in",
                exp_ratios=(0.0, 0.5), exp_seeds=(0, 1), exp_classifiers=("cnn", "shallow_mlp"),
                exp_fractions=(0.5,)),
        Profile("quick", max_train=None, max_test=None, gan_steps=1500, gan_batch=64,
                gan_width=32, z_dim=64, clf_epochs=6, clf_patience=2, clf_batch=128,
                clf_width=32, clf_lr=3e-3, log_every=250, checkpoint_every=250,
                unet_base=16, unet_mults=(1, 2, 2), unet_res_blocks=1, unet_attention=(), unet_dropout=0.0,
                timesteps=1000, schedule="cosine", p_uncond=0.1, diffusion_steps=2000, diffusion_batch=64,
                # Measured on real Fashion-MNIST after 2000 steps (500 samples, DDIM-10): label
                # fidelity 0.48 at lr 1e-3 without Min-SNR, 0.54 with lr 2e-3 and Min-SNR-5, and
                # with the latter 0.63 / 0.71 / 0.78 at guidance 3 / 4 / 5.
                diffusion_lr=2e-3, warmup=100, ema_decay=0.995, snr_gamma=5.0, sample_steps=10, eta=0.0,
                guidance=4.0, max_grids=8, fid_samples=2000, exp_fractions=(0.02, 0.1)),
        Profile("full", max_train=None, max_test=None, gan_steps=100_000, gan_batch=128,
                gan_width=64, z_dim=128, clf_epochs=60, clf_patience=8, clf_batch=256,
                clf_width=64, clf_lr=2e-3, log_every=2000, checkpoint_every=5000,
                # Ho et al. (2020), CIFAR-10: their 35.7M-parameter layout (38.3M here with AdaGN and
                # the class embedding), 800k steps at batch 128, lr 2e-4
                # with 5000 warm-up steps, EMA 0.9999, dropout 0.1, attention at 16x16 (level 1).
                unet_base=128, unet_mults=(1, 2, 2, 2), unet_res_blocks=2, unet_attention=(1,),
                unet_dropout=0.1, timesteps=1000, schedule="linear", p_uncond=0.1,
                diffusion_steps=800_000, diffusion_batch=128, diffusion_lr=2e-4, warmup=5000,
                ema_decay=0.9999, snr_gamma=0.0, sample_steps=50, eta=0.0, guidance=2.0, max_grids=40,
                fid_samples=50_000, fid_modes=("clean", "legacy_tensorflow"),
                exp_classifiers=("cnn", "shallow_mlp", "deep_mlp", "transfer"), exp_seeds=(0, 1, 2, 3, 4)),
    )
}


def _listed(values) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


# The make variables whose default is "the profile's": (variable, profile field).
PROFILE_DEFAULTS = (("STEPS", "sample_steps"), ("ETA", "eta"), ("GUIDANCE", "guidance"), ("RATIOS", "exp_ratios"),
                    ("SEEDS", "exp_seeds"), ("CLASSIFIERS", "exp_classifiers"), ("FRACTIONS", "exp_fractions"))


def defaults_table() -> str:
    """The profile-dependent defaults of `make pipeline` / `make experiment`, one row per
    profile, read from PROFILES (so `make help` cannot disagree with the code)."""
    header = ["PROFILE", *(name for name, _ in PROFILE_DEFAULTS)]
    rows = [[p.name, *(_listed(v) if isinstance(v := getattr(p, f), tuple) else f"{v:g}" for _, f in PROFILE_DEFAULTS)]
            for p in PROFILES.values()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


if __name__ == "__main__":
    print("Defaults that depend on PROFILE (src/genaug/profiles.py):")
    print(defaults_table())
