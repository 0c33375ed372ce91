"""Reference features of the real data, computed once and cached in object storage.

The reference is always the dataset's official training split, whatever fraction a run
trains on, so generators trained on 10% and on 100% of the data are measured against the
same thing. N images are drawn class-balanced with a fixed seed. CIFAR-10 at N = 50000 in
clean mode is therefore exactly clean-fid's ``cifar10 clean train`` statistics.

Cache key: ``fid-reference/<dataset>[-<side>px]/train/n<N>/<mode>/<network key>.npz`` in the
``genaug-datasets`` bucket; the file holds the features (float32 [N, D]), their labels and
the raw data's content hash, which is checked on every read. Without a store (a step run
by hand) the cache is a folder under $GENAUG_CACHE_DIR.

Images can bake reference files in (images/, build arg FID_REFERENCE_URL): a cache miss
then looks in ``$GENAUG_REFERENCE_DIR`` under the same key before computing, and a baked
file that matches the data is copied into the S3 cache, so a cluster never spends an
Inception pass over 50000 training images that the image already carries.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genaug.catalog import DATASETS, DatasetSpec
from genaug.data import imageset
from genaug.data.cache import BUCKET, raw_hash
from genaug.data.splits import stratified_take
from genaug.metrics.feature_net import FeatureNet
from genaug.metrics.features import extract

SPLIT = "train"
REFERENCE_SEED = 20240602  # which N training images; fixed so every run uses the same ones


@dataclass(frozen=True)
class Reference:
    feats: np.ndarray     # float32 [N, D]
    labels: np.ndarray    # int64 [N]
    key: str              # the cache key, also the record of what this is
    cached: bool          # True if it came from the cache, False if computed now


def reference_key(spec: DatasetSpec, n: int, mode: str, net: FeatureNet) -> str:
    """The cache key; a dataset at another side than a built-in's own names its side, so a
    64 px run never reads the 28 px features (and the raw-hash check, the version's)."""
    native = spec.name in DATASETS and DATASETS[spec.name].shape == spec.shape
    name = spec.name if native else f"{spec.name}-{spec.height}px"
    return f"fid-reference/{name}/{SPLIT}/n{n}/{mode}/{net.key}.npz"


def _local_cache(key: str) -> Path:
    return Path(os.environ.get("GENAUG_CACHE_DIR", Path.home() / ".cache" / "genaug")) / key


def _baked(key: str) -> Path | None:
    """The image's read-only copy of ``key``, if it has one."""
    root = os.environ.get("GENAUG_REFERENCE_DIR")
    path = Path(root) / key if root else None
    return path if path is not None and path.is_file() else None


def _read(path: Path, data_hash: str, key: str) -> Reference | None:
    arrays, meta = imageset.load(path, "FID reference features")
    if meta.get("raw_hash") != data_hash or meta.get("key") != key:
        return None  # the dataset changed since, or the file is another reference: recompute
    return Reference(arrays["feats"], arrays["labels"], meta["key"], True)


def reference(spec: DatasetSpec, raw, n: int, mode: str, net: FeatureNet, store=None) -> Reference:
    """Reference features of ``n`` class-balanced training images of ``raw`` (RawSplits);
    all of them when the split holds fewer."""
    n = min(int(n), len(raw.train_y))
    key = reference_key(spec, n, mode, net)
    data_hash = raw_hash(raw)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ref.npz"
        local = _local_cache(key)
        if store is not None and store.exists(BUCKET, key):
            store.get_file(BUCKET, key, path)
            found = _read(path, data_hash, key)
        else:
            found = _read(local, data_hash, key) if store is None and local.is_file() else None
        baked = _baked(key) if found is None else None
        if baked is not None:
            found = _read(baked, data_hash, key)
            if found is not None and store is not None:
                store.put_file(BUCKET, key, baked)
        if found is not None:
            return found
        idx = stratified_take(raw.train_y, n, REFERENCE_SEED)
        feats, _ = extract(raw.train_x[idx], net, mode, desc=f"FID reference {spec.name} ({mode})")
        labels = raw.train_y[idx].astype(np.int64)
        meta = {"key": key, "dataset": spec.name, "split": SPLIT, "n": int(len(idx)), "mode": mode,
                "network": net.describe(), "raw_hash": data_hash}
        imageset.save(path if store is not None else local, {"feats": feats.astype(np.float32), "labels": labels},
                      meta)
        if store is not None:
            store.put_file(BUCKET, key, path)
    return Reference(feats.astype(np.float32), labels, key, False)
