"""The experiment's plan, its statistics (against hand-computed cases) and its table."""


import numpy as np
import pytest

from genaug.experiment import plan, stats, table
from genaug.metrics import classification
from genaug.params import ParamError


def test_t_interval_matches_a_hand_computed_case():
    # deltas 0.01, 0.03, 0.02: mean 0.02, s = 0.01, t(0.975, df=2) = 4.302653,
    # half-width = 4.302653 * 0.01 / sqrt(3) = 0.0248414.
    mean, lo, hi = stats.t_interval([0.01, 0.03, 0.02])
    assert mean == pytest.approx(0.02)
    assert lo == pytest.approx(0.02 - 0.0248414, abs=1e-6) and hi == pytest.approx(0.02 + 0.0248414, abs=1e-6)
    assert stats.t_interval([0.5]) == (0.5, None, None)


def _result(clf, ratio, seed, acc, variant=None, fraction=0.1):
    return {"classifier": clf, "fraction": fraction, "ratio": ratio, "seed": seed, "accuracy": acc,
            "variant": variant or ("real" if ratio == 0 else "augmented"), "mlflow_run_id": f"run-{clf}-{ratio}-{seed}"}


def test_table_pairs_each_seed_with_its_own_baseline():
    results = [_result("cnn", 0.0, s, a) for s, a in ((0, 0.80), (1, 0.70), (2, 0.75))]
    # Seed-to-seed spread is large, the per-seed gain is steady: pairing finds it.
    results += [_result("cnn", 0.5, s, a) for s, a in ((0, 0.82), (1, 0.72), (2, 0.77))]
    results += [_result("cnn", 0.0, 0, 0.3, variant="synthetic")]  # CAS: not a table row
    rows = stats.table(results)
    assert [(r["ratio"], r["n_seeds"]) for r in rows] == [(0.0, 3), (0.5, 3)]
    base, aug = rows
    assert base["accuracy_mean"] == pytest.approx(0.75) and base["accuracy_std"] == pytest.approx(0.05)
    assert "delta_mean" not in base
    assert aug["delta_mean"] == pytest.approx(0.02) and aug["n_pairs"] == 3
    # Every pair differs by exactly 0.02: a zero-width interval, significant.
    assert aug["delta_low"] == pytest.approx(0.02) and aug["significant"] is True
    assert aug["mlflow_run_ids"] == ["run-cnn-0.5-0", "run-cnn-0.5-1", "run-cnn-0.5-2"]
    text = table.text(rows)
    assert "(baseline)" in text and "+0.0200" in text and "0.7500 ± 0.0500" in text
    assert table.markdown(rows).count("\n") == 3


def _two_sources(effects: dict[int, float], seeds=(0, 1, 2, 3)) -> list[dict]:
    """Baselines 0.80 ± a seed term; augmented = baseline + the generator's effect + a small
    (generator, seed) term, the same for every call so that only the planted effects differ."""
    rng = np.random.default_rng(7)
    seed_term = {s: rng.normal(0, 0.03) for s in seeds}
    noise = {(g, s): rng.normal(0, 0.004) for g in range(5) for s in seeds}
    results = [_result("cnn", 0.0, s, 0.80 + seed_term[s]) for s in seeds]
    results += [{**_result("cnn", 0.5, s, 0.80 + seed_term[s] + e + noise[g, s]), "generator_seed": g}
                for g, e in effects.items() for s in seeds]
    return results


def test_the_interval_counts_the_generators_own_variance():
    """A planted effect that varies from generator seed to generator seed widens the
    interval; the same mean effect from generators that agree does not."""
    agree = stats.table(_two_sources({0: 0.05, 1: 0.05, 2: 0.05}))[1]
    differ = stats.table(_two_sources({0: 0.00, 1: 0.05, 2: 0.10}))[1]
    for row in (agree, differ):
        assert row["interval_over"] == "generator seeds" and row["n_generators"] == 3 and row["n_pairs"] == 12
        assert row["delta_mean"] == pytest.approx(0.05, abs=0.005)
    assert differ["generator_spread"] == pytest.approx(0.05, abs=0.005) and agree["generator_spread"] < 0.005
    width = {name: row["delta_high"] - row["delta_low"] for name, row in (("agree", agree), ("differ", differ))}
    assert width["differ"] > 10 * width["agree"]
    assert agree["significant"] is True and differ["significant"] is False  # t(0.975, 2) * 0.05 / sqrt(3) > 0.05
    assert set(differ["generator_effects"]) == {"0", "1", "2"}
    # One generator seed: the interval is over classifier seeds, and says so.
    one = stats.table(_two_sources({0: 0.05}))[1]
    assert one["interval_over"] == "classifier seeds" and one["generator_spread"] is None
    assert "between generators" in table.text([differ]) and "±0.0499 (3 seeds)" in table.text([differ])


def test_an_interval_that_straddles_zero_is_not_significant():
    results = [_result("mlp", 0.0, s, 0.5) for s in range(3)]
    results += [_result("mlp", 1.0, s, a) for s, a in ((0, 0.52), (1, 0.47), (2, 0.51))]
    aug = stats.table(results)[1]
    assert aug["delta_low"] < 0 < aug["delta_high"] and aug["significant"] is False


def test_confusion_matrix_and_report_on_a_crafted_example():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    assert classification.confusion(y_true, y_pred, 3).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    rep = classification.report(y_true, y_pred, ["a", "b", "c"])
    assert rep["accuracy"] == pytest.approx(4 / 6)
    assert rep["per_class"]["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3),
                                     "f1": pytest.approx(0.8), "support": 3}
    assert rep["per_class"]["b"]["precision"] == pytest.approx(0.5) and rep["per_class"]["c"]["recall"] == 1.0
    assert rep["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)  # the mean recall


def test_balanced_accuracy_sees_the_rare_class_that_accuracy_hides():
    y_true = np.array([0] * 90 + [1] * 10)
    ignores_rare = classification.report(y_true, np.zeros(100, dtype=np.int64), ["common", "rare"])
    assert ignores_rare["accuracy"] == pytest.approx(0.9)
    assert ignores_rare["balanced_accuracy"] == pytest.approx(0.5) and ignores_rare["macro_f1"] < 0.5


def test_the_table_shows_macro_f1_and_balanced_accuracy_next_to_accuracy():
    results = [{**_result("cnn", 0.0, s, 0.8), "macro_f1": 0.6 + s / 100, "balanced_accuracy": 0.7} for s in range(2)]
    (row,) = stats.table(results)
    assert row["macro_f1_mean"] == pytest.approx(0.605) and row["balanced_accuracy_mean"] == pytest.approx(0.7)
    text = table.text([row])
    assert "macro F1" in text and "bal. acc." in text and "0.6050" in text and "0.7000" in text
    assert "n/a" in table.text(stats.table([_result("cnn", 0.0, 0, 0.8)]))  # recorded before they were measured


def test_plan_adds_the_baseline_and_lays_out_every_configuration():
    p = plan.validate("fashion_mnist", "dcgan", "quick", ratios="0.5,1", seeds=[0, 1, 2],
                      classifiers="cnn,shallow_mlp", fractions=[1.0, 0.1])
    assert p.ratios == (0.0, 0.5, 1.0) and p.fractions == (0.1, 1.0) and p.synthesis_ratio == 1.0
    configs = plan.configurations(p)
    trained = [c for c in configs if c["variant"] != "synthetic"]
    assert len(trained) == 2 * 2 * 3 * 3 and len(configs) == len(trained) + 2
    assert {c["variant"] for c in configs if c["ratio"] == 0} == {"real", "synthetic"}
    assert len({c["name"] for c in configs}) == len(configs)
    filtered = plan.validate("fashion_mnist", "dcgan", "quick", ratios="0,1", filter_threshold=0.9)
    assert filtered.synthesis_ratio == 2.0


def test_each_classifier_seed_pairs_with_each_generator_seed():
    p = plan.validate("fashion_mnist", "dcgan", "quick", ratios="0,0.5", seeds="0,1,2", classifiers="cnn",
                      fractions="0.1,1", generator_seeds="0,1")
    assert [a["name"] for a in plan.arms(p)] == ["f0.1-g0", "f0.1-g1", "f1-g0", "f1-g1"]
    configs = plan.configurations(p)
    real = [c for c in configs if c["variant"] == "real"]
    augmented = [c for c in configs if c["variant"] == "augmented"]
    assert len(real) == 2 * 3 and all("generator_seed" not in c for c in real)  # once, not per generator
    assert len(augmented) == 2 * 3 * 2 and {c["generator_seed"] for c in augmented} == {0, 1}
    assert len([c for c in configs if c["variant"] == "synthetic"]) == 4  # CAS per arm
    assert len({c["name"] for c in configs}) == len(configs)
    assert plan.validate("fashion_mnist", "dcgan", "full").generator_seeds == (0, 1, 2)
    assert plan.validate("fashion_mnist", "dcgan", "quick").generator_seeds == (0,)


def test_an_experiment_takes_a_user_dataset_by_name_the_registry_checks_it_in_the_run():
    assert plan.validate("parts_v2", "dcgan", "smoke").dataset == "parts_v2"


def test_plan_defaults_come_from_the_profile():
    p = plan.validate("fashion_mnist", "ddim", "quick")
    from genaug.profiles import PROFILES

    assert p.classifiers == PROFILES["quick"].experiment.classifiers and len(p.seeds) >= 3
    # Nothing given: the run parameters' defaults, and the default profile's lists.
    assert plan.validate() == plan.validate("fashion_mnist", "dcgan", "quick")


@pytest.mark.parametrize("kwargs, message", [
    ({"ratios": "0"}, "no augmented setting"),
    ({"ratios": "0,11"}, "out of range"),
    ({"ratios": "0,a"}, "list of floats"),
    ({"seeds": "0,0"}, "repeats a value"),
    ({"classifiers": "cnn,resnet"}, "unknown classifier 'resnet'"),
    ({"fractions": "0,1"}, "fractions [0.0] out of range"),
    ({"filter_threshold": 1.5}, "filter_threshold 1.5"),
    ({"generator_seeds": "0,-1"}, "generator seeds [0, -1] must be non-negative"),
    ({"generator_seeds": "1,1"}, "generator seeds [1, 1] repeats a value"),
    ({"generator": "ddmi"}, "unknown generator 'ddmi'; choose one of"),
    ({"dataset": "Parts!"}, "unknown dataset 'Parts!'; choose one of fashion_mnist"),
])
def test_bad_experiment_parameters_name_the_value(kwargs, message):
    args = {"dataset": "fashion_mnist", "generator": "dcgan", "profile": "quick", **kwargs}
    with pytest.raises(ParamError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan.validate(**args)


def test_bad_lists_fail_from_the_shell_before_any_import_of_torch():
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys, genaug.experiment.plan as p; rc = p.main(['--dataset', 'fashion_mnist', '--generator', "
            "'dcgan', '--profile', 'quick', '--ratios', '0,x']); assert 'torch' not in sys.modules; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 2 and "ratios ['0', 'x']" in proc.stderr


def test_every_arm_takes_the_run_parameters_and_a_bad_one_fails_at_submit(tmp_path, capsys):
    """GAN_EARLY_STOP and the sampling settings reach the arms' run_options.json; one that
    cannot apply is refused by `make validate-experiment` (plan.main), naming it."""
    from genaug.params import load_options
    from genaug.steps.plan_experiment import plan_experiment

    options = tmp_path / "run_options.json"
    plan_experiment("fashion_mnist", "dcgan", "quick", [0.5], [0], ["cnn"], [1.0],
                    run_parameters={"gan_early_stop": "1", "sample_steps": 0}, options_path=str(options))
    assert load_options(str(options)).gan.early_stop is True
    assert plan.main(["--generator", "ddim", "--gan_early_stop", "1"]) == 2
    assert "gan_early_stop 1 applies to the GANs only: ddim" in capsys.readouterr().err
    assert plan.main(["--generator", "dcgan", "--gan_early_stop", "1"]) == 0


def test_arms_bundle_pairs_each_arm_with_its_own_synthetic_set(tmp_path):
    """Two fractions, and two generator seeds at fraction 1: the arms of one fraction share
    its data (copied once) and each has its own synthetic set."""
    from genaug.data import imageset
    from genaug.steps.bundle_arms import arm_paths, bundle_arms

    x, y = np.zeros((4, 1, 2, 2), np.uint8), np.arange(4, dtype=np.int64)
    data, synth = [], []
    for i, (fraction, gen_seed) in enumerate(((0.1, 0), (1.0, 0), (1.0, 1))):
        data_hash = f"h{fraction:g}"
        data.append(str(tmp_path / f"d{i}.npz"))
        synth.append(str(tmp_path / f"s{i}.npz"))
        imageset.save(data[-1], {"x_train": x + int(fraction), "y_train": y},
                      {"fraction": fraction, "content_hash": data_hash})
        imageset.save(synth[-1], {"x": x + 10 * i, "y": y},
                      {"real_data_hash": data_hash, "generator_meta": {"seed": gen_seed}})
    meta = bundle_arms(data, synth[::-1], str(tmp_path / "arms"))  # collected in any order
    assert meta["arms"] == ["0.1/g0", "1/g0", "1/g1"] and len(list((tmp_path / "arms").glob("data-*"))) == 2
    d, s = arm_paths(str(tmp_path / "arms"), 1.0, 1)
    assert imageset.load(d)[0]["x_train"].max() == 1 and imageset.load(s)[0]["x"].max() == 20
    assert arm_paths(str(tmp_path / "arms"), 1.0)[1] == ""  # real-only: no synthetic set
    with pytest.raises(imageset.ArtifactError, match="holds fractions .* not 0.5"):
        arm_paths(str(tmp_path / "arms"), 0.5)
    with pytest.raises(imageset.ArtifactError, match="not fraction 0.1 with generator seed 1"):
        arm_paths(str(tmp_path / "arms"), 0.1, 1)
    with pytest.raises(imageset.ArtifactError, match="no synthetic set was made from"):
        bundle_arms(data, synth[1:], str(tmp_path / "arms2"))
