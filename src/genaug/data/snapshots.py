"""Immutable, content-addressed versions of a user's labelled images (``genaug data ...``).

In the datasets bucket:

    objects/sha256/<ab>/<sha256>               each image's bytes, stored once by content
    registry/<name>/versions/<id>/manifest.json    sorted (path, class, split, sha256, bytes,
                                                   width, height, mode) and the geometry
    registry/<name>/versions/<id>/metadata.json    source, label, previous version, counts, time
    registry/<name>/labels/<label>.json            a label's version
    registry/<name>/latest.json                    the newest version: written last, in one put
    registry/<name>/lock.json                      the lease a committing snapshot holds

The version id is the hash of the manifest's content (not of where it came from or when), so
snapshotting an unchanged source gives the same id and writes nothing. An image's split is a
function of its content hash unless the source gives split folders: adding images never moves
one to another split, a relabelled image keeps its split, and a test image never reaches
training in a later version.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from urllib.parse import quote

from genaug.catalog import DATASETS, USER_DATASET
from genaug.data.folders import SPLITS, Source, SourceError, open_source
from genaug.data.imagefile import BadImage, choose_geometry, probe
from genaug.sections import DATA_LABEL, LATEST_DATA
from genaug.services.names import DATASETS_BUCKET

FORMAT = 1
OBJECTS = "objects/sha256"
REGISTRY = "registry"
# Of 100 buckets by content hash: test, then val; the rest train.
TEST_SHARE, VAL_SHARE = 10, 10
BUILTIN_SPLIT = "official"  # a built-in dataset's single entry: its official splits in one raw cache copy
LIST_AT_MOST = 20
LOCK_WAIT_S = 300.0  # a snapshot of the same dataset commits in seconds; a dead holder's lock frees itself
WORKERS = 8  # files read, hashed, checked and uploaded at once (I/O-bound; PIL releases the GIL)


class SnapshotError(ValueError):
    """A snapshot that cannot be made; the message names the files and the fix. Nothing of
    the version is written when it is raised."""


@dataclass(frozen=True)
class Entry:
    path: str
    label: str
    split: str
    sha256: str
    bytes: int
    width: int
    height: int
    mode: str


def name_problem(name: str) -> str | None:
    """None when ``name`` can name a dataset, else the problem and the fix."""
    if name in DATASETS:
        return f"dataset name {name!r} is a built-in dataset's; choose another name"
    if isinstance(name, str) and USER_DATASET.match(name):
        return None
    return (f"dataset name {name!r} must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter, "
            "e.g. parts_v2")


def split_of(sha256: str) -> str:
    """The split of an image whose source gives none: a function of its content alone."""
    bucket = int(sha256[:8], 16) % 100
    return "test" if bucket < TEST_SHARE else "val" if bucket < TEST_SHARE + VAL_SHARE else "train"


def object_key(sha256: str) -> str:
    return f"{OBJECTS}/{sha256[:2]}/{sha256}"


def manifest_objects(manifest: dict) -> set[str]:
    """The keys in the datasets bucket that a version's manifest reads: each image's object,
    or for a built-in dataset the raw cache copy its single entry names."""
    return {e["path"] if e["split"] == BUILTIN_SPLIT else object_key(e["sha256"]) for e in manifest["entries"]}


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - LIST_AT_MOST} more" if len(items) > LIST_AT_MOST else ""
    return ", ".join(items[:LIST_AT_MOST]) + more


def _ingest(source: Source, store, workers: int) -> tuple[list[tuple], list[str], int]:
    """Read, hash and check every file, uploading each new image once; returns
    ([(file, sha256, info)], [bad files with reasons], new objects)."""
    def one(f):
        data = f.read()
        digest = hashlib.sha256(data).hexdigest()
        try:
            info = probe(data, f.path)
        except BadImage as err:
            return f, digest, None, str(err), False
        key = object_key(digest)
        new = not store.exists(DATASETS_BUCKET, key)
        if new:
            # Header values are ASCII: a file name in any script travels percent-encoded.
            store.put_content(DATASETS_BUCKET, key, data, {"source-path": quote(f.path[:200])})
        return f, digest, info, None, new

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, source.files))
    good = [(f, digest, info) for f, digest, info, bad, _ in results if bad is None]
    return good, [bad for *_, bad, _ in results if bad], sum(new for *_, new in results)


def _entries(good: list[tuple], source: Source, on_conflict: str) -> tuple[list[Entry], dict]:
    """One entry per distinct (content, class); exact duplicates kept once, conflicts refused
    or dropped. Returns (entries, what was folded: duplicates and dropped conflicts)."""
    by_hash = defaultdict(list)
    for f, digest, info in good:
        by_hash[digest].append((f, info))
    entries, duplicates, conflicts = [], [], []
    # Split folders without val/: val is chosen from train/ by content, as for a source without splits.
    val_by_content = source.given_splits and "val" not in {f.split for f, _, _ in good}
    for digest, copies in by_hash.items():
        labels = sorted({f.label for f, _ in copies})
        if len(labels) > 1:
            conflicts.append(f"{digest[:12]} as {' and '.join(f.path for f, _ in copies)}")
            continue
        first, info = copies[0]
        duplicates += [f.path for f, _ in copies[1:]]
        split = first.split or split_of(digest)
        if val_by_content and first.split == "train":
            split = "val" if split_of(digest) == "val" else "train"
        entries.append(Entry(first.path, first.label, split, digest, first.size, info.width, info.height, info.mode))
    if conflicts and on_conflict != "drop":
        raise SnapshotError(f"{len(conflicts)} image(s) appear under two classes (a label conflict): "
                            f"{_listed(conflicts)}; fix the labels, or pass --on-conflict drop to leave them out")
    return sorted(entries, key=lambda e: e.path), {"duplicates": duplicates, "conflicts_dropped": conflicts}


def _check_classes(entries: list[Entry], uri: str) -> None:
    counts = Counter((e.label, e.split) for e in entries)
    classes = sorted({e.label for e in entries})
    if len(classes) < 2:
        raise SnapshotError(f"{uri} holds {len(classes)} class ({', '.join(classes) or 'none'}); a classifier "
                            "needs at least two class folders")
    short = [f"{c} ({', '.join(f'{s} {counts[c, s]}' for s in SPLITS)})" for c in classes
             if any(counts[c, s] == 0 for s in SPLITS)]
    if short:
        raise SnapshotError(f"class(es) without an image in every split: {_listed(short)}; add images to them "
                            f"(about 1 in {100 // TEST_SHARE} goes to test and to val), or give train/, val/ and "
                            "test/ folders")


def manifest_id(manifest: dict) -> str:
    """The version id: the hash of what the version holds (entries, classes, geometry)."""
    core = {k: manifest[k] for k in ("format", "classes", "geometry", "entries")}
    return hashlib.sha256(json.dumps(core, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _counts(entries: list[dict]) -> dict:
    out = {s: {} for s in SPLITS}
    for e in entries:
        out[e["split"]][e["class"]] = out[e["split"]].get(e["class"], 0) + 1
    return out


def snapshot(name: str, source: str, store, label: str | None = None, on_bad: str = "stop",
             on_conflict: str = "stop", workers: int = WORKERS) -> dict:
    """Make (or find) the version of ``source`` under dataset ``name``; returns its report
    ({"name", "version", "created", "n_images", "counts", "new_objects", ...}).

    on_bad: "stop" refuses a source with an undecodable or non-image file (listing up to 20),
        "skip" leaves them out and records them. on_conflict: "stop" refuses an image under two
        classes, "drop" leaves every copy of it out and records it.
    """
    if problem := name_problem(name):
        raise SnapshotError(problem)
    if label is not None and (label == LATEST_DATA or not DATA_LABEL.match(label)):
        raise SnapshotError(f"label {label!r} must be up to 64 letters, digits, '.', '_' or '-', starting with a "
                            f"letter or digit, and not {LATEST_DATA!r}; e.g. --label 2026-12-04")
    if on_bad not in ("stop", "skip") or on_conflict not in ("stop", "drop"):
        raise SnapshotError(f"--on-bad {on_bad!r} / --on-conflict {on_conflict!r}: use stop|skip and stop|drop")
    try:
        src = open_source(source, store)
    except SourceError as err:
        raise SnapshotError(str(err)) from err
    if src.not_images and on_bad == "stop":
        raise SnapshotError(f"{len(src.not_images)} file(s) under {src.uri} are not images (by extension): "
                            f"{_listed(src.not_images)}; remove them, or pass --on-bad skip")
    good, bad, new_objects = _ingest(src, store, workers)
    if bad and on_bad == "stop":
        raise SnapshotError(f"{len(bad)} file(s) cannot be decoded: {_listed(bad)}; replace or remove them, or "
                            "pass --on-bad skip to leave them out")
    entries, folded = _entries(good, src, on_conflict)
    _check_classes(entries, src.uri)
    info = {f.path: i for f, _, i in good}
    geometry = choose_geometry([info[e.path] for e in entries])
    manifest = {"format": FORMAT, "name": name, "classes": sorted({e.label for e in entries}),
                "geometry": geometry.as_dict(), "given_splits": src.given_splits,
                "entries": [{**{k: v for k, v in asdict(e).items() if k != "label"}, "class": e.label}
                            for e in entries]}
    return commit(name, manifest, store, {
        "source": src.uri, "n_images": len(entries), "new_objects": new_objects,
        "skipped": sorted(bad + src.not_images) if on_bad == "skip" else [], **folded}, label)


def commit(name: str, manifest: dict, store, facts: dict, label: str | None = None) -> dict:
    """Record ``manifest`` as a version of dataset ``name`` (unless it is one already), label it,
    and make it the latest; returns the report: {"name", "version", "created", "label",
    "counts", ...``facts``}, whose "source", "n_images" and what was left out go to the
    version's metadata.json. Shared by user snapshots and the built-in datasets."""
    version = manifest_id(manifest)
    prefix = f"{REGISTRY}/{name}"
    counts = manifest.get("counts") or _counts(manifest["entries"])
    report = {"name": name, "version": version, "created": False, "label": label, "counts": counts,
              "skipped": [], "duplicates": [], "conflicts_dropped": [], **facts}
    if _unchanged(prefix, version, label, store):
        return report  # the latest version already, as labelled: nothing to write, no lock to take
    # Objects are content-addressed, so concurrent snapshots share them safely; the registry's
    # records (previous version, latest pointer) are read and written under the dataset's lock.
    with _registry_lock(name, store) as lease:
        latest = store.get_json(DATASETS_BUCKET, f"{prefix}/latest.json", {})
        created = report["created"] = not store.exists(DATASETS_BUCKET, f"{prefix}/versions/{version}/manifest.json")
        if created:
            # The manifest first, then its metadata, then the pointers: a reader never finds a
            # pointer to a version that is not complete.
            store.put_json(DATASETS_BUCKET, f"{prefix}/versions/{version}/manifest.json", manifest)
            store.put_json(DATASETS_BUCKET, f"{prefix}/versions/{version}/metadata.json", {
                **{k: report[k] for k in ("source", "label", "n_images", "counts", "skipped", "duplicates",
                                          "conflicts_dropped")},
                "version": version, "previous": latest["version"] if latest else None, "created_at": time.time()})
        if label:
            store.put_json(DATASETS_BUCKET, f"{prefix}/labels/{label}.json", {"version": version})
        if not latest or latest["version"] != version:
            lease.check()
            store.put_json(DATASETS_BUCKET, f"{prefix}/latest.json",
                           {"version": version, "previous": latest["version"] if latest else None})
    return report


def _unchanged(prefix: str, version: str, label: str | None, store) -> bool:
    """Whether ``version`` is the latest already and ``label`` (if any) names it."""
    latest = store.get_json(DATASETS_BUCKET, f"{prefix}/latest.json", {})
    return bool(latest) and latest["version"] == version and (
        not label or store.get_json(DATASETS_BUCKET, f"{prefix}/labels/{label}.json", {}).get("version") == version)


def _registry_lock(name: str, store):
    """The lease on dataset ``name``'s registry records, held while a snapshot commits; a second
    snapshot of the same name waits for it (at most LOCK_WAIT_S)."""
    from genaug.serving.lease import Lease
    from genaug.serving.records import Records

    owner = f"snapshot-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    lease = Lease(Records(DATASETS_BUCKET, store.config), name, owner, key=f"{REGISTRY}/{name}/lock.json",
                  activity="snapshot")
    return lease.acquire(wait_s=LOCK_WAIT_S)


def names(store) -> list[str]:
    keys = store.list(DATASETS_BUCKET, f"{REGISTRY}/")
    return sorted({k.split("/")[1] for k in keys if k.endswith("/latest.json") and k.count("/") == 2})


def resolve_version(name: str, ref: str, store) -> str:
    """The version id that ``ref`` means for dataset ``name``: "latest", a label, or an id (or a
    prefix of at least 8 characters of one). Raises SnapshotError naming what exists."""
    prefix = f"{REGISTRY}/{name}"
    latest = store.get_json(DATASETS_BUCKET, f"{prefix}/latest.json", {})
    if not latest:
        known = names(store)
        raise SnapshotError(f"no dataset {name!r}; known: {', '.join(known) or 'none yet'} "
                            "(make one with `genaug data snapshot NAME SOURCE`)")
    if ref in ("", LATEST_DATA):
        return latest["version"]
    if not DATA_LABEL.match(ref):
        raise SnapshotError(f"version {ref!r} of {name!r} is not a label or an id; use latest, a label or an id")
    labelled = store.get_json(DATASETS_BUCKET, f"{prefix}/labels/{ref}.json", {})
    if labelled:
        return labelled["version"]
    ids = sorted({k.split("/")[3] for k in store.list(DATASETS_BUCKET, f"{prefix}/versions/")})
    found = [v for v in ids if len(ref) >= 8 and v.startswith(ref)]
    if len(found) == 1:
        return found[0]
    labels = sorted(k.rsplit("/", 1)[1][:-5] for k in store.list(DATASETS_BUCKET, f"{prefix}/labels/"))
    raise SnapshotError(f"dataset {name!r} has no version {ref!r}; use latest, a label "
                        f"({', '.join(labels) or 'none'}) or an id ({', '.join(v[:12] for v in ids)})")


def load_manifest(name: str, version: str, store) -> tuple[dict, dict]:
    """(manifest, metadata) of a version."""
    prefix = f"{REGISTRY}/{name}/versions/{version}"
    return (store.get_json(DATASETS_BUCKET, f"{prefix}/manifest.json"),
            store.get_json(DATASETS_BUCKET, f"{prefix}/metadata.json"))


def diff(old: dict | None, new: dict) -> dict:
    """What changed between two manifests, by content: images added, removed and relabelled
    (same content, another class; it keeps its split)."""
    def by_hash(m):
        return {e["sha256"]: e for e in (m or {"entries": []})["entries"]}

    a, b = by_hash(old), by_hash(new)
    return {"added": sorted(b[h]["path"] for h in b.keys() - a.keys()),
            "removed": sorted(a[h]["path"] for h in a.keys() - b.keys()),
            "relabelled": sorted(f"{b[h]['path']}: {a[h]['class']} -> {b[h]['class']}"
                                 for h in a.keys() & b.keys() if a[h]["class"] != b[h]["class"])}


def show(name: str, ref: str, store) -> dict:
    """A version: its classes and counts per split, image sizes and modes, geometry, and what
    changed since the previous version."""
    version = resolve_version(name, ref, store)
    manifest, meta = load_manifest(name, version, store)
    previous = load_manifest(name, meta["previous"], store)[0] if meta.get("previous") else None
    entries = manifest["entries"]
    sizes, modes = Counter(), Counter()
    for e in entries:  # a built-in version's one entry stands for all of its images
        sizes[f"{e['width']}x{e['height']}"] += e.get("images", 1)
        modes[e["mode"]] += e.get("images", 1)
    return {"name": name, "version": version, "kind": manifest.get("kind", "snapshot"), "label": meta.get("label"),
            "source": meta.get("source"), "created_at": meta.get("created_at"), "previous": meta.get("previous"),
            "classes": manifest["classes"], "counts": manifest.get("counts") or _counts(entries),
            "geometry": manifest["geometry"], "sizes": dict(sizes.most_common(10)), "modes": dict(modes),
            "skipped": meta.get("skipped", []), "changes": diff(previous, manifest)}
