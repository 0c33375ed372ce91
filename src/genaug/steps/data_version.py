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
    prepare_data then tries the download, and its ``source`` says whether it happened."""
    spec = catalog.dataset(dataset)
    resolved = version.resolve(spec, requested, store=optional_store())
    print(f"[genaug] data version of {spec.name}: {resolved['data_version']} ({resolved['basis']})", flush=True)
    return resolved

