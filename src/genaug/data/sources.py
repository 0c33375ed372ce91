"""Find and load a dataset's raw files in their real on-disk formats, through torchvision.

Sources, tried in order:
1. ``$GENAUG_DATA_DIR`` (torchvision's layout: ``FashionMNIST/raw/*-ubyte[.gz]``,
   ``MNIST/raw/...``, ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``);
2. Debian's packaged copy (``apt-get install dataset-fashion-mnist``), Fashion-MNIST only;
3. the dataset cache in object storage, verified by content hash (genaug.data.cache);
4. torchvision's download into the cache folder, when the network allows.
If none works the error names the files to pre-stage and where to put them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genaug.catalog import DatasetSpec

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# A download that cannot connect should fail in seconds, not after minutes of retries.
DOWNLOAD_TIMEOUT_S = 10.0


class DataNotFound(FileNotFoundError):
    """No source could provide the dataset; the message says what to pre-stage where."""


@dataclass(frozen=True)
class RawSplits:
    """train_x: uint8 [N, C, H, W]; train_y: int64 [N]; likewise for the official test split."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    source: str

    def at_side(self, side: int) -> RawSplits:
        """These splits with every image brought to side x side pixels (antialiased bicubic,
        genaug.data.resolution.resize), the source saying so; themselves at their own side."""
        if self.train_x.shape[-2:] == (side, side):
            return self
        from genaug.data.resolution import resize

        return RawSplits(resize(self.train_x, side), self.train_y, resize(self.test_x, side), self.test_y,
                         f"{self.source}, resized to {side}x{side}")


def cache_dir() -> Path:
    """Where downloads and unpacked copies go: ``$GENAUG_CACHE_DIR`` or ~/.cache/genaug."""
    return Path(os.environ.get("GENAUG_CACHE_DIR", Path.home() / ".cache" / "genaug")) / "data"


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_TORCHVISION_FOLDER = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def _torchvision_class(spec: DatasetSpec):
    import torchvision.datasets as tvd

    return {"fashion_mnist": tvd.FashionMNIST, "mnist": tvd.MNIST, "cifar10": tvd.CIFAR10}[spec.name]


def _stage_idx(src_dir: Path, spec: DatasetSpec) -> Path | None:
    """Make ``<root>/<Folder>/raw/<idx files>`` from .gz or plain idx files in src_dir.

    Returns the torchvision root, or None when src_dir lacks any of the four files.
    torchvision wants the files unpacked; a read-only source is unpacked into the cache,
    in a folder named by the sources' content hash, so new files are never read as old data.
    """
    raw_src = [src_dir / name for name in _IDX_FILES]
    gz_src = [src_dir / f"{name}.gz" for name in _IDX_FILES]
    if all(p.exists() for p in raw_src) and src_dir.name == "raw":
        return src_dir.parent.parent
    if not all(p.exists() or g.exists() for p, g in zip(raw_src, gz_src)):
        return None
    sources = [plain if plain.exists() else packed for plain, packed in zip(raw_src, gz_src)]
    root = cache_dir() / "unpacked" / f"{spec.name}-{_fingerprint(sources)}"
    raw = root / _TORCHVISION_FOLDER[spec.name] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for plain, packed in zip(raw_src, gz_src):
        target = raw / plain.name
        if target.exists():
            continue
        tmp = target.with_suffix(".partial")
        if plain.exists():
            shutil.copyfile(plain, tmp)
        else:
            with gzip.open(packed, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        os.replace(tmp, target)  # a killed unpack never leaves a truncated idx file behind
    return root


def _fingerprint(files: list[Path]) -> str:
    """sha256 (first 16 hex) of the files' names and bytes: ~0.1 s for Fashion-MNIST's 30 MB."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]


def _candidate_roots(spec: DatasetSpec) -> list[tuple[str, Path]]:
    """(description, torchvision root) pairs that hold the files, in priority order."""
    found = []
    env = os.environ.get("GENAUG_DATA_DIR")
    if env:
        base = Path(env)
        if spec.name == "cifar10":
            if (base / "cifar-10-batches-py").is_dir() or (base / _CIFAR_ARCHIVE).exists():
                found.append((f"GENAUG_DATA_DIR={base}", base))
        else:
            folder = _TORCHVISION_FOLDER[spec.name]
            for src in (base / folder / "raw", base / folder, base):
                root = _stage_idx(src, spec) if src.is_dir() else None
                if root is not None:
                    found.append((f"GENAUG_DATA_DIR={base}", root))
                    break
    if spec.name == "fashion_mnist" and DEBIAN_FASHION_MNIST.is_dir():
        root = _stage_idx(DEBIAN_FASHION_MNIST, spec)
        if root is not None:
            found.append((f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})", root))
    return found


def source_files(spec: DatasetSpec) -> tuple[str, list[Path]]:
    """(description, files) of the first local source that holds ``spec``'s raw files, in
    the order load_raw tries them, without unpacking anything; ("", []) when there is none.

    What genaug.data.version fingerprints to tell whether the data changed.
    """
    env = os.environ.get("GENAUG_DATA_DIR")
    folders = []
    if env:
        base = Path(env)
        if spec.name == "cifar10":
            folders.append((f"GENAUG_DATA_DIR={base}", [base / "cifar-10-batches-py", base]))
        else:
            folder = _TORCHVISION_FOLDER[spec.name]
            folders.append((f"GENAUG_DATA_DIR={base}", [base / folder / "raw", base / folder, base]))
    if spec.name == "fashion_mnist":
        folders.append((f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})", [DEBIAN_FASHION_MNIST]))
    for description, candidates in folders:
        for folder in candidates:
            if spec.name == "cifar10":
                files = (sorted(p for p in folder.glob("*_batch*") if p.is_file())
                         or [p for p in [folder / _CIFAR_ARCHIVE] if p.is_file()])
            else:
                files = [p for name in _IDX_FILES for p in (folder / name, folder / f"{name}.gz") if p.is_file()]
                files = files if {p.name.removesuffix(".gz") for p in files} == set(_IDX_FILES) else []
            if files:
                return description, files
    return "", []


def _to_arrays(ds, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    if data.ndim == 3:  # MNIST family: [N, H, W]
        data = data[:, None]
    else:               # CIFAR-10: [N, H, W, C]
        data = data.transpose(0, 3, 1, 2)
    targets = np.asarray(ds.targets, dtype=np.int64)
    x = np.ascontiguousarray(data, dtype=np.uint8)
    if x.shape[1:] != spec.shape:
        raise ValueError(f"{spec.title}: images have shape {x.shape[1:]}, expected {spec.shape}")
    return x, targets


def _load(cls, root: Path, spec: DatasetSpec, download: bool) -> RawSplits:
    train = cls(str(root), train=True, download=download)
    test = cls(str(root), train=False, download=download)
    tx, ty = _to_arrays(train, spec)
    vx, vy = _to_arrays(test, spec)
    return RawSplits(tx, ty, vx, vy, source=str(root))


def prestage_hint(spec: DatasetSpec) -> str:
    data_dir = os.environ.get("GENAUG_DATA_DIR", "/path/to/data")
    if spec.name == "cifar10":
        return (f"download {_CIFAR_URL} on a machine with internet and put it (or its unpacked "
                f"folder cifar-10-batches-py/) in {data_dir}/, then set GENAUG_DATA_DIR={data_dir}")
    folder = _TORCHVISION_FOLDER[spec.name]
    hint = (f"put {', '.join(f + '.gz' for f in _IDX_FILES)} in {data_dir}/{folder}/raw/, "
            f"then set GENAUG_DATA_DIR={data_dir}")
    if spec.name == "fashion_mnist":
        hint += "; or, as root on Debian: apt-get install -y dataset-fashion-mnist"
    return hint


def load_raw(spec: DatasetSpec, store=None) -> RawSplits:
    """Load the official train and test splits of ``spec`` as uint8 arrays.

    store: a genaug.services.store.Store for the object-storage cache, or None to skip it. A copy
    loaded from a local source or a download is published to the cache.
    """
    from genaug.data import cache

    cls = _torchvision_class(spec)
    errors = []
    for description, root in _candidate_roots(spec):
        try:
            splits = _load(cls, root, spec, download=spec.name == "cifar10")
        except (RuntimeError, OSError, ValueError) as err:
            errors.append(f"{description}: {err}")
            continue
        raw = RawSplits(splits.train_x, splits.train_y, splits.test_x, splits.test_y, description)
        if store is not None:
            cache.publish(store, spec, raw)
        return raw
    if store is not None:
        cached = cache.fetch(store, spec)
        if cached is not None:
            return cached
        errors.append(f"S3 cache s3://{cache.BUCKET}/raw/{spec.name}/: empty")
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        splits = _load(cls, root, spec, download=True)
        raw = RawSplits(splits.train_x, splits.train_y, splits.test_x, splits.test_y, f"download into {root}")
    except Exception as err:  # torchvision raises many kinds; all mean "no download"
        errors.append(f"download into {root}: {type(err).__name__}: {err}")
    else:
        if store is not None:
            cache.publish(store, spec, raw)
        return raw
    finally:
        socket.setdefaulttimeout(previous)
    raise DataNotFound(
        f"{spec.title} ({spec.name}) is not available offline and could not be downloaded. "
        f"To fix: {prestage_hint(spec)}. Tried: " + " | ".join(errors)
    )
