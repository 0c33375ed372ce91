"""Run profiles: how much work each step does, as one table of sections.

smoke: seconds per step on a 2-core CPU, for CI.
quick: minutes on a 2-core CPU; results a person recognises on Fashion-MNIST.
full:  paper-scale settings for a GPU node.

A profile holds one section per concern (genaug.sections); a run's user parameters
override some fields of them (genaug.params.resolve). Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

from genaug.sections import (ClassifierConfig, DataConfig, DiffusionConfig, ExperimentConfig, GanConfig,
                             MetricsConfig, SamplerConfig)


@dataclass(frozen=True)
class Profile:
    name: str
    data: DataConfig
    gan: GanConfig
    diffusion: DiffusionConfig
    sampler: SamplerConfig
    classifier: ClassifierConfig
    metrics: MetricsConfig
    experiment: ExperimentConfig

    def as_dict(self) -> dict:
        return {"name": self.name, **{k: getattr(self, k).as_dict() for k in SECTIONS}}


SECTIONS = ("data", "gan", "diffusion", "sampler", "classifier", "metrics", "experiment")

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "smoke",
            DataConfig(max_train=1200, max_test=500, max_resolution=32),
            GanConfig(steps=30, batch=64, width=16, z_dim=32, log_every=10, checkpoint_every=10, max_grids=2,
                      early_stop_every=10, early_stop_patience=2, early_stop_samples=200),
            DiffusionConfig(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(),
                            dropout=0.0, timesteps=100, schedule="linear", p_uncond=0.1, steps=20, batch=32,
                            lr=1e-3, warmup=5, ema_decay=0.9, snr_gamma=5.0, log_every=10, checkpoint_every=10,
                            max_grids=2),
            SamplerConfig(steps=2, eta=0.0, guidance=2.0),
            ClassifierConfig(epochs=3, patience=2, batch=64, width=8, lr=3e-3, int8_calibration=64),
            MetricsConfig(fid_samples=200, fid_network="stand-in", msssim_pairs=20, likeness_images=20),
            ExperimentConfig(ratios=(0.0, 0.5), seeds=(0, 1), classifiers=("cnn", "shallow_mlp"), fractions=(0.5,)),
        ),
        Profile(
            "quick",
            DataConfig(max_resolution=64),
            # Early stopping (GAN_EARLY_STOP=1): Inception features of 500 images cost ~NN s a
            # measurement on this CPU, six measurements over dcgan's 1500 steps.
            GanConfig(steps=1500, batch=64, width=32, z_dim=64, log_every=250, checkpoint_every=250, max_grids=8,
                      early_stop_every=250, early_stop_patience=3, early_stop_samples=500),
            # Measured on real Fashion-MNIST after 2000 steps (500 samples, DDIM-10): label
            # fidelity 0.48 at lr 1e-3 without Min-SNR, 0.54 with lr 2e-3 and Min-SNR-5, and
            # with the latter 0.63 / 0.71 / 0.78 at guidance 3 / 4 / 5.
            DiffusionConfig(base_channels=16, channel_mults=(1, 2, 2), num_res_blocks=1, attention_levels=(),
                            dropout=0.0, timesteps=1000, schedule="cosine", p_uncond=0.1, steps=2000, batch=64,
                            lr=2e-3, warmup=100, ema_decay=0.995, snr_gamma=5.0, log_every=250,
                            checkpoint_every=250, max_grids=8),
            SamplerConfig(steps=10, eta=0.0, guidance=4.0),
            ClassifierConfig(epochs=6, patience=2, batch=128, width=32, lr=3e-3, int8_calibration=256),
            # MS-SSIM (100 pairs a class, Odena et al.'s count) and the Likeness Score (100 images a
            # class, 1000 overall) add ~4 s to evaluate_generator on real Fashion-MNIST on this CPU.
            MetricsConfig(fid_samples=2000, msssim_pairs=100, likeness_images=100),
            # On a 2-core CPU a cnn on all of Fashion-MNIST costs ~110 s per configuration (~30 min
            # for 4 ratios x 3 seeds), the small-data arms ~25 s; FRACTIONS=0.1,1 runs both.
            ExperimentConfig(fractions=(0.02, 0.1)),
        ),
        Profile(
            "full",
            DataConfig(max_resolution=128),
            # Early stopping on: FID of 5000 images every 2500 generator steps (seconds on a GPU),
            # stopping after 8 measurements (20k steps) without a lower one.
            GanConfig(steps=100_000, batch=128, width=64, z_dim=128, log_every=2000, checkpoint_every=5000,
                      max_grids=40, early_stop=True, early_stop_every=2500, early_stop_patience=8,
                      early_stop_samples=5000),
            # Ho et al. (2020), CIFAR-10: their 35.7M-parameter layout (38.3M here with AdaGN and
            # the class embedding), 800k steps at batch 128, lr 2e-4 with 5000 warm-up steps,
            # EMA 0.9999, dropout 0.1, attention at 16x16 (level 1).
            DiffusionConfig(base_channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2, attention_levels=(1,),
                            dropout=0.1, timesteps=1000, schedule="linear", p_uncond=0.1, steps=800_000,
                            batch=128, lr=2e-4, warmup=5000, ema_decay=0.9999, snr_gamma=0.0, log_every=2000,
                            checkpoint_every=5000, max_grids=40),
            SamplerConfig(steps=50, eta=0.0, guidance=2.0),
            ClassifierConfig(epochs=60, patience=8, batch=256, width=64, lr=2e-3, int8_calibration=1024),
            MetricsConfig(fid_samples=50_000, fid_modes=("clean", "legacy_tensorflow"), msssim_pairs=1000,
                          likeness_images=500),
            ExperimentConfig(classifiers=("cnn", "shallow_mlp", "deep_mlp", "transfer", "efficientnet_b0"),
                             seeds=(0, 1, 2, 3, 4), generator_seeds=(0, 1, 2)),
        ),
    )
}


def _listed(values) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


# The make variables whose default is "the profile's": (variable, section, field).
PROFILE_DEFAULTS = (("STEPS", "sampler", "steps"), ("ETA", "sampler", "eta"), ("GUIDANCE", "sampler", "guidance"),
                    ("RATIOS", "experiment", "ratios"), ("SEEDS", "experiment", "seeds"),
                    ("CLASSIFIERS", "experiment", "classifiers"), ("FRACTIONS", "experiment", "fractions"),
                    ("GEN_SEEDS", "experiment", "generator_seeds"), ("GAN_EARLY_STOP", "gan", "early_stop"))


def defaults_table() -> str:
    """The profile-dependent defaults of `make pipeline` / `make experiment`, one row per
    profile, read from PROFILES (so `make help` cannot disagree with the code)."""
    header = ["PROFILE", *(name for name, _, _ in PROFILE_DEFAULTS)]
    rows = [[p.name, *(_listed(v) if isinstance(v := getattr(getattr(p, s), f), tuple) else f"{v:g}"
                       for _, s, f in PROFILE_DEFAULTS)] for p in PROFILES.values()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


if __name__ == "__main__":
    print("Defaults that depend on PROFILE (src/genaug/profiles.py):")
    print(defaults_table())
