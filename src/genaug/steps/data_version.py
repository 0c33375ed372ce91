"""Which raw data this run uses; prepare_data is cached by it."""

from __future__ import annotations

from genaug import catalog
from genaug.data import version
from genaug.steps.context import optional_store
from genaug.steps.timing import timed_step


@timed_step
def data_version(dataset: str, requested: str = "latest") -> dict:
    """{"data_version", "basis"} for ``dataset``: ``requested`` when pinned, else a
    fingerprint of the raw files as they are now (see genaug.data.version).

    With no copy anywhere (no local files, nothing in the S3 cache) the version is
    "no-copy-<UTC day>" and the basis says so: nothing has been downloaded at this point.
    prepare_data then tries the download, and its ``source`` says whether it happened.

    A user dataset (genaug data snapshot) resolves in the registry: "latest", a label or an
    id becomes the version id; an unknown dataset fails here, listing the known ones."""
    if dataset in catalog.DATASETS:
        resolved = version.resolve(catalog.dataset(dataset), requested, store=optional_store())
    else:
        resolved = _registry_version(dataset, requested)
    print(f"[genaug] data version of {dataset}: {resolved['data_version']} ({resolved['basis']})", flush=True)
    return resolved


def _registry_version(dataset: str, requested: str) -> dict:
    from genaug.data.snapshots import REGISTRY, resolve_version
    from genaug.services.names import DATASETS_BUCKET

    store = optional_store()
    if store is None:
        raise ValueError(f"dataset {dataset!r} is not built in, so it is a snapshot in the S3 store, but no store is "
                         "configured; run `make up` (or set GENAUG_S3_ENDPOINT and its keys)")
    version_id = resolve_version(dataset, requested, store)
    return {"data_version": version_id, "basis": f"s3://{DATASETS_BUCKET}/{REGISTRY}/{dataset}/ as {requested!r}"}

