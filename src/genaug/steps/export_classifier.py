"""The better classifier's ONNX file under the serving contract, checked against
PyTorch, and its INT8 quantization calibrated on training images."""

from __future__ import annotations

from genaug import catalog, checkpoint
from genaug.data import imageset
from genaug.export import onnx
from genaug.export.quantize import calibration_images, quantize_classifier
from genaug.sections import ClassifierConfig
from genaug.services import tracking
from genaug.steps.timing import timed_step


@timed_step
def export_classifier(classifier_real_path: str, classifier_augmented_path: str, data_path: str,
                      classifier_onnx_path: str, classifier_int8_path: str, parent_run_id: str = "", *,
                      classifier: ClassifierConfig, seed: int) -> dict:
    """Export whichever classifier scored higher on the validation split, and its INT8 file;
    return {"classifier": {path, max_abs_diff (logits), batches, variant, val_accuracy,
    artifact_uri}, "classifier_int8": {path, calibration_images, calibration_seed, format,
    census, artifact_uri}, "dataset"}.

    The choice uses validation accuracy, never test accuracy, so the test split stays unseen.
    The INT8 file (genaug.export.quantize) is calibrated on ``classifier.int8_calibration``
    training images of the prepared data ``data_path``, drawn with ``seed``; whether it is
    accurate enough to serve is promotion's decision, on the test split.
    """
    cfg = ClassifierConfig.coerce(classifier)
    candidates = [checkpoint.load(p, "classifier") for p in (classifier_real_path, classifier_augmented_path)]
    datasets = {ckpt["meta"]["dataset"] for _, ckpt in candidates}
    if len(datasets) > 1:
        raise ValueError(f"the classifiers were trained on different datasets ({', '.join(sorted(datasets))}); "
                         "export two classifiers of the same run")
    model, ckpt = max(candidates, key=lambda mc: mc[1]["meta"]["val_accuracy"])
    arrays, data_meta = imageset.load(data_path, "prepared dataset")
    if data_meta["dataset"] != ckpt["meta"]["dataset"]:
        raise ValueError(f"the prepared data is {data_meta['dataset']!r} but the classifiers were trained on "
                         f"{ckpt['meta']['dataset']!r}; pass the run's own prepared data to calibrate INT8 on")
    spec = catalog.dataset_spec(ckpt["meta"]["dataset"], ckpt["meta"])
    clf = onnx.export_classifier(model, spec.shape, classifier_onnx_path)
    clf["variant"] = ckpt["meta"]["variant"]
    clf["val_accuracy"] = ckpt["meta"]["val_accuracy"]
    int8 = quantize_classifier(classifier_onnx_path, classifier_int8_path,
                               calibration_images(arrays["x_train"], cfg.int8_calibration, seed))
    int8["calibration_seed"] = seed
    tracking.log_metrics({"onnx_max_abs_diff_classifier": clf["max_abs_diff"],
                          "int8_calibration_images": int8["calibration_images"]})
    tracking.log_params({"served_classifier_variant": clf["variant"]})
    clf["artifact_uri"] = tracking.log_file_as(classifier_onnx_path, "onnx/classifier/model.onnx")
    int8["artifact_uri"] = tracking.log_file_as(classifier_int8_path, "onnx/classifier_int8/model.onnx")
    return {"classifier": clf, "classifier_int8": int8, "dataset": spec.name}
