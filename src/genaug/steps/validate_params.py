"""Reject bad run parameters before any data loads or any training starts."""

from __future__ import annotations

from genaug.params import PROFILE_VALUE, validate
from genaug.steps.timing import timed_step


@timed_step
def validate_params(dataset: str, generator: str, classifier: str, profile: str,
                    seed: int, ratio: float, margin: float = 0.0, floor: float = 0.2,
                    sample_steps: int = 0, eta: float = PROFILE_VALUE, guidance: float = PROFILE_VALUE,
                    fraction: float = 1.0, data_version: str = "latest") -> dict:
    """Return the validated parameters; raise genaug.params.ParamError naming every bad value."""
    return validate(dataset, generator, classifier, profile, seed, ratio, margin, floor,
                    sample_steps, eta, guidance, fraction, data_version).as_dict()
