"""The better classifier's ONNX file under the serving contract, checked against
PyTorch."""

from __future__ import annotations

from genaug import catalog, checkpoint
from genaug.export import onnx
from genaug.services import tracking
from genaug.steps.timing import timed_step


@timed_step
def export_classifier(classifier_real_path: str, classifier_augmented_path: str, classifier_onnx_path: str,
                      parent_run_id: str = "") -> dict:
    """Export whichever classifier scored higher on the validation split; return
    {"classifier": {path, max_abs_diff (logits), batches, variant, val_accuracy,
    artifact_uri}, "dataset"}.

    The choice uses validation accuracy, never test accuracy, so the test split stays unseen.
    """
    candidates = [checkpoint.load(p, "classifier") for p in (classifier_real_path, classifier_augmented_path)]
    datasets = {ckpt["meta"]["dataset"] for _, ckpt in candidates}
    if len(datasets) > 1:
        raise ValueError(f"the classifiers were trained on different datasets ({', '.join(sorted(datasets))}); "
                         "export two classifiers of the same run")
    model, ckpt = max(candidates, key=lambda mc: mc[1]["meta"]["val_accuracy"])
    spec = catalog.dataset_spec(ckpt["meta"]["dataset"], ckpt["meta"])
    clf = onnx.export_classifier(model, spec.shape, classifier_onnx_path)
    clf["variant"] = ckpt["meta"]["variant"]
    clf["val_accuracy"] = ckpt["meta"]["val_accuracy"]
    tracking.log_metrics({"onnx_max_abs_diff_classifier": clf["max_abs_diff"]})
    tracking.log_params({"served_classifier_variant": clf["variant"]})
    clf["artifact_uri"] = tracking.log_file_as(classifier_onnx_path, "onnx/classifier/model.onnx")
    return {"classifier": clf, "dataset": spec.name}
