"""Test-set scores of both classifiers, and a look at the synthetic data."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from genaug import accel as accel_mod
from genaug import catalog, checkpoint
from genaug.atomic import atomic_path
from genaug.data import imageset
from genaug.data.splits import stratified_take
from genaug.metrics import classification, html, plots
from genaug.services import tracking
from genaug.steps import figures
from genaug.steps.timing import timed_step
from genaug.train.classifier import predict

VARIANTS = ("real", "augmented")
# Label fidelity is judged on at most this many synthetic images per class: 10,000 in all
# put its 95% interval within about ±0.8 points and bound the cost at ratio 10 on full data.
FIDELITY_PER_CLASS = 1000


@timed_step
def evaluate(data_path: str, classifier_real_path: str, classifier_augmented_path: str,
             synthetic_path: str, out_path: str, html_path: str = "", parent_run_id: str = "",
             classifier_synthetic_path: str = "") -> dict:
    """Score both classifiers on the held-out test split; write the full report as JSON.

    Returns accuracy_real, accuracy_augmented, accuracy_delta (augmented - real) and, per
    variant, the per-class precision/recall/F1 and confusion matrix; ``label_fidelity``,
    the share of the synthetic images that the real-data classifier assigns to the class
    they were generated for (``label_fidelity_n`` images, at most FIDELITY_PER_CLASS per
    class; the promotion gate measures the same on the exported generator). With
    classifier_synthetic_path (a classifier trained on synthetic images only) also
    ``cas``, its real test accuracy: the Classification Accuracy Score.
    """
    arrays, data_meta = imageset.load(data_path, "prepared dataset")
    spec = catalog.dataset_spec(data_meta["dataset"], data_meta)
    acc = accel_mod.pick()
    x, y = arrays["x_test"], arrays["y_test"]
    synth, _ = imageset.load(synthetic_path, "synthetic dataset")
    result = {"dataset": spec.name, "n_test": int(len(y)), "data_hash": data_meta["content_hash"]}
    models = {}
    for variant, path in zip(VARIANTS, (classifier_real_path, classifier_augmented_path)):
        model, ckpt = checkpoint.load(path, "classifier")
        models[variant] = acc.prepare(model)
        pred = predict(models[variant], x, acc).argmax(1)
        result[variant] = classification.report(y, pred, spec.classes)
        result[variant]["val_accuracy"] = ckpt["meta"]["val_accuracy"]
        result[f"accuracy_{variant}"] = result[variant]["accuracy"]
    # The judge is the classifier that never saw a synthetic image.
    result.update(_label_fidelity(models["real"], synth, spec.num_classes, acc))
    result["accuracy_delta"] = result["accuracy_augmented"] - result["accuracy_real"]
    result["cas"] = None
    if classifier_synthetic_path:
        model, _ = checkpoint.load(classifier_synthetic_path, "classifier")
        result["cas"] = float((predict(acc.prepare(model), x, acc).argmax(1) == y).mean())
        tracking.log_metrics({"cas": result["cas"]})
    with atomic_path(out_path) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2))
    tracking.log_metrics({k: result[k] for k in ("accuracy_real", "accuracy_augmented", "accuracy_delta",
                                                 "label_fidelity")})
    for v in VARIANTS:
        tracking.log_metrics({f"macro_f1_{v}": result[v]["macro_f1"], f"balanced_accuracy_{v}": result[v]["balanced_accuracy"],
                              **{f"{measure}_{v}/{name.replace('/', '-')}": m[measure]
                                 for name, m in result[v]["per_class"].items() for measure in ("f1", "recall")}})
    tracking.log_dict(result, "classification_report.json")
    _page(result, spec, arrays, synth, html_path)
    return result


def _label_fidelity(judge, synth: dict, num_classes: int, acc) -> dict:
    """{"label_fidelity": share of judged synthetic images that ``judge`` assigns to their
    label, "label_fidelity_n": how many were judged}; synth: x uint8 [N, C, H, W], y int64 [N]."""
    judged = stratified_take(synth["y"], FIDELITY_PER_CLASS * num_classes, seed=5)
    agree = predict(judge, synth["x"][judged], acc).argmax(1) == synth["y"][judged]
    return {"label_fidelity": float(agree.mean()), "label_fidelity_n": int(len(judged))}


def _page(result: dict, spec, arrays: dict, synth: dict, html_path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parts = [("Accuracy", html.table([{"variant": v, "test accuracy": result[v]["accuracy"],
                                           "macro F1": result[v]["macro_f1"],
                                           "balanced accuracy": result[v]["balanced_accuracy"],
                                           "val accuracy": result[v]["val_accuracy"]} for v in VARIANTS])),
                 ("Synthetic data", html.table(_synthetic_rows(result)))]
        for v in VARIANTS:
            plots.confusion_matrix(result[v]["confusion_matrix"], spec.classes, tmp / f"cm_{v}.png",
                                   f"{v}: test accuracy {result[v]['accuracy']:.4f}")
            parts.append((f"Confusion matrix, trained on {v} data", tmp / f"cm_{v}.png"))
            parts.append((f"Per-class report, {v}", html.table(
                [{"class": k, **m} for k, m in result[v]["per_class"].items()])))
        plots.sample_grid(synth["x"], synth["y"], spec.classes, tmp / "synthetic.png", 10, "synthetic")
        plots.sample_grid(arrays["x_test"], arrays["y_test"], spec.classes, tmp / "real.png", 10, "real")
        parts += [("Synthetic samples", tmp / "synthetic.png"), ("Real test samples", tmp / "real.png")]
        figures.publish(html_path, f"evaluate {spec.name}", parts)


def _synthetic_rows(result: dict) -> list[dict]:
    """How good the synthetic images are as labelled training data, one row a measure."""
    rows = [{"measure": "label fidelity", "value": result["label_fidelity"],
             "what it is": f"share of {result['label_fidelity_n']} synthetic images that the classifier "
                           "trained on real data assigns to the class they were generated for"}]
    if result.get("cas") is not None:
        rows.append({"measure": "CAS", "value": result["cas"],
                     "what it is": "real test accuracy of a classifier trained on synthetic images only"})
    return rows
