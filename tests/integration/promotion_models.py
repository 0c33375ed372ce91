"""ONNX models and candidates for the promotion tests: a trained and an untrained classifier,
the trained one's INT8 files, and an untrained generator, made once per session."""

from pathlib import Path

import numpy as np
import pytest
import torch

from genaug import accel as accel_mod
from genaug import catalog, models
from genaug.export.onnx import export_classifier, export_generator
from genaug.export.quantize import calibration_images, quantize_classifier
from genaug.generators import GanSampler
from genaug.sections import ClassifierConfig
from genaug.serving import scoring
from genaug.serving.int8 import int8_candidate
from genaug.serving.promote import Candidate
from genaug.serving.repository import labels_bytes, render_config
from genaug.train.classifier import train_classifier

SPEC = catalog.dataset("fashion_mnist")
CLF = "promo_test-classifier"


def _bands(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = (rng.integers(0, 20, (n, 1, 28, 28)) + y[:, None, None, None] * 23).astype(np.uint8)
    return x, y.astype(np.int64)


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """A trained and an untrained classifier, the trained one's INT8 file ("good_int8",
    calibrated on its training images) and one calibrated on black images ("good_int8_far":
    activation ranges that clip every real image), and an untrained generator, as ONNX files."""
    tmp = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    acc = accel_mod.pick("cpu")
    test, train = _bands(300, 1), _bands(600, 0)
    good = models.build_classifier("cnn", shape=SPEC.shape, num_classes=10, width=8)
    train_classifier(good, train, test, ClassifierConfig(epochs=3, patience=3, batch=64, lr=5e-3), acc, 0)
    bad = models.build_classifier("cnn", shape=SPEC.shape, num_classes=10, width=8)
    out = {"test": test, "good_model": good}
    out["good"] = Path(export_classifier(good, SPEC.shape, tmp / "good.onnx")["path"])
    out["bad"] = Path(export_classifier(bad, SPEC.shape, tmp / "bad.onnx")["path"])
    calibration = calibration_images(train[0], 64, 0)
    out["good_int8"] = Path(quantize_classifier(out["good"], tmp / "good_int8.onnx", calibration)["path"])
    out["good_int8_far"] = Path(quantize_classifier(out["good"], tmp / "good_int8_far.onnx",
                                                    np.zeros_like(calibration))["path"])
    G = models.build_generator("dcgan", shape=SPEC.shape, num_classes=10, z_dim=16, width=8)
    out["gen"] = Path(export_generator(GanSampler(G, 16), 10, tmp / "gen.onnx")["path"])
    return out


def _clf_candidate(path, files, name=CLF, run_id="test"):
    x, y = files["test"]
    return Candidate(name=name, kind="classifier", onnx_path=path,
                     render_config=lambda v: render_config("classifier", name, v, SPEC),
                     metric="test_accuracy", score=scoring.classifier_score(x, y),
                     probe=scoring.classifier_probe(x[:8]), probe_tolerance=1e-3, parity=0.0,
                     parity_tolerance=1e-3, lineage={"pipeline_run_id": run_id},
                     files={"labels.txt": labels_bytes(SPEC.classes)})


def _int8_candidate(path, fp32, fp32_decision, files):
    """The INT8 candidate of the FP32 candidate ``fp32`` whose promotion ended in ``fp32_decision``."""
    x, y = files["test"]
    name = fp32.name + "-int8"
    return int8_candidate(fp32, fp32_decision, name, path,
                          render_config=lambda v: render_config("classifier", name, v, SPEC, precision="int8"),
                          accuracy=scoring.classifier_score(x, y))
