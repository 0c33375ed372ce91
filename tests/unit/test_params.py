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
