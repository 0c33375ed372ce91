import re
import subprocess
import sys

import pytest

from genaug.params import MAX_RATIO, ParamError, RunParams, validate
from tests.conftest import REPO

GOOD = RunParams().as_dict()


def test_defaults_are_valid():
    assert validate(**GOOD) == RunParams()


@pytest.mark.parametrize("field,value,listed", [
    ("dataset", "cifar100", "fashion_mnist, cifar10, mnist"),
    ("generator", "ddmi", "dcgan"),
    ("classifier", "resnet", "cnn"),
    ("profile", "huge", "smoke, quick, full"),
])
def test_unknown_name_lists_valid_choices(field, value, listed):
    with pytest.raises(ParamError) as err:
        validate(**{**GOOD, field: value})
    assert repr(value) in str(err.value) and listed in str(err.value)


@pytest.mark.parametrize("ratio", [0, -0.5, MAX_RATIO + 0.1, "lots"])
def test_ratio_out_of_range(ratio):
    with pytest.raises(ParamError, match="ratio"):
        validate(**{**GOOD, "ratio": ratio})


def test_all_problems_reported_together():
    with pytest.raises(ParamError) as err:
        validate(**{**GOOD, "generator": "nope", "seed": -1})
    assert "nope" in str(err.value) and "seed" in str(err.value)


def test_validation_needs_no_torch():
    # The Makefile runs this with the system python before any venv exists.
    code = "import sys, genaug.params; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(REPO / "src")})


def test_module_cli_exit_code():
    proc = subprocess.run([sys.executable, "-m", "genaug.params", "--generator", "nope"],
                          capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 2
    assert "unknown generator 'nope'" in proc.stderr


@pytest.mark.parametrize("changes,message", [
    ({"generator": "ddim", "sample_steps": 1001}, "sample_steps 1001 must be 0 (the profile's) or 1 up to "
                                                  "the profile's 1000 timesteps"),
    ({"generator": "ddim", "profile": "smoke", "sample_steps": 101}, "up to the profile's 100 timesteps"),
    ({"generator": "ddim", "sample_steps": -2}, "sample_steps -2"),
    ({"generator": "ddim", "eta": -0.5}, "eta -0.5 must be a number >= 0"),
    ({"generator": "ddpm", "eta": 1.0}, "eta 1.0 applies to the ddim sampler only"),
    ({"generator": "ddim", "guidance": -2}, "guidance -2.0 must be a number >= 0"),
    ({"generator": "ddim", "guidance": "strong"}, "guidance 'strong'"),
])
def test_bad_sampler_settings_are_rejected_before_any_work(changes, message):
    with pytest.raises(ParamError, match=re.escape(message)):
        validate(**{**GOOD, **changes})


def test_sampler_settings_default_to_the_profile():
    p = validate(**{**GOOD, "generator": "ddim"})
    assert (p.sample_steps, p.eta, p.guidance) == (0, -1.0, -1.0)
    p = validate(**{**GOOD, "generator": "ddim", "sample_steps": "50", "eta": "1", "guidance": "3"})
    assert (p.sample_steps, p.eta, p.guidance) == (50, 1.0, 3.0)


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, "half"])
def test_fraction_must_be_a_share_of_the_training_set(fraction):
    with pytest.raises(ParamError, match=r"fraction \S+ must be in \(0, 1\]: the share of the real training"):
        validate(**{**GOOD, "fraction": fraction})
