"""Which raw data this run uses; prepare_data is cached by it."""

from __future__ import annotations

from genaug import catalog
from genaug.data import version
from genaug.services import tracking
from genaug.services.store import optional_store
from genaug.steps.timing import timed_step


@timed_step
def data_version(dataset: str, requested: str = "latest", source: str = "", parent_run_id: str = "") -> dict:
    """{"data_version", "basis", "uri"} for ``dataset``: ``requested`` when pinned, else a
    fingerprint of the raw files as they are now (see genaug.data.version).

    With no copy anywhere (no local files, nothing in the S3 cache) the version is
    "no-copy-<UTC day>" and the basis says so: nothing has been downloaded at this point.
    prepare_data then tries the download, and its ``source`` says whether it happened.

    A user dataset (genaug data snapshot) resolves in the registry: "latest", a label or an
    id becomes the version id; an unknown dataset fails here, listing the known ones. With a
    ``source`` (DATA_SOURCE) the source is snapshotted first: new images make a new version,
    an unchanged source gives the same id (and so prepare_data's cached output).

    With ``parent_run_id`` the version is logged as the MLflow run's input (its digest the
    version, its source the snapshot's URI)."""
    if dataset in catalog.DATASETS:
        resolved = version.resolve(catalog.dataset(dataset), requested, store=optional_store())
        resolved.setdefault("uri", resolved["basis"])
    else:
        resolved = _registry_version(dataset, requested, source)
    print(f"[genaug] data version of {dataset}: {resolved['data_version']} ({resolved['basis']})", flush=True)
    if parent_run_id:
        tracking.log_dataset(parent_run_id, dataset, resolved["data_version"], resolved["uri"],
                             {"basis": resolved["basis"]})
    return resolved


def _registry_version(dataset: str, requested: str, source: str) -> dict:
    from genaug.data.snapshots import REGISTRY, resolve_version, snapshot
    from genaug.services.names import DATASETS_BUCKET

    store = optional_store()
    if store is None:
        raise ValueError(f"dataset {dataset!r} is not built in, so it is a snapshot in the S3 store, but no store is "
                         "configured; run `make up` (or set GENAUG_S3_ENDPOINT and its keys)")
    if source:
        report = snapshot(dataset, source, store)
        version_id = report["version"]
        what = "a new version" if report["created"] else "unchanged, the same version"
        basis = (f"snapshot of {report['source']}: {what} ({report['n_images']} images, "
                 f"{report['new_objects']} new)")
    else:
        version_id = resolve_version(dataset, requested, store)
        basis = f"s3://{DATASETS_BUCKET}/{REGISTRY}/{dataset}/ as {requested!r}"
    uri = f"s3://{DATASETS_BUCKET}/{REGISTRY}/{dataset}/versions/{version_id}/manifest.json"
    return {"data_version": version_id, "basis": basis, "uri": uri}
