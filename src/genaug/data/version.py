"""The data version: an id that changes exactly when a dataset's data changes.

KFP caches prepare_data by its inputs, and the data version is one of them, so a
scheduled run reuses the prepared splits while the data stays the same and rebuilds them
the first time new data arrives. With the S3 store it is the registry version of the data
(genaug.data.builtin): the hash of what it holds, as for a user's snapshot. A step run on
its own, without a store, fingerprints the local files by size and modification time.
"""

from __future__ import annotations

import datetime
import hashlib

from genaug.catalog import DatasetSpec
from genaug.data import cache
from genaug.data.sources import prestage_hint, source_files
from genaug.sections import LATEST_DATA, data_version_problem


def resolve(spec: DatasetSpec, requested: str = LATEST_DATA, store=None) -> dict:
    """{"data_version", "basis"[, "uri"]}: ``requested`` itself when pinned; for "latest":

    - with an S3 store, the registry version of the data load_raw finds now (local files, the
      S3 cache or a download), by content (genaug.data.builtin): its id, and the URI of its
      manifest. Raises DataNotFound, naming the fix, when there is none: the run stops here.
    - without one (a step run on its own), a fingerprint of the local source by file name,
      size and mtime in ns ("files-<12 hex>"); with no local files, the UTC day
      ("no-copy-YYYY-MM-DD"), so that what prepare_data downloads is cached for at most a
      day, and basis says that nothing was found and how to stage it.
    """
    problem = data_version_problem(requested)
    if problem:
        raise ValueError(problem)
    if requested != LATEST_DATA:
        return {"data_version": requested, "basis": "pinned by the run"}
    if store is not None:  # a version in the registry, by content (genaug.data.builtin)
        from genaug.data import builtin
        from genaug.data.snapshots import REGISTRY

        version_id, source = builtin.latest(spec, store)
        return {"data_version": version_id, "basis": f"{source}: built-in version {version_id[:12]}, by content",
                "uri": f"s3://{cache.BUCKET}/{REGISTRY}/{spec.name}/versions/{version_id}/manifest.json"}
    description, files = source_files(spec)
    if files:
        digest = hashlib.sha256()
        for path in files:
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        return {"data_version": f"files-{digest.hexdigest()[:12]}", "basis": f"{description}: {len(files)} files"}
    # Nothing has been downloaded yet, and maybe nothing can be: say so. The UTC day stays in
    # the label so that the runs of one day share what prepare_data downloads.
    day = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    return {"data_version": f"no-copy-{day}",
            "basis": "no copy found: no local files and no S3 cache is configured; prepare_data will try to download "
                     "it. "
                     f"For a local copy instead: {prestage_hint(spec)}"}
