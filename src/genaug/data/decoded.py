"""A dataset version as uint8 tensors: decoded in parallel once, then cached in S3.

    registry/<name>/versions/<id>/decoded-<C>x<S>x<S>.npz    x_<split> uint8 [N, C, S, S], y_<split> int64

The cache is an image set (genaug.data.imageset) with its content hash, so a damaged copy is
found and decoded again instead of trained on.
"""

from __future__ import annotations

import os
import sys
import tempfile
import multiprocessing
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from genaug import catalog
from genaug.data import builtin, imageset, memory, resolution
from genaug.data.folders import SPLITS
from genaug.data.imagefile import Geometry, decode_chunk
from genaug.data.snapshots import REGISTRY, load_manifest, object_key
from genaug.sections import DataConfig
from genaug.services.names import DATASETS_BUCKET
from genaug.services.store import StoreError
from genaug.train.progress import bar

# Fetching waits on disk or the network: threads (in each decoding process). Decoding is
# CPU work under the GIL for small images: processes, each decoding a chunk into one array.
FETCHERS = 4
DECODERS = os.cpu_count() or 2
CHUNK = 64
IN_FLIGHT = 2  # chunks queued per decoding process: one decoding, one waiting
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
        context.set_forkserver_preload(["genaug.data.decoded"])
        _POOL, _POOL_WORKERS = ProcessPoolExecutor(max_workers=workers, mp_context=context), workers
    return _POOL


def decode_many(sources: list, fetch: Callable[[object], bytes], names: list[str], geometry: Geometry,
                workers: int = DECODERS, desc: str = "decode") -> np.ndarray:
    """uint8 [N, C, S, S]: ``fetch(sources[i])`` decoded into slot i.

    The decoding processes fetch their own inputs (``fetch`` must pickle: a module-level
    function or a functools.partial of one), so compressed bytes never pass through this
    process; each fetches a chunk of CHUNK with FETCHERS threads, then decodes it. At most
    IN_FLIGHT chunks per process are queued, so memory holds a few chunks, not the dataset."""
    out = np.empty((len(sources), geometry.channels, geometry.size, geometry.size), dtype=np.uint8)
    workers = max(1, workers)
    pool = _decoders(workers)
    pending: deque = deque()

    def collect() -> None:
        start, future = pending.popleft()
        chunk = future.result()
        out[start:start + len(chunk)] = chunk
        progress.update(len(chunk))

    with bar(len(sources), desc, "image") as progress:
        for start in range(0, len(sources), CHUNK):
            pending.append((start, pool.submit(_fetch_and_decode, fetch, sources[start:start + CHUNK],
                                               names[start:start + CHUNK], geometry)))
            while len(pending) > IN_FLIGHT * workers:
                collect()
        while pending:
            collect()
    return out


def _fetch_and_decode(fetch: Callable[[object], bytes], sources: list, names: list[str],
                      geometry: Geometry) -> np.ndarray:
    """One chunk, in a decoding process: fetched by threads (waiting on disk or the network),
    then decoded."""
    global _FETCH_THREADS
    if _FETCH_THREADS is None:  # one per decoding process, for its life
        _FETCH_THREADS = ThreadPoolExecutor(max_workers=FETCHERS, thread_name_prefix="fetch")
    return decode_chunk(list(zip(_FETCH_THREADS.map(fetch, sources), names)), geometry)


_STORES: dict = {}
_FETCH_THREADS: ThreadPoolExecutor | None = None


def fetch_checked(config, entry: dict) -> bytes:
    """An image's stored bytes (the store at ``config``, an S3Config), checked against the
    sha256 its manifest entry records; one client per process."""
    from genaug.services.store import Store

    store = _STORES.get(config) or _STORES.setdefault(config, Store(config))
    try:
        return store.get_bytes(DATASETS_BUCKET, object_key(entry["sha256"]), expected_sha256=entry["sha256"])
    except StoreError as err:
        raise StoreError(f"{entry['path']}: {err}; snapshot the source again to store it anew") from err


def version_spec(name: str, meta: dict, arrays: dict[str, np.ndarray]):
    """The catalog.DatasetSpec of a decoded version (its classes and geometry); a built-in
    dataset's own (its title, and whether mirrored images are as likely) at the side it was
    loaded at."""
    from genaug.catalog import DatasetSpec

    g = meta["geometry"]
    if name in catalog.DATASETS:
        return catalog.dataset(name).at_side(g["size"])
    return DatasetSpec(name, name, g["channels"], g["size"], g["size"], tuple(meta["classes"]),
                       train_images=len(arrays["y_train"]) + len(arrays["y_val"]))


def reference_data(dataset: str, version: str, store, data: DataConfig | None = None, side: int | None = None):
    """(spec, RawSplits) of the real images a generator is measured against: a built-in
    dataset's official train and test splits, or those of a user dataset's version ("latest",
    a label or an id, resolved in the registry), at ``side`` pixels, or the side that
    ``data`` gives them (genaug.data.resolution), or else their own."""
    from genaug.data.snapshots import resolve_version
    from genaug.data.sources import RawSplits, load_raw

    if dataset in catalog.DATASETS:
        spec = catalog.dataset(dataset)
        side = side or (resolution.side_for(data, native=spec.height) if data else spec.height)
        return spec.at_side(side), load_raw(spec, store=store).at_side(side)
    if store is None:
        raise ValueError(f"dataset {dataset!r} is a snapshot in the S3 store, but no store is configured; run "
                         "`make up` (or set GENAUG_S3_ENDPOINT and its keys)")
    version = resolve_version(dataset, version, store)
    arrays, meta = load_version(dataset, version, store, data=data, side=side)
    return version_spec(dataset, meta, arrays), RawSplits(arrays["x_train"], arrays["y_train"], arrays["x_test"],
                                                          arrays["y_test"], f"snapshot {dataset}@{version[:12]}")


def builtin_images(manifest: dict) -> int:
    """Images in a built-in version (its manifest's one entry records them, or the catalog)."""
    (entry,) = manifest["entries"]
    return int(entry.get("images") or catalog.dataset(manifest["name"]).train_images)


def cache_key(name: str, version: str, geometry: Geometry) -> str:
    return f"{REGISTRY}/{name}/versions/{version}/decoded-{geometry.channels}x{geometry.size}x{geometry.size}.npz"


def load_version(name: str, version: str, store, workers: int = DECODERS, data: DataConfig | None = None,
                 side: int | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays x_/y_ train/val/test, meta {"classes", "geometry", "version", "decoded_cache": hit|miss})
    of a version at ``side`` pixels, or the side ``data`` gives it (genaug.data.resolution),
    or else the side its manifest records: from the S3 cache when it holds the version at
    that side, else decoded from the stored images (every object checked against its
    recorded sha256 as it is read) and cached, by (version, side)."""
    manifest, _ = load_manifest(name, version, store)
    g = dict(manifest["geometry"])
    if manifest.get("kind") == builtin.KIND:  # its official splits, decoded once into the raw cache
        side = side or (resolution.side_for(data, native=g["size"]) if data else g["size"])
        memory.check(f"dataset {name}@{version[:12]}", builtin_images(manifest), g["channels"], side)
        arrays = builtin.load(catalog.dataset(name), version, manifest, store)
        arrays = {k: resolution.resize(v, side) if k.startswith("x_") else v for k, v in arrays.items()}
        return arrays, {"classes": manifest["classes"], "geometry": {**g, "size": side}, "version": version,
                        "name": name, "decoded_cache": "hit", "kind": builtin.KIND, "first_source": manifest.get("source")}
    sizes = [(e["width"], e["height"]) for e in manifest["entries"]]
    side = side or (resolution.side_for(data, sizes=sizes) if data else g["size"])
    geometry = Geometry(side, g["channels"], g["resized"] or side != g["size"])
    g.update(geometry.as_dict())
    memory.check(f"dataset {name}@{version[:12]}", len(manifest["entries"]), geometry.channels, geometry.size)
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
            arrays[f"x_{split}"] = decode_many(entries, partial(fetch_checked, store.config),
                                               [e["path"] for e in entries], geometry, workers,
                                               f"decode {split}")
            arrays[f"y_{split}"] = np.array([label[e["class"]] for e in entries], dtype=np.int64)
        imageset.save(str(path), arrays, meta)
        store.put_file(DATASETS_BUCKET, key, path)
    return arrays, {**meta, "decoded_cache": "miss"}
