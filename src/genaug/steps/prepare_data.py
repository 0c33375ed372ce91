"""Raw dataset -> uint8 train/val/test arrays with a content hash."""

from __future__ import annotations

import numpy as np

from genaug import catalog
from genaug.data import builtin, imageset, memory, resolution
from genaug.data.sources import load_raw
from genaug.data.splits import content_hash, stratified_take, train_val_split
from genaug.sections import LATEST_DATA, VAL_FRACTION, DataConfig
from genaug.services import tracking
from genaug.services.store import optional_store
from genaug.steps.timing import timed_step


@timed_step
def prepare_data(out_path: str, parent_run_id: str = "", data_version: str = "", *, data: DataConfig) -> dict:
    """Write ``out_path``: x_train/x_val/x_test uint8 [N, C, H, W] with int64 labels, as the
    ``data`` section says.

    The validation split is a stratified 10% of the official training split, the same for
    every run; the section may cap the train and test sizes (stratified too). fraction < 1
    keeps that share of the training images, stratified, for the small-data regime; the
    validation and test splits stay whole so that runs at every fraction are scored alike.
    data_version is the version the data_version step resolved: a registry version id (a
    user's snapshot, or a built-in dataset's, genaug.data.builtin) is loaded as that
    version; a label a run pinned, or a fingerprint without a store, reads the raw files
    (local, the S3 cache, or a download). In a pipeline it is what KFP caches this step by,
    with the section, so the step takes no run id there.
    """
    data = DataConfig.coerce(data)
    fraction = data.fraction
    # A built-in dataset's registry version goes the way a user's does; a run's own label (or
    # a step run without a store) reads the raw files.
    by_files = data.built_in and not builtin.VERSION_ID.match(data_version or "")
    spec, pools, source = _built_in(data) if by_files else _snapshot(data, data_version)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = pools
    # Cap train and val together so val stays 10% of what the section allows.
    train_idx, val_idx = np.arange(len(y_train)), np.arange(len(y_val))
    if data.max_train is not None:
        train_idx = stratified_take(y_train, int(data.max_train * (1 - VAL_FRACTION)), 1)
        val_idx = stratified_take(y_val, int(data.max_train * VAL_FRACTION), 2)
    n_train_full = len(train_idx)
    if fraction < 1.0:
        keep = max(spec.num_classes, round(fraction * n_train_full))  # as DataConfig.train_counts predicts
        train_idx = train_idx[stratified_take(y_train[train_idx], keep, 4)]
    test_idx = stratified_take(y_test, data.max_test, 3)
    arrays = {"x_train": x_train[train_idx], "y_train": y_train[train_idx], "x_val": x_val[val_idx],
              "y_val": y_val[val_idx], "x_test": x_test[test_idx], "y_test": y_test[test_idx]}
    meta = {
        "dataset": spec.name,
        "classes": list(spec.classes),
        "shape": list(spec.shape),
        "source": source,
        "content_hash": content_hash(*(arrays[k] for k in sorted(arrays))),
        "n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx),
        "max_train": data.max_train, "max_test": data.max_test, "fraction": fraction,
        "n_train_full": n_train_full, "data_version": data_version,
    }
    imageset.save(out_path, arrays, meta)
    tracking.log_params({"dataset": spec.name, "max_train": data.max_train, "max_test": data.max_test,
                         "source": source, "fraction": fraction})
    tracking.log_metrics({k: meta[k] for k in ("n_train", "n_val", "n_test")})
    if parent_run_id:
        tracking.set_parent_tags(parent_run_id, {"genaug.data_hash": meta["content_hash"]})
    return meta



def _built_in(data: DataConfig):
    """(spec, ((x, y) of train, val, test), source) of a built-in dataset: its official splits,
    with a stratified 10% of the training split as validation, the same for every run."""
    spec = catalog.dataset(data.dataset)
    raw = load_raw(spec, store=optional_store())
    side = resolution.side_for(data, native=spec.height)
    memory.check(f"dataset {spec.name}", len(raw.train_y) + len(raw.test_y), spec.channels, side)
    raw = raw.at_side(side)
    train_idx, val_idx = train_val_split(raw.train_y, VAL_FRACTION)
    return spec.at_side(side), ((raw.train_x[train_idx], raw.train_y[train_idx]), (raw.train_x[val_idx],
                                raw.train_y[val_idx]), (raw.test_x, raw.test_y)), raw.source


def _snapshot(data: DataConfig, version: str):
    """(spec, ((x, y) of train, val, test), source) of a user dataset's version (its own
    splits), decoded once and then read from the S3 cache (genaug.data.decoded)."""
    from genaug.data.decoded import load_version, version_spec

    store = optional_store()
    if store is None or not version or version == LATEST_DATA:
        raise ValueError(f"dataset {data.dataset!r} is a snapshot: prepare_data needs the S3 store and the version "
                         "id that the data_version step resolves (run it through the pipeline, or pass one)")
    arrays, meta = load_version(data.dataset, version, store, data=data)
    spec = version_spec(data.dataset, meta, arrays)
    if meta.get("kind") == builtin.KIND:
        source = f"built-in version {data.dataset}@{version[:12]}, first loaded from {meta['first_source']}"
    else:
        source = f"snapshot {data.dataset}@{version[:12]} (decoded tensors: {meta['decoded_cache']})"
    return spec, tuple((arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in ("train", "val", "test")), source
