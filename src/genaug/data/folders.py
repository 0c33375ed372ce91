"""A user's labelled images: a folder of class folders, local or under an S3 prefix.

    root/<class>/<image>                      every image's split follows from its content
    root/{train,val,test}/<class>/<image>     the splits as given (val may be left out)

Files and folders whose name starts with '.' are skipped. Anything else that is not in a
class folder, a symlink or key that leads outside the root, an empty class folder and a
file without an image extension is refused, named, before anything is stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from genaug.data.imagefile import EXTENSIONS

SPLITS = ("train", "val", "test")
# An S3 prefix on another server than the stack's: these three, or the stack's endpoint and keys.
SOURCE_S3_ENV = ("GENAUG_SOURCE_S3_ENDPOINT", "GENAUG_SOURCE_S3_ACCESS_KEY", "GENAUG_SOURCE_S3_SECRET_KEY")


class SourceError(ValueError):
    """A source that cannot become a dataset; the message names the files and the fix."""


@dataclass(frozen=True)
class SourceFile:
    path: str            # relative to the root, '/'-separated, e.g. "train/cat/001.png"
    label: str           # the class folder's name
    split: str | None    # as given by a split folder, else None
    size: int            # bytes
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Source:
    uri: str                   # what the user gave, normalised (an absolute path or s3://bucket/prefix/)
    files: list[SourceFile]    # sorted by path
    not_images: list[str]      # files without an image extension
    given_splits: bool


def _layout(paths: list[PurePosixPath], uri: str) -> tuple[bool, list[str]]:
    """(whether split folders are given, problems) for the relative file paths."""
    tops = {p.parts[0] for p in paths if len(p.parts) > 1}
    given = bool(tops) and tops <= set(SPLITS)
    if given and "train" not in tops or given and "test" not in tops:
        return given, [f"{uri} has split folders {sorted(tops)} but needs at least train/ and test/ "
                       "(val/ is optional), or no split folders at all"]
    depth = 3 if given else 2
    loose = [str(p) for p in paths if len(p.parts) != depth]
    problems = []
    if loose:
        where = "split/class/" if given else "class/"
        problems.append(f"{len(loose)} file(s) are not directly in a {where} folder under {uri}, e.g. "
                        f"{', '.join(loose[:5])}; move each image into the folder of its class")
    return given, problems


def _files(entries: list[tuple[PurePosixPath, int, Callable[[], bytes]]], uri: str) -> Source:
    entries = [e for e in entries if not any(part.startswith(".") for part in e[0].parts)]
    if not entries:
        raise SourceError(f"{uri} holds no files; give a folder of class folders (root/<class>/<image>)")
    given, problems = _layout([p for p, _, _ in entries], uri)
    if problems:
        raise SourceError("; ".join(problems))
    files, not_images = [], []
    for rel, size, read in sorted(entries, key=lambda e: str(e[0])):
        if rel.suffix.lower() not in EXTENSIONS:
            not_images.append(str(rel))
            continue
        files.append(SourceFile(str(rel), rel.parts[-2], rel.parts[0] if given else None, size, read))
    return Source(uri, files, not_images, given)


def _local(root: Path) -> Source:
    root = root.expanduser()
    if not root.is_dir():
        raise SourceError(f"source folder {root} does not exist or is not a folder")
    real_root = root.resolve()
    entries, escaping, empty, linked = [], [], [], []
    for folder, dirs, names in os.walk(root, followlinks=False):
        folder = Path(folder)
        for d in [d for d in dirs if (folder / d).is_symlink()]:  # never followed: a loop or an escape
            dirs.remove(d)
            (escaping if not _inside(folder / d, real_root) else linked).append(str((folder / d).relative_to(root)))
        if folder != root and not names and not dirs and not folder.name.startswith("."):
            empty.append(str(folder.relative_to(root)))
        for name in names:
            path = folder / name
            if path.is_symlink() and not _inside(path, real_root):
                escaping.append(str(path.relative_to(root)))
                continue
            rel = PurePosixPath(path.relative_to(root).as_posix())
            entries.append((rel, path.stat().st_size, lambda p=path: p.read_bytes()))
    if escaping:
        raise SourceError(f"{len(escaping)} link(s) lead outside {root}: {', '.join(sorted(escaping)[:20])}; "
                          "copy the images into the folder instead")
    if linked:
        raise SourceError(f"folder link(s) under {root}: {', '.join(sorted(linked)[:20])}; links to folders are "
                          "not followed, so put the folders themselves there")
    if empty:
        raise SourceError(f"empty folder(s) under {root}: {', '.join(sorted(empty)[:20])}; add images or remove them")
    return _files(entries, str(real_root))


def _inside(path: Path, real_root: Path) -> bool:
    try:
        path.resolve().relative_to(real_root)
        return True
    except ValueError:
        return False


def source_store(default_store=None):
    """The Store that reads user S3 prefixes: GENAUG_SOURCE_S3_* when set, else ``default_store``
    (the stack's)."""
    from genaug.services.store import S3Config, Store

    if os.environ.get(SOURCE_S3_ENV[0]):
        missing = [k for k in SOURCE_S3_ENV if not os.environ.get(k)]
        if missing:
            raise SourceError(f"{SOURCE_S3_ENV[0]} is set but {', '.join(missing)} is not; set all three "
                              "(on a cluster: the optional Secret genaug-source-s3)")
        secure = os.environ.get("GENAUG_SOURCE_S3_SECURE", "false").lower() in ("1", "true", "yes")
        return Store(S3Config(*(os.environ[k] for k in SOURCE_S3_ENV), secure))
    return default_store if default_store is not None else Store()


def _s3(uri: str, store) -> Source:
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket:
        raise SourceError(f"source {uri!r} names no bucket; write s3://bucket/prefix/")
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    normal = f"s3://{bucket}/{prefix}"
    listing = store.listing(bucket, prefix)
    entries, escaping = [], []
    for key, info in listing.items():
        rel = PurePosixPath(key[len(prefix):])
        if not key.startswith(prefix) or rel.is_absolute() or ".." in rel.parts or "" in rel.parts:
            escaping.append(key)
            continue
        entries.append((rel, int(info["size"]), lambda k=key: store.get_bytes(bucket, k)))
    if escaping:
        raise SourceError(f"{len(escaping)} key(s) under {normal} lead outside it: {', '.join(escaping[:20])}")
    if not entries:
        raise SourceError(f"{normal} on {store.config.endpoint} holds no objects; upload root/<class>/<image> "
                          "there, or check the prefix")
    return _files(entries, normal)


def open_source(source: str, store=None) -> Source:
    """The files of ``source``: a local folder, or s3://bucket/prefix/ (read with
    source_store(store))."""
    if source.startswith("s3://"):
        return _s3(source, source_store(store))
    if "://" in source:
        raise SourceError(f"source {source!r}: only local folders and s3://bucket/prefix/ are supported")
    return _local(Path(source))
