"""Train a classifier on real data, or on real + synthetic data at ratio r."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from genaug import checkpoint, models
from genaug.data import imageset
from genaug.data.mixing import mix, synthetic_counts
from genaug.metrics import plots
from genaug.models.classifiers import ImageNetBackbone
from genaug.models.pretrained import load_imagenet
from genaug.sections import ClassifierConfig
from genaug.services import tracking
from genaug.services.store import optional_store
from genaug.steps import figures
from genaug.steps.context import spec_meta, training_context
from genaug.steps.gpus import on_every_gpu
from genaug.steps.timing import timed_step
from genaug.train import distributed
from genaug.train.classifier import train_classifier as fit

# Random-crop padding in pixels for datasets where crops and mirror images are still
# valid examples (natural images); digits and garments keep their orientation.
CROP_FLIP_PAD = {"cifar10": 4}


def _variant(synthetic_path: str, synthetic_only: bool) -> str:
    return "synthetic" if synthetic_only else "augmented" if synthetic_path else "real"


def _run_name(args: dict) -> str:
    return "train_classifier_" + _variant(args.get("synthetic_path", ""), args.get("synthetic_only", False))


@on_every_gpu
@timed_step(run_name=_run_name)
def train_classifier(data_path: str, out_path: str, html_path: str = "", synthetic_path: str = "",
                     ratio: float = 0.0, parent_run_id: str = "", synthetic_only: bool = False, *,
                     classifier: ClassifierConfig, seed: int, synth_mode: str = "ratio",
                     synth_target: int | None = None) -> dict:
    """Train ``classifier`` (its section: which one, and how); with ``synthetic_path``, add
    ratio * n_real synthetic images, or with ``synth_mode`` "balance" top every class up to
    the largest (or to ``synth_target``), genaug.data.mixing.

    synthetic_only: train on the synthetic images alone (no real training image), for the
    Classification Accuracy Score (Ravuri & Vinyals, 2019): how well a generator's samples
    stand in for the real data, judged on the real test split.

    Early stopping on the real validation split restores the best epoch's weights, which
    are written to ``out_path``. html_path (optional): train/val curves.
    """
    cfg = ClassifierConfig.coerce(classifier)
    ctx = training_context(data_path, seed)
    arrays, data_meta, spec, acc = ctx.arrays, ctx.data_meta, ctx.spec, ctx.accel
    x, y = arrays["x_train"], arrays["y_train"]
    n_synth, synth_meta = 0, None
    variant = _variant(synthetic_path, synthetic_only)
    if synthetic_only and not synthetic_path:
        raise ValueError("synthetic_only needs synthetic_path: the synthetic set to train on")
    if synthetic_path:
        synth, synth_meta = imageset.load(synthetic_path, "synthetic dataset")
        if synth_meta["dataset"] != spec.name:
            raise ValueError(f"synthetic set is {synth_meta['dataset']!r} but the real data is "
                             f"{spec.name!r}; synthesize from a generator trained on {spec.name}")
        if synthetic_only:
            x, y, n_synth = synth["x"], synth["y"], len(synth["y"])
        else:
            counts = synthetic_counts(y, spec.num_classes, ratio, synth_mode, synth_target)
            x, y = mix(x, y, synth["x"], synth["y"], counts, seed)
            n_synth = len(y) - len(arrays["y_train"])
    config = {"shape": list(spec.shape), "num_classes": spec.num_classes, "width": cfg.width}
    model = models.build_classifier(cfg.name, **{**config, "shape": spec.shape})
    pretrained = None
    if isinstance(model, ImageNetBackbone):
        pretrained = load_imagenet(model, cfg.name, optional_store())
        print(f"[genaug] {pretrained}", file=sys.stderr, flush=True)
    crop_pad = CROP_FLIP_PAD.get(spec.name, 0)
    tracking.log_params({"classifier": cfg.name, "seed": seed, "ratio": ratio, "n_train": len(y), "epochs": cfg.epochs,
                         "batch": cfg.batch, "lr": cfg.lr, "label_smoothing": cfg.label_smoothing,
                         "crop_flip_pad": crop_pad, **({"pretrained": pretrained[:250]} if pretrained else {})})
    with distributed.joined(acc.device) as world:
        history = fit(model, (x, y), (arrays["x_val"], arrays["y_val"]), cfg, acc, seed, crop_pad, world=world)
    if not world.main:
        return {}  # rank 0 writes the step's outputs (genaug.steps.gpus)
    best = history["best_epoch"] - 1
    meta = {
        "classifier": cfg.name, "dataset": spec.name, **spec_meta(spec), "data_hash": data_meta["content_hash"],
        "variant": variant, "ratio": ratio if synthetic_path else 0.0,
        "n_train_real": 0 if synthetic_only else int(len(arrays["y_train"])), "n_train_synthetic": int(n_synth),
        "synthetic_hash": synth_meta["content_hash"] if synth_meta else None,
        "seed": seed, "accel": acc.describe(), "pretrained": pretrained,
        "epochs_run": len(history["epoch"]), "best_epoch": history["best_epoch"],
        "stopped_early": history["stopped_early"], "val_accuracy": history["val_acc"][best],
        "history": {k: v for k, v in history.items() if isinstance(v, list)},
    }
    checkpoint.save(out_path, "classifier", cfg.name, config, model, meta)
    tracking.log_history({k: v for k, v in history.items() if isinstance(v, list)}, "epoch")
    tracking.log_metrics({"best_epoch": history["best_epoch"], "val_accuracy": meta["val_accuracy"]})
    with tempfile.TemporaryDirectory() as tmp:
        ep = history["epoch"]
        plots.curves({"train": (ep, history["train_acc"]), "val": (ep, history["val_acc"])},
                     Path(tmp) / "acc.png", "epoch", "accuracy")
        plots.curves({"train": (ep, history["train_loss"]), "val": (ep, history["val_loss"])},
                     Path(tmp) / "loss.png", "epoch", "loss")
        figures.publish(html_path, f"train_classifier ({meta['variant']})",
                        [("Accuracy", Path(tmp) / "acc.png"), ("Loss", Path(tmp) / "loss.png")])
    return meta
