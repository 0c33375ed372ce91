"""Write files so that a reader sees either the old content or the complete new one."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from pathlib import Path


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    A crash or exception inside the block leaves ``path`` untouched and removes the
    temporary file, so no half-written artifact is ever visible under the final name.
    The temporary name is unique per writer (process, thread and a random part), so two
    threads writing the same file never share it; the bytes are fsynced before the rename
    and the folder after it, so a power loss cannot leave an empty file under the name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}.partial")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    finally:
        if tmp.exists():
            tmp.unlink()
