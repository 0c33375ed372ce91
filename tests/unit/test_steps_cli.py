"""The steps as plain functions and through ``genaug step``, on tiny real-format data."""

import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from genaug import checkpoint
from genaug.data import imageset
from genaug.steps import get
from tests.configs import smoke
from tests.conftest import REPO


@pytest.fixture
def chain(tiny_fmnist, tmp_path):
    """Every step once, smoke profile, on the tiny Fashion-MNIST; returns the paths."""
    p = {k: str(tmp_path / "out" / k) for k in ("data", "gen", "synth", "real", "aug", "eval", "gonnx", "connx",
                                                 "cint8")}
    get("prepare_data")(p["data"], data=smoke().data)
    get("train_generator")(p["data"], p["gen"], str(tmp_path / "gen.html"), generator="dcgan", seed=0, gan=smoke().gan)
    get("synthesize")(p["gen"], p["data"], 0.5, 0, p["synth"])
    get("train_classifier")(p["data"], p["real"], classifier=smoke().classifier, seed=0)
    get("train_classifier")(p["data"], p["aug"], "", p["synth"], 0.5, classifier=smoke().classifier, seed=0)
    return p


def test_step_chain(chain, tmp_path):
    arrays, meta = imageset.load(chain["data"])
    assert meta["n_train"] + meta["n_val"] == 600 and meta["n_test"] == 200
    synth, smeta = imageset.load(chain["synth"])
    per_class = int(round(0.5 * meta["n_train"] / 10))
    assert (np.bincount(synth["y"]) == per_class).all() and synth["x"].dtype == np.uint8
    assert smeta["real_data_hash"] == meta["content_hash"] and len(smeta["generator_sha256"]) == 64
    _, aug = checkpoint.load(chain["aug"], "classifier")
    assert aug["meta"]["n_train_synthetic"] == 10 * per_class
    ev = get("evaluate")(chain["data"], chain["real"], chain["aug"], chain["synth"], chain["eval"],
                         str(tmp_path / "eval.html"))
    assert np.array(ev["real"]["confusion_matrix"]).sum() == 200
    # Brightness bands are easy: a classifier that learned anything is far above 10%.
    assert ev["accuracy_real"] > 0.3
    assert (tmp_path / "eval.html").read_text().count("data:image/png;base64") == 4
    gen = get("export_generator")(chain["gen"], chain["gonnx"])
    assert gen["generator"]["max_abs_diff"] <= 1.0  # uint8 levels: rounding at .5 may flip one
    clf = get("export_classifier")(chain["real"], chain["aug"], chain["data"], chain["connx"], chain["cint8"],
                                   classifier=smoke().classifier, seed=0)
    assert clf["classifier"]["max_abs_diff"] < 1e-4 and clf["classifier"]["variant"] in ("real", "augmented")
    int8 = clf["classifier_int8"]
    assert int8["calibration_images"] == smoke().classifier.int8_calibration and int8["census"]["quantize_linear"] > 0
    assert ort.InferenceSession(chain["cint8"]).run(None, {"images": arrays["x_test"][:3]})[0].shape == (3, 10)
    sess = ort.InferenceSession(chain["gonnx"])
    out = sess.run(None, {"labels": np.arange(3, dtype=np.int64), "noise": np.zeros((3, 32), np.float32)})[0]
    assert out.shape == (3, 1, 28, 28) and out.dtype == np.uint8


def test_corrupt_checkpoint_is_named(chain, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(imageset.ArtifactError, match="corrupt.*rerun"):
        get("synthesize")(str(bad), chain["data"], 0.5, 0, str(tmp_path / "s"))
    with pytest.raises(imageset.ArtifactError, match="not a generator checkpoint"):
        checkpoint.load(chain["real"], "generator")
    assert not (tmp_path / "s").exists()
    # A checkpoint from a version whose layout differs (here: one weight renamed) is named,
    # with the fix, before any image is drawn.
    old = torch.load(chain["gen"], weights_only=True)
    old["state_dict"] = {k.replace("norms.0.", "norm0."): v for k, v in old["state_dict"].items()}
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(imageset.ArtifactError, match="does not fit this version's dcgan layout.*rerun"):
        get("synthesize")(str(tmp_path / "old.pt"), chain["data"], 0.5, 0, str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()


def test_cli_runs_a_step(tiny_fmnist, tmp_path):
    out = tmp_path / "out" / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    # A section is JSON; the fields it leaves out take their defaults.
    proc = subprocess.run([sys.executable, "-m", "genaug.cli", "step", "prepare_data", "--data",
                           '{"dataset": "fashion_mnist", "max_test": 500}', "--out-path", str(out)],
                          capture_output=True, text=True, env=env, check=True)
    meta = json.loads(proc.stdout)
    assert meta["n_test"] == 200 and out.exists()
    assert "step prepare_data: finished" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "genaug.cli", "step", "nope"], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 2 and "prepare_data" in proc.stderr


@pytest.mark.parametrize("classifier", ["shallow_mlp", "deep_mlp", "transfer"])
def test_train_classifier_step_runs_every_classifier(chain, tmp_path, classifier, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # no ImageNet weights here
    out = tmp_path / f"{classifier}.pt"
    meta = get("train_classifier")(chain["data"], str(out), classifier=smoke(classifier=classifier).classifier, seed=0)
    net, ckpt = checkpoint.load(out, "classifier")
    assert ckpt["arch"] == classifier and meta["classifier"] == classifier
    assert 0.0 <= meta["val_accuracy"] <= 1.0
    if classifier == "transfer":
        assert meta["pretrained"].startswith("transfer classifier trains from scratch")
    else:
        assert meta["pretrained"] is None


def test_prepare_data_keeps_a_stratified_fraction_of_the_training_split(tiny_fmnist, tmp_path):
    whole = get("prepare_data")(str(tmp_path / "whole"), data=smoke().data)
    tenth = get("prepare_data")(str(tmp_path / "tenth"), data=smoke(fraction=0.1).data)
    assert tenth["n_train"] == round(0.1 * whole["n_train"]) and tenth["n_train_full"] == whole["n_train"]
    assert (tenth["n_val"], tenth["n_test"]) == (whole["n_val"], whole["n_test"])  # scored alike
    assert tenth["content_hash"] != whole["content_hash"]  # so no checkpoint is shared by mistake
    arrays, _ = imageset.load(str(tmp_path / "tenth"))
    assert np.bincount(arrays["y_train"], minlength=10).min() >= 4  # every class keeps its share
    with pytest.raises(ValueError, match=r"fraction 0 must be in \(0, 1\]"):
        get("prepare_data")(str(tmp_path / "none"), data={"dataset": "fashion_mnist", "fraction": 0})


def test_cas_classifier_trains_on_synthetic_images_alone(chain, tmp_path):
    out = tmp_path / "synthetic_only.pt"
    meta = get("train_classifier")(chain["data"], str(out), synthetic_path=chain["synth"], ratio=0.5,
                                   synthetic_only=True, classifier=smoke().classifier, seed=0)
    synth, _ = imageset.load(chain["synth"])
    assert meta["variant"] == "synthetic" and meta["n_train_real"] == 0
    assert meta["n_train_synthetic"] == len(synth["y"])
    ev = get("evaluate")(chain["data"], chain["real"], chain["aug"], chain["synth"], str(tmp_path / "ev.json"),
                         classifier_synthetic_path=str(out))
    assert 0.0 <= ev["cas"] <= 1.0
    with pytest.raises(ValueError, match="synthetic_only needs synthetic_path"):
        get("train_classifier")(chain["data"], str(tmp_path / "x.pt"), synthetic_only=True,
                                classifier=smoke().classifier, seed=0)


def test_filter_synthetic_keeps_confident_images_and_reports_top_ups(chain, tmp_path):
    synth, smeta = imageset.load(chain["synth"])
    # Threshold 0: the set passes through unchanged, and no classifier is trained.
    same = get("filter_synthetic")(chain["data"], chain["synth"], 0.0, 0.5, str(tmp_path / "f0"),
                                  classifier=smoke().classifier, seed=0)
    assert same["filter"] is None and imageset.load(tmp_path / "f0")[1]["content_hash"] == smeta["content_hash"]
    out = str(tmp_path / "f")
    meta = get("filter_synthetic")(chain["data"], chain["synth"], 0.6, 0.25, out, classifier=smoke().classifier, seed=0)
    kept, kmeta = imageset.load(out)
    _, dmeta = imageset.load(chain["data"])
    need = int(round(0.25 * dmeta["n_train"] / 10))
    counts = np.bincount(kept["y"], minlength=10)
    f = meta["filter"]
    assert (counts >= need).all() and f["threshold"] == 0.6 and f["n_before"] == len(synth["y"])
    for c, name in enumerate(f["kept_share"]):
        confident = round(f["kept_share"][name] * (synth["y"] == c).sum())
        # Either every confident image (at least the quota), or the quota topped up and said so.
        assert counts[c] == max(confident, need) and f["topped_up"][name] == max(0, need - confident)
    assert kmeta["unfiltered_hash"] == smeta["content_hash"]
    # The mix can still take the ratio it was filtered for.
    get("train_classifier")(chain["data"], str(tmp_path / "c"), "", out, 0.25,
                            classifier=smoke(classifier="shallow_mlp").classifier, seed=0)


def test_every_step_has_a_working_help(capsys):
    from genaug import cli
    from genaug.steps import STEP_NAMES

    for name in STEP_NAMES:  # booleans, lists and dicts each need a parser
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["step", name, "--help"])
        assert exit_info.value.code == 0, name
        assert f"genaug step {name}" in capsys.readouterr().out


def test_label_fidelity_is_the_real_classifiers_agreement_with_the_synthetic_labels(tiny_fmnist, tmp_path):
    data, real = str(tmp_path / "out" / "data"), str(tmp_path / "out" / "real.pt")
    get("prepare_data")(data, data=smoke().data)
    get("train_classifier")(data, real, classifier=smoke().classifier, seed=0)
    arrays, _ = imageset.load(data)
    # Real test images, as if generated for their true labels: their label fidelity is the
    # real-data classifier's test accuracy, whatever that classifier learned.
    as_synthetic = str(tmp_path / "out" / "synthetic")
    imageset.save(as_synthetic, {"x": arrays["x_test"], "y": arrays["y_test"]}, {"kind": "synthetic"})
    ev = get("evaluate")(data, real, real, as_synthetic, str(tmp_path / "ev.json"), str(tmp_path / "ev.html"))
    assert ev["label_fidelity"] == pytest.approx(ev["accuracy_real"], abs=1e-12)
    assert ev["label_fidelity_n"] == ev["n_test"] == 200
    assert f"<td>label fidelity</td><td>{ev['label_fidelity']:.4f}</td>" in (tmp_path / "ev.html").read_text()


def test_promote_names_an_unknown_role_and_a_generator_without_its_judge():
    with pytest.raises(ValueError, match="unknown role 'model'; choose one of generator, classifier"):
        get("promote")("model", "data.npz", "model.onnx", {}, promotion=smoke().promotion)
    with pytest.raises(ValueError, match="needs classifier_real_path"):
        get("promote")("generator", "data.npz", "model.onnx", {}, promotion=smoke().promotion)
