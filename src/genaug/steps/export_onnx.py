"""Step 6: ONNX files for the generator and the better classifier, checked against PyTorch."""

from __future__ import annotations

from genaug import catalog, checkpoint, generators, tracking
from genaug.export.onnx import export_classifier, export_generator
from genaug.steps.timing import timed_step


@timed_step
def export_onnx(generator_path: str, classifier_real_path: str, classifier_augmented_path: str,
                generator_onnx_path: str, classifier_onnx_path: str, parent_run_id: str = "") -> dict:
    """Export the generator, and whichever classifier scored higher on the validation split.

    The choice uses validation accuracy, never test accuracy, so the test split stays unseen.
    Returns, per model, the file path and max |onnxruntime - PyTorch| at two batch sizes.
    """
    module, g_ckpt = generators.load(generator_path)
    spec = catalog.dataset(g_ckpt["meta"]["dataset"])
    gen = export_generator(module, spec.num_classes, generator_onnx_path)
    candidates = [checkpoint.load(p, "classifier") for p in (classifier_real_path, classifier_augmented_path)]
    model, c_ckpt = max(candidates, key=lambda mc: mc[1]["meta"]["val_accuracy"])
    clf = export_classifier(model, spec.shape, classifier_onnx_path)
    clf["variant"] = c_ckpt["meta"]["variant"]
    clf["val_accuracy"] = c_ckpt["meta"]["val_accuracy"]
    gen["generator"] = g_ckpt["arch"]
    tracking.log_metrics({"onnx_max_abs_diff_generator": gen["max_abs_diff"],
                          "onnx_max_abs_diff_classifier": clf["max_abs_diff"]})
    tracking.log_params({"served_classifier_variant": clf["variant"]})
    # Under the names Triton serves them by, so a registry version points at a servable file.
    _log_as(generator_onnx_path, "onnx/generator/model.onnx")
    _log_as(classifier_onnx_path, "onnx/classifier/model.onnx")
    gen["artifact_uri"] = _artifact_uri("onnx/generator")
    clf["artifact_uri"] = _artifact_uri("onnx/classifier")
    return {"generator": gen, "classifier": clf, "dataset": spec.name}


def _log_as(path: str, name: str) -> None:
    if tracking.active_run_id() is None:
        return
    import shutil
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / Path(name).name
        shutil.copyfile(path, target)
        tracking.log_artifact(target, str(Path(name).parent))


def _artifact_uri(sub: str) -> str | None:
    run_id = tracking.active_run_id()
    return f"runs:/{run_id}/{sub}" if run_id else None
