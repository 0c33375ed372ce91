"""Optional, in the experiment: keep only the synthetic images that a classifier trained on the
real data assigns to their own label with confidence above a threshold."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from genaug import models
from genaug.data import imageset
from genaug.data.mixing import synthetic_per_class
from genaug.data.splits import content_hash
from genaug.sections import ClassifierConfig
from genaug.services import tracking
from genaug.steps.context import training_context
from genaug.steps.timing import timed_step
from genaug.train.classifier import predict, train_classifier

FILTER_CLASSIFIER = "cnn"


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@timed_step
def filter_synthetic(data_path: str, synthetic_path: str, threshold: float, ratio: float, out_path: str,
                     parent_run_id: str = "", *, classifier: ClassifierConfig, seed: int) -> dict:
    """Write ``out_path``: the synthetic images whose p(label | image) > ``threshold`` under a
    cnn trained on the real training split (as ``classifier`` trains), ``ratio * n_real / K``
    per class.

    threshold 0 keeps the set as it is (no classifier is trained). A class with too few
    confident images is topped up with its most confident remaining ones, and the
    metadata says how many (``topped_up``), so the mix ratio always holds and nothing is
    hidden. Metadata: kept share per class, the filter classifier's val accuracy.
    """
    synth, synth_meta = imageset.load(synthetic_path, "synthetic dataset")
    if threshold <= 0:
        imageset.save(out_path, synth, {**synth_meta, "filter": None})
        return {**synth_meta, "filter": None}
    cfg = replace(ClassifierConfig.coerce(classifier), name=FILTER_CLASSIFIER)
    ctx = training_context(data_path, seed)
    spec, acc, arrays = ctx.spec, ctx.accel, ctx.arrays
    model = models.build_classifier(cfg.name, shape=spec.shape, num_classes=spec.num_classes, width=cfg.width)
    history = train_classifier(model, (arrays["x_train"], arrays["y_train"]), (arrays["x_val"], arrays["y_val"]),
                               cfg, acc, seed)
    confidence = _softmax(predict(acc.prepare(model), synth["x"], acc))[np.arange(len(synth["y"])), synth["y"]]
    need = synthetic_per_class(len(arrays["y_train"]), ratio, spec.num_classes)
    keep, kept_share, topped_up = [], {}, {}
    for c, name in enumerate(spec.classes):
        idx = np.flatnonzero(synth["y"] == c)
        ranked = idx[np.argsort(-confidence[idx], kind="stable")]
        confident = ranked[confidence[ranked] > threshold]
        kept_share[name] = float(len(confident) / max(len(idx), 1))
        chosen = confident if len(confident) >= need else ranked[:need]
        topped_up[name] = int(max(0, min(need, len(idx)) - len(confident)))
        keep.append(np.sort(chosen))
    keep = np.concatenate(keep)
    x, y = synth["x"][keep], synth["y"][keep]
    filt = {"threshold": threshold, "classifier": FILTER_CLASSIFIER,
            "classifier_val_accuracy": history["val_acc"][history["best_epoch"] - 1],
            "kept_share": kept_share, "topped_up": topped_up, "n_before": int(len(synth["y"])),
            "n_after": int(len(y))}
    meta = {**synth_meta, "filter": filt, "n_total": int(len(y)), "content_hash": content_hash(x, y),
            "unfiltered_hash": synth_meta["content_hash"]}
    imageset.save(out_path, {"x": x, "y": y}, meta)
    tracking.log_params({"threshold": threshold, "filter_classifier": FILTER_CLASSIFIER})
    tracking.log_metrics({"kept_share": float(np.mean(list(kept_share.values()))),
                          "topped_up": sum(topped_up.values()), "n_after": len(y),
                          "filter_val_accuracy": filt["classifier_val_accuracy"]})
    return meta
