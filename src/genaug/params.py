"""Run parameters and their validation: the first thing every run does.

Standard library only, so ``python -m genaug.params --generator nope`` fails in well
under a second, before any server starts or any data loads. The pipeline's first
component calls the same ``validate`` so a run submitted from the KFP UI fails the same way.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass

from genaug.catalog import CLASSIFIERS, DATASETS, GENERATORS, choose
from genaug.profiles import PROFILES

# r = n_synthetic / n_real. Above this the real data is a rounding error in the mix.
MAX_RATIO = 10.0


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

    def as_dict(self) -> dict:
        return asdict(self)


def validate(dataset: str, generator: str, classifier: str, profile: str,
             seed: int, ratio: float, margin: float = RunParams.margin,
             floor: float = RunParams.floor) -> RunParams:
    """Check every run parameter; raise ParamError listing all problems at once."""
    problems = []
    for kind, value, valid in (("dataset", dataset, DATASETS), ("generator", generator, GENERATORS),
                               ("classifier", classifier, CLASSIFIERS), ("profile", profile, PROFILES)):
        try:
            choose(kind, value, valid)
        except ValueError as err:
            problems.append(str(err))
    try:
        seed = int(seed)
        if seed < 0:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"seed {seed!r} must be a non-negative integer, e.g. SEED=0")
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
    if problems:
        raise ParamError("; ".join(problems))
    return RunParams(dataset, generator, classifier, profile, seed, ratio, float(margin), float(floor))


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
