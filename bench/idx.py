"""Fashion-MNIST from its four idx .gz files with numpy alone (no torchvision), for the GPU
machine, which has torch and little else."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

FILES = {"train_x": "train-images-idx3-ubyte.gz", "train_y": "train-labels-idx1-ubyte.gz",
         "test_x": "t10k-images-idx3-ubyte.gz", "test_y": "t10k-labels-idx1-ubyte.gz"}


def read_idx(path: Path) -> np.ndarray:
    """An idx file (big-endian; magic 0x00000803 images [N, H, W], 0x00000801 labels [N])."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"{path} is not an idx file of uint8 values (magic {magic:#010x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(folder: str | Path) -> dict[str, np.ndarray]:
    """train_x/test_x uint8 [N, 1, 28, 28], train_y/test_y int64 [N]."""
    folder = Path(folder)
    missing = [name for name in FILES.values() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}; point FMNIST_DIR at the folder with "
                                "Fashion-MNIST's four idx .gz files (Debian: /usr/share/datasets/fashion-mnist)")
    out = {key: read_idx(folder / name) for key, name in FILES.items()}
    for split in ("train", "test"):
        out[f"{split}_x"] = out[f"{split}_x"][:, None]
        out[f"{split}_y"] = out[f"{split}_y"].astype(np.int64)
    return out
