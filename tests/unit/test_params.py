import json
import os
import re
import subprocess
import sys

import pytest

from genaug.params import (BY_NAME, DEFAULTS, PARAMETERS, ParamError, RunConfig, pipeline_arguments, resolve,
                           resolve_pipeline_arguments)
from genaug.sections import MAX_RATIO
from tests.conftest import REPO

GOOD = DEFAULTS.parameters()


def validate(**params) -> RunConfig:
    return resolve(params)


def test_defaults_are_valid_and_nothing_given_is_the_default():
    assert validate(**GOOD) == resolve() == resolve({name: "" for name in BY_NAME}) == DEFAULTS


@pytest.mark.parametrize("field,value,listed", [
    ("dataset", "CIFAR-100", "fashion_mnist, cifar10, mnist, or a dataset made with `genaug data snapshot"),
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


def test_a_user_dataset_is_checked_by_its_form_here_and_by_the_registry_in_the_run():
    """The stdlib validator cannot know the snapshots in S3 (the data_version step does)."""
    config = validate(**{**GOOD, "dataset": "parts_v2", "ratio": 1e-6})  # no size to check a ratio against
    assert config.data.dataset == "parts_v2" and not config.data.built_in


@pytest.mark.parametrize("changes,message", [
    ({"data_source": "s3://incoming/parts/"}, "is built in: leave DATA_SOURCE unset"),
    ({"dataset": "parts", "data_source": "incoming/parts"}, "must be an S3 prefix (s3://bucket/prefix/) or an "),
    ({"dataset": "parts", "data_source": "/data/parts", "data_version": "v1"}, "data_version must be 'latest'"),
])
def test_a_data_source_is_for_a_user_dataset_at_its_latest_version(changes, message):
    with pytest.raises(ParamError, match=re.escape(message)):
        validate(**{**GOOD, **changes})
    good = validate(**{**GOOD, "dataset": "parts", "ratio": 0.5, "data_source": "s3://incoming/parts/"})
    assert good.data.source == "s3://incoming/parts/"


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
    ({"generator": "ddim", "sample_steps": 1001}, "sample_steps 1001 exceeds the diffusion's 1000 timesteps"),
    ({"generator": "ddim", "profile": "smoke", "sample_steps": 101}, "exceeds the diffusion's 100 timesteps"),
    ({"generator": "ddim", "sample_steps": -2}, "sample_steps -2"),
    ({"generator": "ddim", "sample_steps": 0}, "sample_steps 0 must be an integer >= 1"),
    ({"generator": "ddim", "sample_steps": 2.5}, "sample_steps 2.5 must be an integer"),
    ({"generator": "ddim", "eta": -0.5}, "eta -0.5 must be a number >= 0"),
    ({"generator": "ddpm", "eta": 1.0}, "eta 1.0 applies to the ddim sampler only"),
    ({"generator": "ddim", "guidance": -2}, "guidance -2.0 must be a number >= 0"),
    ({"generator": "ddim", "guidance": "strong"}, "guidance 'strong'"),
    ({"generator": "ddim", "eta": -1}, "eta -1.0 must be a number >= 0"),  # no sentinel outside KFP
])
def test_bad_sampler_settings_are_rejected_before_any_work(changes, message):
    with pytest.raises(ParamError, match=re.escape(message)):
        validate(**{**GOOD, **changes})


def test_sampler_settings_default_to_the_profile_and_a_gan_has_none():
    from genaug.profiles import PROFILES

    quick = PROFILES["quick"].sampler
    p = validate(**{**GOOD, "generator": "ddim"})
    assert (p.sampler.kind, p.sampler.steps, p.sampler.eta, p.sampler.guidance) == \
        ("ddim", quick.steps, quick.eta, quick.guidance)
    p = validate(**{**GOOD, "generator": "ddim", "sample_steps": "50", "eta": "1", "guidance": "3"})
    assert (p.sampler.steps, p.sampler.eta, p.sampler.guidance) == (50, 1.0, 3.0)
    assert p.diffusion == PROFILES["quick"].diffusion and p.gan is None
    gan = validate(**GOOD)
    assert gan.sampler is None and gan.diffusion is None and gan.gan == PROFILES["quick"].gan
    assert gan.parameters()["sample_steps"] is None


def test_the_kfp_stand_ins_for_unset_are_read_at_that_boundary_only():
    arguments = pipeline_arguments({"generator": "ddim", "sample_steps": "20"})
    assert (arguments["sample_steps"], arguments["eta"], arguments["guidance"]) == (20, -1.0, -1.0)
    assert resolve_pipeline_arguments(arguments) == resolve({"generator": "ddim", "sample_steps": 20})
    # As KFP hands them to a task: numbers as text.
    as_text = {k: str(float(v)) if isinstance(v, (int, float)) else v for k, v in arguments.items()}
    assert resolve_pipeline_arguments(as_text) == resolve({"generator": "ddim", "sample_steps": 20})


def test_the_resolved_configuration_survives_its_json_file(tmp_path):
    from genaug.params import load_options, write_options

    for params in ({}, {"generator": "ddim", "profile": "full", "eta": 0.5}, {"generator": "wgan_gp", "fraction": 0.1}):
        config = resolve(params)
        write_options(config, str(tmp_path / "run_options.json"))
        assert load_options(str(tmp_path / "run_options.json")) == config


def test_each_section_checks_itself_once_on_construction():
    from dataclasses import replace

    from genaug.sections import ConfigError

    config = resolve({"generator": "ddim"})
    for section, changes, message in (("diffusion", {"attention_levels": (3,)}, "attention_levels [3]"),
                                      ("diffusion", {"schedule": "sqrt"}, "schedule='sqrt' is unknown"),
                                      ("metrics", {"fid_network": "vgg"}, "fid_network='vgg'"),
                                      ("classifier", {"name": "resnet"}, "unknown classifier 'resnet'"),
                                      ("data", {"max_train": 3}, "max_train=3")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            replace(getattr(config, section), **changes)
    with pytest.raises(ConfigError, match="sample_steps 50 exceeds the diffusion's 40 timesteps"):
        replace(config, diffusion=replace(config.diffusion, timesteps=40), sampler=replace(config.sampler, steps=50))


def test_the_parameter_list_agrees_with_the_makefile_and_the_pipeline_signature():
    """PARAMETERS, the Makefile's RUN_PARAMS and genaug_pipeline's signature name the same
    parameters in the same order, with the same make variables, types and defaults."""
    import inspect

    from kfp import dsl  # noqa: F401  (the pipeline module needs it)

    from genaug.params import default, kfp_help
    from pipelines.genaug_pipeline import PLACEMENT, genaug_pipeline

    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    listed = re.search(r"^RUN_PARAMS := (.+)$", text, re.M).group(1).split()
    assert listed == [f"{p.name}={p.make}" for p in PARAMETERS]
    for p in PARAMETERS:  # no make default: an unset variable takes the module's
        assert not re.search(rf"^{p.make}\s*\??=", text, re.M), p.make
    signature = inspect.signature(genaug_pipeline.pipeline_func).parameters
    run_level = [name for name in signature if name not in PLACEMENT]
    assert run_level == [p.name for p in PARAMETERS]
    for p in PARAMETERS:
        assert signature[p.name].annotation is p.kind and signature[p.name].default == default(p.name), p.name
        assert f"{p.name}: {kfp_help(p)}" in genaug_pipeline.pipeline_func.__doc__


def test_make_pipeline_dry_run_prints_the_resolved_configuration_and_starts_nothing(tmp_path):
    proc = subprocess.run(["make", "--no-print-directory", "pipeline", "DRY_RUN=1", "GEN=ddim", "STEPS=20"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "RUNS": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    expected = resolve({"generator": "ddim"}).as_dict()
    expected["sampler"]["steps"] = 20
    assert printed == expected
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, "nan"])
def test_fraction_must_be_a_share_of_the_training_set(fraction):
    with pytest.raises(ParamError, match=r"fraction \S+ must be in \(0, 1\]: the share of the real training"):
        validate(**{**GOOD, "fraction": fraction})
    with pytest.raises(ParamError, match=r"fraction 'half' must be a finite number, e.g. FRACTION=0.1"):
        validate(**{**GOOD, "fraction": "half"})


@pytest.mark.parametrize("changes,message", [
    ({"generator": "ddim", "eta": "nan"}, "eta nan must be a number >= 0"),
    ({"generator": "ddim", "eta": float("inf")}, "eta inf must be a number >= 0"),
    ({"generator": "ddim", "guidance": "nan"}, "guidance nan must be a number >= 0"),
    ({"generator": "ddim", "guidance": "-inf"}, "guidance -inf must be a number >= 0"),
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
    assert validate(**{**GOOD, "ratio": 10 / 54000}).synthesis.ratio == pytest.approx(1.85e-4, rel=1e-2)


def test_the_predicted_training_size_is_what_prepare_data_holds(tiny_fmnist, tmp_path):
    from dataclasses import replace

    from genaug import catalog
    from genaug.data import imageset
    from genaug.steps.prepare_data import prepare_data

    spec = catalog.dataset("fashion_mnist")
    for fraction in (1.0, 0.1):
        out = tmp_path / f"data-{fraction}.npz"
        data = resolve({"profile": "smoke", "fraction": fraction}).data
        prepare_data.__wrapped__(str(out), data=data)
        _, meta = imageset.load(str(out), "prepared dataset")
        # tiny_fmnist holds 600 official training images, not the 60,000 the catalog knows.
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(catalog.DATASETS, "fashion_mnist", replace(spec, train_images=600))
            assert (meta["n_train_full"], meta["n_train"]) == data.train_counts()


def test_make_help_and_the_readme_show_the_profiles_defaults():
    """`make help` prints the profile-dependent defaults from PROFILES itself, and the README's
    statements of quick's defaults agree with them (they once said guidance 2, fractions 0.1,1)."""
    from genaug.profiles import PROFILES, _listed

    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert "[GUIDANCE=2]" not in out and "[FRACTIONS=0.1,1]" not in out
    quick, exp = PROFILES["quick"].sampler, PROFILES["quick"].experiment
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["quick"])
    assert row == ["quick", str(quick.steps), f"{quick.eta:g}", f"{quick.guidance:g}",
                   _listed(exp.ratios), _listed(exp.seeds), _listed(exp.classifiers), _listed(exp.fractions),
                   _listed(exp.generator_seeds), f"{PROFILES['quick'].gan.early_stop:d}"]
    for p in PARAMETERS:  # and the run parameters' table, from genaug.params
        assert any(line.split()[:1] == [p.make] for line in out.splitlines()), p.make
    readme = (REPO / "README.md").read_text()
    assert f"DDIM-{quick.steps} and guidance {quick.guidance:g}" in readme
    for name, field in (("RATIOS", "ratios"), ("SEEDS", "seeds"), ("CLASSIFIERS", "classifiers"),
                        ("FRACTIONS", "fractions")):
        assert f"| `{name}` | `{_listed(getattr(exp, field))}` |" in readme, name


@pytest.mark.parametrize("params,message", [
    ({"synth": "even"}, "synth 'even' is unknown; choose ratio or balance"),
    ({"synth_target": "500"}, "synth_target 500 applies to SYNTH=balance only"),
    ({"synth": "balance", "synth_target": "0.5"}, "synth_target '0.5' must be an integer"),
    ({"gate_metric": "f1"}, "gate_metric 'f1' is unknown; choose one of accuracy, macro_f1, balanced_accuracy"),
])
def test_imbalance_settings_are_checked_by_name(params, message):
    with pytest.raises(ParamError, match=re.escape(message)):
        resolve(params)


def test_balance_and_the_gate_metric_reach_their_sections():
    config = resolve({"synth": "balance", "synth_target": "300", "gate_metric": "macro_f1", "ratio": "0.00001"})
    assert (config.synthesis.mode, config.synthesis.target, config.promotion.metric) == ("balance", 300, "macro_f1")
    # A ratio that gives no image per class matters only to SYNTH=ratio.
    with pytest.raises(ParamError, match="gives 0 synthetic images per class"):
        resolve({"ratio": "0.00001"})
