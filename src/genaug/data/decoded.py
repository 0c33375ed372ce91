"""A dataset version as uint8 tensors: decoded in parallel once, then cached in S3.

    registry/<name>/versions/<id>/decoded-<C>x<S>x<S>.npz    x_<split> uint8 [N, C, S, S], y_<split> int64

The cache is an image set (genaug.data.imageset) with its content hash, so a damaged copy is
found and decoded again instead of trained on.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from genaug import catalog
from genaug.data import builtin, imageset
from genaug.data.folders import SPLITS
from genaug.data.imagefile import Geometry, decode_chunk
from genaug.data.snapshots import REGISTRY, load_manifest, object_key
from genaug.services.names import DATASETS_BUCKET
from genaug.services.store import StoreError
from genaug.train.progress import bar

# Fetching waits on disk or the network: threads. Decoding is CPU work under the GIL for
# small images: processes, each decoding a chunk of images into one array.
FETCHERS = max(4, 2 * (os.cpu_count() or 2))
DECODERS = os.cpu_count() or 2
CHUNK = 64
_POOL: ProcessPoolExecutor | None = None
_POOL_WORKERS = 0


def _decoders(workers: int) -> ProcessPoolExecutor:
    """One pool of decoding processes per process, started once: they fork from a clean,
    single-threaded forkserver (never from this process, whose fetching threads, or a
    client's, may hold a lock at that moment) that has imported PIL and numpy already."""
    global _POOL, _POOL_WORKERS
    if _POOL is None or _POOL_WORKERS != workers:
        if _POOL is not None:
            _POOL.shutdown(wait=False)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["genaug.data.imagefile"])
        _POOL, _POOL_WORKERS = ProcessPoolExecutor(max_workers=workers, mp_context=context), workers
    return _POOL


def decode_many(reads: list[Callable[[], bytes]], names: list[str], geometry: Geometry,
                workers: int = DECODERS, desc: str = "decode") -> np.ndarray:
    """uint8 [N, C, S, S]: ``reads[i]()`` decoded into slot i; chunks of CHUNK images are
    fetched by threads and decoded by ``workers`` processes."""
    out = np.empty((len(reads), geometry.channels, geometry.size, geometry.size), dtype=np.uint8)
    pool = _decoders(max(1, workers))
    with ThreadPoolExecutor(max_workers=FETCHERS) as fetch, bar(len(reads), desc, "image") as progress:
        def fetched(start: int) -> list[tuple[bytes, str]]:
            return list(zip(fetch.map(lambda read: read(), reads[start:start + CHUNK]), names[start:start + CHUNK]))

        futures = {start: pool.submit(decode_chunk, fetched(start), geometry) for start in range(0, len(reads), CHUNK)}
        for start, future in futures.items():
            chunk = future.result()
            out[start:start + len(chunk)] = chunk
            progress.update(len(chunk))
    return out


def _checked_object(store, entry: dict) -> bytes:
    """An image's stored bytes, checked against the sha256 its manifest records."""
    data = store.get_bytes(DATASETS_BUCKET, object_key(entry["sha256"]))
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise StoreError(f"s3://{DATASETS_BUCKET}/{object_key(entry['sha256'])} ({entry['path']}) does not match its "
                         "recorded sha256; snapshot the source again to store it anew")
    return data


def version_spec(name: str, meta: dict, arrays: dict[str, np.ndarray]):
    """The catalog.DatasetSpec of a decoded version (its classes and geometry); a built-in
    dataset's own (its title, and whether mirrored images are as likely)."""
    from genaug.catalog import DatasetSpec

    if name in catalog.DATASETS:
        return catalog.dataset(name)
    g = meta["geometry"]
    return DatasetSpec(name, name, g["channels"], g["size"], g["size"], tuple(meta["classes"]),
                       train_images=len(arrays["y_train"]) + len(arrays["y_val"]))


def reference_data(dataset: str, version: str, store):
    """(spec, RawSplits) of the real images a generator is measured against: a built-in
    dataset's official train and test splits, or those of a user dataset's version ("latest",
    a label or an id, resolved in the registry)."""
    from genaug.data.snapshots import resolve_version
    from genaug.data.sources import RawSplits, load_raw

    if dataset in catalog.DATASETS:
        spec = catalog.dataset(dataset)
        return spec, load_raw(spec, store=store)
    if store is None:
        raise ValueError(f"dataset {dataset!r} is a snapshot in the S3 store, but no store is configured; run "
                         "`make up` (or set GENAUG_S3_ENDPOINT and its keys)")
    version = resolve_version(dataset, version, store)
    arrays, meta = load_version(dataset, version, store)
    return version_spec(dataset, meta, arrays), RawSplits(arrays["x_train"], arrays["y_train"], arrays["x_test"],
                                                          arrays["y_test"], f"snapshot {dataset}@{version[:12]}")


def cache_key(name: str, version: str, geometry: Geometry) -> str:
    return f"{REGISTRY}/{name}/versions/{version}/decoded-{geometry.channels}x{geometry.size}x{geometry.size}.npz"


def load_version(name: str, version: str, store, workers: int = DECODERS) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays x_/y_ train/val/test, meta {"classes", "geometry", "version", "decoded_cache": hit|miss})
    of a version: from the S3 cache when it holds it, else decoded from the stored images
    (every object checked against its recorded sha256 as it is read) and cached."""
    manifest, _ = load_manifest(name, version, store)
    if manifest.get("kind") == builtin.KIND:  # its official splits, decoded once into the raw cache
        arrays = builtin.load(catalog.dataset(name), version, manifest, store)
        return arrays, {"classes": manifest["classes"], "geometry": manifest["geometry"], "version": version,
                        "name": name, "decoded_cache": "hit", "kind": builtin.KIND, "first_source": manifest.get("source")}
    g = manifest["geometry"]
    geometry = Geometry(g["size"], g["channels"], g["resized"])
    key = cache_key(name, version, geometry)
    meta = {"classes": manifest["classes"], "geometry": g, "version": version, "name": name}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decoded.npz"
        if store.exists(DATASETS_BUCKET, key):
            try:
                store.get_file(DATASETS_BUCKET, key, path)
                arrays, _ = imageset.load(str(path), "decoded dataset version")
                return arrays, {**meta, "decoded_cache": "hit"}
            except (imageset.ArtifactError, StoreError) as err:  # damaged: decode again and replace it
                print(f"[genaug] the decoded cache s3://{DATASETS_BUCKET}/{key} is unusable ({err}); decoding again",
                      file=sys.stderr, flush=True)
        label = {c: i for i, c in enumerate(manifest["classes"])}
        arrays = {}
        for split in SPLITS:
            entries = [e for e in manifest["entries"] if e["split"] == split]
            reads = [lambda e=e: _checked_object(store, e) for e in entries]
            arrays[f"x_{split}"] = decode_many(reads, [e["path"] for e in entries], geometry, workers,
                                               f"decode {split}")
            arrays[f"y_{split}"] = np.array([label[e["class"]] for e in entries], dtype=np.int64)
        imageset.save(str(path), arrays, meta)
        store.put_file(DATASETS_BUCKET, key, path)
    return arrays, {**meta, "decoded_cache": "miss"}
