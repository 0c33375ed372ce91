"""The on-disk form of image arrays that steps hand each other.

One ``.npz`` file (numpy's format, no pickle) holding named uint8 image arrays
[N, C, H, W], their int64 label arrays [N], and a JSON ``meta`` record: dataset name,
content hash, and for synthetic sets their provenance. Written atomically.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from genaug.atomic import atomic_path


class ArtifactError(RuntimeError):
    """An input artifact is missing or unreadable; the message names it and the fix."""


def save(path: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``arrays`` and ``meta`` to ``path`` (exactly that name: no suffix is added)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)


def read_meta(path: str | Path, what: str = "image set") -> dict:
    """The ``meta`` record of a file written by ``save``, without reading its arrays."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{what} not found at {path}; rerun the step that produces it")
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as err:
        raise ArtifactError(f"{what} at {path} is corrupt ({type(err).__name__}: {err}); "
                            f"delete it and rerun the step that produces it") from err


def load(path: str | Path, what: str = "image set") -> tuple[dict[str, np.ndarray], dict]:
    """Read a file written by ``save``: (arrays, meta).

    Raises ArtifactError naming the path when the file is missing or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{what} not found at {path}; rerun the step that produces it")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"]))
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as err:
        raise ArtifactError(f"{what} at {path} is corrupt ({type(err).__name__}: {err}); "
                            f"delete it and rerun the step that produces it") from err
    return arrays, meta
