"""Raw dataset -> uint8 train/val/test arrays with a content hash."""

from __future__ import annotations

from genaug import catalog
from genaug.data import imageset
from genaug.data.sources import load_raw
from genaug.data.splits import content_hash, stratified_take, train_val_split
from genaug.sections import VAL_FRACTION, DataConfig
from genaug.services import tracking
from genaug.steps.context import optional_store
from genaug.steps.timing import timed_step


@timed_step
def prepare_data(out_path: str, parent_run_id: str = "", data_version: str = "", *, data: DataConfig) -> dict:
    """Write ``out_path``: x_train/x_val/x_test uint8 [N, C, H, W] with int64 labels, as the
    ``data`` section says.

    The validation split is a stratified 10% of the official training split, the same for
    every run; the section may cap the train and test sizes (stratified too). fraction < 1
    keeps that share of the training images, stratified, for the small-data regime; the
    validation and test splits stay whole so that runs at every fraction are scored alike.
    When an S3 endpoint is configured, the raw dataset is cached there and reused by
    content hash. data_version (the version resolved by genaug.data.version) is recorded,
    not used: in a pipeline it is what KFP caches this step by, with the section, so the
    step takes no run id there.
    """
    data = DataConfig.coerce(data)
    spec, fraction = catalog.dataset(data.dataset), data.fraction
    raw = load_raw(spec, store=optional_store())
    train_idx, val_idx = train_val_split(raw.train_y, VAL_FRACTION)
    # Cap train and val together so val stays 10% of what the section allows.
    if data.max_train is not None:
        keep_train = stratified_take(raw.train_y[train_idx], int(data.max_train * (1 - VAL_FRACTION)), 1)
        keep_val = stratified_take(raw.train_y[val_idx], int(data.max_train * VAL_FRACTION), 2)
        train_idx, val_idx = train_idx[keep_train], val_idx[keep_val]
    n_train_full = len(train_idx)
    if fraction < 1.0:
        keep = max(spec.num_classes, round(fraction * n_train_full))  # as DataConfig.train_counts predicts
        train_idx = train_idx[stratified_take(raw.train_y[train_idx], keep, 4)]
    test_idx = stratified_take(raw.test_y, data.max_test, 3)
    arrays = {
        "x_train": raw.train_x[train_idx], "y_train": raw.train_y[train_idx],
        "x_val": raw.train_x[val_idx], "y_val": raw.train_y[val_idx],
        "x_test": raw.test_x[test_idx], "y_test": raw.test_y[test_idx],
    }
    meta = {
        "dataset": spec.name,
        "classes": list(spec.classes),
        "shape": list(spec.shape),
        "source": raw.source,
        "content_hash": content_hash(*(arrays[k] for k in sorted(arrays))),
        "n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx),
        "max_train": data.max_train, "max_test": data.max_test, "fraction": fraction,
        "n_train_full": n_train_full, "data_version": data_version,
    }
    imageset.save(out_path, arrays, meta)
    tracking.log_params({"dataset": spec.name, "max_train": data.max_train, "max_test": data.max_test,
                         "source": raw.source, "fraction": fraction})
    tracking.log_metrics({k: meta[k] for k in ("n_train", "n_val", "n_test")})
    if parent_run_id:
        tracking.set_parent_tags(parent_run_id, {"genaug.data_hash": meta["content_hash"]})
    return meta

