"""Writers for tiny datasets in the REAL on-disk formats (idx-ubyte, CIFAR-10 pickles)."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np

IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension


def _idx_bytes(magic: int, array: np.ndarray) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def write_idx_dataset(raw_dir: Path, n_train: int, n_test: int, seed: int = 0, gz: bool = True) -> dict:
    """Four idx files (train/t10k images and labels) of 28x28 images; returns the arrays.

    Each class gets a distinct brightness band, so a classifier can learn them quickly.
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = (rng.integers(0, 40, (n, 28, 28)) + labels[:, None, None] * 20).astype(np.uint8)
        for kind, magic, arr in (("images-idx3", IDX_IMAGES_MAGIC, images), ("labels-idx1", IDX_LABELS_MAGIC, labels)):
            name = f"{prefix}-{kind}-ubyte"
            data = _idx_bytes(magic, arr)
            if gz:
                (raw_dir / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (raw_dir / name).write_bytes(data)
        out[prefix] = (images, labels)
    return out


def write_cifar10(root: Path, per_batch: int, n_test: int, seed: int = 0) -> dict[str, str]:
    """``root/cifar-10-batches-py`` with 5 data batches, test_batch and batches.meta.

    Pickled dicts as in the real archive: data uint8 [N, 3072] (R, G, B planes), labels,
    batch_label, filenames. Returns {file name: md5} for patching torchvision's checks.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    md5 = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        labels = [int(v) for v in rng.integers(0, 10, n)]
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        # The archive was pickled by Python 2, whose str keys load as str under
        # encoding="latin1" (what torchvision uses); Python 3 str keys load the same way.
        batch = {"batch_label": name, "labels": labels, "data": data,
                 "filenames": [f"img_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer",
                            "dog", "frog", "horse", "ship", "truck"], "num_cases_per_batch": per_batch,
            "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    for name in names + ["batches.meta"]:
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    return md5
