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


@pytest.mark.parametrize("changes,message", [
    ({"generator": "ddim", "eta": "nan"}, "eta 'nan' must be a number >= 0"),
    ({"generator": "ddim", "eta": float("inf")}, "eta inf must be a number >= 0"),
    ({"generator": "ddim", "guidance": "nan"}, "guidance 'nan' must be a number >= 0"),
    ({"generator": "ddim", "guidance": "-inf"}, "guidance '-inf' must be a number >= 0"),
    ({"seed": 2**63}, "seed 9223372036854775808 must be an integer from 0 to 2^63-1"),
    ({"ratio": "nan"}, "ratio nan is out of range"),
    ({"margin": float("nan")}, "margin nan must be a fraction"),
    ({"ratio": 1e-5}, "ratio 1e-05 gives 0 synthetic images per class (54000 real training images"),
    ({"ratio": 0.001, "fraction": 0.01}, "gives 0 synthetic images per class (540 real"),
    ({"ratio": 0.01, "profile": "smoke", "fraction": 0.1}, "gives 0 synthetic images per class (108 real"),
])
def test_numbers_that_cannot_work_are_refused_before_any_work(changes, message):
    with pytest.raises(ParamError, match=re.escape(message)):
        validate(**{**GOOD, **changes})


def test_the_largest_seed_and_a_ratio_of_one_image_per_class_still_work():
    assert validate(**{**GOOD, "seed": 2**63 - 1}).seed == 2**63 - 1
    assert validate(**{**GOOD, "ratio": 10 / 54000}).ratio == pytest.approx(1.85e-4, rel=1e-2)


def test_the_predicted_training_size_is_what_prepare_data_holds(tiny_fmnist, tmp_path):
    from genaug import catalog
    from genaug.data import imageset
    from genaug.profiles import PROFILES
    from genaug.steps.prepare_data import prepare_data

    spec = catalog.dataset("fashion_mnist")
    for fraction in (1.0, 0.1):
        out = tmp_path / f"data-{fraction}.npz"
        prepare_data.__wrapped__("fashion_mnist", "smoke", str(out), fraction=fraction)
        _, meta = imageset.load(str(out), "prepared dataset")
        assert (meta["n_train_full"], meta["n_train"]) == PROFILES["smoke"].train_counts(600, fraction,
                                                                                            spec.num_classes)


def test_make_help_and_the_readme_show_the_profiles_defaults():
    """`make help` prints the profile-dependent defaults from PROFILES itself, and the README's
    statements of quick's defaults agree with them (they once said guidance 2, fractions 0.1,1)."""
    from genaug.profiles import PROFILES, _listed

    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert "[GUIDANCE=2]" not in out and "[FRACTIONS=0.1,1]" not in out
    quick = PROFILES["quick"]
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["quick"])
    assert row == ["quick", str(quick.sample_steps), f"{quick.eta:g}", f"{quick.guidance:g}",
                   _listed(quick.exp_ratios), _listed(quick.exp_seeds), _listed(quick.exp_classifiers),
                   _listed(quick.exp_fractions)]
    readme = (REPO / "README.md").read_text()
    assert f"DDIM-{quick.sample_steps} and guidance {quick.guidance:g}" in readme
    for name, field in (("RATIOS", "exp_ratios"), ("SEEDS", "exp_seeds"), ("CLASSIFIERS", "exp_classifiers"),
                        ("FRACTIONS", "exp_fractions")):
        assert f"| `{name}` | `{_listed(getattr(quick, field))}` |" in readme, name
