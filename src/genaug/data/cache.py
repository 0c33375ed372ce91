"""The dataset cache in object storage: raw splits keyed by dataset and content hash.

A cluster node without the raw files (or without internet) gets the dataset from here;
the first node that loads it from a local copy or a download publishes it.

Layout in the ``genaug-datasets`` bucket:
    raw/<dataset>/<content_hash>.npz   train_x, train_y, test_x, test_y (uint8 / int64)
    raw/<dataset>/index.json           {"content_hash", "key", "source"}: the current copy
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from genaug.catalog import DatasetSpec
from genaug.data import imageset
from genaug.data.splits import content_hash
from genaug.services.names import DATASETS_BUCKET as BUCKET


def raw_hash(raw) -> str:
    return content_hash(raw.train_x, raw.train_y, raw.test_x, raw.test_y)


def _index_key(spec: DatasetSpec) -> str:
    return f"raw/{spec.name}/index.json"


def current(store, spec: DatasetSpec) -> dict | None:
    """The index of the cached copy ({"content_hash", "key", "source"}), or None."""
    if not store.exists(BUCKET, _index_key(spec)):
        return None
    return store.get_json(BUCKET, _index_key(spec))


def fetch(store, spec: DatasetSpec):
    """The cached RawSplits of ``spec``, verified against its content hash; None if not cached."""
    from genaug.data.sources import RawSplits

    index = current(store, spec)
    if index is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.npz"
        store.get_file(BUCKET, index["key"], path)
        arrays, _ = imageset.load(path, f"cached {spec.name}")
    raw = RawSplits(arrays["train_x"], arrays["train_y"], arrays["test_x"], arrays["test_y"],
                    f"S3 cache s3://{BUCKET}/{index['key']} (first from: {index['source']})")
    if raw_hash(raw) != index["content_hash"]:
        raise imageset.ArtifactError(f"cached {spec.name} at s3://{BUCKET}/{index['key']} does not match its "
                                     f"content hash; delete s3://{BUCKET}/{_index_key(spec)} to rebuild it")
    return raw


def publish(store, spec: DatasetSpec, raw) -> str:
    """Put ``raw`` in the cache unless the same content is already there; return its hash."""
    digest = raw_hash(raw)
    index_key = _index_key(spec)
    if store.exists(BUCKET, index_key) and store.get_json(BUCKET, index_key).get("content_hash") == digest:
        return digest
    key = f"raw/{spec.name}/{digest}.npz"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.npz"
        imageset.save(path, {"train_x": raw.train_x, "train_y": raw.train_y,
                             "test_x": raw.test_x, "test_y": raw.test_y},
                      {"dataset": spec.name, "content_hash": digest})
        store.put_file(BUCKET, key, path)
    # The index is written last: until then readers keep using the previous copy.
    store.put_json(BUCKET, index_key, {"content_hash": digest, "key": key, "source": raw.source})
    return digest
