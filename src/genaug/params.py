"""Run parameters and their validation: the first thing every run does.

Standard library only, so ``python -m genaug.params --generator nope`` fails in well
under a second, before any server starts or any data loads. The pipeline's first
component calls the same ``validate`` so a run submitted from the KFP UI fails the same way.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import asdict, dataclass

from genaug.catalog import CLASSIFIERS, DATASETS, GENERATORS, choose
from genaug.profiles import PROFILES

# r = n_synthetic / n_real. Above this the real data is a rounding error in the mix.
MAX_RATIO = 10.0
# Seeds reach torch.manual_seed and numpy, which take at most a signed 64-bit integer.
MAX_SEED = 2**63 - 1
# eta and guidance at this value mean "the profile's"; any other negative value is an error.
PROFILE_VALUE = -1.0
# data_version "latest" fingerprints the raw files at run time; anything else is the user's
# label (a date, a tag), which reaches KFP cache keys and MLflow tags.
LATEST_DATA = "latest"
_DATA_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ParamError(ValueError):
    """A run parameter that cannot work; the message names the value and the fix."""


@dataclass(frozen=True)
class RunParams:
    dataset: str = "fashion_mnist"
    generator: str = "dcgan"
    classifier: str = "cnn"
    profile: str = "quick"
    seed: int = 0
    ratio: float = 0.5
    # Promotion gates: a candidate must beat the champion by more than ``margin`` and
    # reach ``floor`` (test accuracy for classifiers, label fidelity for generators).
    margin: float = 0.0
    floor: float = 0.2
    # The share of the real training split that generator and classifiers see, per class:
    # below 1 it measures the small-data regime, where augmentation is said to help most.
    fraction: float = 1.0
    # Diffusion sampling (ddpm, ddim; GANs ignore them). 0 or PROFILE_VALUE: the profile's.
    sample_steps: int = 0     # K denoising steps, as synthesized and as served
    eta: float = PROFILE_VALUE       # DDIM noise: 0 deterministic, 1 the DDPM posterior variance
    guidance: float = PROFILE_VALUE  # classifier-free guidance scale: 0 unconditional, 1 conditional
    # Which raw data: "latest" (what the sources hold now) or a pinned label; prepare_data is
    # cached by it (genaug.data.version).
    data_version: str = LATEST_DATA

    def as_dict(self) -> dict:
        return asdict(self)


def data_version_problem(value) -> str | None:
    """None when ``value`` is "latest" or a usable label, else the problem and the fix."""
    if value == LATEST_DATA or (isinstance(value, str) and _DATA_LABEL.match(value)):
        return None
    return (f"data_version {value!r} must be 'latest' (the raw files as they are now) or a label of up to "
            "64 letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. DATA_VERSION=2026-12-01")


def checked(value, cast, ok, problem: str, problems: list):
    """``cast(value)`` when that works and passes ``ok``; otherwise ``problem`` is appended to
    ``problems`` and ``value`` comes back as it was."""
    try:
        out = cast(value)
        if ok(out):
            return out
    except (TypeError, ValueError):
        pass
    problems.append(problem)
    return value


def validate(dataset: str, generator: str, classifier: str, profile: str,
             seed: int, ratio: float, margin: float = RunParams.margin,
             floor: float = RunParams.floor, sample_steps: int = RunParams.sample_steps,
             eta: float = RunParams.eta, guidance: float = RunParams.guidance,
             fraction: float = RunParams.fraction, data_version: str = RunParams.data_version) -> RunParams:
    """Check every run parameter; raise ParamError listing all problems at once."""
    problems = []
    for kind, value, valid in (("dataset", dataset, DATASETS), ("generator", generator, GENERATORS),
                               ("classifier", classifier, CLASSIFIERS), ("profile", profile, PROFILES)):
        try:
            choose(kind, value, valid)
        except ValueError as err:
            problems.append(str(err))
    seed = checked(seed, int, lambda v: 0 <= v <= MAX_SEED,
                   f"seed {seed!r} must be an integer from 0 to 2^63-1, e.g. SEED=0", problems)
    try:
        ratio = float(ratio)
        if not 0.0 < ratio <= MAX_RATIO:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"ratio {ratio!r} is out of range; r = n_synthetic / n_real must be in "
                        f"(0, {MAX_RATIO:g}], e.g. RATIO=0.5")
    for name, value, example in (("margin", margin, "MARGIN=0.01"), ("floor", floor, "FLOOR=0.5")):
        try:
            value = float(value)
            if not 0.0 <= value <= 1.0:
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"{name} {value!r} must be a fraction in [0, 1], e.g. {example}")
    try:
        fraction = float(fraction)
        if not 0.0 < fraction <= 1.0:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"fraction {fraction!r} must be in (0, 1]: the share of the real training images "
                        "to use, e.g. FRACTION=0.1")
    if not problems:
        problems += _synthetic_count_problems(dataset, profile, float(ratio), float(fraction))
    sampling = _sampling_problems(generator, profile, sample_steps, eta, guidance)
    problems += sampling[0]
    if problem := data_version_problem(data_version):
        problems.append(problem)
    if problems:
        raise ParamError("; ".join(problems))
    return RunParams(dataset, generator, classifier, profile, seed, ratio, float(margin), float(floor),
                     fraction, *sampling[1], data_version)


def _synthetic_count_problems(dataset: str, profile: str, ratio: float, fraction: float) -> list[str]:
    """A ratio so small that no class would get a single synthetic image is an error."""
    spec = DATASETS[dataset]
    _, n_real = PROFILES[profile].train_counts(spec.train_images, fraction, spec.num_classes)
    per_class = round(ratio * n_real / spec.num_classes)  # as genaug.data.mixing computes it
    if per_class >= 1:
        return []
    one_each = spec.num_classes / n_real
    return [f"ratio {ratio!r} gives 0 synthetic images per class ({n_real} real training images in "
            f"{spec.num_classes} classes at profile {profile}, fraction {fraction:g}); RATIO={one_each:.2g} "
            f"gives one per class"]


def _finite(value: float) -> float:
    """``value`` if finite; NaN and infinities raise ValueError (they pass every comparison test)."""
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    return value


def _sampling_problems(generator, profile, sample_steps, eta, guidance) -> tuple[list[str], tuple]:
    """(problems, (sample_steps, eta, guidance) as numbers) for the diffusion sampler settings."""
    problems = []
    timesteps = PROFILES[profile].timesteps if profile in PROFILES else None
    try:
        sample_steps = int(sample_steps)
        if sample_steps < 0 or (timesteps and sample_steps > timesteps):
            raise ValueError
    except (TypeError, ValueError):
        limit = f"the profile's {timesteps} timesteps" if timesteps else "the diffusion's timesteps"
        problems.append(f"sample_steps {sample_steps!r} must be 0 (the profile's) or 1 up to {limit}, "
                        "e.g. STEPS=50")
    try:
        eta = _finite(float(eta))
        if eta < 0 and eta != PROFILE_VALUE:
            raise ValueError
        if eta > 0 and generator == "ddpm":
            problems.append(f"eta {eta!r} applies to the ddim sampler only; drop ETA or use GEN=ddim")
    except (TypeError, ValueError):
        problems.append(f"eta {eta!r} must be a number >= 0 (0: deterministic DDIM, 1: DDPM-like noise), "
                        f"or {PROFILE_VALUE:g} for the profile's, e.g. ETA=0")
    try:
        guidance = _finite(float(guidance))
        if guidance < 0 and guidance != PROFILE_VALUE:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"guidance {guidance!r} must be a number >= 0 (0: unconditional, 1: conditional, "
                        f"> 1: stronger), or {PROFILE_VALUE:g} for the profile's, e.g. GUIDANCE=2")
    return problems, (sample_steps, eta, guidance)


def main(argv: list[str] | None = None) -> int:
    defaults = RunParams()
    parser = argparse.ArgumentParser(description="Validate genaug run parameters.")
    for name, value in defaults.as_dict().items():
        parser.add_argument(f"--{name}", default=value)
    args = parser.parse_args(argv)
    try:
        validate(**vars(args))
    except ParamError as err:
        print(f"genaug: invalid parameters: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
