"""A labelled synthetic dataset from a trained generator, with provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from genaug import accel as accel_mod
from genaug import catalog, generators
from genaug.data import imageset
from genaug.data.mixing import synthetic_counts
from genaug.data.splits import content_hash
from genaug.services import tracking
from genaug.steps.timing import timed_step


@timed_step
def synthesize(generator_path: str, data_path: str, ratio: float, seed: int, out_path: str,
               parent_run_id: str = "", mode: str = "ratio", target: int | None = None) -> dict:
    """Write ``out_path``: x uint8 [N, C, H, W], y int64 [N]: ratio * n_real images, the same
    number per class, or with ``mode`` "balance" each class's top-up to the largest class
    (or to ``target``), genaug.data.mixing.synthetic_counts.

    ``seed`` fixes the noise; the metadata records the generator file's sha256, the real
    data's hash and the counts, so a synthetic set can always be traced to its source.
    """
    module, ckpt = generators.load(generator_path)
    arrays, data_meta = imageset.load(data_path, "prepared dataset")
    spec = catalog.dataset_spec(data_meta["dataset"], data_meta)
    counts = synthetic_counts(arrays["y_train"], spec.num_classes, ratio, mode, target)
    labels = np.repeat(np.arange(spec.num_classes, dtype=np.int64), counts)
    # Offset the seed so synthetic noise never repeats the noise used during training.
    acc = generators.accel_for(ckpt["meta"].get("family", "gan"), accel_mod.pick())
    # Thousands of K-step diffusion samples: compiling the UNet pays for itself many times.
    images = generators.sample(module, labels, acc, seed + 1_000_003, progress="synthesize",
                               fast=len(labels) >= generators.FAST_FROM)
    meta = {
        "kind": "synthetic", "dataset": spec.name, "generator": ckpt["arch"],
        "generator_sha256": hashlib.sha256(Path(generator_path).read_bytes()).hexdigest(),
        "generator_meta": ckpt["meta"], "real_data_hash": data_meta["content_hash"],
        "sampling": ckpt["meta"].get("sampling"), "ratio": ratio, "mode": mode, "target": target,
        "n_per_class": {c: int(n) for c, n in zip(spec.classes, counts)},
        "n_total": int(len(labels)), "seed": seed,
        "content_hash": content_hash(images, labels),
    }
    imageset.save(out_path, {"x": images, "y": labels}, meta)
    tracking.log_params({"ratio": ratio, "seed": seed, "generator": ckpt["arch"]})
    tracking.log_params({"synth_mode": mode, "synth_target": target})
    tracking.log_metrics({"n_per_class": int(counts.max()), "n_total": meta["n_total"]})
    return meta
