"""Step 6: ONNX files for the generator and the better classifier, checked against PyTorch."""

from __future__ import annotations

from genaug import catalog, checkpoint
from genaug.export.onnx import export_classifier, export_generator
from genaug.steps.timing import timed_step


@timed_step
def export_onnx(generator_path: str, classifier_real_path: str, classifier_augmented_path: str,
                generator_onnx_path: str, classifier_onnx_path: str) -> dict:
    """Export the generator, and whichever classifier scored higher on the validation split.

    The choice uses validation accuracy, never test accuracy, so the test split stays unseen.
    Returns, per model, the file path and max |onnxruntime - PyTorch| at two batch sizes.
    """
    G, g_ckpt = checkpoint.load(generator_path, "generator")
    spec = catalog.dataset(g_ckpt["meta"]["dataset"])
    gen = export_generator(G, g_ckpt["config"]["z_dim"], spec.num_classes, generator_onnx_path)
    candidates = [checkpoint.load(p, "classifier") for p in (classifier_real_path, classifier_augmented_path)]
    model, c_ckpt = max(candidates, key=lambda mc: mc[1]["meta"]["val_accuracy"])
    clf = export_classifier(model, spec.shape, classifier_onnx_path)
    clf["variant"] = c_ckpt["meta"]["variant"]
    clf["val_accuracy"] = c_ckpt["meta"]["val_accuracy"]
    gen["generator"] = g_ckpt["arch"]
    return {"generator": gen, "classifier": clf, "dataset": spec.name}
