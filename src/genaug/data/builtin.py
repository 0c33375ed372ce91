"""The built-in datasets (Fashion-MNIST, MNIST, CIFAR-10) as registry versions, like a user's
snapshot (genaug.data.snapshots).

A built-in version's manifest has one entry instead of one per image: the dataset's official
splits as decoded once into the raw cache (``raw/<name>/<content hash>.npz``, genaug.data.cache),
with their content hash. Its geometry is the native one (28x28 grey or 32x32 RGB, never
resized) and its splits the official ones, with the same stratified 10% of the training split
as validation that every run has used. So:

- the version id changes exactly when the data does (not when a file is touched);
- ``genaug data list|show|diff`` list the built-in datasets with the user's;
- a run logs the id as its data's MLflow digest, and DATA_VERSION=<id> pins that data;
- prepare_data reads the version through the same path as a user's (genaug.data.decoded),
  and gets the very arrays it got from the raw files before: results do not change.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

from genaug.catalog import DatasetSpec
from genaug.data import cache, imageset
from genaug.data.snapshots import BUILTIN_SPLIT
from genaug.data.splits import train_val_split
from genaug.sections import VAL_FRACTION
from genaug.services.names import DATASETS_BUCKET

KIND = "builtin"
# A version id (a manifest's sha256), as distinct from a label a run pinned.
VERSION_ID = re.compile(r"^[0-9a-f]{64}$")


def _official_indices(train_y: np.ndarray) -> dict[str, np.ndarray | None]:
    train_idx, val_idx = train_val_split(train_y, VAL_FRACTION)
    return {"train": train_idx, "val": val_idx, "test": None}


def manifest(spec: DatasetSpec, raw, key: str, digest: str) -> dict:
    """The manifest of ``raw`` (RawSplits) as stored under ``key`` with content hash ``digest``."""
    labels = {"train": raw.train_y, "val": raw.train_y, "test": raw.test_y}
    counts = {}
    for split, idx in _official_indices(raw.train_y).items():
        y = labels[split] if idx is None else labels[split][idx]
        values, n = np.unique(y, return_counts=True)
        counts[split] = {spec.classes[int(k)]: int(c) for k, c in zip(values, n)}
    mode = "L" if spec.channels == 1 else "RGB"
    entry = {"path": key, "class": "", "split": BUILTIN_SPLIT, "sha256": digest, "bytes": 0,
             "width": spec.width, "height": spec.height, "mode": mode,
             "images": int(len(raw.train_y) + len(raw.test_y))}
    return {"format": 1, "name": spec.name, "kind": KIND, "classes": list(spec.classes),
            "geometry": {"size": spec.height, "channels": spec.channels, "resized": False},
            "given_splits": True, "counts": counts, "source": raw.source, "entries": [entry]}


def register(spec: DatasetSpec, raw, store) -> dict:
    """Make (or find) the registry version of ``raw``, the splits load_raw returned, publishing
    them to the raw cache first if they are not there; returns the snapshot report."""
    from genaug.data.snapshots import commit

    digest = cache.publish(store, spec, raw)
    key = cache.current(store, spec)["key"]
    return commit(spec.name, manifest(spec, raw, key, digest), store,
                  {"source": raw.source, "n_images": int(len(raw.train_y) + len(raw.test_y)), "new_objects": 0})


def latest(spec: DatasetSpec, store) -> tuple[str, str]:
    """(version id, where the data came from) of the built-in dataset as load_raw finds it now:
    local files, the S3 cache, or a download. Raises DataNotFound, naming the fix, when none."""
    from genaug.data.sources import load_raw

    raw = load_raw(spec, store=store)
    return register(spec, raw, store)["version"], raw.source


def load(spec: DatasetSpec, version: str, man: dict, store) -> dict[str, np.ndarray]:
    """x_/y_ train/val/test of a built-in version: its cached official splits, checked against
    the content hash its manifest records."""
    (entry,) = man["entries"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.npz"
        store.get_file(DATASETS_BUCKET, entry["path"], path)
        arrays, _ = imageset.load(path, f"{spec.name} version {version[:12]}")
    from genaug.data.sources import RawSplits

    raw = RawSplits(arrays["train_x"], arrays["train_y"], arrays["test_x"], arrays["test_y"], entry["path"])
    if cache.raw_hash(raw) != entry["sha256"]:
        raise imageset.ArtifactError(f"s3://{DATASETS_BUCKET}/{entry['path']} does not match the content hash "
                                     f"that {spec.name} version {version[:12]} records; run with DATA_VERSION=latest "
                                     "to load and register the dataset again")
    idx = _official_indices(raw.train_y)
    return {"x_train": raw.train_x[idx["train"]], "y_train": raw.train_y[idx["train"]],
            "x_val": raw.train_x[idx["val"]], "y_val": raw.train_y[idx["val"]],
            "x_test": raw.test_x, "y_test": raw.test_y}
