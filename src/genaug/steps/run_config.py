"""The experiment's work: one configuration, trained and scored on the real test split."""

from __future__ import annotations

import inspect
import tempfile
from dataclasses import replace
from pathlib import Path

from genaug import accel as accel_mod
from genaug import catalog, checkpoint
from genaug.data import imageset
from genaug.metrics import classification, plots
from genaug.sections import ClassifierConfig
from genaug.services import tracking
from genaug.steps.timing import timed_step
from genaug.steps.train_classifier import train_classifier
from genaug.train.classifier import predict


def _run_name(args: dict) -> str:
    return "config_" + args["config"]["name"]


@timed_step(run_name=_run_name)
def run_config(config: dict, data_path: str, synthetic_path: str, out_path: str, html_path: str = "",
               parent_run_id: str = "", *, classifier: ClassifierConfig) -> dict:
    """Train ``config`` (classifier, fraction, ratio, seed, variant; see
    genaug.experiment.plan) on its arm's data and score it on the test split. ``classifier``:
    how classifiers train (the section's name is replaced by the configuration's).

    Returns the configuration with ``accuracy``, ``macro_f1``, ``val_accuracy``, the
    confusion matrix, the training counts and ``mlflow_run_id`` (this configuration's run,
    where its curves and figures are).
    """
    variant, seed, ratio = config["variant"], int(config["seed"]), float(config["ratio"])
    tracking.log_params({"config": config["name"], "variant": variant, "fraction": config["fraction"]})
    # Unwrapped (of on_every_gpu and timed_step): the training logs into this configuration's
    # run instead of opening its own, in this one process.
    meta = inspect.unwrap(train_classifier)(data_path, out_path, html_path, synthetic_path if variant != "real" else "",
                                         ratio if variant != "synthetic" else 0.0,
                                         synthetic_only=variant == "synthetic", seed=seed,
                                         classifier=replace(ClassifierConfig.coerce(classifier),
                                                            name=config["classifier"]))
    arrays, data_meta = imageset.load(data_path, "prepared dataset")
    if abs(float(data_meta.get("fraction", 1.0)) - float(config["fraction"])) > 1e-9:
        raise ValueError(f"configuration {config['name']} is for fraction {config['fraction']} but the data "
                         f"holds fraction {data_meta.get('fraction')}; check the arm wiring")
    spec = catalog.dataset_spec(data_meta["dataset"], data_meta)
    acc = accel_mod.pick()
    model, _ = checkpoint.load(out_path, "classifier")
    pred = predict(acc.prepare(model), arrays["x_test"], acc).argmax(1)
    report = classification.report(arrays["y_test"], pred, spec.classes)
    tracking.log_metrics({"test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"],
                          "test_balanced_accuracy": report["balanced_accuracy"],
                          **{f"test_f1/{name.replace('/', '-')}": m["f1"] for name, m in report["per_class"].items()}})
    tracking.log_dict(report, "classification_report.json")
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "confusion_matrix.png"
        plots.confusion_matrix(report["confusion_matrix"], spec.classes, png,
                               f"{config['name']}: test accuracy {report['accuracy']:.4f}")
        tracking.log_artifact(png, "figures")
    return {**config, "seed": seed, "ratio": ratio, "fraction": float(config["fraction"]),
            "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "balanced_accuracy": report["balanced_accuracy"], "val_accuracy": meta["val_accuracy"],
            "best_epoch": meta["best_epoch"], "n_train_real": meta["n_train_real"],
            "n_train_synthetic": meta["n_train_synthetic"], "n_test": int(len(pred)),
            "confusion_matrix": report["confusion_matrix"], "classes": list(spec.classes),
            "data_hash": data_meta["content_hash"], "synthetic_hash": meta["synthetic_hash"]}
