"""The data version: a short label that changes exactly when a dataset's raw files change.

KFP caches prepare_data by its inputs, and the data version is one of them, so a
scheduled run reuses the prepared splits while the data stays the same and rebuilds them
the first time new data arrives. It is cheap to compute: file sizes and modification
times for a local source, the content hash the S3 cache already keeps otherwise.
"""

from __future__ import annotations

import datetime
import hashlib

from genaug.catalog import DatasetSpec
from genaug.data import cache
from genaug.data.sources import prestage_hint, source_files
from genaug.sections import LATEST_DATA, data_version_problem


def resolve(spec: DatasetSpec, requested: str = LATEST_DATA, store=None) -> dict:
    """{"data_version", "basis"}: ``requested`` itself when pinned; for "latest", a
    fingerprint of the first source load_raw would use (basis says which).

    A local source is fingerprinted by file name, size and mtime in ns ("files-<12 hex>");
    the S3 cache by its content hash ("s3-<12 hex>"). With neither, no copy exists yet:
    the version is the UTC day ("no-copy-YYYY-MM-DD"), so that what prepare_data downloads
    is cached for at most a day, and basis says that nothing was found and how to stage it.
    """
    problem = data_version_problem(requested)
    if problem:
        raise ValueError(problem)
    if requested != LATEST_DATA:
        return {"data_version": requested, "basis": "pinned by the run"}
    description, files = source_files(spec)
    if files:
        digest = hashlib.sha256()
        for path in files:
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        return {"data_version": f"files-{digest.hexdigest()[:12]}", "basis": f"{description}: {len(files)} files"}
    if store is not None:
        index = cache.current(store, spec)
        if index is not None:
            return {"data_version": f"s3-{index['content_hash'][:12]}",
                    "basis": f"S3 cache s3://{cache.BUCKET}/{index['key']}"}
    # Nothing has been downloaded yet, and maybe nothing can be: say so. The UTC day stays in
    # the label so that the runs of one day share what prepare_data downloads.
    day = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    s3 = "the S3 cache holds none" if store is not None else "no S3 cache is configured"
    return {"data_version": f"no-copy-{day}",
            "basis": f"no copy found: no local files and {s3}; prepare_data will try to download it. "
                     f"For a local copy instead: {prestage_hint(spec)}"}
