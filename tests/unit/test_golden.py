"""The recorded-behaviour comparison itself: it must catch a change and let float noise pass."""

import json

from tests.golden.recorded import SUMMARY, comparable_summary, differences


def test_the_comparison_catches_changes_and_lets_noise_pass():
    recorded = json.loads(SUMMARY.read_text())
    assert differences(recorded, recorded) == []
    noisy = json.loads(SUMMARY.read_text())
    noisy["accuracy_augmented"] += 0.006  # the spread of four sessions' smoke runs
    noisy["generator_metrics"]["fid"]["clean"] *= 1.001
    assert differences(noisy, recorded) == []
    for key, value in (("floor", recorded["margin"]), ("ratio", recorded["ratio"] + 0.01),
                       ("n_train_synthetic", recorded["n_train_synthetic"] + 1), ("data_hash", "0" * 64),
                       ("accuracy_real", recorded["accuracy_real"] + 0.1)):
        changed = {**recorded, key: value}
        assert differences(changed, recorded) == [f"/{key}: {value!r}, recorded {recorded[key]!r}"], key
    assert differences({k: v for k, v in recorded.items() if k != "cas"}, recorded) == ["/cas: missing"]


def test_run_specific_values_are_reduced_to_their_keys():
    summary = {"step_seconds": {"b": 2.0, "a": 1.0}, "run_dir": "/tmp/x", "accuracy_real": 0.5,
               "promotions": {"classifier": {"decision": "promoted", "version": 7}}}
    assert comparable_summary(summary) == {"step_seconds": ["a", "b"], "run_dir": None, "accuracy_real": 0.5,
                                           "promotions": {"classifier": {"decision": "promoted", "version": None}}}


def test_numbers_inside_strings_are_measurements_too():
    recorded = {"promotions": {"classifier": {"reason": "no champion yet; test_accuracy 0.4320 clears the floor 0.2000"}}}
    noisy = {"promotions": {"classifier": {"reason": "no champion yet; test_accuracy 0.4340 clears the floor 0.2000"}}}
    assert differences(noisy, recorded) == []
    other = {"promotions": {"classifier": {"reason": "test_accuracy 0.4340 does not beat the champion's 0.4320"}}}
    assert len(differences(other, recorded)) == 1
