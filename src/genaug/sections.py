"""A run's configuration, one section per concern; each section checks itself once.

A section is a frozen dataclass whose ``__post_init__`` raises ConfigError naming every bad
value and the fix, so no step re-checks what it is handed. Sections are built by
genaug.params.resolve (from a profile and the user's overrides) and travel as JSON
(``as_dict`` / ``from_dict``), so a step reads exactly the values that run_options.json shows.

Standard library only (see genaug.params).
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, fields

from genaug.catalog import CLASSIFIERS, DATASETS, choose, dataset_problem

# r = n_synthetic / n_real. Above this the real data is a rounding error in the mix.
MAX_RATIO = 10.0
# "latest" fingerprints the raw files at run time; anything else is the user's label (a date,
# a tag), which reaches KFP cache keys and MLflow tags.
LATEST_DATA = "latest"
DATA_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The validation split: a stratified share of the official training split, the same for every run.
VAL_FRACTION = 0.1
SAMPLERS = ("ddpm", "ddim")
SYNTH_MODES = ("ratio", "balance")
GATE_METRICS = ("accuracy", "macro_f1", "balanced_accuracy")
SCHEDULES = ("linear", "cosine")
FID_NETWORKS = ("inception", "stand-in")
FID_MODES = ("clean", "legacy_tensorflow", "legacy_pytorch")
# The image sides a run may ask for (RESOLUTION); unset, a built-in dataset keeps its native
# 28 or 32 px and a user dataset's side is derived from its images (genaug.data.resolution).
RESOLUTIONS = (32, 64, 128)
# The image side a profile's UNet levels are written for (genaug.sections.DiffusionConfig.unet_args).
UNET_BASE_SIDE = 32


class ConfigError(ValueError):
    """A setting that cannot work; the message names the value and the fix."""


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _raise(section: str, problems: list[str]) -> None:
    if problems:
        raise ConfigError("; ".join(problems) if section == "" else f"{section}: " + "; ".join(problems))


def _positive(obj, names: tuple[str, ...]) -> list[str]:
    """Problems for the fields in ``names`` that are not numbers > 0."""
    return [f"{n}={getattr(obj, n)!r} must be a number > 0" for n in names
            if not (_finite(getattr(obj, n)) and getattr(obj, n) > 0)]


def _alternatives(hint) -> set:
    """The types a field's hint allows: {int, NoneType} for ``int | None``."""
    return set(typing.get_args(hint)) if typing.get_origin(hint) in (typing.Union, types.UnionType) else {hint}


def _typed(hint, value):
    """``value`` as JSON or KFP hands it back, in the field's type (``hint``, evaluated): a
    list becomes a tuple, and an integer field's whole floats (KFP stores every number as a
    float) become ints."""
    if isinstance(value, list):
        inner = (typing.get_args(hint) or (object,))[0]
        return tuple(_typed(inner, v) for v in value)
    allowed = _alternatives(hint)
    if isinstance(value, float) and value.is_integer() and int in allowed and float not in allowed:
        return int(value)
    return value


class Section:
    """JSON round trip for the sections: tuples become lists and come back as tuples."""

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict):
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{cls.__name__} has no setting {', '.join(unknown)}; it has {', '.join(known)}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _typed(hints[k], v) for k, v in values.items()})

    @classmethod
    def coerce(cls, value):
        """``value`` as this section: an instance, a dict (as in run_options.json) or its JSON
        text (as `genaug step` passes it); None stays None."""
        if value is None or isinstance(value, cls):
            return value
        return cls.from_dict(json.loads(value) if isinstance(value, str) else value)


def data_version_problem(value) -> str | None:
    """None when ``value`` is "latest" or a usable label, else the problem and the fix."""
    if value == LATEST_DATA or (isinstance(value, str) and DATA_LABEL.match(value)):
        return None
    return (f"data_version {value!r} must be 'latest' (the raw files as they are now) or a label of up to "
            "64 letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. DATA_VERSION=2026-12-01")


def data_source_problem(source, dataset, version) -> str | None:
    """None when ``source`` is "" or a place a run may snapshot ``dataset`` from (an S3 prefix
    or an absolute local folder) with ``version`` "latest"; else the problem and the fix."""
    if not source:
        return None
    if dataset in DATASETS:
        return (f"data_source {source!r} is for your own datasets; {dataset!r} is built in: leave DATA_SOURCE "
                "unset, or name your dataset, e.g. DATASET=parts DATA_SOURCE=s3://incoming/parts/")
    if not isinstance(source, str) or not (source.startswith("s3://") or source.startswith("/")):
        return (f"data_source {source!r} must be an S3 prefix (s3://bucket/prefix/) or an absolute folder of "
                "class folders, e.g. DATA_SOURCE=s3://incoming/parts/")
    if version != LATEST_DATA:
        return (f"data_source {source!r} snapshots the source and uses that version, so data_version must be "
                f"'latest', not {version!r}; leave DATA_VERSION unset")
    return None


@dataclass(frozen=True)
class DataConfig(Section):
    """Which real images a run sees. prepare_data takes only this section, so KFP caches it
    by these values and never by anything run-specific.

    fraction: share of the real training images kept per class, in (0, 1]; below 1 the
        small-data regime, where augmentation is said to help most.
    version: "latest" or a pinned label (genaug.data.version).
    source: "" or where a user dataset's new images arrive (an S3 prefix or a folder): the
        run's data_version step snapshots it first (genaug.data.snapshots), so a new upload
        is a new version and an unchanged source the same one. Not part of what prepare_data
        is cached by: it reads the version that step resolved.
    max_train, max_test: at most this many official training (validation included) and
        test images, stratified; None keeps them all.
    resolution: the image side in pixels, one of RESOLUTIONS; None: a built-in dataset's
        native side, or a user dataset's derived from its images, at most ``max_resolution``.
    max_resolution: the profile's cap on a derived side (what a profile can afford; an
        asked-for ``resolution`` is not capped).
    """

    dataset: str = "fashion_mnist"
    fraction: float = 1.0
    version: str = LATEST_DATA
    max_train: int | None = None
    max_test: int | None = None
    source: str = ""
    resolution: int | None = None
    max_resolution: int = 64

    def __post_init__(self):
        problems = [p for p in [dataset_problem(self.dataset),
                                data_source_problem(self.source, self.dataset, self.version)] if p]
        for name in ("resolution", "max_resolution"):
            value = getattr(self, name)
            if not (value is None and name == "resolution") and value not in RESOLUTIONS:
                problems.append(f"{name} {value!r} must be one of {', '.join(map(str, RESOLUTIONS))} (pixels a side)"
                                + (", or unset to derive it from the data, e.g. RESOLUTION=64" if name == "resolution"
                                   else ""))
        if not (_finite(self.fraction) and 0.0 < self.fraction <= 1.0):
            problems.append(f"fraction {self.fraction!r} must be in (0, 1]: the share of the real training "
                            "images to use, e.g. FRACTION=0.1")
        if problem := data_version_problem(self.version):
            problems.append(problem)
        for name in ("max_train", "max_test"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 10):
                problems.append(f"{name}={value!r} must be None (all images) or an integer >= 10")
        _raise("", problems)

    def task_input(self) -> dict:
        """The section as prepare_data's KFP input, what that task is cached by: without the
        source (prepare_data reads the version the data_version step resolved, so a scheduled
        run that snapshots an unchanged source and a run that names that version share one
        prepared copy) and without unset values (KFP passes no nulls between tasks; the
        defaults give them back)."""
        return {k: v for k, v in self.as_dict().items() if k != "source" and v is not None}

    @property
    def built_in(self) -> bool:
        """A dataset genaug knows (its size too); else a user's snapshot, known to the registry."""
        return self.dataset in DATASETS

    def train_counts(self) -> tuple[int, int]:
        """(training images without the validation split, those kept at ``fraction``): what
        prepare_data will hold for this dataset."""
        spec = DATASETS[self.dataset]
        full = spec.train_images - int(round(spec.train_images * VAL_FRACTION))
        if self.max_train is not None:
            full = min(full, int(self.max_train * (1 - VAL_FRACTION)))
        return full, (full if self.fraction >= 1.0 else max(spec.num_classes, round(self.fraction * full)))


@dataclass(frozen=True)
class TrainingCadence:
    """How often a generator's training reports: the fields GanConfig and DiffusionConfig share.

    log_every: record losses every this many optimizer steps (critic steps for a GAN).
    checkpoint_every: save a resumable checkpoint to object storage every this many
        (generator) steps.
    max_grids: sample grids logged at epoch ends during training, at most this many.
    """

    log_every: int = 100
    checkpoint_every: int = 1000
    max_grids: int = 8

    def cadence_problems(self) -> list[str]:
        return _positive(self, ("log_every", "checkpoint_every")) + (
            [] if isinstance(self.max_grids, int) and self.max_grids >= 0 else
            [f"max_grids={self.max_grids!r} must be an integer >= 0"])


# GanConfig's early-stopping fields (genaug.train.early_stop): they change a run's training
# only when early_stop is on, so only then are they part of its checkpoint key.
EARLY_STOP_FIELDS = ("early_stop", "early_stop_every", "early_stop_patience", "early_stop_samples")


@dataclass(frozen=True)
class GanConfig(Section, TrainingCadence):
    """A GAN's size and training (vanilla_gan, dcgan, wgan_gp).

    steps: critic (discriminator) updates; the generator gets steps // n_critic.
    batch: images per update. width: base channel count of G and D. z_dim: latent size Z.
    early_stop: measure FID every ``early_stop_every`` generator steps on
        ``early_stop_samples`` images of fixed latents and labels, keep the generator of the
        lowest one, and stop after ``early_stop_patience`` measurements in a row without a
        lower one (genaug.train.early_stop). Off: train every step and keep the last.
    """

    steps: int = 1500
    batch: int = 64
    width: int = 32
    z_dim: int = 64
    early_stop: bool = False
    early_stop_every: int = 250
    early_stop_patience: int = 3
    early_stop_samples: int = 500

    def __post_init__(self):
        problems = _positive(self, ("steps", "batch", "width", "z_dim")) + self.cadence_problems()
        if self.early_stop not in (0, 1) or isinstance(self.early_stop, float):
            problems.append(f"gan_early_stop {self.early_stop!r} must be 0 (train every step, keep the last "
                            "generator) or 1 (stop at the best FID, keep that generator), e.g. GAN_EARLY_STOP=1")
        else:  # GAN_EARLY_STOP arrives as 0 or 1; the section holds a bool
            object.__setattr__(self, "early_stop", bool(self.early_stop))
        # At least 2 images: FID fits a covariance to them.
        least = {"early_stop_every": 1, "early_stop_patience": 1, "early_stop_samples": 2}
        problems += [f"{n}={v!r} must be an integer >= {low}" for n, low in least.items()
                     if not (isinstance(v := getattr(self, n), int) and not isinstance(v, bool) and v >= low)]
        _raise("gan", problems)

    def model_args(self) -> dict:
        """What genaug.models.build_gan takes besides the data's shape and classes."""
        return {"z_dim": self.z_dim, "width": self.width}

    def training_key(self) -> dict:
        """The settings that decide what training produces, for its checkpoint key: without the
        early-stopping fields while early stopping is off, so turning it on never resumes a run
        without its best-so-far state, and runs with it off keep their checkpoints."""
        return {k: v for k, v in self.as_dict().items() if self.early_stop or k not in EARLY_STOP_FIELDS}


@dataclass(frozen=True)
class DiffusionConfig(Section, TrainingCadence):
    """A diffusion model (ddpm, ddim): its UNet, its noising process and its training.

    base_channels, channel_mults, num_res_blocks, dropout: genaug.models.unet.UNet's arguments.
    attention_levels: indices of the UNet levels with self-attention (the middle always has
        it); level i works at the image side halved i times, so one setting fits 28 and 32 px.
    timesteps: T. schedule: "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal).
    p_uncond: label dropout that teaches the unconditional eps for classifier-free guidance.
    steps, batch, lr, warmup: optimizer steps, images per step, peak learning rate and its
        linear warm-up in steps. ema_decay: of the weights that sample.
    snr_gamma: Min-SNR-gamma loss weighting (Hang et al., 2023); 0 is Ho et al.'s plain MSE.
    grad_clip: the gradient norm is clipped to this.
    """

    base_channels: int = 16
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_levels: tuple[int, ...] = ()
    dropout: float = 0.0
    timesteps: int = 1000
    schedule: str = "cosine"
    p_uncond: float = 0.1
    steps: int = 2000
    batch: int = 64
    lr: float = 2e-3
    warmup: int = 100
    ema_decay: float = 0.995
    snr_gamma: float = 0.0
    grad_clip: float = 1.0

    def __post_init__(self):
        problems = _positive(self, ("base_channels", "num_res_blocks", "timesteps", "steps", "batch", "lr",
                                    "grad_clip")) + self.cadence_problems()
        if not self.channel_mults or any(not (isinstance(m, int) and m >= 1) for m in self.channel_mults):
            problems.append(f"channel_mults={self.channel_mults!r} must be positive integers, e.g. (1, 2, 2)")
        bad = [i for i in self.attention_levels if not (isinstance(i, int) and 0 <= i < len(self.channel_mults))]
        if bad:
            problems.append(f"attention_levels {bad} are not levels of a {len(self.channel_mults)}-level UNet; "
                            f"choose among 0..{len(self.channel_mults) - 1}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule={self.schedule!r} is unknown; choose one of {', '.join(SCHEDULES)}")
        for name, low, high in (("dropout", 0.0, 1.0), ("p_uncond", 0.0, 1.0), ("ema_decay", 0.0, 1.0)):
            value = getattr(self, name)
            if not (_finite(value) and low <= value < high):
                problems.append(f"{name}={value!r} must be in [{low:g}, {high:g})")
        if not (_finite(self.warmup) and self.warmup >= 0) or not (_finite(self.snr_gamma) and self.snr_gamma >= 0):
            problems.append(f"warmup={self.warmup!r} and snr_gamma={self.snr_gamma!r} must be numbers >= 0")
        _raise("diffusion", problems)

    def unet_args(self, height: int) -> dict:
        """genaug.models.unet.UNet's arguments for images ``height`` pixels high: the one
        place where attention levels become the side lengths the UNet attends at.

        channel_mults and attention_levels are written for 28 or 32 px. Each doubling above
        32 px puts one more level in front, at the first level's width (as Ho et al.'s 256 px
        layout (1, 1, 2, 2, 4, 4) extends their 32 px one), so the deepest level and the
        attention keep the side they have at 32 px: 64 px with (1, 2, 2) becomes (1, 1, 2, 2)
        with sides 64, 32, 16, 8, and attention at level 1 stays at 16x16.
        """
        extra = 0
        while height > UNET_BASE_SIDE << extra:
            extra += 1
        mults = (self.channel_mults[0],) * extra + tuple(self.channel_mults)
        sides = [height]
        for _ in mults[1:]:
            sides.append((sides[-1] + 1) // 2)
        return {"base_channels": self.base_channels, "channel_mults": list(mults),
                "num_res_blocks": self.num_res_blocks,
                "attention_resolutions": [sides[i + extra] for i in self.attention_levels], "dropout": self.dropout}

    def process_args(self) -> dict:
        """genaug.diffusion.Diffusion.from_schedule's arguments."""
        return {"schedule": self.schedule, "timesteps": self.timesteps, "p_uncond": self.p_uncond}


def sampler_fits(steps: int, timesteps: int) -> None:
    """The one check that K sampling steps fit in a process of T timesteps."""
    if steps > timesteps:
        raise ConfigError(f"sample_steps {steps} exceeds the diffusion's {timesteps} timesteps; choose "
                          f"1 <= sample_steps <= {timesteps}, e.g. STEPS={min(50, timesteps)}")


@dataclass(frozen=True)
class SamplerConfig(Section):
    """How a diffusion model samples, as synthesized and as served.

    kind: "ddpm" (ancestral, Ho et al. 2020) or "ddim" (Song et al. 2021).
    steps: K denoising steps, 1 <= K <= T; fewer than T respaces the process.
    eta: DDIM only; 0 is deterministic given x_T, 1 has the DDPM posterior variance.
    guidance: classifier-free guidance scale w; 0 unconditional, 1 conditional, > 1 sharper.
    clip_x0: clamp each step's estimate of x_0 to [-1, 1], the range of the data.
    """

    kind: str = "ddim"
    steps: int = 50
    eta: float = 0.0
    guidance: float = 1.0
    clip_x0: bool = True

    def __post_init__(self):
        problems = []
        if self.kind not in SAMPLERS:
            problems.append(f"unknown sampler {self.kind!r}; choose one of {', '.join(SAMPLERS)}")
        if not (isinstance(self.steps, int) and self.steps >= 1):
            problems.append(f"sample_steps {self.steps!r} must be an integer >= 1 (at most the diffusion's "
                            "timesteps), e.g. STEPS=50")
        if not (_finite(self.eta) and self.eta >= 0):
            problems.append(f"eta {self.eta!r} must be a number >= 0 (0: deterministic DDIM, 1: DDPM-like "
                            "noise), e.g. ETA=0")
        elif self.kind == "ddpm" and self.eta != 0:
            problems.append(f"eta {self.eta!r} applies to the ddim sampler only; drop ETA or use GEN=ddim")
        if not (_finite(self.guidance) and self.guidance >= 0):
            problems.append(f"guidance {self.guidance!r} must be a number >= 0 (0: unconditional, "
                            "1: conditional, > 1: stronger), e.g. GUIDANCE=2")
        _raise("", problems)

    def noise_shape(self, batch: int, shape: tuple[int, int, int]) -> tuple[int, ...]:
        """(B, K+1, C, H, W): x_T plus one noise image per step."""
        return (batch, self.steps + 1, *shape)


@dataclass(frozen=True)
class SynthesisConfig(Section):
    """How many synthetic images join the real ones (genaug.data.mixing).

    mode: "ratio": ``ratio`` = n_synthetic / n_real, the same number for every class;
        "balance": every class topped up to the largest class's count, or to ``target``
        images a class, so the rare classes get the synthetic images.
    target: balance only; None tops up to the largest class.
    """

    ratio: float = 0.5
    mode: str = "ratio"
    target: int | None = None

    def __post_init__(self):
        problems = []
        if not (_finite(self.ratio) and 0.0 < self.ratio <= MAX_RATIO):
            problems.append(f"ratio {self.ratio!r} is out of range; r = n_synthetic / n_real must be in "
                            f"(0, {MAX_RATIO:g}], e.g. RATIO=0.5")
        if self.mode not in SYNTH_MODES:
            problems.append(f"synth {self.mode!r} is unknown; choose {' or '.join(SYNTH_MODES)}, e.g. SYNTH=balance")
        if self.target is not None and not (isinstance(self.target, int) and self.target >= 1):
            problems.append(f"synth_target {self.target!r} must be an integer >= 1 (images a class), e.g. "
                            "SYNTH_TARGET=6000")
        elif self.target is not None and self.mode != "balance":
            problems.append(f"synth_target {self.target!r} applies to SYNTH=balance only; drop SYNTH_TARGET or set "
                            "SYNTH=balance")
        _raise("", problems)


@dataclass(frozen=True)
class ClassifierConfig(Section):
    """The classifier and how it trains.

    name: shallow_mlp, deep_mlp, cnn, transfer or efficientnet_b0.
    epochs: upper bound; early stopping may end sooner. patience: epochs without a better
        validation accuracy before stopping. batch, width (channels of the first conv block),
        lr (AdamW's peak, cosine-annealed), weight_decay, label_smoothing.
    int8_calibration: training images (a seeded subset) that calibrate the exported INT8
        classifier's activation ranges (genaug.export.quantize).
    """

    name: str = "cnn"
    epochs: int = 6
    patience: int = 2
    batch: int = 128
    width: int = 32
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    int8_calibration: int = 256

    def __post_init__(self):
        problems = _positive(self, ("epochs", "patience", "batch", "width", "lr", "int8_calibration"))
        if not (_finite(self.weight_decay) and self.weight_decay >= 0) or \
                not (_finite(self.label_smoothing) and 0 <= self.label_smoothing < 1):
            problems.append(f"weight_decay={self.weight_decay!r} must be >= 0 and label_smoothing="
                            f"{self.label_smoothing!r} in [0, 1)")
        try:
            choose("classifier", self.name, CLASSIFIERS)
        except ValueError as err:
            problems.insert(0, str(err))
        _raise("", problems)


@dataclass(frozen=True)
class MetricsConfig(Section):
    """Generator metrics (genaug.metrics.generative).

    fid_samples: generated and reference images for FID, KID and precision/recall
        (class-balanced; the reference from the full real training split).
    fid_modes: FID preprocessing modes. fid_network: "inception" (Inception-v3 pool3, found
        by genaug.metrics.feature_net) or "stand-in" (random conv features, for smoke runs
        only: its numbers are not comparable with anything published).
    msssim_pairs: random same-class pairs per class and set for the mean MS-SSIM
        (genaug.metrics.msssim; Odena et al. used 100).
    likeness_images: images per class and set for the Likeness Score (genaug.metrics.likeness);
        its distances grow as the square, the overall score uses K times as many.
    """

    fid_samples: int = 2000
    fid_modes: tuple[str, ...] = ("clean",)
    fid_network: str = "inception"
    msssim_pairs: int = 100
    likeness_images: int = 100

    def __post_init__(self):
        problems = _positive(self, ("fid_samples", "msssim_pairs", "likeness_images"))
        if not self.fid_modes or set(self.fid_modes) - set(FID_MODES):
            problems.append(f"fid_modes={self.fid_modes!r} must be some of {', '.join(FID_MODES)}")
        if self.fid_network not in FID_NETWORKS:
            problems.append(f"fid_network={self.fid_network!r} is unknown; choose one of {', '.join(FID_NETWORKS)}")
        _raise("metrics", problems)


@dataclass(frozen=True)
class PromotionConfig(Section):
    """Promotion's gates: a candidate must beat the champion by more than ``margin`` and
    reach ``floor`` (a classifier on its test ``metric``, a generator on label fidelity).

    metric: accuracy, macro_f1 or balanced_accuracy (the mean recall over classes): with
        imbalanced classes accuracy rewards a model that ignores the rare ones.
    """

    margin: float = 0.0
    floor: float = 0.2
    metric: str = "accuracy"

    def __post_init__(self):
        problems = [f"{name} {value!r} must be a fraction in [0, 1], e.g. {example}"
                    for name, value, example in (("margin", self.margin, "MARGIN=0.01"),
                                                 ("floor", self.floor, "FLOOR=0.5"))
                    if not (_finite(value) and 0.0 <= value <= 1.0)]
        if self.metric not in GATE_METRICS:
            problems.append(f"gate_metric {self.metric!r} is unknown; choose one of {', '.join(GATE_METRICS)}, "
                            "e.g. GATE_METRIC=macro_f1")
        _raise("", problems)


@dataclass(frozen=True)
class ExperimentConfig(Section):
    """The augmentation experiment's defaults (make experiment); real-only is ratio 0."""

    ratios: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    classifiers: tuple[str, ...] = ("cnn", "shallow_mlp")
    fractions: tuple[float, ...] = (0.1, 1.0)
    # One generator per (fraction, generator seed); with two or more the interval of the
    # effect counts the generator's own variance (genaug.experiment.stats).
    generator_seeds: tuple[int, ...] = (0,)

    def __post_init__(self):
        problems = [f"{n}={getattr(self, n)!r} must not be empty" for n in ("ratios", "seeds", "classifiers",
                                                                              "fractions", "generator_seeds")
                    if not getattr(self, n)]
        _raise("experiment", problems)
